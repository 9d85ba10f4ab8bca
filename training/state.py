"""Run files, written: checkpoints with the full training state, metrics.jsonl, config.json (the layout
and the reading are training.run_folder's).

``last.pt`` holds everything needed to resume (model, optimiser, scheduler, grad scaler, EMA, RNG,
epoch/step, the best score so far); ``best.pt`` holds the weights used for validation (EMA when enabled).
Both are written by mss.checkpoint.save_checkpoint (atomic, plain dicts,
``torch.load(weights_only=True)``-safe).

Every write goes to a temp file first; a killed process can leave one behind, so a run removes the
temp files of its folder (:func:`remove_temp_files`) when it starts and when it fails. metrics.jsonl is
cut back to the epochs of the checkpoint a run starts from (:func:`truncate_metrics`), so a run killed
between a metrics line and its last.pt never logs an epoch twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import torch

from mss.checkpoint import load_checkpoint, save_checkpoint
from mss.errors import CheckpointError
from mss.files import TEMP_GLOB, write_text_atomic
from training.run_folder import BEST_FILE, CONFIG_FILE, LAST_FILE, METRICS_FILE, read_metrics

#: temp files of this module's atomic writes (``mss.files.atomic_path``: ``.<name>.<pid>.<random>.tmp``), and
#: the fixed names earlier versions wrote metrics.jsonl and config.json through (a run folder they left)
TEMP_PATTERNS: tuple[str, ...] = tuple(
    TEMP_GLOB.format(name=name) for name in (LAST_FILE, BEST_FILE, METRICS_FILE, CONFIG_FILE)
) + (f".{METRICS_FILE}.tmp", f".{CONFIG_FILE}.tmp")


def remove_temp_files(out_dir: Path) -> list[Path]:
    """Delete temp files that interrupted writes left in ``out_dir``; returns the removed paths."""
    removed = []
    for pattern in TEMP_PATTERNS:
        for path in Path(out_dir).glob(pattern):
            with suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


@contextmanager
def temp_files_removed_on_failure(out_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Remove the temp files of ``out_dir`` when the block raises (or is interrupted), then re-raise."""
    try:
        yield
    except BaseException:
        if enabled:
            remove_temp_files(out_dir)
        raise


def write_json(path: Path, data: dict) -> None:
    """Atomic JSON write (temp file + os.replace)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def append_metrics(out_dir: Path, record: dict) -> None:
    with open(out_dir / METRICS_FILE, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def truncate_metrics(out_dir: Path, last_epoch: int) -> list[dict]:
    """Keep the records of epochs <= ``last_epoch``, the epoch of the checkpoint the run starts from
    (0 for a run without one): a killed run may have logged epochs that its last.pt does not hold."""
    path = out_dir / METRICS_FILE
    if not path.exists():
        return []
    kept = [record for record in read_metrics(out_dir) if record["epoch"] <= last_epoch]
    write_text_atomic(path, "".join(json.dumps(record, sort_keys=True) + "\n" for record in kept))
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
    best: tuple[str, float] | None,
    elapsed_s: float,
    cpu_s: float = 0.0,
) -> Path:
    extra = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "best": list(best) if best is not None else None,  # (criterion, score): training.validation
        "elapsed_s": elapsed_s,
        "cpu_s": cpu_s,  # process CPU seconds of the run so far (the compute budget)
    }
    path = out_dir / LAST_FILE
    save_checkpoint(
        path, model, training_config=training_config, step=step, epoch=epoch, metrics=metrics, extra=extra
    )
    return path


def load_last(out_dir: Path) -> dict:
    return load_checkpoint(out_dir / LAST_FILE)


def saved_epoch(path: Path) -> int:
    """The epoch a checkpoint file holds; 0 when it is missing or unreadable (a torn write)."""
    if not path.exists():
        return 0
    try:
        return int(load_checkpoint(path).get("epoch", 0))
    except CheckpointError:
        return 0


def best_of(checkpoint: dict) -> tuple[str, float] | None:
    """The best (criterion, score) stored in a last.pt; last.pt files of older versions kept ``best_sdr``."""
    if checkpoint.get("best") is not None:
        kind, score = checkpoint["best"]
        return str(kind), float(score)
    if checkpoint.get("best_sdr") is not None:
        return "sdr", float(checkpoint["best_sdr"])
    return None
