"""listening_study: blinding. Stimulus files tell nothing apart, delivered files name no version and differ
between sessions, and the design and audio tokens come from the study's secret key."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import soundfile as sf
from study_helpers import (
    fast_clock,
)

from listening_study.design.session_design import design_session
from listening_study.errors import StimulusError
from listening_study.sessions.store import SessionStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
