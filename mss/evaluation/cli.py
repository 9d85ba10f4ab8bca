"""python -m mss.evaluate (or mss.evaluation): the command line of the evaluation.

    python -m mss.evaluate --checkpoint checkpoints/unet.pt --checkpoint checkpoints/demucs.pt \\
        --dataset default --jobs 2 --out eval
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import mss.checkpoint
from mss import shifts_arg
from mss.errors import MSSError
from mss.evaluation.driver import REAL_CLIPS, evaluate
from mss.evaluation.oracles import ORACLES
from mss.evaluation.records import musdb_test_estimate
from mss.evaluation.tables import format_markdown
from mss.precision import PRECISIONS

DESCRIPTION = "Objective evaluation with museval (BSS Eval v4): separate, score, tabulate against baselines."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mss.evaluate", description=DESCRIPTION)
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="model checkpoint (repeat for several; default: the committed checkpoints/unet.pt and demucs.pt)",
    )
    parser.add_argument("--oracles-only", action="store_true", help="score only the baselines, no model")
    parser.add_argument(
        "--dataset",
        default="default",
        help="dataset root (MUSDB18, MUSDB18-HQ layout), 'default', or 'real-clips' (the real MUSDB18 clips at "
        "hand: ../shared/data/musdb-sample's train-subset clip, or $MSS_REAL_CLIPS; their subset is train)",
    )
    parser.add_argument("--subset", default=None, help="test (default), or train for --dataset real-clips")
    parser.add_argument(
        "--targets", nargs="+", default=None, help="targets to score (default: the models' stems)"
    )
    parser.add_argument("--tracks", nargs="+", default=None, help="only these songs")
    parser.add_argument("--jobs", type=int, default=1, help="parallel scoring processes")
    parser.add_argument(
        "--wiener",
        action="store_true",
        help="also score each model with its Wiener post-filter switched the other way (mss.models.wiener): a "
        "-wiener row, or -nowiener for a model that filters by default (the committed UNet)",
    )
    parser.add_argument(
        "--shifts", type=shifts_arg, nargs="+", default=[], metavar="N",
        help="also score each model with N shifted separations averaged, for each N given (the shift trick; 0: "
        "one plain pass); each model's own row separates as its checkpoint says (its config's shifts)",
    )  # fmt: skip
    parser.add_argument(
        "--band-limited", action="store_true",
        help="leave the models' estimates empty above their Nyquist frequency (default: full band)",
    )  # fmt: skip
    parser.add_argument("--no-oracles", action="store_true", help="skip the IRM1/IRM2/MIX baselines")
    parser.add_argument(
        "--oracles", nargs="+", default=list(ORACLES), choices=ORACLES, help="baselines to score"
    )
    parser.add_argument("--cache-dir", default=None, help="separated-audio cache (default: OUT/.cache)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto",
        help="the models' number format: auto (bf16 autocast on a CPU with native bf16 units, else fp32), fp32 "
        "or bf16 (mss.precision); recorded in each row's provenance",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="output folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    checkpoints = list(args.checkpoint)
    if not checkpoints and not args.oracles_only:
        checkpoints = [str(path) for path in mss.checkpoint.DEFAULT_CHECKPOINTS.values() if path.is_file()]
        if not checkpoints:
            print(
                "error: no --checkpoint given and no default checkpoint in checkpoints/; "
                "pass --checkpoint PATH (or --oracles-only)",
                file=sys.stderr,
            )
            return 2
    subset = args.subset or ("train" if args.dataset == REAL_CLIPS else "test")
    try:
        result = evaluate(
            checkpoints, args.dataset, subset, args.targets, args.jobs,
            out_dir=args.out, oracles=() if args.no_oracles else tuple(args.oracles), cache_dir=args.cache_dir,
            wiener=args.wiener, shifts=args.shifts, full_band=not args.band_limited, device=args.device,
            precision=args.precision,
            tracks=args.tracks,
        )  # fmt: skip
    except MSSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = result.table
    for note in result.notes:
        print(f"note: {note}")
    print(format_markdown(table) if not table.empty else "no scores")
    print(f"\nwritten: {Path(args.out) / 'results.csv'}, results.md, tracks.csv, timings.csv")
    estimate = musdb_test_estimate(list(result.timings), args.jobs)
    if estimate:
        print(estimate)
    if result.errors:
        print(
            f"\n{len(result.errors)} (method, song) score(s) failed or refused "
            f"(see {Path(args.out) / 'errors.txt'}):",
            file=sys.stderr,
        )
        for error in result.errors:
            print("  " + error.splitlines()[0], file=sys.stderr)
        return 1
    return 0
