"""listening_study: study files, stimuli, sessions and the ratings store."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import math
import re
import subprocess
import sys
import threading
import uuid

import numpy as np
import pandas as pd
import pyloudnorm
import pytest
import soundfile as sf
from helpers import make_tiny_checkpoints

from listening_study.delivery.processing import select_excerpt
from listening_study.delivery.stimuli import prepare_stimuli
from listening_study.design.session_design import SessionTrial, design_session
from listening_study.design.study import ExcerptSpec, StudyConfig, default_study, load_study, study_hash
from listening_study.errors import RatingsFileError, SessionError, StimulusError, StudyError, SubmissionError
from listening_study.sessions.model import Session
from listening_study.sessions.ratings import COLUMNS, LEGACY_COLUMNS, RatingsStore, read_ratings
from listening_study.sessions.store import SessionStore
from listening_study.sessions.table import orphaned_sessions

RATE = 44100
SONG_S = 10.0
VOCALS_ACTIVE = (4.0, 7.5)  # the only seconds where the planted vocals sound


def _write_song(folder, rng: np.random.Generator):
    t = np.arange(int(SONG_S * RATE)) / RATE
    gate = (t >= VOCALS_ACTIVE[0]) & (t < VOCALS_ACTIVE[1])
    vocals = (
        0.3
        * gate
        * (
            np.sin(2 * np.pi * 440 * t)
            + 0.3 * np.sin(2 * np.pi * 2200 * t)
            + 0.2 * np.sin(2 * np.pi * 6600 * t)
        )
    )
    drums = 0.2 * rng.standard_normal(t.size) * (np.mod(t, 0.5) < 0.05)
    bass = 0.25 * np.sin(2 * np.pi * 55 * t)
    other = 0.1 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(t.size)
    stems = {"vocals": vocals, "drums": drums, "bass": bass, "other": other}
    folder.mkdir(parents=True)
    for name, mono in stems.items():
        sf.write(
            folder / f"{name}.wav",
            np.stack([mono, 0.8 * mono], axis=1).astype(np.float32),
            RATE,
            subtype="FLOAT",
        )
    mix = sum(np.stack([m, 0.8 * m], axis=1) for m in stems.values())
    sf.write(folder / "mixture.wav", mix.astype(np.float32), RATE, subtype="FLOAT")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A MUSDB18-HQ layout dataset whose vocals sound only within VOCALS_ACTIVE, and two tiny checkpoints."""
    root = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(3)
    for subset, songs in (("train", ("gamma",)), ("test", ("alpha", "beta"))):
        for song in songs:
            _write_song(root / "dataset" / subset / song, rng)
    make_tiny_checkpoints(root)  # unet.pt and demucs.pt, named relative to the study file below
    study_file = root / "study.yaml"
    study_file.write_text(
        "study_id: planted\ndataset: dataset\nexcerpt_s: 3\ntargets: [vocals]\n"
        "songs:\n  - alpha\n  - {name: beta, start_s: 1.0, end_s: 4.5}\n"
        "systems: {unet: unet.pt, demucs: demucs.pt}\nanchors: [anchor35, anchor70, mixture]\n"
    )
    return root, study_file


@pytest.fixture(scope="module")
def rendered(planted, tmp_path_factory):
    root, study_file = planted
    study = load_study(study_file)
    calls = []
    stimuli = prepare_stimuli(
        study, root / "cache", progress=lambda fraction, message: calls.append(fraction)
    )
    assert calls[-1] == 1.0
    return study, stimuli


# ------------------------------------------------------------------------------------------------ study files


def test_yaml_and_toml_give_the_same_study(planted):
    root, study_file = planted
    toml = root / "study.toml"
    toml.write_text(
        'study_id = "planted"\ndataset = "dataset"\nexcerpt_s = 3\ntargets = ["vocals"]\n'
        'songs = ["alpha", {name = "beta", start_s = 1.0, end_s = 4.5}]\n'
        'anchors = ["anchor35", "anchor70", "mixture"]\n[systems]\nunet = "unet.pt"\ndemucs = "demucs.pt"\n'
    )
    from_yaml, from_toml = load_study(study_file), load_study(toml)
    assert from_yaml == from_toml
    assert from_yaml.conditions == ("unet", "demucs", "reference", "anchor35", "anchor70", "mixture")
    assert from_yaml.systems[0].checkpoint == root / "unet.pt"
    assert from_yaml.ab_pairs == (("unet", "demucs"),)
    assert from_yaml.songs[0].automatic and (from_yaml.songs[1].start_s, from_yaml.songs[1].end_s) == (
        1.0,
        4.5,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"targets": "[piano_solo]"}, "unknown target 'piano_solo'"),
        ({"songs": "[alpha, nosuchsong]"}, "unknown song 'nosuchsong'"),
        ({"songs": "[{name: alpha, start_s: 0, end_s: 15}]"}, "15 s long; excerpts must be 3-12 s"),
        ({"songs": "[{name: alpha, start_s: 8, end_s: 11}]"}, "out of range: the song lasts 10.00 s"),
        ({"songs": "[{name: alpha, start_s: 8}]"}, "give both start_s and end_s"),
        ({"excerpt_s": "20"}, "excerpt_s=20 s: must be 3-12 s"),
        (
            {"systems": "[{name: a, checkpoint: unet.pt}, {name: a, checkpoint: demucs.pt}]"},
            r"duplicate system names: \['a'\]",
        ),
        ({"systems": "{unet: missing.pt}"}, "checkpoint of system 'unet' not found"),
        ({"systems": "{unet: garbage.pt}"}, "checkpoint of system 'unet' cannot be loaded"),
        ({"systems": "{reference: unet.pt}"}, "reserved"),
        ({"anchors": "[anchor99]"}, "unknown anchor 'anchor99'"),
        ({"colour": "blue"}, r"unknown study settings \['colour'\]"),
        ({"study_id": "'../evil'"}, "study_id"),
    ],
)
def test_validation_errors(planted, change, message):
    root, _ = planted
    (root / "garbage.pt").write_bytes(b"not a checkpoint at all")
    settings = {"study_id": "planted", "dataset": "dataset", "targets": "[vocals]", "songs": "[alpha]",
                "systems": "{unet: unet.pt}", **change}  # fmt: skip
    path = root / "invalid.yaml"
    path.write_text("".join(f"{key}: {value}\n" for key, value in settings.items()))
    with pytest.raises(StudyError, match=message):
        load_study(path)


def test_unreadable_study_files(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        load_study(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.toml"
    bad.write_text("study_id = [unclosed")
    with pytest.raises(StudyError, match="cannot parse"):
        load_study(bad)


# ------------------------------------------------------------------------------------------------ stimuli


def test_select_excerpt_finds_the_loudest_window():
    t = np.arange(20 * 1000) / 1000
    signal = np.where((t >= 11) & (t < 14), 1.0, 0.01)[None] * np.sin(2 * np.pi * 50 * t)  # (1, T)
    assert select_excerpt(signal, 1000, 3.0) == pytest.approx((11.0, 14.0))
    assert select_excerpt(signal[:, :2000], 1000, 3.0) == (0.0, 2.0)  # shorter than the window: all of it
    with pytest.raises(StimulusError, match="silent"):
        select_excerpt(np.zeros((2, 10000)), 1000, 3.0)


def test_stimuli_are_rendered_matched_and_cached(planted, rendered):
    root, _ = planted
    study, stimuli = rendered
    assert [t.trial_id for t in stimuli.trials] == ["t00-vocals", "t01-vocals"]
    automatic, fixed = stimuli.trials
    # the automatic excerpt lies where the planted vocals sound
    assert VOCALS_ACTIVE[0] - 0.01 <= automatic.start_s and automatic.end_s <= VOCALS_ACTIVE[1] + 0.01
    assert automatic.end_s - automatic.start_s == pytest.approx(3.0)
    assert (fixed.start_s, fixed.end_s) == (1.0, 4.5)
    meter = pyloudnorm.Meter(RATE)
    for trial in stimuli.trials:
        assert set(trial.conditions) == set(study.conditions)
        ids = [trial.reference, *trial.conditions.values()]
        assert len(set(ids)) == len(ids)  # the hidden reference does not share the open reference's id
        audio = {}
        for name, stimulus_id in [("open", trial.reference), *trial.conditions.items()]:
            info = sf.info(stimuli.path(stimulus_id))
            assert (info.samplerate, info.subtype, info.channels) == (RATE, "PCM_16", 2)
            audio[name], _ = sf.read(stimuli.path(stimulus_id))
        # loudness matched: every non-silent stimulus within 0.5 LU of the others (and none clips)
        loudness = [meter.integrated_loudness(a) for a in audio.values() if np.abs(a).max() > 1e-3]
        assert max(loudness) - min(loudness) < 0.5, loudness
        assert max(np.abs(a).max() for a in audio.values()) < 0.95
        # nothing of the planted vocals lies above 7 kHz: the mid anchor moved to 3.5 kHz (drops the 6.6 kHz
        # partial) and the low one an octave below it, to 1.75 kHz (drops the 2.2 kHz one too)
        for name, cutoff in (("anchor35", 2000), ("anchor70", 4000)):
            spectrum = np.abs(np.fft.rfft(audio[name][:, 0])) ** 2
            freqs = np.fft.rfftfreq(audio[name].shape[0], 1 / RATE)
            if trial is automatic:
                assert spectrum[freqs > cutoff].sum() / spectrum.sum() < 1e-5
        ref_spectrum = np.abs(np.fft.rfft(audio["reference"][:, 0])) ** 2
        if trial is automatic:
            assert (
                ref_spectrum[np.fft.rfftfreq(audio["reference"].shape[0], 1 / RATE) > 4000].sum()
                / ref_spectrum.sum()
                > 0.01
            )
    assert stimuli.anchor_hz() == {
        trial.trial_id: {"anchor70": 3500.0, "anchor35": 1750.0} for trial in stimuli.trials
    }
    assert stimuli.moved_anchors().startswith("Low-pass anchors moved below 3.5 / 7 kHz in 2 of 2 trials")
    assert "t00-vocals anchor35 1,750 Hz, anchor70 3,500 Hz" in stimuli.moved_anchors()
    # the second call is a cache hit: nothing rendered, same ids, files untouched
    files = {p: p.stat().st_mtime_ns for p in stimuli.root.rglob("*.wav")}
    again = prepare_stimuli(study, root / "cache")
    assert again.rendered == 0 and stimuli.rendered == 2
    assert again.trials == stimuli.trials
    assert {p: p.stat().st_mtime_ns for p in again.root.rglob("*.wav")} == files


def test_stimulus_paths_are_whitelisted(rendered):
    _, stimuli = rendered
    good = stimuli.trials[0].reference
    assert stimuli.path(good).is_file() and stimuli.path(good).parent.parent == stimuli.root
    for bad in [
        "../../etc/passwd",
        "/etc/passwd",
        good + "/../x",
        "0123456789abcdef",
        "",
        None,
        good.upper(),
        12,
    ]:
        with pytest.raises(StimulusError, match="unknown stimulus id"):
            stimuli.path(bad)
    with pytest.raises(StimulusError, match="unknown trial"):
        stimuli.trial("../t00-vocals")


def test_default_study_on_tiny_dataset(tiny_dataset, planted):
    root, _ = planted
    study = default_study(tiny_dataset, {"unet": root / "unet.pt", "demucs": root / "demucs.pt"}, n_songs=2,
                          targets=("vocals", "bass"))  # fmt: skip
    assert len(study.songs) == 2 and all(s.automatic for s in study.songs)
    assert study.system_names == ("unet", "demucs") and study.ab_pairs == (("unet", "demucs"),)
    # render one trial of a generated song: the chosen 3-s window is the one where the bass is loudest
    one = dataclasses.replace(study, songs=study.songs[:1], targets=("bass",), excerpt_s=3.0)
    stimuli = prepare_stimuli(one, root / "tiny-cache")
    (trial,) = stimuli.trials
    from mss.data import find_track, open_db, track_stems

    bass = track_stems(find_track(open_db(tiny_dataset, subset="test"), trial.song), ["bass"])[0]  # (C, T)
    power = np.cumsum(np.concatenate([[0.0], (bass.astype(np.float64) ** 2).mean(0)]))
    window = int(3.0 * RATE)
    chosen = power[int(round(trial.end_s * RATE))] - power[int(round(trial.start_s * RATE))]
    others = [power[s + window] - power[s] for s in range(0, bass.shape[-1] - window, RATE // 10)]
    assert trial.end_s - trial.start_s == pytest.approx(3.0) and chosen >= max(others) * 0.98
    assert all(stimuli.path(i).is_file() for i in trial.conditions.values())
    # a generated bass excerpt: the standard's anchors would not be heard, so they moved (the trial says where)
    assert all(hz < 3500.0 for hz in stimuli.anchor_hz()[trial.trial_id].values())
    # app.py --fixed-anchors: the default study with the standard's anchors (a study begun before keeps its cache)
    from helpers import load_app_module

    settings = dict(load_app_module().parse_args(["--fixed-anchors"]).study_settings)
    assert settings == {"fit_anchors": False}
    fixed = default_study(tiny_dataset, {"unet": root / "unet.pt", "demucs": root / "demucs.pt"}, n_songs=2,
                          targets=("vocals", "bass"), **settings)  # fmt: skip
    assert fixed.fit_anchors is False and study_hash(fixed) != study_hash(study)
    with pytest.raises(StudyError, match="unknown target"):
        default_study(tiny_dataset, {"unet": root / "unet.pt"}, targets=("kazoo",))


def test_default_study_leaves_out_a_song_that_is_no_valid_song(tiny_dataset, planted, tmp_path):
    """A test song whose mixture is another song's (it reads fine, but is not the sum of its stems) is
    left out of the study with the song check's message; the other songs make the study."""
    import shutil

    root, _ = planted
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    songs = sorted(p for p in (data / "test").iterdir() if p.is_dir())
    shutil.copy(songs[1] / "mixture.wav", songs[0] / "mixture.wav")
    skipped: list[str] = []
    study = default_study(data, {"unet": root / "unet.pt", "demucs": root / "demucs.pt"}, n_songs=2,
                          targets=("vocals", "bass"), on_skip=skipped.append)  # fmt: skip
    assert [spec.song for spec in study.songs] == [song.name for song in songs[1:]]  # the others, all of them
    assert len(skipped) == 1 and f"song {songs[0].name!r} left out" in skipped[0]
    assert "not a valid song" in skipped[0] and "the mixture is not the sum of its stems" in skipped[0]


# ------------------------------------------------------------------------------------------------ sessions


ANSWERS = {"age": "25-34", "experience": "some", "headphones": "closed"}


_READINGS = itertools.count(1_700_000_000.0, 60.0)  # one fast clock for every store of this module


def fast_clock():
    """A clock that advances 60 s per reading (shared by all stores, so it never runs backwards): every
    trial has been open long enough for the server's elapsed-time rule."""
    return lambda: next(_READINGS)


def pass_headphone_check(store: SessionStore, session_id: str, right: bool = True):
    """Fetch the check's six sounds, as the page does, and answer them (rightly or all wrong)."""
    session = store.resume(session_id)
    design = store.headphone_design(session)
    for trial in design:
        store.serve_audio(session_id, store.audio_token(session, "headphones", str(trial.index), "HP"))
    return store.answer_headphones(session_id, [t.quiet if right else t.antiphase for t in design])


def fetch_step(store: SessionStore, session_id: str) -> None:
    """Have the server send what the page of the step in progress plays (the volume example, or every
    familiarization page), as the page does when it loads it."""
    session = store.resume(session_id)
    step = store.step(session)
    if step == "volume":
        store.serve_audio(session_id, store.audio_token(session, "volume", session.volume_trial, "REF"))
    for index, page in enumerate(session.familiarization if step == "familiarization" else ()):
        for label in ["REF", *page.screen_labels]:
            store.serve_audio(session_id, store.audio_token(session, f"fam{index}", page.trial_id, label))


def complete(store: SessionStore, session_id: str, step: str):
    """Load the step's audio, then press its "Continue"."""
    fetch_step(store, session_id)
    return store.complete_step(session_id, step)


def ready(store: SessionStore, session):
    """Take a new session through consent, questionnaire, volume, the headphone check, familiarization and
    instructions."""
    if store.step(store.resume(session.session_id)) == "questionnaire":
        store.answer_questionnaire(session.session_id, ANSWERS)
    for step in ("volume", "headphones", "familiarization", "instructions"):
        if store.step(store.resume(session.session_id)) == step == "headphones":
            pass_headphone_check(store, session.session_id)
        elif store.step(store.resume(session.session_id)) == step:
            complete(store, session.session_id, step)
    session = store.resume(session.session_id)
    assert store.step(session) == "trial"
    return session


def fetch_trial(store: SessionStore, session_id: str):
    """Have the server send every file of the trial in progress, as the page does when it loads it."""
    session = store.resume(session_id)
    trial = store.next_trial(session)
    for label in ["REF", *trial.screen_labels]:
        store.serve_audio(session_id, store.audio_token(session, "trial", trial.trial_id, label))
    return trial


def test_sessions_randomized_reproducible_and_resumable(rendered, tmp_path):
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    sessions = [store.start(consent=True) for _ in range(12)]
    mappings = {tuple(s.trials["t00-vocals"].labels.values()) for s in sessions}
    orders = {s.trial_order for s in sessions}
    assert len(mappings) > 4 and len(orders) == 2  # differs between participants
    for session in sessions[:3]:
        seed = store.key.seed("design", session.session_id)
        designed = design_session(seed, stimuli.trials, n_familiarization=2)
        assert designed == (
            session.trial_order,
            session.trials,
            session.familiarization,
            session.volume_trial,
        )
        assert store.resume(session.session_id) == session
        assert session.participant_id.startswith("P-")
        for trial in session.trials.values():
            assert trial.screen_labels == ["A", "B", "C", "D", "E", "F"]
            assert {trial.stimuli[label] for label in trial.labels} == set(
                stimuli.trial(trial.trial_id).conditions.values()
            )
    # a "reload": a new store on the same folder resumes exactly at the step, then after the submitted trial
    session = store.start("listener_07", consent=True)
    assert store.step(session) == "questionnaire"
    with pytest.raises(SessionError, match="Please answer"):
        store.answer_questionnaire(session.session_id, {"age": "25-34"})
    store.answer_questionnaire(session.session_id, ANSWERS)
    assert (
        SessionStore(tmp_path / "study", stimuli, clock=fast_clock()).step(store.resume(session.session_id))
        == "volume"
    )
    with pytest.raises(SessionError, match="at the volume step"):
        store.complete_step(session.session_id, "instructions")
    session = ready(store, session)
    first = store.next_trial(session)
    rules = {"listen_ms": dict.fromkeys(first.labels, 2500), "scores": dict.fromkeys(first.labels, 100.0)}
    fetch_trial(store, session.session_id)
    store.submit(session.session_id, first.trial_id, rules["scores"], dict.fromkeys(first.labels, 1), 1000,
                 listen_ms=rules["listen_ms"])  # fmt: skip
    reloaded = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    resumed = reloaded.resume(session.session_id)
    assert resumed.participant_id == "listener_07" and resumed.questionnaire == ANSWERS
    assert reloaded.progress(resumed) == (1, 2) and reloaded.step(resumed) == "trial"
    assert reloaded.next_trial(resumed).trial_id == session.trial_order[1]
    assert reloaded.completion_code(resumed) is None
    second = fetch_trial(reloaded, session.session_id)
    reloaded.submit(session.session_id, second.trial_id, rules["scores"], dict.fromkeys(first.labels, 1), 1000,
                    listen_ms=rules["listen_ms"])  # fmt: skip
    assert reloaded.step(resumed) == "finished"
    code = reloaded.completion_code(resumed)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code) and code == store.completion_code(resumed)
    table = reloaded.sessions_table().set_index("session_id").loc[session.session_id]
    assert (table["step"], table["completion_code"], table["age"]) == ("finished", code, "25-34")
    with pytest.raises(SessionError, match="agree to take part"):
        store.start("P1")
    for bad in ["../x", "a b", "x" * 40, "ä"]:
        with pytest.raises(SessionError, match="participant code"):
            store.start(bad, consent=True)
    for bad in ["../../etc/passwd", uuid.uuid4().hex]:
        with pytest.raises(SessionError):
            store.resume(bad)


# ------------------------------------------------------------------------------------------------ ratings


def test_concurrent_submissions_are_all_kept(rendered, tmp_path):
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    sessions = [ready(store, store.start(f"p{i:02d}", consent=True)) for i in range(50)]
    for session in sessions:
        fetch_trial(store, session.session_id)
    barrier = threading.Barrier(50)
    errors = []

    def submit(session):
        trial = session.trials[session.trial_order[0]]
        scores = {label: float(i * 20) for i, label in enumerate(trial.screen_labels)}  # 0 ... 100
        barrier.wait()
        try:
            store.submit(
                session.session_id,
                trial.trial_id,
                scores,
                dict.fromkeys(trial.labels, 2),
                4321,
                'ok, "fine"\nthanks',
                listen_ms=dict.fromkeys(trial.labels, 3000),
            )
        except Exception as exc:  # collected: a failing thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    frame = pd.read_csv(store.ratings.path)
    assert tuple(frame.columns) == COLUMNS and len(frame) == 50 * 6
    assert frame.groupby(["session_uuid", "screen_label"]).size().eq(1).all()
    assert set(frame["session_uuid"]) == {s.session_id for s in sessions}
    assert (frame["rating_comment"] == 'ok, "fine"\nthanks').all()
    # the server's measurements: its own trial time (60 s per reading of the fast clock), not the page's
    # 4321 ms, which is kept beside it; every file sent once
    assert (frame["page_time_ms"] == 4321).all() and (frame["rating_time"] % 60_000 == 0).all()
    assert (frame["rating_time"] >= 60_000).all() and (frame["n_fetches"] == 1).all()
    # each session's rows are contiguous: the trials did not interleave
    assert (frame["session_uuid"] != frame["session_uuid"].shift()).sum() == 50
    # the true condition names are recorded under their screen labels
    session = sessions[0]
    rows = frame[frame["session_uuid"] == session.session_id].set_index("screen_label")
    for label, condition in session.trials[session.trial_order[0]].labels.items():
        assert rows.loc[label, "rating_stimulus"] == condition
    assert read_ratings(store.ratings.path)["rating_score"].dtype.kind == "f"


def test_refused_submissions_write_nothing(rendered, tmp_path):
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    session = store.start(consent=True)
    trial = store.next_trial(session)
    labels = trial.screen_labels
    scores, plays = {**dict.fromkeys(labels, 60.0), "A": 100.0}, dict.fromkeys(labels, 1)
    listen = dict.fromkeys(labels, 2000)
    before = store.ratings.path.read_bytes()
    with pytest.raises(SubmissionError, match="at the questionnaire step"):
        store.submit(session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen)
    session = ready(store, session)
    # A script that sends a perfect form without ever loading the trial's files is refused, and so is one
    # that loaded all but one of them (the server sent them, so it knows).
    with pytest.raises(SubmissionError, match=r"not loaded: the reference, A, B, C, D, E, F\)"):
        store.submit(session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen)
    for label in ["REF", *[x for x in labels if x != "C"]]:
        store.serve_audio(session.session_id, store.audio_token(session, "trial", trial.trial_id, label))
    store.serve_audio(
        session.session_id, store.audio_token(session, "fam0", session.familiarization[0].trial_id, "C")
    )
    with pytest.raises(SubmissionError, match=r"not loaded: C\)\. Reload the page"):  # C of another page: no
        store.submit(session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen)
    assert store.ratings.path.read_bytes() == before
    fetch_trial(store, session.session_id)
    cases = [
        (
            dict(scores={**scores, "B": None}),
            r"Please rate every version: move its slider \(not yet rated: B\)",
        ),
        (dict(scores={**scores, "B": True}), "must be a finite number"),
        (dict(scores={**scores, "A": 70.0}), "Please rate at least one version 100"),
        (dict(listen_ms={**listen, "C": 1200}), r"at least 2 s. Too short so far: C \(1.2 s\)"),
        (dict(listen_ms=None), "listening times must be given"),
        (dict(trial_id=session.trial_order[1]), "not the trial in progress"),
        (dict(session_id=uuid.uuid4().hex), "unknown session"),
        (dict(session_id="../../x"), "malformed session id"),
        (dict(trial_id="t99-vocals"), "unknown trial"),
        (dict(scores={k: v for k, v in scores.items() if k != "A"}), r"missing \['A'\]"),
        (dict(scores={**scores, "Z": 1.0}), r"extra \['Z'\]"),
        (dict(scores={**scores, "B": 100.5}), "within 0-100"),
        (dict(scores={**scores, "B": 50.5}), "whole numbers"),
        (dict(scores={**scores, "B": 1e-320}), "whole numbers"),
        (dict(scores={**scores, "B": -1}), "within 0-100"),
        (dict(scores={**scores, "C": math.nan}), "finite number"),
        (dict(scores={**scores, "C": math.inf}), "finite number"),
        (dict(scores={**scores, "C": "50"}), "finite number"),
        (dict(scores={**scores, "C": "70"}), "finite number"),
        (dict(plays={**plays, "D": 0}), r"not yet played: \['D'\]"),
        (dict(plays={k: v for k, v in plays.items() if k != "E"}), "play counts"),
        (dict(comment="x" * 1001), "at most 1000"),
        (dict(time_ms=-5), "time_ms"),
    ]
    for change, message in cases:
        defaults = dict(session_id=session.session_id, trial_id=trial.trial_id, scores=scores, plays=plays,
                        time_ms=1000, comment="", listen_ms=listen)  # fmt: skip
        arguments = {**defaults, **change}
        with pytest.raises(SubmissionError, match=message):
            store.submit(**arguments)
        assert store.ratings.path.read_bytes() == before, change
    # The page may lie about its listening times: the server's own clock still refuses a trial submitted
    # sooner than its 6 conditions x 2 s can have been heard (a store on the real clock, same session).
    with pytest.raises(SubmissionError, match=r"submitted 0\.\d s after it opened; .* at least 12 s"):
        SessionStore(tmp_path / "study", stimuli, clock=lambda: session.step_started + 0.5).submit(
            session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen
        )
    assert store.ratings.path.read_bytes() == before
    session = store.resume(session.session_id)
    rows = store.submit(session.session_id, trial.trial_id, scores, plays, 1000, "=HYPERLINK(evil)", listen)
    assert len(rows) == 6 and {r["mode"] for r in rows} == {"mushra"}
    assert {r["rating_comment"] for r in rows} == {"'=HYPERLINK(evil)"}  # a spreadsheet shows it as text
    after = store.ratings.path.read_bytes()
    with pytest.raises(SubmissionError, match="already submitted"):
        store.submit(session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen)
    # another process's store (a fresh object on the same file) also sees the submission
    with pytest.raises(SubmissionError, match="already submitted"):
        RatingsStore(store.ratings.path).submit(session, trial.trial_id, scores, plays, 1000)
    assert store.ratings.path.read_bytes() == after


def test_ab_mode(rendered, tmp_path):
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    session = ready(store, store.start(mode="ab", consent=True))
    fetch_trial(store, session.session_id)
    assert len(session.trial_order) == 2 and all(t.startswith("ab0-") for t in session.trial_order)
    assert session.familiarization == ()  # the familiarization is MUSHRA's
    trial = store.next_trial(session)
    assert sorted(trial.labels.values()) == ["demucs", "unet"] and trial.screen_labels == ["A", "B"]
    listen = {"A": 2000, "B": 2500}
    with pytest.raises(SubmissionError, match="confidence"):
        store.submit_ab(session.session_id, trial.trial_id, "A", 4, {"A": 1, "B": 1}, 500, listen_ms=listen)
    with pytest.raises(SubmissionError, match="Too short so far: B"):
        store.submit_ab(
            session.session_id, trial.trial_id, "A", 2, {"A": 1, "B": 1}, 500, listen_ms={"A": 2000, "B": 10}
        )
    with pytest.raises(SubmissionError, match="not a mushra session"):
        store.submit(session.session_id, trial.trial_id, {"A": 1.0, "B": 2.0}, {"A": 1, "B": 1}, 500)
    rows = store.submit_ab(
        session.session_id, trial.trial_id, "B", 3, {"A": 1, "B": 2}, 500, listen_ms=listen
    )
    scores = {r["screen_label"]: r["rating_score"] for r in rows}
    assert scores == {"A": 0.0, "B": 3.0} and {r["mode"] for r in rows} == {"ab"}


def test_ratings_file_errors(tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,score\nalice,3\n")
    with pytest.raises(RatingsFileError, match="header is not the ratings header"):
        RatingsStore(wrong)
    assert wrong.read_text() == "name,score\nalice,3\n"  # not overwritten
    broken = tmp_path / "broken.csv"
    store = RatingsStore(broken)
    assert broken.read_text() == ",".join(COLUMNS) + "\n"
    RatingsStore(broken)  # an existing file with the right header is accepted, header written once
    assert broken.read_text().count("session_test_id") == 1
    with open(broken, "a") as handle:
        handle.write("just,three,fields\n")
    with pytest.raises(RatingsFileError, match="3 fields instead of 19"):
        store.completed("x")
    with pytest.raises(RatingsFileError):
        read_ratings(broken)
    assert broken.read_text().endswith("just,three,fields\n")


def test_ratings_file_of_an_earlier_version_stays_in_its_format(tmp_path):
    """A study running before the server counted its fetches keeps one format: rows appended to its file
    leave out the two new columns (and keep the page's time as rating_time, what the column meant there),
    and reading it gives them empty."""
    legacy = tmp_path / "ratings.csv"
    legacy.write_text(",".join(LEGACY_COLUMNS) + "\n")
    store = RatingsStore(legacy)
    labels = {"A": "x", "B": "reference"}
    trial = SessionTrial(
        "t00-vocals", "song", "vocals", 1.0, 4.0, "0" * 16, labels, {k: "0" * 16 for k in labels}
    )
    session = Session("ab" * 16, "P1", "s", "mushra", "", ("t00-vocals",), {"t00-vocals": trial})
    store.submit(session, "t00-vocals", {"A": 20.0, "B": 100.0}, {"A": 1, "B": 1}, 1500, server_ms=9300,
                 fetches={"A": 1, "B": 2})  # fmt: skip
    lines = legacy.read_text().splitlines()
    assert len(lines) == 3 and all(line.count(",") == len(LEGACY_COLUMNS) - 1 for line in lines)
    frame = read_ratings(legacy)  # rating_time keeps its meaning there: the page's time
    assert frame["rating_time"].tolist() == [1500, 1500] and frame["n_fetches"].isna().all()
    assert frame["page_time_ms"].isna().all()
    current = tmp_path / "current.csv"
    RatingsStore(current).submit(session, "t00-vocals", {"A": 20.0, "B": 100.0}, {"A": 1, "B": 1}, 1500,
                                 server_ms=9300, fetches={"A": 1, "B": 2})  # fmt: skip
    frame = read_ratings(current)
    assert frame["n_fetches"].tolist() == [1, 2] and frame["page_time_ms"].tolist() == [1500, 1500]
    assert frame["rating_time"].tolist() == [9300, 9300]


def test_loudness_match_guards_silence_and_clipping():
    from listening_study.delivery.processing import integrated_loudness, loudness_match

    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal((2, RATE * 3))).astype(np.float32)
    spiky = np.zeros((2, RATE * 3), np.float32)
    spiky[:, ::4410] = (
        0.5  # clicks: a high crest factor that -23 LUFS would push far past full scale... at -5 LUFS
    )
    stimuli = {"noise": noise, "spiky": spiky, "silent": np.zeros_like(noise)}
    matched, report = loudness_match(stimuli, RATE, target_lufs=-5.0)
    assert report.silent == ("silent",) and not matched["silent"].any()
    assert report.trial_gain_db < 0  # the whole trial was attenuated by one common gain...
    assert (
        max(np.abs(a).max() for a in matched.values()) <= 10 ** (-1 / 20) + 1e-6
    )  # ...so nothing exceeds -1 dBFS
    levels = [integrated_loudness(matched[name], RATE) for name in ("noise", "spiky")]
    assert abs(levels[0] - levels[1]) < 0.1  # and the stimuli stay matched to each other
    assert levels[0] == pytest.approx(-5.0 + report.trial_gain_db, abs=0.1)


def test_two_processes_share_the_ratings_file(tmp_path):
    """fcntl.flock keeps rows of separate processes (each with its own store and lock) whole and unique."""
    script = """
import sys
from listening_study.sessions.ratings import RatingsStore
from listening_study.design.session_design import SessionTrial
from listening_study.sessions.model import Session
store = RatingsStore(sys.argv[1])
labels = {"A": "x", "B": "y", "C": "reference"}
for i in range(15):
    trial = SessionTrial("t00-vocals", "song", "vocals", 1.0, 4.0, "0" * 16, labels, {k: "0" * 16 for k in labels})
    session = Session(f"{sys.argv[2]}{i:031x}", "p" + sys.argv[2], "s", "mushra", "", ("t00-vocals",), {"t00-vocals": trial})
    store.submit(session, "t00-vocals", {"A": 1.0, "B": 2.0, "C": 3.0}, {"A": 1, "B": 1, "C": 1}, 10, "x" * 500)
"""
    csv_path = tmp_path / "ratings.csv"
    processes = [subprocess.Popen([sys.executable, "-c", script, str(csv_path), tag]) for tag in "ab"]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    frame = read_ratings(csv_path)
    assert len(frame) == 2 * 15 * 3 and frame.groupby(["session_uuid", "screen_label"]).size().eq(1).all()
    assert (frame["session_uuid"] != frame["session_uuid"].shift()).sum() == 30  # no interleaving


# ------------------------------------------------------------------------------------------------ blinding


def test_stimulus_files_tell_nothing_apart(rendered):
    """Within a trial: same byte length and header; the hidden reference is not a copy of the reference."""
    _, stimuli = rendered
    for trial in stimuli.trials:
        ids = {"open": trial.reference, **trial.conditions}
        data = {name: stimuli.path(stimulus_id).read_bytes() for name, stimulus_id in ids.items()}
        assert len({len(blob) for blob in data.values()}) == 1
        assert len({blob[:44] for blob in data.values()}) == 1  # RIFF/fmt/data headers identical
        assert len(set(data.values())) == len(data)  # no two files alike, byte for byte
        open_reference, _ = sf.read(stimuli.path(trial.reference), dtype="int16")
        hidden, _ = sf.read(stimuli.path(trial.conditions["reference"]), dtype="int16")
        difference = open_reference.astype(int) - hidden.astype(int)
        # the same signal, dithered independently: TPDF dither moves a sample by at most 1 LSB each way
        assert np.abs(difference).max() <= 2 and np.count_nonzero(difference) > 0.1 * difference.size
    # ids are random file names, not derived from anything public
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for t in stimuli.trials for i in t.conditions.values())


def _trial_files(store: SessionStore, session, trial) -> dict[str, bytes]:
    """What the page downloads for a trial: {screen label or REF: bytes}."""
    labels = ["REF", *trial.screen_labels]
    return {
        label: store.serve_audio(
            session.session_id, store.audio_token(session, "trial", trial.trial_id, label)
        )
        for label in labels
    }


def test_delivered_files_name_no_version_and_differ_between_sessions(rendered, tmp_path):
    """The curious participant (listening_study.delivery.audit): from sizes and headers, trained on 8
    sessions with the truth, over 16 trials of 8 others, no version is named above chance; the same
    classifier on the FLAC files this project used to send names them (so it can see a leak). Decoded,
    the files are the stored stimulus within 1 LSB; two sessions share no file byte for byte."""
    from scipy.stats import binomtest

    from listening_study.delivery.audit import file_features, hit_rates, name_from_bytes, shared_files
    from listening_study.delivery.wav import session_pcm

    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    trials = []  # (session index, {label: bytes}, truth)
    sessions = [store.start(consent=True) for _ in range(16)]
    for index, session in enumerate(sessions):
        for trial in session.trials.values():
            files = _trial_files(store, session, trial)
            assert len({len(data) for data in files.values()}) == 1  # one size ...
            assert (
                len({data[:44] for data in files.values()}) == 1 and files["REF"][:4] == b"RIFF"
            )  # one header
            trials.append((index, {k: v for k, v in files.items() if k != "REF"}, dict(trial.labels)))
    trial = sessions[0].trials["t00-vocals"]
    files = _trial_files(store, sessions[0], trial)
    for label, data in files.items():  # the samples: the stored file with this session's dither
        served, rate = sf.read(io.BytesIO(data), dtype="int16", always_2d=True)
        stored, _ = sf.read(
            stimuli.path(trial.stimuli.get(label, trial.reference)), dtype="int16", always_2d=True
        )
        seed = store.delivery_seed(sessions[0].session_id, "trial", trial.trial_id, label)
        assert rate == 44100 and np.array_equal(served.T, session_pcm(stored.T, seed)), label
        difference = served.astype(int) - stored
        assert np.abs(difference).max() == 1 and 0.4 < np.mean(difference != 0) < 0.6  # P(d != 0) = 1/2
    pilot = [(t[1], t[2]) for t in trials if t[0] < 8]
    test = [t for t in trials if t[0] >= 8]
    assert len(test) >= 16

    def rates(encode):
        features = lambda files: {k: file_features(encode(v)) for k, v in files.items()}  # noqa: E731
        guesses = name_from_bytes(
            [(features(f), truth) for f, truth in pilot], [features(t[1]) for t in test]
        )
        return hit_rates(guesses, [t[2] for t in test])

    chance = 1 / len(stimuli.study.conditions)
    # The sessions' blinding is random (uuid4 session ids), so the hits are too: one one-sided binomial test per
    # condition, Bonferroni-corrected, fails a study without a leak in under 1 run in 1,000 (at 0.01 per
    # condition, uncorrected, about 1 in 80 did: 8 of 16 named at chance 1/6 has p = 0.002).
    alpha = 0.001 / len(stimuli.study.conditions)
    for condition, (hits, total) in rates(lambda data: data).items():
        assert binomtest(hits, total, chance, alternative="greater").pvalue > alpha, (condition, hits, total)

    def flac(data: bytes) -> bytes:
        pcm, rate = sf.read(io.BytesIO(data), dtype="int16")
        buffer = io.BytesIO()
        sf.write(buffer, pcm, rate, subtype="PCM_16", format="FLAC")
        return buffer.getvalue()

    leaky = rates(flac)
    assert leaky["anchor35"][0] == leaky["anchor35"][1]  # the 3.5 kHz anchor: always the smallest FLAC
    assert (
        binomtest(*leaky["anchor35"], chance, alternative="greater").pvalue < alpha
    )  # the test above sees it
    first = [data for files in (_trial_files(store, sessions[0], t) for t in sessions[0].trials.values())
             for data in files.values()]  # fmt: skip
    second = [data for files in (_trial_files(store, sessions[1], t) for t in sessions[1].trials.values())
              for data in files.values()]  # fmt: skip
    assert shared_files(first, second) == 0 and shared_files(first, first) == len(first)


def test_design_and_audio_tokens_come_from_the_secret_key(rendered, tmp_path):
    from listening_study.design.blinding import StudyKey

    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    key_file = tmp_path / "study" / "study.key"
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only
    assert SessionStore(tmp_path / "study", stimuli, clock=fast_clock()).key.token("x") == store.key.token(
        "x"
    )  # persisted
    session = store.start(consent=True)
    # the same session id under another key: another design (what a participant could compute is useless)
    other = design_session(StudyKey.random().seed("design", session.session_id), stimuli.trials, 2)
    assert [t.labels for t in other[1].values()] != [t.labels for t in session.trials.values()]
    # tokens: per session, page, trial and label; each resolves to its own file, nothing else resolves
    second = store.start(consent=True)
    trial = session.trials["t00-vocals"]
    tokens = {label: store.audio_token(session, "trial", trial.trial_id, label) for label in trial.labels}
    assert len(set(tokens.values())) == len(tokens)
    for label, token in tokens.items():
        served, _ = sf.read(io.BytesIO(store.serve_audio(session.session_id, token)), dtype="int16")
        stored, _ = sf.read(stimuli.path(trial.stimuli[label]), dtype="int16")
        assert np.abs(served.astype(int) - stored).max() <= 1, label  # its file, this session's dither
        with pytest.raises(StimulusError):
            store.serve_audio(second.session_id, token)  # another session's token is nobody's
    assert tokens["A"] != store.audio_token(second, "trial", trial.trial_id, "A")
    assert store.audio_token(session, "fam0", trial.trial_id, "A") != tokens["A"]
    for bad in ["", "../../etc/passwd", trial.stimuli["A"], tokens["A"].upper(), "0" * 32]:
        with pytest.raises(StimulusError, match="unknown stimulus"):
            store.serve_audio(session.session_id, bad)
    # the familiarization shows excerpts under letters of their own
    assert len(session.familiarization) == 2
    assert {page.trial_id for page in session.familiarization} <= set(session.trials)


def test_study_and_stimuli_do_not_import_each_other():
    """stimuli.py imports study.py; study.py imports neither stimuli.py nor anything that does, lazily or not."""
    import ast
    from pathlib import Path

    def imported(name: str) -> set[str]:
        tree = ast.parse((Path(__file__).parents[1] / "listening_study" / f"{name}.py").read_text())
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert "listening_study.design.study" in imported("delivery/stimuli")
    assert not {"listening_study.delivery.stimuli", "listening_study.sessions.store"} & imported(
        "design/study"
    )
    assert "listening_study.delivery.stimuli" not in imported("design/dataset")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("min_listen_s: 9", "min_listen_s=9: must be 0-3 s"),
        ("require_100: 'no'", "require_100 must be true or false"),
        ("familiarization_excerpts: 1.5", "familiarization_excerpts must be a whole number"),
        ("familiarization_excerpts: 20", "must be 0-6"),
    ],
)
def test_session_settings_are_validated(planted, line, message):
    root, study_file = planted
    path = root / "settings.yaml"
    path.write_text(study_file.read_text() + line + "\n")
    with pytest.raises(StudyError, match=message):
        load_study(path)


def test_excerpt_sdr_is_that_of_the_rated_excerpt(planted, rendered):
    """The SDR table of the study's own stimuli: the mixture anchor's SDR equals the SDR of the planted
    mixture against the planted vocals on exactly the excerpt (loudness gain undone), the hidden reference
    is infinite, and the table (the SDR rows of the excerpt metrics) is cached beside the stimuli."""
    from listening_study.analysis.metrics import CACHE_NAME, study_excerpt_sdr
    from mss.evaluation.frame_sdr import window_sdr_frames
    from mss.evaluation.museval_format import median_sdr

    root, _ = planted
    _, stimuli = rendered
    table = study_excerpt_sdr(stimuli)
    assert len(table) == sum(len(t.conditions) for t in stimuli.trials)
    assert (table.loc[table["condition"] == "reference", "sdr_db"] == math.inf).all()
    # alpha's excerpt is where the planted vocals sound; beta's 1.0-4.5 s has vocals only after 4.0 s, so
    # every full 1-s frame of its reference is silent: no SDR (museval's rule), although the dithered
    # file is not digital silence
    first = table[(table["trial_id"] == "t00-vocals") & (table["condition"] != "reference")]["sdr_db"]
    second = table[(table["trial_id"] == "t01-vocals") & (table["condition"] != "reference")]["sdr_db"]
    assert first.map(math.isfinite).all() and second.map(math.isnan).all()
    for trial in stimuli.trials:
        song = root / "dataset" / "test" / trial.song
        mix, _ = sf.read(song / "mixture.wav", always_2d=True)
        vocals, _ = sf.read(song / "vocals.wav", always_2d=True)
        lo, hi = round(trial.start_s * RATE), round(trial.end_s * RATE)
        expected = median_sdr(window_sdr_frames(vocals[lo:hi].T, mix[lo:hi].T))
        got = table[(table["trial_id"] == trial.trial_id) & (table["condition"] == "mixture")][
            "sdr_db"
        ].item()
        assert got == pytest.approx(expected, abs=0.05, nan_ok=True), trial.trial_id
    cache = stimuli.root / CACHE_NAME
    assert cache.is_file()
    header, _, body = cache.read_text().partition("\n")
    lines = body.splitlines()
    lines[1] = ",".join([*lines[1].split(",")[:-1], "99.5"])  # a value planted in the cache is read back
    cache.write_text("\n".join([header, *lines]) + "\n")
    assert study_excerpt_sdr(stimuli)["sdr_db"].iloc[0] == 99.5


def test_headphone_check_is_one_attempt_after_the_volume(rendered, tmp_path):
    """The check comes after the volume page; its sounds must have been sent before it is scored; a
    malformed answer is refused and stores nothing; one attempt only; a failure is stored and the session
    goes on; the sessions table shows the results and the codes shared by several sessions."""
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    passing, failing = store.start("P07", consent=True), store.start("P07", consent=True)
    for session in (passing, failing):
        store.answer_questionnaire(session.session_id, ANSWERS)
        complete(store, session.session_id, "volume")
        assert store.step(store.resume(session.session_id)) == "headphones"
    design = store.headphone_design(store.resume(passing.session_id))
    assert design == store.headphone_design(store.resume(passing.session_id))  # from the key: stable
    with pytest.raises(SubmissionError, match=r"not loaded: sound 1, 2, 3, 4, 5, 6\)"):
        store.answer_headphones(passing.session_id, [t.quiet for t in design])
    with pytest.raises(SessionError, match="at the headphones step"):
        complete(store, passing.session_id, "familiarization")
    for bad in ([True] * 6, [0] * 5, ["1"] * 6, [3] * 6):
        with pytest.raises(SubmissionError):
            store.answer_headphones(passing.session_id, bad)
    assert store.resume(passing.session_id).headphones == {}
    session = pass_headphone_check(store, passing.session_id)
    assert session.headphones == {
        "n_correct": 6,
        "n_trials": 6,
        "passed": True,
        "answers": [t.quiet for t in design],
    }
    assert store.step(session) == "familiarization"
    first = session.familiarization[0]
    store.serve_audio(passing.session_id, store.audio_token(session, "fam0", first.trial_id, "REF"))
    with pytest.raises(SubmissionError, match="not loaded the versions of excerpt 1(, excerpt 2)? yet"):
        store.complete_step(passing.session_id, "familiarization")  # the reference alone is not enough
    with pytest.raises(SessionError, match="not the headphone check"):
        store.answer_headphones(passing.session_id, [t.quiet for t in design])  # one attempt
    session = pass_headphone_check(store, failing.session_id, right=False)
    assert session.headphones["passed"] is False and session.headphones["n_correct"] == 0
    # a failed check ends the session there, with thanks and a code of its own: no trials rated for nothing
    assert store.step(session) == "screened_out" and store.screened_out(session)
    code = store.completion_code(session)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code) and code != store.key.code(
        "completion", failing.session_id
    )
    with pytest.raises(SubmissionError, match="screened_out step"):
        store.submit(failing.session_id, session.trial_order[0], {}, {}, 0)
    with pytest.raises(SessionError, match="screened_out step"):
        store.complete_step(failing.session_id, "familiarization")
    table = store.sessions_table().set_index("session_id")
    assert table.loc[passing.session_id, "headphone_check"] == "6/6 passed"
    assert table.loc[failing.session_id, "headphone_check"] == "0/6 failed"
    assert tuple(table.loc[failing.session_id, ["step", "completion_code"]]) == ("screened_out", code)
    # a session begun before that rule (no field in its file) goes on, as it was told when it started
    path = store.sessions_dir / f"{failing.session_id}.json"
    data = json.loads(path.read_text())
    del data["ends_on_failed_check"]
    path.write_text(json.dumps(data))
    assert store.step(store.resume(failing.session_id)) == "familiarization"
    assert (table["code_sessions"] == 2).all()
    # once answered, the check's sounds are no longer sent
    with pytest.raises(StimulusError):
        store.serve_audio(session.session_id, store.audio_token(session, "headphones", "0", "HP"))
    # during the check a sound is sent at most twice (the page plays it once; a reload gets it again),
    # each time a WAV of the same length with its own dither
    third = store.start(consent=True)
    store.answer_questionnaire(third.session_id, ANSWERS)
    with pytest.raises(SubmissionError, match="not loaded the example yet"):
        store.complete_step(third.session_id, "volume")  # the volume page's example was never sent
    complete(store, third.session_id, "volume")
    token = store.audio_token(third, "headphones", "0", "HP")
    first, again = store.serve_audio(third.session_id, token), store.serve_audio(third.session_id, token)
    assert first[:4] == b"RIFF" and len(first) == len(again) and first != again
    with pytest.raises(StimulusError):
        store.serve_audio(third.session_id, token)
    # a session begun before the study had the check never meets it (the field is fixed at the start)
    path = store.sessions_dir / f"{third.session_id}.json"
    data = json.loads(path.read_text())
    del data["headphone_check"]
    path.write_text(json.dumps(data))
    assert store.step(store.resume(third.session_id)) == "familiarization"
    assert orphaned_sessions(store) == []
    # a session whose stimuli the study no longer has (it changed under it) is named for the experimenter
    data["trials"][next(iter(data["trials"]))]["reference"] = "0" * 16
    path.write_text(json.dumps(data))
    assert orphaned_sessions(store) == [third.session_id]


def test_fixed_anchors_keep_the_standards_cutoffs_and_the_cache_of_before(planted, tmp_path):
    """``fit_anchors: false``: 3.5 and 7 kHz whatever the reference, and the stimulus cache key computed before
    the option existed (a known answer: the key of this config at commit c6a27c8), so a study begun then goes
    on with its stimuli and sessions."""
    legacy = StudyConfig(
        study_id="legacy", dataset="default", songs=(ExcerptSpec("Song A"),), targets=("bass",), systems=()
    )
    assert study_hash(dataclasses.replace(legacy, fit_anchors=False)) == "958e7eafe197dc16"
    assert study_hash(legacy) != "958e7eafe197dc16"  # fitted anchors sound different: a new cache
    root, study_file = planted
    fixed = root / "fixed-anchors.yaml"  # beside the planted study: its relative paths hold
    fixed.write_text(
        study_file.read_text().replace("study_id: planted", "study_id: fixed") + "fit_anchors: false\n"
    )
    study = load_study(fixed)
    assert study.fit_anchors is False
    for bad in ("maybe", "2"):
        fixed.write_text(study_file.read_text() + f"fit_anchors: {bad}\n")
        with pytest.raises(StudyError, match="fit_anchors"):
            load_study(fixed)
    stimuli = prepare_stimuli(dataclasses.replace(study, songs=study.songs[:1]), tmp_path / "cache")
    assert stimuli.anchor_hz() == {"t00-vocals": {"anchor35": 3500.0, "anchor70": 7000.0}}
    assert stimuli.moved_anchors() == ""
    # a cache rendered before the cutoffs were recorded: its trial.json has none, and they were the standard's
    manifest = stimuli.root / "t00-vocals" / "trial.json"
    data = json.loads(manifest.read_text())
    assert data.pop("anchor_hz") and data.pop("anchor_removed_db")
    manifest.write_text(json.dumps(data))
    assert stimuli.anchor_hz() == {"t00-vocals": {"anchor35": 3500.0, "anchor70": 7000.0}}
    # a study without low-pass anchors renders the same whatever fit_anchors says: one cache key
    mixture_only = dataclasses.replace(study, anchors=("mixture",))
    assert study_hash(mixture_only) == study_hash(dataclasses.replace(mixture_only, fit_anchors=False))


def test_anchor_cutoffs_move_down_only_where_the_standards_would_not_be_heard():
    """Known answers: full-band noise keeps BS.1534-3's 3.5 and 7 kHz; a bass line of partials at 55-330 Hz
    gets the first octaves below them that take away at least -30 dB (0.1%) of its energy (the mid anchor at 7000 / 32 Hz
    drops the 220 and 330 Hz partials, the low one at 7000 / 64 Hz the 110 and 165 Hz ones too)."""
    from listening_study.delivery.processing import ANCHOR_AUDIBLE_DB, anchor_cutoffs, removed_db

    t = np.arange(4 * RATE) / RATE
    noise = np.random.default_rng(0).standard_normal((2, t.size)).astype(np.float32)
    assert anchor_cutoffs(noise, RATE, ("anchor35", "anchor70", "mixture")) == {
        "anchor70": 7000.0,
        "anchor35": 3500.0,
    }
    bass = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((55, 110, 165, 220, 330), 1))
    bass = np.stack([bass, bass]).astype(np.float32)
    assert removed_db(bass, RATE, 3500.0) < ANCHOR_AUDIBLE_DB  # the standard's anchor: the reference itself
    cutoffs = anchor_cutoffs(bass, RATE, ("anchor35", "anchor70"))
    assert cutoffs == {"anchor70": 218.75, "anchor35": 109.375}
    assert all(removed_db(bass, RATE, hz) >= ANCHOR_AUDIBLE_DB for hz in cutoffs.values())
    # a sub-bass line: the mid anchor reaches the lowest octave step above the 100 Hz floor, the low one the floor
    sub = np.stack([np.sin(2 * np.pi * 45 * t)] * 2).astype(np.float32)
    assert anchor_cutoffs(sub, RATE, ("anchor35", "anchor70")) == {"anchor70": 109.375, "anchor35": 100.0}
    assert anchor_cutoffs(bass, RATE, ("anchor35",)) == {"anchor35": 218.75}  # no mid anchor above it
    assert math.isnan(removed_db(np.zeros((2, RATE), np.float32), RATE, 3500.0))
