"""A training run folder, read: its layout, its metrics rows, its config and the epoch best.pt holds.

``python -m training.run --out OUT`` writes (training.state and training.resume do the writing)::

    OUT/metrics.jsonl  one JSON object per finished epoch, appended (rank 0): epoch, step, losses,
                       validation SDRs, times, and ``best_epoch``, the epoch best.pt holds once that
                       epoch is done (None while no epoch has been validated)
    OUT/config.json    {"config": TrainConfig fields, "dataset", "world_size", "device"}
    OUT/best.pt        the validation weights of the best validated epoch (training.validation.best_criterion)
    OUT/last.pt        everything needed to resume (training.resume)
    OUT/curves.png     loss and SDR per epoch (training.plots)

Every reader (``training.summary``, ``training.run``'s last line, ``mss.report``) goes through this module,
so the rules are written once: only the last metrics line may be torn (a process killed while appending);
the best epoch is the one the training loop recorded, and for rows written before ``best_epoch`` existed it
is derived with the loop's own rule (:func:`training.validation.best_criterion` and ``improves``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.validation import best_criterion, improves

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
CURVES_FILE = "curves.png"
#: the metrics-row field naming the epoch best.pt holds after that row's epoch
BEST_EPOCH_KEY = "best_epoch"


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The rows of ``metrics.jsonl`` ([] when absent). A torn last line (a kill while appending) is
    skipped; any other line that is not JSON is a ValueError naming the file and the line."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):  # only the last line can be torn by a kill
                raise ValueError(f"{path} line {number} is not JSON: {line[:80]!r}") from None
    return records


def _config_file(run_dir: str | Path) -> dict:
    """``config.json`` as a dict ({} when absent; ValueError when it is not a JSON object)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds no JSON object")
    return data


def read_config(run_dir: str | Path) -> dict:
    """The TrainConfig fields of ``config.json`` ({} when absent; ValueError when it is not JSON).

    config.json nests them under ``"config"`` beside the dataset and world size; a flat file (as early
    versions wrote) is read as the fields themselves."""
    data = _config_file(run_dir)
    return data["config"] if isinstance(data.get("config"), dict) else data


def read_dataset(run_dir: str | Path) -> str | None:
    """The ``dataset`` a run's ``config.json`` records, as its command gave it (None when the file or the key
    is absent: early versions wrote no such key; ValueError when it is not JSON)."""
    dataset = _config_file(run_dir).get("dataset")
    return dataset if isinstance(dataset, str) else None


def best_epoch(history: Sequence[dict], targets: Sequence[str]) -> int | None:
    """The epoch best.pt holds after the last of ``history`` (any leading part of a run's rows): the
    ``best_epoch`` the loop recorded in that row, else derived with the loop's rule (rows of older runs)."""
    if not history:
        return None
    if BEST_EPOCH_KEY in history[-1]:
        recorded = history[-1][BEST_EPOCH_KEY]
        return None if recorded is None else int(recorded)
    return derive_best_epoch(history, targets)


def derive_best_epoch(history: Sequence[dict], targets: Sequence[str]) -> int | None:
    """The training loop's choice replayed over ``history``: best_criterion, ranked by ``improves``."""
    best, epoch = None, None
    for record in history:
        criterion = best_criterion(record, targets)
        if improves(criterion, best):
            best, epoch = criterion, int(record["epoch"])
    return epoch


def record_of(history: Sequence[dict], epoch: int | None) -> dict | None:
    """The row of ``epoch`` in ``history`` (None when absent)."""
    if epoch is None:
        return None
    return next((record for record in history if record.get("epoch") == epoch), None)


@dataclass(frozen=True)
class RunFolder:
    """One run folder as read: its metrics rows, its TrainConfig fields and the epoch best.pt holds."""

    path: Path
    history: list[dict]  # metrics.jsonl rows, oldest first
    config: dict  # TrainConfig fields ({} without config.json)
    best_epoch: int | None

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.config.get("targets") or ())

    @property
    def best_record(self) -> dict | None:
        """The metrics row of the epoch best.pt holds."""
        return record_of(self.history, self.best_epoch)


def read_run(run_dir: str | Path) -> RunFolder:
    """Read a run folder (OSError or ValueError when a file of it cannot be read)."""
    path = Path(run_dir)
    history, config = read_metrics(path), read_config(path)
    return RunFolder(path, history, config, best_epoch(history, tuple(config.get("targets") or ())))
