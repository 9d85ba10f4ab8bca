"""Run files: checkpoints with the full training state, metrics.jsonl, config.json.

``last.pt`` holds everything needed to resume (model, optimiser, scheduler, grad scaler, EMA, RNG,
epoch/step); ``best.pt`` holds the weights used for validation (EMA when enabled). Both are written by
mss.checkpoint.save_checkpoint (atomic, plain dicts, ``torch.load(weights_only=True)``-safe).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from mss.checkpoint import load_checkpoint, save_checkpoint

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
CURVES_FILE = "curves.png"


def write_json(path: Path, data: dict) -> None:
    """Atomic JSON write (temp file + os.replace)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_metrics(out_dir: Path) -> list[dict]:
    path = out_dir / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_metrics(out_dir: Path, record: dict) -> None:
    with open(out_dir / METRICS_FILE, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def truncate_metrics(out_dir: Path, last_epoch: int) -> list[dict]:
    """Keep the records of epochs <= ``last_epoch`` (a killed run may have logged one more)."""
    kept = [record for record in read_metrics(out_dir) if record["epoch"] <= last_epoch]
    tmp = out_dir / f".{METRICS_FILE}.tmp"
    tmp.write_text("".join(json.dumps(record, sort_keys=True) + "\n" for record in kept))
    os.replace(tmp, out_dir / METRICS_FILE)
    return kept


def save_last(
    out_dir: Path,
    model,
    *,
    training_config: dict,
    epoch: int,
    step: int,
    metrics: dict,
    optimizer,
    scheduler,
    scaler,
    ema,
    best_sdr: float | None,
    elapsed_s: float,
) -> Path:
    extra = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "best_sdr": best_sdr,
        "elapsed_s": elapsed_s,
    }
    path = out_dir / LAST_FILE
    save_checkpoint(
        path, model, training_config=training_config, step=step, epoch=epoch, metrics=metrics, extra=extra
    )
    return path


def load_last(out_dir: Path) -> dict:
    return load_checkpoint(out_dir / LAST_FILE)
