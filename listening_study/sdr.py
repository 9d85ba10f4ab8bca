"""museval SDR of the rated excerpts, and its correlation with the mean ratings.

    excerpt_sdr(eval_dir, method, track, target, start_s=None, end_s=None) -> float
    sdr_vs_ratings(mushra, eval_dir) -> (points DataFrame, correlations DataFrame)

museval JSON (``EVAL_DIR/<method>/test/<track>.json``, as written by mss.evaluate) holds framewise
metrics: ``{"targets": [{"name", "frames": [{"time", "duration", "metrics": {"SDR", ...}}]}]}``.
The excerpt's SDR is the median over the frames lying inside the excerpt (the whole song when none does),
the same frame aggregation museval uses for whole songs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from listening_study.errors import StudyError

#: Conditions whose SDR comes from an evaluation method of another name (mss.evaluate's oracles).
METHOD_ALIASES = {"mixture": "MIX"}


def _method_dir(eval_dir: Path, condition: str) -> Path | None:
    for name in (condition, METHOD_ALIASES.get(condition, "")):
        if name and (eval_dir / name).is_dir():
            return eval_dir / name
    return None


def excerpt_sdr(eval_dir, method: str, track: str, target: str, start_s=None, end_s=None) -> float:
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


def sdr_vs_ratings(mushra: pd.DataFrame, eval_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (song, target, condition): mean rating and excerpt SDR; Pearson and Spearman over those points."""
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        problem = "is not a folder" if eval_dir.exists() else "not found"
        raise StudyError(f"SDR folder {eval_dir} {problem} (expected EVAL_DIR/<method>/test/<track>.json)")
    keys = ["song", "target", "rating_stimulus", "excerpt_start_s", "excerpt_end_s"]
    points = mushra.groupby(keys, as_index=False)["rating_score"].mean()
    points["sdr"] = [
        excerpt_sdr(
            eval_dir, row.rating_stimulus, row.song, row.target, row.excerpt_start_s, row.excerpt_end_s
        )
        for row in points.itertuples()
    ]
    points = points.dropna(subset=["sdr"]).rename(
        columns={"rating_score": "mean_rating", "rating_stimulus": "condition"}
    )
    rows = []
    for target in [*sorted(points["target"].unique()), "all"]:
        subset = points if target == "all" else points[points["target"] == target]
        row = {"target": target, "n": len(subset), "pearson_r": np.nan, "pearson_p": np.nan,
               "spearman_rho": np.nan, "spearman_p": np.nan}  # fmt: skip
        if len(subset) >= 3 and subset["sdr"].nunique() > 1 and subset["mean_rating"].nunique() > 1:
            row["pearson_r"], row["pearson_p"] = (
                float(v) for v in stats.pearsonr(subset["sdr"], subset["mean_rating"])
            )
            row["spearman_rho"], row["spearman_p"] = (
                float(v) for v in stats.spearmanr(subset["sdr"], subset["mean_rating"])
            )
        rows.append(row)
    return points.reset_index(drop=True), pd.DataFrame(rows)
