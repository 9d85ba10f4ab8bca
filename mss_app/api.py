"""The participant's HTTP API: everything the listening-test page talks to, nothing that names a system.

    GET  /mushra/api/info                    study title, description, experimenter, contact, trials, minutes
    POST /mushra/api/start        {participant_id?, mode, consent}            -> session
                                  (429 beyond SESSIONS_PER_CLIENT new sessions per hour from one address)
    POST /mushra/api/resume       {session_id}                                -> session
    POST /mushra/api/questionnaire {session_id, answers}                      -> session
    POST /mushra/api/step         {session_id, step: volume|familiarization|instructions} -> session
    POST /mushra/api/headphones   {session_id, answers: [0-2, ...]}           -> session (one attempt)
    POST /mushra/api/submit       {session_id, trial_id, scores, plays, listen_ms, time_ms, comment} -> session
    GET  /mushra/audio/<session id>/<token>   a stimulus: this session's WAV (listening_study.delivery.wav: one
                                             size and header per trial, bytes of its own per session),
                                             Cache-Control: no-store, no validators; recorded as sent to the
                                             session (listening_study.delivery.evidence)
    GET  /mushra/static/mushra-audio.js | mushra-trial.js | mushra-headphones.js | mushra.js | mushra.css |
                        mushra-headphones.css

A session (JSON) holds the step in progress and what that step needs: the questions, the volume
page's audio, the familiarization pages, or the trial (neutral labels and per-session audio tokens,
listening_study.design.blinding), and the trial rules. Every refusal is a 400 whose ``detail`` is one sentence
the page shows; a malformed request (a missing field, a wrong type) is a 422 with one sentence too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from listening_study import QUESTIONS, AudioPage, StudyError, check_json
from mss_app.config import SESSIONS_PER_CLIENT
from mss_app.context import StudyContext
from mss_app.security import ClientWindow, client_key

STATIC_DIR = Path(__file__).resolve().parents[1] / "listening_study" / "static"
STATIC_FILES = {  # the only files /mushra/static serves
    "mushra-audio.js": (STATIC_DIR / "mushra-audio.js", "text/javascript"),
    "mushra-trial.js": (STATIC_DIR / "mushra-trial.js", "text/javascript"),
    "mushra.js": (STATIC_DIR / "mushra.js", "text/javascript"),
    "mushra.css": (STATIC_DIR / "mushra.css", "text/css"),
    "mushra-headphones.js": (STATIC_DIR / "mushra-headphones.js", "text/javascript"),
    "mushra-headphones.css": (STATIC_DIR / "mushra-headphones.css", "text/css"),
}
#: Headers of every audio response: nothing that orders or identifies a file (no ETag, no
#: Last-Modified), nothing kept in a cache the participant could browse.
AUDIO_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
UNAVAILABLE = "The listening test is not available right now."
TOO_MANY_SESSIONS = (
    "Too many new sessions were started from your network address in the last hour. If you were "
    "interrupted, reload the page of your session instead: it resumes where you left off."
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartRequest(_Request):
    participant_id: str = Field(default="", max_length=64)
    mode: str = Field(default="mushra", max_length=16)
    consent: StrictBool = False  # JSON true only: "yes" or 1 is no agreement


class SessionRequest(_Request):
    session_id: str = Field(max_length=64)


class QuestionnaireRequest(SessionRequest):
    answers: dict[str, Any] = Field(max_length=16)


class StepRequest(SessionRequest):
    step: str = Field(max_length=32)


class HeadphonesRequest(SessionRequest):
    answers: list[Any] = Field(max_length=12)  # the check's rules look at the values (not bools...)


class SubmitRequest(SessionRequest):
    trial_id: str = Field(max_length=128)
    # Any: the rules check the values themselves, so that `true` or "70" are refused with a sentence
    # (pydantic's lax mode would turn "70" into 70.0).
    scores: dict[str, Any] = Field(max_length=26)
    plays: dict[str, Any] = Field(max_length=26)
    listen_ms: dict[str, Any] | None = Field(default=None, max_length=26)
    time_ms: Any = 0
    comment: Any = ""


def audio_url(session_id: str, token: str) -> str:
    return f"/mushra/audio/{session_id}/{token}"


def page_json(session_id: str, audio: AudioPage) -> dict:
    """One player page (a trial or a familiarization page): its id, mode, the instrument its reference is and
    the audio URLs under neutral labels, nothing else (a familiarization page is named by its page, not by the
    trial it shows)."""
    return {
        "trial_id": audio.trial_id if audio.page == "trial" else audio.page,
        "mode": audio.mode,
        "target": audio.target,
        "reference_url": audio_url(session_id, audio.reference),
        "conditions": [
            {"label": label, "url": audio_url(session_id, token)} for label, token in audio.versions
        ],
    }


def session_json(context: StudyContext, session) -> dict:
    """The session's step in progress and what the page needs for it; the audio of the step (and of the
    trial to fetch ahead) is the session store's (SessionStore.step_audio, prefetch_audio)."""
    sessions, sid = context.sessions, session.session_id
    step = sessions.step(session)
    done, total = sessions.progress(session)
    out = {"session_id": sid, "mode": session.mode, "step": step, "n_trials": total, "n_done": done,
           "rules": sessions.rules.as_json()}  # fmt: skip
    audio = sessions.step_audio(session)
    if step == "questionnaire":
        out["questions"] = [question.as_json() for question in QUESTIONS]
        # the page warns a loudspeaker listener before the check
        out["headphone_check"] = session.headphone_check
    elif step == "volume":
        out["volume_url"] = audio_url(sid, audio[0].reference)
    elif step == "headphones":
        out["headphones"] = check_json([audio_url(sid, sound.versions[0][1]) for sound in audio])
    elif step == "familiarization":
        out["familiarization"] = [page_json(sid, page) for page in audio]
    elif step == "trial":
        out["trial"] = page_json(sid, audio[0])
    elif step in ("screened_out", "finished"):
        out["completion_code"] = sessions.completion_code(session)
    if step in (
        "instructions",
        "trial",
    ):  # the next graded trial's files load while this page is read or rated
        ahead = sessions.prefetch_audio(session)
        tokens = [] if ahead is None else [ahead.reference, *(token for _, token in ahead.versions)]
        out["prefetch"] = [audio_url(sid, token) for token in tokens]
    return out


def study_info(context: StudyContext) -> dict:
    study, stimuli = context.study, context.stimuli
    n_trials = len(stimuli.trials)
    # About 12 s per condition and 30 s per page for reading and moving sliders, plus 5 min of set-up.
    minutes = 5 + n_trials * (30 + 12 * len(study.conditions)) / 60
    return {"title": "Listening test", "description": study.description, "n_trials": n_trials,
            "experimenter": study.experimenter, "contact": study.contact, "headphone_check": study.headphone_check,
            "minutes": int(5 * round(minutes / 5)) or 5}  # fmt: skip


def build_api(context: StudyContext, sessions_per_client: int = SESSIONS_PER_CLIENT) -> fastapi.APIRouter:
    """Routes of the listening test; every error the backend raises becomes a 400 with its message.
    ``sessions_per_client``: new sessions per client address and hour (0: no limit)."""
    router = fastapi.APIRouter()

    def sessions():
        if context.study is None:
            raise fastapi.HTTPException(503, UNAVAILABLE)  # the reason is for the experimenter's eyes only
        return context.sessions

    def answer(call):
        try:
            return session_json(context, call())
        except StudyError as exc:
            raise fastapi.HTTPException(400, str(exc)) from exc

    _file_routes(router, sessions)
    _start_routes(router, context, sessions, answer, ClientWindow(sessions_per_client, 3600.0))
    _step_routes(router, sessions, answer)
    return router


def _file_routes(router: fastapi.APIRouter, sessions) -> None:
    """The page's scripts and styles, and the audio behind a session's tokens."""

    @router.get("/mushra/static/{name}")
    def static_file(name: str):
        if name not in STATIC_FILES:
            raise fastapi.HTTPException(404, "not found")
        path, media_type = STATIC_FILES[name]
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    @router.get("/mushra/audio/{session_id}/{token}")
    def audio(session_id: str, token: str):
        store = sessions()
        try:
            # logged as served before the body goes out: a submission right after the last fetch (a fast
            # client, another app process) must find it
            data = store.serve_audio(session_id, token)
        except StudyError:
            raise fastapi.HTTPException(404, "unknown stimulus") from None
        # The bytes themselves, not a FileResponse: that one adds ETag and Last-Modified from the file's
        # mtime and size, which order the files by the time they were rendered; and it answers Range
        # requests, so a file could be "fetched" without its bytes being sent.
        return Response(data, media_type="audio/wav", headers=AUDIO_HEADERS)


def _start_routes(router: fastapi.APIRouter, context: StudyContext, sessions, answer, new_sessions) -> None:
    """The study's description, a new session (``new_sessions`` counts them per client), a resumed one."""

    @router.get("/mushra/api/info")
    def info():
        sessions()
        return study_info(context)

    @router.post("/mushra/api/start")
    def start(request: StartRequest, http: fastapi.Request):
        store = sessions()
        client = client_key(http.client.host if http.client else "")
        if not new_sessions.reserve(client):  # checked and counted at once: parallel requests cannot slip by
            raise fastapi.HTTPException(429, TOO_MANY_SESSIONS)
        try:
            return answer(
                lambda: store.start(request.participant_id or None, request.mode, consent=request.consent)
            )
        except fastapi.HTTPException:
            new_sessions.release(client)  # only sessions that started count
            raise

    @router.post("/mushra/api/resume")
    def resume(request: SessionRequest):
        store = sessions()
        return answer(lambda: store.resume(request.session_id))


def _step_routes(router: fastapi.APIRouter, sessions, answer) -> None:
    """The answers that move a session on: questionnaire, "Continue", the headphone check, a graded page."""

    @router.post("/mushra/api/questionnaire")
    def questionnaire(request: QuestionnaireRequest):
        store = sessions()
        return answer(lambda: store.answer_questionnaire(request.session_id, request.answers))

    @router.post("/mushra/api/step")
    def step(request: StepRequest):
        store = sessions()
        return answer(lambda: store.complete_step(request.session_id, request.step))

    @router.post("/mushra/api/headphones")
    def headphones(request: HeadphonesRequest):
        store = sessions()
        return answer(lambda: store.answer_headphones(request.session_id, request.answers))

    @router.post("/mushra/api/submit")
    def submit(request: SubmitRequest):
        store = sessions()

        def call():  # MUSHRA scores or an A/B choice: the session's mode says which
            store.submit_page(request.session_id, request.trial_id, request.scores, request.plays,
                              request.time_ms, request.comment, request.listen_ms)  # fmt: skip
            return store.resume(request.session_id)

        return answer(call)
