"""python -m training.run: train a UNet or a Demucs (also under ``torchrun --nproc_per_node=N``).

Examples::

    python -m training.run --model demucs --dataset default --preset cpu --out runs/demucs
    python -m training.run --model unet --dataset ROOT --targets piano --set batch_size=4 --epochs 3
    torchrun --nproc_per_node=2 -m training.run --model unet --dataset ROOT --out runs/ddp

Every TrainConfig field can be set with ``--set key=value`` (repeatable) or ``--key value``;
unknown options and keys are errors that list the valid keys.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mss.errors import MSSError
from training.config import (
    CLI_KEYS,
    TRAINING_PRESETS,
    TrainConfig,
    make_config,
    parse_assignment,
    unknown_key_message,
)
from training.distributed import init_distributed, shutdown
from training.loop import train
from training.run_folder import best_epoch, record_of
from training.validation import best_criterion, unscored_targets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.run",
        description="Train a source separation model (UNet or Demucs).",
        epilog="Any TrainConfig field can also be given as --key value or --set key=value. Keys: "
        + ", ".join(CLI_KEYS),
        allow_abbrev=False,
    )
    parser.add_argument("--model", required=True, choices=("unet", "demucs"))
    parser.add_argument("--dataset", required=True, help="dataset root (MUSDB18/-HQ layout) or 'default'")
    parser.add_argument("--targets", help="comma-separated target stems (default vocals,drums,bass,other)")
    parser.add_argument(
        "--preset", "--training-preset", dest="training_preset", choices=tuple(TRAINING_PRESETS),
        help="training preset: cpu (24 epochs: about 45-75 min of one core per model) or gpu",
    )  # fmt: skip
    parser.add_argument("--sample-rate", help="model and training sample rate in Hz (default 22050)")
    parser.add_argument(
        "--curriculum", choices=("on", "off"), help="2 -> 3 sources -> full mixes (default on)"
    )
    parser.add_argument("--epochs")
    parser.add_argument("--out", type=Path, help="output folder (default runs/<model>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, TrainConfig]:
    """Command line -> (namespace, TrainConfig). Exits with status 2 and a message on bad input."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    overrides: dict[str, str] = {"model": args.model}
    for key in ("targets", "sample_rate", "curriculum", "epochs"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    # --key value / --key=value for any other TrainConfig field
    index = 0
    while index < len(rest):
        token = rest[index]
        if not token.startswith("--"):
            parser.error(f"unexpected argument {token!r}")
        key, _, value = token[2:].partition("=")
        key = key.replace("-", "_")
        if key not in CLI_KEYS:
            parser.error(unknown_key_message(key))
        if not value:
            if index + 1 >= len(rest):
                parser.error(f"--{token[2:]} needs a value")
            index += 1
            value = rest[index]
        overrides[key] = value
        index += 1
    try:
        for assignment in args.set:
            key, value = parse_assignment(assignment)
            overrides[key] = value
        config = make_config(args.training_preset, overrides)
    except (KeyError, ValueError) as exc:
        parser.error(exc.args[0] if exc.args else str(exc))
    return args, config


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    try:
        ctx = init_distributed(config.device)
    except ValueError as exc:  # e.g. --device cuda on a machine without CUDA
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_dir = args.out if args.out is not None else Path("runs") / config.model
    try:
        history = train(config, args.dataset, out_dir, ctx, resume=args.resume)
    except (FileExistsError, ValueError, MSSError) as exc:  # MSSError: also a diverged run
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown(ctx)
    if ctx.is_main and history:
        print(
            f"done: {len(history)} epochs in {out_dir}; {best_summary(history, config.targets)}", flush=True
        )
    return 0


def best_summary(history: list[dict], targets) -> str:
    """How best.pt was chosen, for the last line of a run."""
    record = record_of(history, best_epoch(history, targets))
    if record is None:
        return "no epoch was validated"
    kind, score = best_criterion(record, targets)
    if kind == "sdr":
        return f"best validation SDR {score:.2f} dB (epoch {record['epoch']})"
    if kind == "valid_loss":
        missing = ", ".join(unscored_targets(record, targets))
        return f"best validation loss {-score:.5f} (epoch {record['epoch']}; no validation SDR for {missing})"
    return f"no validation songs: best.pt is epoch {record['epoch']}"


if __name__ == "__main__":
    sys.exit(main())
