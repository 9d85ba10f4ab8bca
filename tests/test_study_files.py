"""listening_study: study files (YAML and TOML, validation, session settings) and stimuli (excerpts, rendering,
cache, anchors, the SDR of the rated excerpts)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from study_helpers import (
    RATE,
    VOCALS_ACTIVE,
)

from listening_study.delivery.processing import select_excerpt
from listening_study.delivery.stimuli import prepare_stimuli
from listening_study.design.study import ExcerptSpec, StudyConfig, default_study, load_study, study_hash
from listening_study.errors import StimulusError, StudyError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    from listening_study.delivery.processing import anchor_cutoffs, removed_db
    from listening_study.design.anchors import ANCHOR_AUDIBLE_DB

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
