"""mss workbench app: a blind MUSHRA listening test for participants, and the experimenter's views.

    python app.py [--port N] [--host 127.0.0.1] [--dataset ROOT] [--study FILE] [--study-dir DIR]
                  [--models stems|piano] [--checkpoint NAME=PATH ...] [--eval-dir DIR] [--password ...]

    http://HOST:PORT/              the participant page: the listening test and nothing else
    http://HOST:PORT/experimenter  results, sessions, spectrogram browser (password; generated and
                                   printed at start when none is given)

This file is the entry point only, light to import so that the start-up page answers at once; the app lives
in ``mss_app`` (configuration, start-up page, launch, participant page, HTTP API, experimenter views,
security, server) and everything that computes in ``mss`` and ``listening_study``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mss.checkpoint import CHECKPOINT_SETS
from mss_app.config import SESSIONS_PER_CLIENT, AppConfig, warn_exposure, with_model_set
from mss_app.startup import StartupPage, free_port

__all__ = ["AppConfig", "free_port", "main", "parse_args"]

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
    parser.add_argument(
        "--sessions-per-client", type=int, default=SESSIONS_PER_CLIENT, metavar="N",
        help="new listening-test sessions one client address may start per hour and app process (0: no "
        f"limit; default {SESSIONS_PER_CLIENT}). Behind a reverse proxy, run uvicorn with proxy headers",
    )  # fmt: skip
    parser.add_argument(
        "--experimenter", default=None, help="who runs the default study (its consent page says so)"
    )
    parser.add_argument(
        "--contact", default=None, help="how participants reach you (shown on the consent page)"
    )
    parser.add_argument(
        "--fixed-anchors", action="store_true",
        help="the default study's low-pass anchors at 3.5 and 7 kHz in every trial, as before 2026-12-07 (a "
        "default study begun then keeps its stimuli and sessions); by default they move down where not heard",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.sessions_per_client < 0:
        parser.error("--sessions-per-client must be 0 (no limit) or more")
    checkpoints = []
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--checkpoint expects NAME=PATH, got {item!r}")
        checkpoints.append((name, Path(path)))
    return with_model_set(AppConfig(
        host=args.host, port=args.port, dataset=args.dataset, study_file=args.study, study_dir=args.study_dir,
        checkpoints=tuple(checkpoints), eval_dir=args.eval_dir, password=args.password or None,
        models=args.models, sessions_per_client=args.sessions_per_client,
        study_settings=tuple((key, value) for key, value in (("experimenter", args.experimenter),
                                                             ("contact", args.contact)) if value)
        + ((("fit_anchors", False),) if args.fixed_anchors else ()),
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
    # Imported only now, with the page already answering: the app (gradio, torch, musdb) takes seconds.
    from mss_app.launch import serve

    serve(config, page)


if __name__ == "__main__":
    main()
