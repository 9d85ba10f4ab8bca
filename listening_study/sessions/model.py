"""A participant's session as stored (``sessions/<session id>.json``), and the names the session store and
the page share: the steps, the audio labels of the reference and of the headphone check.

    Session (frozen; ``session_from_json`` reads one back, older files included)
    STEPS, SIMPLE_STEPS, REFERENCE_LABEL, HEADPHONE_PAGE, HEADPHONE_LABEL, SESSION_ID, TOKEN, PARTICIPANT_ID
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from listening_study.design.session_design import SessionTrial

PARTICIPANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
TOKEN = re.compile(r"^[0-9a-f]{32}$")
STEPS = ("questionnaire", "volume", "headphones", "familiarization", "instructions", "trial", "screened_out",
         "finished")  # fmt: skip
#: Steps the participant completes by pressing "Continue" (the others end by answering or rating).
SIMPLE_STEPS = ("volume", "familiarization", "instructions")
REFERENCE_LABEL = "REF"  # the open reference's key in audio tokens
HEADPHONE_PAGE, HEADPHONE_LABEL = "headphones", "HP"  # audio tokens of the headphone check's sounds
#: Times the server sends one sound of the headphone check (the page plays it once and keeps that play spent
#: across a reload; a reload before it was played fetches it again, once): it cannot be replayed at will, and
#: nothing of it is sent once the check is answered.
MAX_CHECK_FETCHES = 2
#: A session counts towards the study's max_sessions once it has rated a trial, or while it was active
#: within this many seconds: sessions abandoned after the consent page free their place.
CAPACITY_IDLE_S = 2 * 3600


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
    # whatever the page reports (listening_study.design.rules.check_elapsed).
    step_started: float = 0.0
    # The headphone check's result (listening_study.design.headphones): n_correct, n_trials, passed, answers.
    headphones: dict = field(default_factory=dict)
    # Whether this session takes the check: fixed when it starts (a session begun before a study had the
    # check, or before this field existed, never meets it halfway through).
    headphone_check: bool = False
    # Whether a failed check ends the session ("screened_out": thanks and a completion code of its own)
    # instead of leading to trials whose ratings the analysis would leave out: fixed when it starts, so
    # a session begun before this field existed goes on as it was told.
    ends_on_failed_check: bool = False


def session_from_json(data: dict) -> Session:
    known = {f.name for f in fields(Session)}
    data = {key: value for key, value in data.items() if key in known}  # older files: extra keys dropped
    trials = {key: SessionTrial(**value) for key, value in data["trials"].items()}
    pages = tuple(SessionTrial(**value) for value in data.get("familiarization", ()))
    return Session(**{**data, "trials": trials, "trial_order": tuple(data["trial_order"]),
                      "familiarization": pages, "done_steps": tuple(data.get("done_steps", ()))})  # fmt: skip
