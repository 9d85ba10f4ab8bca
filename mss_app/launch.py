"""The app's start after its start-up page is up: the study prepared (the embedded dataset generated on the
first run, the stimuli rendered), the app built and served. app.py imports this module only once the page
answers, because what it pulls in (gradio, torch, musdb) takes seconds to import.
"""

from __future__ import annotations

import dataclasses
import sys

import uvicorn

from listening_study import StudyError, load_study
from mss.data import ensure_default_dataset, is_dataset_built
from mss_app.config import AppConfig
from mss_app.context import StudyContext, load_study_context
from mss_app.security import generate_password
from mss_app.server import build_app
from mss_app.startup import StartupPage

#: Printed at start when the study names no contact: what participants are told instead.
NO_CONTACT_NOTE = (
    "note: no contact for participants (--contact, or 'contact:' in the study file): the consent page tells them "
    "to ask the person who invited them, to put a question or have their data deleted"
)


def serve(config: AppConfig, page: StartupPage) -> None:
    """Prepare the study while ``page`` shows the progress, then serve the app on the page's address."""
    password = config.password or generate_password()
    try:  # the app is built (models loaded for the browser) while the page still answers
        context = _prepare(config, page)
        if context.error:
            print(context.error, file=sys.stderr)
        elif context.study is not None and not context.study.contact:
            print(NO_CONTACT_NOTE, file=sys.stderr)
        page.update(1.0, "Starting the listening test")
        app = build_app(dataclasses.replace(config, password=password), context)
    finally:
        page.close()  # frees the port for the app itself
    base = f"http://{config.host}:{config.port}"
    print(f"participants: {base}/", file=sys.stderr)
    print(f"experimenter: {base}/experimenter  password: "
          f"{password if not config.password else '(the one given)'}", file=sys.stderr)  # fmt: skip
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def _uses_default_dataset(config: AppConfig) -> bool:
    """Whether the study runs on the embedded dataset: ``--dataset`` without a study file, else the study
    file's ``dataset`` (a study over MUSDB18 never builds the 3.4 GB embedded set)."""
    if config.study_file is None:
        return config.dataset == "default"
    try:
        return load_study(config.study_file, check_dataset=False).dataset == "default"
    except StudyError:
        return False  # the study's own error is reported by load_study_context, on the page


def _prepare(config: AppConfig, page: StartupPage) -> StudyContext:
    """The embedded dataset (first run: generated, the first 70% of the page's bar) and the study's stimuli."""
    share = 0.0
    if _uses_default_dataset(config):
        if not is_dataset_built():
            share = 0.7
            page.update(0.0, "Generating the embedded music dataset (first run only)")

            def songs(done: int, total: int) -> None:
                page.update(
                    share * done / total, f"Generating the embedded music dataset: song {done} of {total}"
                )

            print("preparing the default dataset (first run only)...", file=sys.stderr)
            ensure_default_dataset(on_progress=songs)

    def report(fraction: float, message: str) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)
        page.update(share + (1 - share) * fraction, f"Preparing the listening test: {message}")

    return load_study_context(config, progress=report)
