"""mss workbench app: a blind MUSHRA listening test for participants, and the experimenter's views.

    python app.py [--port N] [--host 127.0.0.1] [--dataset ROOT] [--study FILE] [--study-dir DIR]
                  [--models stems|piano] [--checkpoint NAME=PATH ...] [--eval-dir DIR] [--password ...]

    http://HOST:PORT/              the participant page: the listening test and nothing else
    http://HOST:PORT/experimenter  results, sessions, spectrogram browser (password; generated and
                                   printed at start when none is given)

This file is the entry point only; the app lives in ``mss_app`` (participant page, HTTP API,
experimenter views, security, server) and everything that computes in ``mss`` and ``listening_study``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import uvicorn

from listening_study.errors import StudyError
from listening_study.study import load_study
from mss.checkpoint import CHECKPOINT_SETS
from mss.data import ensure_default_dataset, is_dataset_built
from mss_app.context import AppConfig, StudyContext, load_study_context, with_model_set
from mss_app.security import generate_password
from mss_app.server import BackgroundServer, build_app, free_port, warn_exposure
from mss_app.startup import StartupPage

__all__ = [
    "AppConfig",
    "BackgroundServer",
    "build_app",
    "free_port",
    "load_study_context",
    "main",
    "parse_args",
]

PASSWORD_ENV = "MSS_RESULTS_PASSWORD"


def parse_args(argv: list[str] | None = None) -> AppConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to serve on (default: loopback only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--dataset", default="default", help="dataset root (MUSDB18 / MUSDB18-HQ) or 'default'"
    )
    parser.add_argument(
        "--study", type=Path, default=None, help="study file (YAML/TOML); default: a study over --dataset"
    )
    parser.add_argument(
        "--study-dir", type=Path, default=Path("study"), help="stimulus cache, sessions, ratings, study key"
    )
    parser.add_argument(
        "--models",
        choices=list(CHECKPOINT_SETS),
        default="stems",
        help="committed checkpoints to compare and the default study's targets: 'stems' (vocals, drums, bass, "
        "other: checkpoints/unet.pt, demucs.pt) or 'piano' (checkpoints/unet-piano.pt, demucs-piano.pt); "
        "each set has its own study (sessions, ratings)",
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a system to compare (repeatable); replaces the --models set's checkpoints",
    )
    parser.add_argument(
        "--eval-dir", type=Path, default=Path("eval"), help="python -m mss.evaluate output folder"
    )
    parser.add_argument(
        "--password",
        default=os.environ.get(PASSWORD_ENV),
        help=f"experimenter password (or ${PASSWORD_ENV}); generated and printed when not given",
    )
    args = parser.parse_args(argv)
    checkpoints = []
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--checkpoint expects NAME=PATH, got {item!r}")
        checkpoints.append((name, Path(path)))
    return with_model_set(AppConfig(
        host=args.host, port=args.port, dataset=args.dataset, study_file=args.study, study_dir=args.study_dir,
        checkpoints=tuple(checkpoints), eval_dir=args.eval_dir, password=args.password or None,
        models=args.models,
    ))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    warn_exposure(config)
    try:  # a page on the app's address at once, saying what is being prepared and how far along it is
        page = StartupPage(config.host, config.port).start()
    except OSError as exc:
        print(f"error: cannot serve on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"preparing; progress at http://{config.host}:{config.port}/", file=sys.stderr)
    password = config.password or generate_password()
    try:  # the app is built (models loaded for the browser) while the page still answers
        context = _prepare(config, page)
        if context.error:
            print(context.error, file=sys.stderr)
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


if __name__ == "__main__":
    main()
