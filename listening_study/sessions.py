"""Participant sessions: blind, randomized, resumable.

Public API (stable)::

    store = SessionStore(study_dir, stimuli)      # ratings at study_dir/ratings.csv, sessions at study_dir/sessions/
    store.ratings -> RatingsStore
    store.start(participant_id: str | None = None, mode: "mushra" | "ab" = "mushra") -> Session
    store.resume(session_id) -> Session            # SessionError for unknown/malformed ids
    store.mark_training_done(session) -> Session
    store.completed(session) -> set[str]           # from the ratings CSV: a reload resumes exactly
    store.next_trial(session) -> SessionTrial | None
    store.progress(session) -> tuple[int, int]     # (done, total)
    store.submit(session_id, trial_id, scores, plays, time_ms, comment="") -> list[dict]
    store.submit_ab(session_id, trial_id, choice, confidence, plays, time_ms, comment="") -> list[dict]
    design_session(session_id, trials) -> (trial_order, {trial_id: SessionTrial})   # deterministic
    Session(session_id, participant_id, study_id, mode, created, trial_order, trials, training_done)
    SessionTrial(trial_id, song, target, start_s, end_s, reference, labels: {label: condition},
                 stimuli: {label: stimulus_id}, mode)
    SessionTrial.screen_labels -> list[str]        # "A", "B", ... in screen order

Trial order and the condition -> screen label mapping are drawn from a generator seeded with the
session id, so they differ between participants and are reproducible. ``labels`` holds the true
condition names: keep it on the server; send the browser only ``stimuli`` (label -> opaque id) and
``reference`` (the open reference's stimulus id).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import tempfile
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from listening_study.errors import SessionError, SubmissionError
from listening_study.ratings import RatingsStore

if TYPE_CHECKING:  # only for annotations: keeps this module light for processes that only store ratings
    from listening_study.stimuli import StimulusSet, Trial

PARTICIPANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class SessionTrial:
    trial_id: str
    song: str
    target: str
    start_s: float
    end_s: float
    reference: str
    labels: dict[str, str]  # screen label -> true condition name (server side only)
    stimuli: dict[str, str]  # screen label -> stimulus id
    mode: str = "mushra"

    @property
    def screen_labels(self) -> list[str]:
        return sorted(self.labels)


@dataclass(frozen=True)
class Session:
    session_id: str
    participant_id: str
    study_id: str
    mode: str
    created: str
    trial_order: tuple[str, ...]
    trials: dict[str, SessionTrial]
    training_done: bool = False


def design_session(
    session_id: str, trials: tuple[Trial, ...]
) -> tuple[tuple[str, ...], dict[str, SessionTrial]]:
    """Trial order and per-trial label mapping for a session, seeded by its id (reproducible)."""
    rng = np.random.default_rng(int(session_id, 16))
    order = tuple(trials[i].trial_id for i in rng.permutation(len(trials)))
    designed = {}
    for trial in trials:  # study order, so a trial's mapping does not depend on the shuffle above
        names = list(trial.conditions)
        shuffled = [names[i] for i in rng.permutation(len(names))]
        labels = dict(zip(string.ascii_uppercase, shuffled, strict=False))
        designed[trial.trial_id] = SessionTrial(
            trial.trial_id, trial.song, trial.target, trial.start_s, trial.end_s, trial.reference,
            labels, {label: trial.conditions[name] for label, name in labels.items()}, trial.mode,
        )  # fmt: skip
    return order, designed


def _session_from_json(data: dict) -> Session:
    trials = {key: SessionTrial(**value) for key, value in data["trials"].items()}
    return Session(**{**data, "trials": trials, "trial_order": tuple(data["trial_order"])})


class SessionStore:
    """See the module docstring."""

    def __init__(self, study_dir: str | Path, stimuli: StimulusSet):
        self.study_dir = Path(study_dir)
        self.stimuli = stimuli
        self.sessions_dir = self.study_dir / "sessions"
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        self.ratings = RatingsStore(self.study_dir / "ratings.csv")

    def _file(self, session_id: str) -> Path:
        if not isinstance(session_id, str) or not SESSION_ID.match(session_id):
            raise SessionError(f"malformed session id {str(session_id)[:80]!r}")
        return self.sessions_dir / f"{session_id}.json"

    def _save(self, session: Session) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.sessions_dir, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(session), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._file(session.session_id))

    def start(self, participant_id: str | None = None, mode: str = "mushra") -> Session:
        if mode not in ("mushra", "ab"):
            raise SessionError(f"mode must be 'mushra' or 'ab', got {mode!r}")
        if participant_id is None or participant_id == "":
            participant_id = "P-" + secrets.token_hex(4)  # pseudonymous
        if not isinstance(participant_id, str) or not PARTICIPANT_ID.match(participant_id):
            raise SessionError(
                "participant id must be 1-32 letters, digits, '_' or '-', starting with a letter or digit"
            )
        trials = self.stimuli.trials if mode == "mushra" else self.stimuli.ab_trials
        if not trials:
            raise SessionError(f"this study has no {mode} trials")
        session_id = uuid.uuid4().hex
        order, designed = design_session(session_id, trials)
        session = Session(
            session_id, participant_id, self.stimuli.study.study_id, mode,
            datetime.now(UTC).isoformat(timespec="seconds"), order, designed,
            training_done=not self.stimuli.study.training,
        )  # fmt: skip
        self._save(session)
        return session

    def resume(self, session_id: str) -> Session:
        path = self._file(session_id)
        if not path.is_file():
            raise SessionError(f"unknown session {session_id}")
        try:
            return _session_from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise SessionError(f"session file {path.name} is damaged: {exc}") from exc

    def mark_training_done(self, session: Session) -> Session:
        session = replace(self.resume(session.session_id), training_done=True)
        self._save(session)
        return session

    def completed(self, session: Session) -> set[str]:
        return self.ratings.completed(session.session_id)

    def next_trial(self, session: Session) -> SessionTrial | None:
        done = self.completed(session)
        for trial_id in session.trial_order:
            if trial_id not in done:
                return session.trials[trial_id]
        return None

    def progress(self, session: Session) -> tuple[int, int]:
        done = self.completed(session) & set(session.trial_order)
        return len(done), len(session.trial_order)

    def _known(self, session_id: str) -> Session:
        try:
            return self.resume(session_id)
        except SessionError as exc:
            raise SubmissionError(str(exc)) from None

    def submit(
        self, session_id: str, trial_id: str, scores: dict, plays: dict, time_ms: int, comment: str = ""
    ):
        return self.ratings.submit(self._known(session_id), trial_id, scores, plays, time_ms, comment)

    def submit_ab(self, session_id: str, trial_id: str, choice: str, confidence: int, plays: dict, time_ms: int,
                  comment: str = ""):  # fmt: skip
        return self.ratings.submit_ab(
            self._known(session_id), trial_id, choice, confidence, plays, time_ms, comment
        )
