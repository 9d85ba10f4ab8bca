"""Shared by the listening_study tests (test_study_*.py, the fixtures ``planted`` and ``rendered`` in conftest):
a planted dataset whose vocals sound only within VOCALS_ACTIVE, and a participant's steps through a session,
taken on the session store as the page takes them."""

from __future__ import annotations

import itertools

import numpy as np
import soundfile as sf

from listening_study.sessions.store import SessionStore

RATE = 44100
SONG_S = 10.0
VOCALS_ACTIVE = (4.0, 7.5)  # the only seconds where the planted vocals sound


def write_planted_song(folder, rng: np.random.Generator):
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


ANSWERS = {"age": "25-34", "experience": "some", "headphones": "closed"}


_READINGS = itertools.count(1_700_000_000.0, 60.0)  # one fast clock for every store of the tests


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
