"""All surfaces on one FastAPI app, and a thread to serve it from tests or notebooks.

    build_app(config, context=None) -> fastapi.FastAPI
    BackgroundServer(app, host, port)   # with BackgroundServer(app) as url: ...

Routes: ``/`` the participant page, ``/mushra/...`` its API, ``/experimenter/login``, and the
experimenter's Gradio views under ``/experimenter`` (behind the password). Gradio is mounted only
there: nothing of it answers at the root.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import fastapi
import gradio as gr
import uvicorn
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mss_app.api import build_api
from mss_app.config import AppConfig
from mss_app.context import StudyContext, load_study_context
from mss_app.experimenter import build_experimenter_blocks
from mss_app.participant import build_participant_router
from mss_app.security import PREFIX, BodyLimit, ExperimenterAuth, ExperimenterGate, generate_password
from mss_app.startup import free_port


def _one_sentence(exc: RequestValidationError) -> str:
    """pydantic's error list as one sentence the participant page can show."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


#: The sessions table: words are never broken mid-word ("Sennheiser"); a long one widens its column.
EXPERIMENTER_CSS = ".mss-sessions * { word-break: normal !important; overflow-wrap: normal !important; }"


def build_app(config: AppConfig, context: StudyContext | None = None) -> fastapi.FastAPI:
    """The participant page and API, the experimenter login, and the experimenter views behind it."""
    password = config.password
    if not password:
        password = generate_password()
        print(
            f"experimenter password (generated; pass --password to choose one): {password}", file=sys.stderr
        )
    context = context or load_study_context(config)
    auth = ExperimenterAuth(password, logouts=Path(config.study_dir) / ".experimenter-logouts")
    app = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # no API browser for participants

    @app.exception_handler(RequestValidationError)
    async def invalid(request: fastapi.Request, exc: RequestValidationError):
        return JSONResponse({"detail": _one_sentence(exc)}, status_code=422)

    app.include_router(build_participant_router())
    app.include_router(build_api(context, config.sessions_per_client))
    app.include_router(auth.router())
    blocks = build_experimenter_blocks(config, context)
    # No allowed_paths: Gradio must not serve the stimulus cache (trial.json names the conditions).
    gr.mount_gradio_app(app, blocks, path=PREFIX, footer_links=[], show_error=True, css=EXPERIMENTER_CSS)
    app.add_middleware(ExperimenterGate, auth=auth)
    app.add_middleware(BodyLimit)  # outermost: bounds every body before anything reads it
    return app


class BackgroundServer:
    """uvicorn in a thread (tests, notebooks): ``with BackgroundServer(app, port) as url: ...``."""

    def __init__(self, app: fastapi.FastAPI, host: str = "127.0.0.1", port: int = 0):
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the app did not start on {self.url}")
            time.sleep(0.05)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
