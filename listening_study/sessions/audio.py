"""The audio of a session: which files each of its pages plays, under which per-session tokens, and the
bytes each token serves. The one place that names the pages ("trial", "fam<k>", "volume",
"headphones") and the labels of their audio: the page gets what ``pages`` says, the server serves what
``serve`` finds, and both walk the same ``_plan``.

    audio = SessionAudio(key, stimuli, fetches, step_of, headphone_design)   # owned by SessionStore
    audio.pages(session, step) -> tuple[AudioPage, ...]   # what the page of ``step`` plays
    audio.upcoming(session, completed, ahead) -> AudioPage | None   # a graded trial to fetch ahead
    audio.token(session, page, trial_id, label) -> str
    audio.serve(session, token) -> bytes      # logged as served (delivery.evidence); StimulusError else
    audio.seed(session_id, page, trial_id, label) -> int   # the session's own dither (delivery.wav)
    audio.unloaded(session, step) -> list[str]             # what a "Continue" still needs, in words
    AudioPage(page, trial_id, mode, reference, versions, target)   # tokens, never stimulus ids
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from listening_study.delivery.evidence import FetchLog, missing_files
from listening_study.delivery.wav import delivered_wav
from listening_study.design.blinding import StudyKey
from listening_study.design.headphones import trial_wav_bytes
from listening_study.design.session_design import SessionTrial
from listening_study.errors import StimulusError
from listening_study.sessions.model import (
    HEADPHONE_LABEL,
    HEADPHONE_PAGE,
    MAX_CHECK_FETCHES,
    REFERENCE_LABEL,
    TOKEN,
    Session,
)  # fmt: skip

if TYPE_CHECKING:
    from listening_study.delivery.stimuli import StimulusSet


@dataclass(frozen=True)
class AudioPage:
    """One page's audio as the participant's page receives it: tokens, never stimulus ids."""

    page: str  # "trial", "fam<k>", "volume" or "headphones"
    trial_id: str  # the trial (or, for the headphone check, the sound's index)
    mode: str  # "mushra" or "ab"
    reference: str | None  # token of the open reference (None: the check's sounds have none)
    versions: tuple[tuple[str, str], ...]  # (screen label, token) in screen order
    # the instrument the reference is (a trial's or practice page's target; "" for the check)
    target: str = ""


class SessionAudio:
    """See the module docstring. ``step_of(session)`` is the store's step in progress; ``headphone_design``
    the store's design of the check."""

    def __init__(self, key: StudyKey, stimuli: StimulusSet, fetches: FetchLog,
                 step_of: Callable[[Session], str], headphone_design: Callable) -> None:  # fmt: skip
        self.key, self.stimuli, self.fetches = key, stimuli, fetches
        self.step_of, self.headphone_design = step_of, headphone_design

    def token(self, session: Session, page: str, trial_id: str, label: str) -> str:
        return self.key.token("audio", session.session_id, page, trial_id, label)

    def seed(self, session_id: str, page: str, trial_id: str, label: str) -> int:
        return self.key.seed("deliver", session_id, page, trial_id, label)

    # ------------------------------------------------------------------------------------ the plan
    def _plan(self, session: Session) -> Iterator[tuple[str, str, SessionTrial]]:
        """(step, page, trial) of every player page this session may show: its graded trials, its
        familiarization pages and the volume page."""
        for trial in session.trials.values():
            yield "trial", "trial", trial
        for index, page in enumerate(session.familiarization):
            yield "familiarization", f"fam{index}", page
        if session.volume_trial in session.trials:
            yield "volume", "volume", session.trials[session.volume_trial]

    @staticmethod
    def _labels(page: str, trial: SessionTrial) -> list[str]:
        """The screen labels a page plays beside the reference: none on the volume page."""
        return [] if page == "volume" else trial.screen_labels

    def _files(self, page: str, trial: SessionTrial) -> list[tuple[str, str]]:
        """(label, stimulus id) a page plays, the reference first."""
        return [(REFERENCE_LABEL, trial.reference)] + [
            (label, trial.stimuli[label]) for label in self._labels(page, trial)
        ]

    def _page(self, session: Session, page: str, trial: SessionTrial) -> AudioPage:
        tokens = {
            label: self.token(session, page, trial.trial_id, label) for label in self._labels(page, trial)
        }
        return AudioPage(page, trial.trial_id, trial.mode, self.token(session, page, trial.trial_id, REFERENCE_LABEL),
                         tuple(tokens.items()), trial.target)  # fmt: skip

    def pages(self, session: Session, step: str, trial: SessionTrial | None = None) -> tuple[AudioPage, ...]:
        """The audio of the page(s) of ``step``: the volume example, the check's sounds, every
        familiarization page, or the graded ``trial``; () for steps without audio."""
        if step == HEADPHONE_PAGE:
            return tuple(
                AudioPage(HEADPHONE_PAGE, str(t.index), session.mode, None,
                          ((HEADPHONE_LABEL, self.token(session, HEADPHONE_PAGE, str(t.index), HEADPHONE_LABEL)),))
                for t in self.headphone_design(session)
            )  # fmt: skip
        if step == "trial":
            return () if trial is None else (self._page(session, "trial", trial),)
        return tuple(self._page(session, page, t) for kind, page, t in self._plan(session) if kind == step)

    def upcoming(self, session: Session, completed: set[str], ahead: int) -> AudioPage | None:
        """The graded trial ``ahead`` places after the one in progress (0: that one), to fetch early."""
        remaining = [trial_id for trial_id in session.trial_order if trial_id not in completed]
        if len(remaining) <= ahead:
            return None
        return self._page(session, "trial", session.trials[remaining[ahead]])

    # ------------------------------------------------------------------------------------ serving
    def _stimulus(self, session: Session, token: str) -> tuple[str, str, str, Path]:
        """(page, trial_id, label, WAV file) behind one of this session's tokens; StimulusError else."""
        for _, page, trial in self._plan(session):
            for label, stimulus_id in self._files(page, trial):
                if secrets.compare_digest(self.token(session, page, trial.trial_id, label), token):
                    return page, trial.trial_id, label, self.stimuli.path(stimulus_id)
        raise StimulusError("unknown stimulus")

    def serve(self, session: Session, token: str) -> bytes:
        """This session's WAV behind a token (delivery.wav: one size and header per trial, bytes of its
        own per session), logged as served before the caller sends it whole. The check's sounds are
        rendered on request. StimulusError for anything else."""
        if not isinstance(token, str) or not TOKEN.match(token):
            raise StimulusError("unknown stimulus")
        sound = self._headphone_sound(session, token)
        if sound is not None:
            page, trial_id, label, data = sound
        else:
            page, trial_id, label, path = self._stimulus(session, token)
            data = delivered_wav(path, self.seed(session.session_id, page, trial_id, label))
        self.fetches.record(session.session_id, page, trial_id, label, len(data), len(data))
        return data

    def _headphone_sound(self, session: Session, token: str):
        """(page, trial_id, label, WAV bytes) when ``token`` is one of this session's check sounds."""
        if not session.headphone_check:
            return None
        for trial in self.headphone_design(session):
            expected = self.token(session, HEADPHONE_PAGE, str(trial.index), HEADPHONE_LABEL)
            if secrets.compare_digest(expected, token):
                sent = self.fetches.fetched(session.session_id, HEADPHONE_PAGE, str(trial.index))
                if self.step_of(session) != HEADPHONE_PAGE or (
                    HEADPHONE_LABEL in sent and sent[HEADPHONE_LABEL].count >= MAX_CHECK_FETCHES
                ):
                    raise StimulusError("unknown stimulus")  # a reload before the play fetches it again
                rng = np.random.default_rng(secrets.randbits(128))  # its own dither on every request
                return HEADPHONE_PAGE, str(trial.index), HEADPHONE_LABEL, trial_wav_bytes(trial, rng)
        return None

    # ------------------------------------------------------------------------------------ evidence
    def unloaded(self, session: Session, step: str) -> list[str]:
        """What the page of ``step`` plays that was never sent whole to this session, in words."""
        missing = []  # page numbers, from 1
        for number, audio in enumerate(self.pages(session, step), start=1):
            fetched = self.fetches.fetched(session.session_id, audio.page, audio.trial_id)
            if missing_files(fetched, [REFERENCE_LABEL, *(label for label, _ in audio.versions)]):
                missing.append(number)
        if step == "volume":
            return ["the example"] if missing else []
        pages = ", ".join(f"excerpt {number}" for number in missing)
        return [f"the versions of {pages}"] if pages else []

    def trial_fetches(self, session: Session, trial: SessionTrial) -> tuple[list[str], dict[str, int]]:
        """(labels never sent whole, {label: times sent}) of a graded trial's files."""
        fetched = self.fetches.fetched(session.session_id, "trial", trial.trial_id)
        missing = missing_files(fetched, [REFERENCE_LABEL, *trial.screen_labels])
        return missing, {label: fetched[label].count for label in trial.labels if label in fetched}
