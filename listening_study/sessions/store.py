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
    store.headphone_design(session) -> tuple[HeadphoneTrial, ...]   # the check's sounds (from the key)
    store.answer_headphones(session_id, answers) -> Session   # one attempt; result in session.headphones
    store.n_sessions() -> int                       # sessions started
    store.n_taking_part() -> int                    # those holding a place (max_sessions caps them)
    store.completed(session) -> set[str]            # from the ratings CSV: a reload resumes exactly
    store.next_trial(session) -> SessionTrial | None
    store.progress(session) -> tuple[int, int]      # (done, total)
    store.audio_token(session, page, trial_id, label) -> str  # what the page gets instead of a stimulus id
    store.serve_audio(session_id, token) -> bytes   # this session's WAV of the stimulus behind a token
                                                    # (listening_study.delivery.wav), logged as served
                                                    # (listening_study.delivery.evidence); StimulusError for anything else
    store.completion_code(session) -> str | None    # once every trial is done
    store.submit(session_id, trial_id, scores, plays, time_ms, comment="", listen_ms=None) -> list[dict]
                                                    # refused unless the server sent every file of the trial
    store.submit_ab(session_id, trial_id, choice, confidence, plays, time_ms, comment="", listen_ms=None)
    store.sessions_table() -> pandas.DataFrame      # one row per session: questionnaire, step, code
    Session, SessionTrial (labels: {label: condition} stays on the server), STEPS

A session goes through STEPS in order: consent (given when it starts), the questionnaire, setting the
volume, the headphone check (when the study has one: listening_study.design.headphones; a session that fails
it ends at "screened_out", with thanks and a completion code of its own), the familiarization (MUSHRA only, when the study has one: every condition of a few excerpts,
with their own letters, not graded; the training phase of ITU-R BS.1534-3, section 5.1), the
instructions, the graded trials, finished (a completion code). The step in progress is stored, so a
reload returns to it.

Trial order, the label shuffle of every trial and page, the familiarization excerpts and the audio
tokens come from the study key (listening_study.design.blinding), never from the session id alone: a
participant who knows their session id and this code still cannot recompute which letter is which.

What the server measures itself, it stores instead of the page's claims: a trial is accepted only when
this session was sent every one of its files whole (listening_study.delivery.evidence), and its ``rating_time``
is the server's time from the trial's start to its submission (the page's own figure is kept beside
it as ``page_time_ms``). A study's ``max_sessions`` caps the sessions it starts, across app processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from listening_study.delivery.evidence import FetchLog
from listening_study.design.blinding import StudyKey
from listening_study.design.headphones import HeadphoneTrial, design_check, score_check
from listening_study.design.questionnaire import check_answers
from listening_study.design.rules import TrialRules, check_elapsed, check_listening, check_mushra
from listening_study.design.session_design import SessionTrial, design_session
from listening_study.errors import SessionError, StimulusError, SubmissionError
from listening_study.sessions.audio import AudioPage, SessionAudio
from listening_study.sessions.model import (
    CAPACITY_IDLE_S,
    HEADPHONE_PAGE,
    PARTICIPANT_ID,
    REFERENCE_LABEL,
    SESSION_ID,
    SIMPLE_STEPS,
    Session,
    session_from_json,
)  # fmt: skip
from listening_study.sessions.ratings import RatingsStore
from listening_study.sessions.table import sessions_table
from mss.files import atomic_path

if TYPE_CHECKING:  # only for annotations: keeps this module light for processes that only store ratings
    import pandas as pd

    from listening_study.delivery.stimuli import StimulusSet


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
        self.fetches = FetchLog(self.sessions_dir)
        self.audio = SessionAudio(self.key, stimuli, self.fetches, self.step, self.headphone_design)

    # ------------------------------------------------------------------------------------ files
    def _file(self, session_id: str) -> Path:
        if not isinstance(session_id, str) or not SESSION_ID.match(session_id):
            raise SessionError(f"malformed session id {str(session_id)[:80]!r}")
        return self.sessions_dir / f"{session_id}.json"

    def _save(self, session: Session) -> None:
        with atomic_path(self._file(session.session_id)) as tmp, open(tmp, "w") as handle:
            json.dump(asdict(session), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())

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
        with self._start_lock():
            return self._create(participant_id, mode, trials)

    @contextmanager
    def _start_lock(self):
        """Held while a session is counted and created: app processes sharing the folder never start
        more than the study's ``max_sessions`` between them."""
        fd = os.open(self.sessions_dir / ".start.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def n_sessions(self) -> int:
        return sum(1 for path in self.sessions_dir.glob("*.json") if SESSION_ID.match(path.stem))

    def n_taking_part(self) -> int:
        """Sessions that hold a place in the study: those that rated a trial, and those active (a step saved)
        within CAPACITY_IDLE_S; a script that starts sessions and leaves them cannot fill the study for good."""
        now, count = time.time(), 0
        for path in self.sessions_dir.glob("*.json"):
            if not SESSION_ID.match(path.stem):
                continue
            try:
                recent = now - path.stat().st_mtime < CAPACITY_IDLE_S
            except OSError:
                continue
            count += recent or bool(self.ratings.completed(path.stem))
        return count

    def _create(self, participant_id: str, mode: str, trials) -> Session:
        capacity = self.study.max_sessions
        if capacity and self.n_taking_part() >= capacity:
            raise SessionError(
                f"This study is full: it has all the {capacity} participants it needs. Thank you for your interest."
            )
        session_id = uuid.uuid4().hex
        familiarization = (
            self.study.familiarization_excerpts if self.study.training and mode == "mushra" else 0
        )
        order, designed, pages, volume = design_session(
            self.key.seed("design", session_id), trials, familiarization
        )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        session = Session(session_id, participant_id, self.study.study_id, mode, now, order, designed,
                          pages, volume, consent=now, step_started=self.clock(),
                          headphone_check=self.study.headphone_check, ends_on_failed_check=True)  # fmt: skip
        self._save(session)
        return session

    def resume(self, session_id: str) -> Session:
        path = self._file(session_id)
        if not path.is_file():
            raise SessionError(f"unknown session {session_id}")
        try:
            return session_from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise SessionError(f"session file {path.name} is damaged: {exc}") from exc

    def step(self, session: Session) -> str:
        if not session.questionnaire:
            return "questionnaire"
        for step in ("volume", "headphones", "familiarization", "instructions"):
            if step == "familiarization" and not session.familiarization:
                continue
            if step == "headphones":
                if session.headphone_check and not session.headphones:
                    return step
                if self.screened_out(session):
                    return "screened_out"
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

    def screened_out(self, session: Session) -> bool:
        """Whether the session ended at a failed headphone check (``Session.ends_on_failed_check``)."""
        result = session.headphones
        return bool(session.ends_on_failed_check and result and not result.get("passed", True))

    def complete_step(self, session_id: str, step: str) -> Session:
        """Finish a step the page ends with "Continue"; the volume example and every familiarization
        page must have been sent to this session first (what the server can check: SubmissionError)."""
        session = self.resume(session_id)
        current = self.step(session)
        if step not in SIMPLE_STEPS or step != current:
            raise SessionError(f"this session is at the {current} step, not {str(step)[:20]!r}")
        unloaded = self.audio.unloaded(session, step)
        if unloaded:
            raise SubmissionError(
                f"Your browser has not loaded {' and '.join(unloaded)} yet. Reload the page and play "
                f"{'it' if len(unloaded) == 1 else 'them'} before you continue."
            )
        session = replace(session, done_steps=(*session.done_steps, step), step_started=self.clock())
        self._save(session)
        return session

    def headphone_design(self, session: Session) -> tuple[HeadphoneTrial, ...]:
        """The check's trials of this session, from the study key (not stored; the same every time)."""
        return design_check(self.key.seed("headphones", session.session_id))

    def answer_headphones(self, session_id: str, answers) -> Session:
        """Score the headphone check (one attempt per session) and store its result. A session that fails
        it ends there ("screened_out", thanks and a code); one begun before that rule goes on (the
        analysis can leave out those who failed)."""
        session = self.resume(session_id)
        if self.step(session) != "headphones":
            raise SessionError(f"this session is at the {self.step(session)} step, not the headphone check")
        design = self.headphone_design(session)
        fetched = self.fetches.fetched_page(session_id, HEADPHONE_PAGE)
        unheard = [t.index + 1 for t in design if not fetched.get(str(t.index), False)]
        if unheard:
            raise SubmissionError(
                f"Your browser has not loaded every sound of the check yet (not loaded: sound "
                f"{', '.join(map(str, unheard))}). Reload the page and play them."
            )
        result = score_check(design, answers)
        stored = {**asdict(result), "answers": list(answers)}
        session = replace(session, headphones=stored, step_started=self.clock())
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
        """A code the participant reports to show they finished (or were screened out: a code of its own);
        the experimenter's table lists it."""
        if self.screened_out(session):
            return self.key.code("screened", session.session_id)
        if self.next_trial(session) is not None:
            return None
        return self.key.code("completion", session.session_id)

    # ------------------------------------------------------------------------------------ audio
    def step_audio(self, session: Session) -> tuple[AudioPage, ...]:
        """What the page of the step in progress plays, as this session's tokens (sessions.audio)."""
        step = self.step(session)
        return self.audio.pages(session, step, self.next_trial(session) if step == "trial" else None)

    def prefetch_audio(self, session: Session) -> AudioPage | None:
        """The graded trial the page may fetch ahead: the first one while the instructions are read, the
        next one while a trial is rated; None otherwise."""
        step = self.step(session)
        if step not in ("instructions", "trial"):
            return None
        return self.audio.upcoming(session, self.completed(session), 0 if step == "instructions" else 1)

    def audio_token(self, session: Session, page: str, trial_id: str, label: str) -> str:
        """``page``: "trial", "fam<k>", "volume" or "headphones"; ``label``: a screen label or REFERENCE_LABEL."""
        return self.audio.token(session, page, trial_id, label)

    def delivery_seed(self, session_id: str, page: str, trial_id: str, label: str) -> int:
        """Seed of this session's copy of one stimulus (listening_study.delivery.wav)."""
        return self.audio.seed(session_id, page, trial_id, label)

    def serve_audio(self, session_id: str, token: str) -> bytes:
        """This session's WAV behind a token, logged as served (sessions.audio); StimulusError else."""
        try:
            session = self.resume(session_id)
        except SessionError:
            raise StimulusError("unknown stimulus") from None
        return self.audio.serve(session, token)

    def _check_fetched(self, session: Session, trial: SessionTrial) -> dict[str, int]:
        """How often each condition's file was sent; SubmissionError unless every file of the trial (its
        conditions and the reference) was sent to this session whole at least once."""
        missing, counts = self.audio.trial_fetches(session, trial)
        if missing:
            names = ", ".join("the reference" if label == REFERENCE_LABEL else label for label in missing)
            raise SubmissionError(
                f"Your browser has not loaded every version of this trial yet (not loaded: {names}). "
                "Reload the page and listen to them before rating."
            )
        return counts

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
        """Check the trial's rules (listening_study.design.rules), then append its rows; SubmissionError otherwise."""
        session, trial = self._trial_in_progress(session_id, trial_id, "mushra")
        values = check_mushra(set(trial.labels), scores, listen_ms, self.rules)
        fetches = self._check_fetched(session, trial)
        elapsed = self.clock() - session.step_started
        check_elapsed(len(trial.labels), elapsed, self.rules)
        rows = self.ratings.submit(session, trial_id, values, plays, time_ms, comment,
                                   server_ms=round(1000 * elapsed), fetches=fetches)  # fmt: skip
        self._save(replace(session, step_started=self.clock()))  # the next trial begins now
        return rows

    def submit_page(self, session_id: str, trial_id: str, scores: dict, plays: dict, time_ms: int, comment: str = "",
                    listen_ms: dict | None = None):  # fmt: skip
        """A graded page as the participant's page sends it, taken as the session's mode says: MUSHRA
        scores, or an A/B page's ``{"choice": label, "confidence": 1-3}``."""
        try:
            mode = self.resume(session_id).mode
        except SessionError as exc:
            raise SubmissionError(str(exc)) from None
        if mode != "ab":
            return self.submit(session_id, trial_id, scores, plays, time_ms, comment, listen_ms)
        if not isinstance(scores, dict) or set(scores) != {"choice", "confidence"}:
            raise SubmissionError("an A/B page sends its choice and how sure the listener is, nothing else")
        return self.submit_ab(session_id, trial_id, scores["choice"], scores["confidence"], plays, time_ms,
                              comment, listen_ms)  # fmt: skip

    def submit_ab(self, session_id: str, trial_id: str, choice: str, confidence: int, plays: dict, time_ms: int,
                  comment: str = "", listen_ms: dict | None = None):  # fmt: skip
        session, trial = self._trial_in_progress(session_id, trial_id, "ab")
        check_listening(set(trial.labels), listen_ms, self.rules)
        fetches = self._check_fetched(session, trial)
        elapsed = self.clock() - session.step_started
        check_elapsed(len(trial.labels), elapsed, self.rules)
        rows = self.ratings.submit_ab(session, trial_id, choice, confidence, plays, time_ms, comment,
                                      server_ms=round(1000 * elapsed), fetches=fetches)  # fmt: skip
        self._save(replace(session, step_started=self.clock()))
        return rows

    # ------------------------------------------------------------------------------------ experimenter
    def sessions_table(self) -> pd.DataFrame:
        """Every session of the study (listening_study.sessions.table)."""
        return sessions_table(self)
