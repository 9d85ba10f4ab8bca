"""Participant sessions: blind, randomized from a secret, resumable at the step in progress.

Public API (stable)::

    store = SessionStore(study_dir, stimuli, key=None, clock=time.time)   # ratings at study_dir/ratings.csv, sessions at
                                                         # study_dir/sessions/, key at study_dir/study.key
    store.ratings -> RatingsStore
    store.start(participant_id=None, mode="mushra", consent=False) -> Session   # consent must be True
    store.resume(session_id) -> Session             # SessionError for unknown/malformed ids
    store.step(session) -> str                      # the step in progress, one of STEPS
    store.answer_questionnaire(session_id, answers) -> Session
    store.complete_step(session_id, step) -> Session          # "volume", "familiarization", "instructions"
    store.completed(session) -> set[str]            # from the ratings CSV: a reload resumes exactly
    store.next_trial(session) -> SessionTrial | None
    store.progress(session) -> tuple[int, int]      # (done, total)
    store.audio_token(session, page, trial_id, label) -> str  # what the page gets instead of a stimulus id
    store.audio_path(session_id, token) -> Path     # StimulusError for anything that is not a token of it
    store.completion_code(session) -> str | None    # once every trial is done
    store.submit(session_id, trial_id, scores, plays, time_ms, comment="", listen_ms=None) -> list[dict]
    store.submit_ab(session_id, trial_id, choice, confidence, plays, time_ms, comment="", listen_ms=None)
    store.sessions_table() -> pandas.DataFrame      # one row per session: questionnaire, step, code
    design_session(seed, trials, n_familiarization=0) -> (trial_order, {trial_id: SessionTrial},
                                                          familiarization pages, volume trial id)
    Session, SessionTrial (labels: {label: condition} stays on the server), STEPS

A session goes through STEPS in order: consent (given when it starts), the questionnaire, setting the
volume, the familiarization (MUSHRA only, when the study has one: every condition of a few excerpts,
with their own letters, not graded; the training phase of ITU-R BS.1534-3, section 5.1), the
instructions, the graded trials, finished (a completion code). The step in progress is stored, so a
reload returns to it.

Trial order, the label shuffle of every trial and page, the familiarization excerpts and the audio
tokens come from the study key (listening_study.blinding), never from the session id alone: a
participant who knows their session id and this code still cannot recompute which letter is which.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from listening_study.blinding import StudyKey
from listening_study.errors import SessionError, StimulusError, SubmissionError
from listening_study.questionnaire import QUESTIONS, check_answers
from listening_study.ratings import RatingsStore
from listening_study.rules import TrialRules, check_elapsed, check_listening, check_mushra

if TYPE_CHECKING:  # only for annotations: keeps this module light for processes that only store ratings
    import pandas as pd

    from listening_study.stimuli import StimulusSet, Trial

PARTICIPANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
TOKEN = re.compile(r"^[0-9a-f]{32}$")
STEPS = ("questionnaire", "volume", "familiarization", "instructions", "trial", "finished")
#: Steps the participant completes by pressing "Continue" (the others end by answering or rating).
SIMPLE_STEPS = ("volume", "familiarization", "instructions")
REFERENCE_LABEL = "REF"  # the open reference's key in audio tokens


@dataclass(frozen=True)
class SessionTrial:
    trial_id: str
    song: str
    target: str
    start_s: float
    end_s: float
    reference: str  # stimulus id of the open reference (server side only)
    labels: dict[str, str]  # screen label -> true condition name (server side only)
    stimuli: dict[str, str]  # screen label -> stimulus id (server side only; the page gets tokens)
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
    familiarization: tuple[SessionTrial, ...] = ()  # pages of the familiarization, own labels
    volume_trial: str = ""  # trial whose open reference plays on the volume page
    consent: str = ""  # when the participant agreed to take part (ISO time)
    questionnaire: dict[str, str] = field(default_factory=dict)
    done_steps: tuple[str, ...] = ()  # SIMPLE_STEPS already completed
    # When the step in progress (or the graded trial in progress) began, in seconds since the epoch, by
    # the server's clock: a trial submitted sooner than its conditions can have been heard is refused
    # whatever the page reports (listening_study.rules.check_elapsed).
    step_started: float = 0.0


def _labelled(trial: Trial, rng: np.random.Generator) -> SessionTrial:
    names = list(trial.conditions)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    labels = dict(zip(string.ascii_uppercase, shuffled, strict=False))
    return SessionTrial(
        trial.trial_id, trial.song, trial.target, trial.start_s, trial.end_s, trial.reference,
        labels, {label: trial.conditions[name] for label, name in labels.items()}, trial.mode,
    )  # fmt: skip


def _familiarization_picks(trials: tuple[Trial, ...], n: int, rng: np.random.Generator) -> list[Trial]:
    """``n`` excerpts, covering as many targets as possible (random among equals)."""
    shuffled = [trials[i] for i in rng.permutation(len(trials))]
    picks, targets = [], set()
    for trial in shuffled:  # first one per target ...
        if len(picks) < n and trial.target not in targets:
            picks.append(trial)
            targets.add(trial.target)
    for trial in shuffled:  # ... then any
        if len(picks) < n and trial not in picks:
            picks.append(trial)
    return picks


def design_session(
    seed: int, trials: tuple[Trial, ...], n_familiarization: int = 0
) -> tuple[tuple[str, ...], dict[str, SessionTrial], tuple[SessionTrial, ...], str]:
    """Trial order, per-trial labels, familiarization pages and the volume page's trial, from ``seed``
    (``StudyKey.seed("design", session_id)`` for a session: reproducible with the key, not without)."""
    rng = np.random.default_rng(seed)
    order = tuple(trials[i].trial_id for i in rng.permutation(len(trials)))
    # study order, so a trial's mapping does not depend on the shuffle above
    designed = {trial.trial_id: _labelled(trial, rng) for trial in trials}
    # The familiarization shows each excerpt under letters of its own: nothing learnt there about which
    # letter is which carries over to the graded trial of the same excerpt.
    pages = tuple(_labelled(t, rng) for t in _familiarization_picks(trials, n_familiarization, rng))
    volume = trials[int(rng.integers(len(trials)))].trial_id
    return order, designed, pages, volume


def _session_from_json(data: dict) -> Session:
    known = {f.name for f in fields(Session)}
    data = {key: value for key, value in data.items() if key in known}  # older files: extra keys dropped
    trials = {key: SessionTrial(**value) for key, value in data["trials"].items()}
    pages = tuple(SessionTrial(**value) for value in data.get("familiarization", ()))
    return Session(**{**data, "trials": trials, "trial_order": tuple(data["trial_order"]),
                      "familiarization": pages, "done_steps": tuple(data.get("done_steps", ()))})  # fmt: skip


class SessionStore:
    """See the module docstring."""

    def __init__(
        self, study_dir: str | Path, stimuli: StimulusSet, key: StudyKey | None = None,
        clock: Callable[[], float] = time.time,
    ):  # fmt: skip
        """``clock``: seconds since the epoch (tests pass a fast one; sessions store its readings)."""
        self.clock = clock
        self.study_dir = Path(study_dir)
        self.stimuli = stimuli
        self.study = stimuli.study
        self.rules = TrialRules.from_study(self.study)
        self.sessions_dir = self.study_dir / "sessions"
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        self.key = key or StudyKey.load_or_create(self.study_dir / "study.key")
        self.ratings = RatingsStore(self.study_dir / "ratings.csv")

    # ------------------------------------------------------------------------------------ files
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

    # ------------------------------------------------------------------------------------ steps
    def start(
        self, participant_id: str | None = None, mode: str = "mushra", consent: bool = False
    ) -> Session:
        if consent is not True:
            raise SessionError("Please agree to take part (tick the box) before starting.")
        if mode not in ("mushra", "ab"):
            raise SessionError(f"mode must be 'mushra' or 'ab', got {str(mode)[:20]!r}")
        if participant_id is None or participant_id == "":
            participant_id = "P-" + secrets.token_hex(4)  # pseudonymous
        if not isinstance(participant_id, str) or not PARTICIPANT_ID.match(participant_id):
            raise SessionError(
                "participant code must be 1-32 letters, digits, '_' or '-', starting with a letter or digit"
            )
        trials = self.stimuli.trials if mode == "mushra" else self.stimuli.ab_trials
        if not trials:
            raise SessionError(f"this study has no {mode} trials")
        session_id = uuid.uuid4().hex
        familiarization = (
            self.study.familiarization_excerpts if self.study.training and mode == "mushra" else 0
        )
        order, designed, pages, volume = design_session(
            self.key.seed("design", session_id), trials, familiarization
        )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        session = Session(session_id, participant_id, self.study.study_id, mode, now, order, designed,
                          pages, volume, consent=now, step_started=self.clock())  # fmt: skip
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

    def step(self, session: Session) -> str:
        if not session.questionnaire:
            return "questionnaire"
        for step in SIMPLE_STEPS:
            if step == "familiarization" and not session.familiarization:
                continue
            if step not in session.done_steps:
                return step
        return "trial" if self.next_trial(session) is not None else "finished"

    def answer_questionnaire(self, session_id: str, answers) -> Session:
        session = self.resume(session_id)
        if self.step(session) != "questionnaire":
            raise SessionError("the questionnaire of this session is already answered")
        session = replace(session, questionnaire=check_answers(answers), step_started=self.clock())
        self._save(session)
        return session

    def complete_step(self, session_id: str, step: str) -> Session:
        session = self.resume(session_id)
        current = self.step(session)
        if step not in SIMPLE_STEPS or step != current:
            raise SessionError(f"this session is at the {current} step, not {str(step)[:20]!r}")
        session = replace(session, done_steps=(*session.done_steps, step), step_started=self.clock())
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

    def completion_code(self, session: Session) -> str | None:
        """A code the participant reports to show they finished; the experimenter's table lists it."""
        if self.next_trial(session) is not None:
            return None
        return self.key.code("completion", session.session_id)

    # ------------------------------------------------------------------------------------ audio
    def audio_token(self, session: Session, page: str, trial_id: str, label: str) -> str:
        """``page``: "trial", "fam<k>" or "volume"; ``label``: a screen label or REFERENCE_LABEL."""
        return self.key.token("audio", session.session_id, page, trial_id, label)

    def _audio_items(self, session: Session):
        """(page, trial_id, label, stimulus id) of everything this session may play."""
        for trial in session.trials.values():
            yield "trial", trial.trial_id, REFERENCE_LABEL, trial.reference
            for label, stimulus_id in trial.stimuli.items():
                yield "trial", trial.trial_id, label, stimulus_id
        for index, page in enumerate(session.familiarization):
            yield f"fam{index}", page.trial_id, REFERENCE_LABEL, page.reference
            for label, stimulus_id in page.stimuli.items():
                yield f"fam{index}", page.trial_id, label, stimulus_id
        if session.volume_trial in session.trials:
            yield (
                "volume",
                session.volume_trial,
                REFERENCE_LABEL,
                session.trials[session.volume_trial].reference,
            )

    def audio_path(self, session_id: str, token: str) -> Path:
        """The file behind one of this session's audio tokens; StimulusError for anything else."""
        if not isinstance(token, str) or not TOKEN.match(token):
            raise StimulusError("unknown stimulus")
        try:
            session = self.resume(session_id)
        except SessionError:
            raise StimulusError("unknown stimulus") from None
        for page, trial_id, label, stimulus_id in self._audio_items(session):
            if secrets.compare_digest(self.audio_token(session, page, trial_id, label), token):
                return self.stimuli.path(stimulus_id)
        raise StimulusError("unknown stimulus")

    # ------------------------------------------------------------------------------------ ratings
    def _trial_in_progress(self, session_id: str, trial_id: str, mode: str) -> tuple[Session, SessionTrial]:
        try:
            session = self.resume(session_id)
        except SessionError as exc:
            raise SubmissionError(str(exc)) from None
        if session.mode != mode:
            raise SubmissionError(f"not a {mode} session; start or resume a session first")
        step = self.step(session)
        if step != "trial":
            if step == "finished" and trial_id in session.trials:
                raise SubmissionError(
                    f"trial {trial_id} was already submitted in this session; ratings are final"
                )
            raise SubmissionError(f"this session is at the {step} step; finish it before rating")
        if not isinstance(trial_id, str) or trial_id not in session.trials:
            raise SubmissionError(f"unknown trial {str(trial_id)[:80]!r} for session {session.session_id}")
        current = self.next_trial(session)
        if trial_id != current.trial_id:
            if trial_id in self.completed(session):
                raise SubmissionError(
                    f"trial {trial_id} was already submitted in this session; ratings are final"
                )
            raise SubmissionError(f"trial {trial_id} is not the trial in progress ({current.trial_id})")
        return session, current

    def submit(self, session_id: str, trial_id: str, scores: dict, plays: dict, time_ms: int, comment: str = "",
               listen_ms: dict | None = None):  # fmt: skip
        """Check the trial's rules (listening_study.rules), then append its rows; SubmissionError otherwise."""
        session, trial = self._trial_in_progress(session_id, trial_id, "mushra")
        values = check_mushra(set(trial.labels), scores, listen_ms, self.rules)
        check_elapsed(len(trial.labels), self.clock() - session.step_started, self.rules)
        rows = self.ratings.submit(session, trial_id, values, plays, time_ms, comment)
        self._save(replace(session, step_started=self.clock()))  # the next trial begins now
        return rows

    def submit_ab(self, session_id: str, trial_id: str, choice: str, confidence: int, plays: dict, time_ms: int,
                  comment: str = "", listen_ms: dict | None = None):  # fmt: skip
        session, trial = self._trial_in_progress(session_id, trial_id, "ab")
        check_listening(set(trial.labels), listen_ms, self.rules)
        check_elapsed(len(trial.labels), self.clock() - session.step_started, self.rules)
        rows = self.ratings.submit_ab(session, trial_id, choice, confidence, plays, time_ms, comment)
        self._save(replace(session, step_started=self.clock()))
        return rows

    # ------------------------------------------------------------------------------------ experimenter
    def sessions_table(self) -> pd.DataFrame:
        """Every session of the study: who, when, questionnaire, progress, completion code."""
        import pandas as pd

        rows = []
        for path in sorted(self.sessions_dir.glob("*.json")):
            try:
                session = self.resume(path.stem)
            except SessionError:
                continue
            done, total = self.progress(session)
            rows.append({
                "session_id": session.session_id, "participant_id": session.participant_id,
                "mode": session.mode, "created": session.created, "consent": session.consent,
                **{q.key: session.questionnaire.get(q.key, "") for q in QUESTIONS},
                "step": self.step(session), "trials_done": done, "trials": total,
                "completion_code": self.completion_code(session) or "",
            })  # fmt: skip
        columns = ["session_id", "participant_id", "mode", "created", "consent", *[q.key for q in QUESTIONS],
                   "step", "trials_done", "trials", "completion_code"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns).sort_values("created", ignore_index=True)
