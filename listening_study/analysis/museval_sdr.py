"""The SDR of rated excerpts read from museval JSON (``python -m mss.evaluate``'s output), for
``python -m listening_study.analysis --sdr EVAL_DIR``: the median over the frames lying inside the excerpt
(the whole song when none does), the same frame aggregation museval uses for whole songs. (The app
computes the SDR from the stimuli themselves instead: listening_study.analysis.metrics.)

    eval_excerpt_sdr(eval_dir, method, track, target, start_s=None, end_s=None) -> float
    sdr_table_from_eval(mushra, eval_dir) -> DataFrame[SDR_COLUMNS: song, target, condition, sdr_db]

``EVAL_DIR/<method>/test/<track>.json``, framewise metrics:
``{"targets": [{"name", "frames": [{"time", "duration", "metrics": {"SDR", ...}}]}]}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from listening_study.errors import StudyError

SDR_COLUMNS = ["song", "target", "condition", "sdr_db"]

#: Conditions whose SDR comes from an evaluation method of another name (mss.evaluate's oracles).
METHOD_ALIASES = {"mixture": "MIX"}


def _method_dir(eval_dir: Path, condition: str) -> Path | None:
    for name in (condition, METHOD_ALIASES.get(condition, "")):
        if name and (eval_dir / name).is_dir():
            return eval_dir / name
    return None


def eval_excerpt_sdr(eval_dir, method: str, track: str, target: str, start_s=None, end_s=None) -> float:
    """Median framewise SDR of ``target`` within [start_s, end_s] (nan when the track/target is not scored)."""
    folder = _method_dir(Path(eval_dir), method)
    path = folder / "test" / f"{track}.json" if folder else None
    if path is None or not path.is_file():
        return float("nan")
    try:
        data = json.loads(path.read_text())
        frames = next((t["frames"] for t in data["targets"] if t["name"] == target), None)
        if not frames:
            return float("nan")
        chosen = frames
        if start_s is not None and end_s is not None:
            inside = [
                f for f in frames if f["time"] >= start_s - 1e-6 and f["time"] + f["duration"] <= end_s + 1e-6
            ]
            chosen = inside or frames
        values = np.array([_frame_sdr(f) for f in chosen])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StudyError(f"{path} is not a museval JSON file: {type(exc).__name__} {exc}") from exc
    except OSError as exc:
        raise StudyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")


def _frame_sdr(frame: dict) -> float:
    """A museval frame's SDR; nan where museval wrote none (or NaN/inf)."""
    value = frame["metrics"].get("SDR")
    return float(value) if value is not None and math.isfinite(float(value)) else float("nan")


def sdr_table_from_eval(mushra: pd.DataFrame, eval_dir) -> pd.DataFrame:
    """SDR_COLUMNS for every (song, target, condition) rated, read from museval JSON (frames inside the
    rated excerpt); conditions without a score are left out."""
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        problem = "is not a folder" if eval_dir.exists() else "not found"
        raise StudyError(f"SDR folder {eval_dir} {problem} (expected EVAL_DIR/<method>/test/<track>.json)")
    keys = ["song", "target", "rating_stimulus", "excerpt_start_s", "excerpt_end_s"]
    rows = [
        {"song": song, "target": target, "condition": condition,
         "sdr_db": eval_excerpt_sdr(eval_dir, condition, song, target, start_s, end_s)}
        for (song, target, condition, start_s, end_s), _ in mushra.groupby(keys)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=SDR_COLUMNS).dropna(subset=["sdr_db"])
