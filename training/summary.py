"""python -m training.summary RUN [RUN ...] [--verdict]: a run's epochs as a Markdown table (for
checkpoints/history.md), and the runs compared at equal budgets.

One row per epoch of ``RUN/metrics.jsonl``: step, curriculum stage, losses, validation SDR per target and
mean, the mixture's SDR, the real MUSDB18 clips' mean SDR (``real_sdr``, never selected on), the epoch's
seconds and the run's CPU minutes so far; then the best epoch (the one best.pt holds) and the run's
wall-clock time. ``--verdict`` adds one table: each run at the budget of the run that had the least of
it, in optimiser steps and in CPU seconds, as the checkpoint a run would hand on at that budget (its best
validation epoch within the budget) with that epoch's real-clip SDR.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.run_folder import RunFolder, best_epoch, read_run, record_of
from training.validation import best_criterion


def _number(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _cpu_minutes(record: dict) -> float | None:
    return None if record.get("cpu_s") is None else record["cpu_s"] / 60


def best_within(history: list[dict], targets, key: str, budget: float) -> dict | None:
    """The epoch best.pt held had the run stopped at ``budget`` of ``key`` ("step" or "cpu_s")."""
    within = []
    for record in history:
        if record.get(key) is None or record[key] > budget * (1 + 1e-9):
            break
        within.append(record)
    return record_of(within, best_epoch(within, targets))


def _read(run: Path) -> RunFolder:
    """A run folder (ValueError without its config.json: the targets name the table's columns)."""
    folder = read_run(run)
    if not folder.config:
        raise ValueError(f"{run} has no config.json")
    return folder


def verdict_table(runs: Sequence[Path]) -> str:
    """The runs at equal steps and at equal CPU time (the smallest run's total of each)."""
    loaded = []
    for run in runs:
        folder = _read(run)
        if folder.history:
            loaded.append((run, folder.history, list(folder.targets)))
    lines = [
        "| budget | run | epoch | step | CPU min | valid SDR | real clips |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label, scale in (("step", "steps", 1), ("cpu_s", "CPU min", 1 / 60)):
        totals = [h[-1].get(key) for _, h, _ in loaded]
        if not loaded or any(total is None for total in totals):
            continue
        budget = min(totals)
        for run, history, targets in loaded:
            record = best_within(history, targets, key, budget)
            if record is None:
                continue
            cells = [f"{budget * scale:.0f} {label}", run.name, str(record["epoch"]), str(record["step"])]
            cells += [_number(_cpu_minutes(record), 1), _number((record.get("valid_sdr") or {}).get("mean"))]
            cells += [_number((record.get("real_sdr") or {}).get("mean"))]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_table(run: Path) -> str:
    """The Markdown table and a one-line summary of one run folder."""
    folder = _read(run)
    history, targets = folder.history, list(folder.targets)
    header = ["epoch", "step", "mix_sources", "train L1", "valid L1", *targets, "mean", "mixture"]
    header += ["real clips", "epoch s", "CPU min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in history:
        sdr = record.get("valid_sdr") or {}
        real = (record.get("real_sdr") or {}).get("mean")
        row = [str(record["epoch"]), str(record["step"]), str(record.get("mix_sources") or "full")]
        row += [_number(record.get("train_loss"), 4), _number(record.get("valid_loss"), 4)]
        row += [_number(sdr.get(t)) for t in targets] + [_number(sdr.get("mean"))]
        row += [_number((record.get("valid_sdr_mixture") or {}).get("mean")), _number(real)]
        row += [f"{record.get('seconds', 0):.0f}", _number(_cpu_minutes(record), 1)]
        lines.append("| " + " | ".join(row) + " |")
    minutes = history[-1].get("elapsed_s", 0) / 60 if history else 0
    best_record = folder.best_record  # the epoch best.pt holds, as the training loop recorded it
    if best_record is not None:
        real = (best_record.get("real_sdr") or {}).get("mean")
        by = best_criterion(best_record, targets)[0]
        lines.append(
            f"\nbest epoch {best_record['epoch']} (by {by}): validation SDR "
            f"{_number((best_record.get('valid_sdr') or {}).get('mean'))} dB, real clips {_number(real)} dB; "
            f"{len(history)} epochs in {minutes:.1f} min wall clock"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=Path, help="training run folders (metrics.jsonl, config.json)"
    )
    parser.add_argument("--verdict", action="store_true", help="also compare the runs at equal budgets")
    args = parser.parse_args(argv)
    for run in args.runs:
        try:
            print(f"## {run}\n\n{run_table(run)}\n")
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {run}: cannot read its metrics.jsonl/config.json ({exc})", file=sys.stderr)
            return 2
    if args.verdict:
        print(f"## At equal budgets\n\n{verdict_table(args.runs)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
