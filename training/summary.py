"""python -m training.summary RUN [RUN ...]: a run's epochs as a Markdown table (for checkpoints/README.md).

One row per epoch of ``RUN/metrics.jsonl``: step, curriculum stage, losses, validation SDR per target and
mean, the mixture's SDR, the real MUSDB18 clips' mean SDR (``real_sdr``, never selected on) and the
epoch's seconds; then the best epoch (the one best.pt holds) and the run's wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from training import state
from training.validation import best_criterion, improves


def _number(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def run_table(run: Path) -> str:
    """The Markdown table and a one-line summary of one run folder."""
    history = state.read_metrics(run)
    config = json.loads((run / state.CONFIG_FILE).read_text())["config"]
    targets = list(config["targets"])
    header = ["epoch", "step", "mix_sources", "train L1", "valid L1", *targets, "mean", "mixture"]
    header += ["real clips", "epoch s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best, best_record = None, None
    for record in history:
        sdr = record.get("valid_sdr") or {}
        real = (record.get("real_sdr") or {}).get("mean")
        row = [str(record["epoch"]), str(record["step"]), str(record.get("mix_sources") or "full")]
        row += [_number(record.get("train_loss"), 4), _number(record.get("valid_loss"), 4)]
        row += [_number(sdr.get(t)) for t in targets] + [_number(sdr.get("mean"))]
        row += [_number((record.get("valid_sdr_mixture") or {}).get("mean")), _number(real)]
        row += [f"{record.get('seconds', 0):.0f}"]
        lines.append("| " + " | ".join(row) + " |")
        criterion = best_criterion(record, targets)
        if improves(criterion, best):  # the training loop's own rule for best.pt
            best, best_record = criterion, record
    minutes = history[-1].get("elapsed_s", 0) / 60 if history else 0
    if best_record is not None:
        real = (best_record.get("real_sdr") or {}).get("mean")
        lines.append(
            f"\nbest epoch {best_record['epoch']} (by {best[0]}): validation SDR "
            f"{_number((best_record.get('valid_sdr') or {}).get('mean'))} dB, real clips {_number(real)} dB; "
            f"{len(history)} epochs in {minutes:.1f} min wall clock"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=Path, help="training run folders (metrics.jsonl, config.json)"
    )
    args = parser.parse_args(argv)
    for run in args.runs:
        try:
            print(f"## {run}\n\n{run_table(run)}\n")
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {run}: cannot read its metrics.jsonl/config.json ({exc})", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
