"""SDR of the rated excerpts beside the ratings: points, correlations across conditions, and each
listener's Kendall tau.

    excerpt_sdr(eval_dir, method, track, target, start_s=None, end_s=None) -> float
    sdr_table_from_eval(mushra, eval_dir) -> DataFrame[song, target, condition, sdr_db]
    sdr_vs_ratings(mushra, sdr_table) -> SdrComparison(points, correlation, listeners)

Where the SDR comes from: in the app, listening_study.excerpt_sdr computes it from the rendered stimuli
themselves (the excerpt each listener heard, every condition against the trial's reference) and caches
it. From the command line, ``--excerpt-sdr`` reads that table, or ``--sdr`` reads museval JSON
(``EVAL_DIR/<method>/test/<track>.json``, as written by mss.evaluate, framewise metrics:
``{"targets": [{"name", "frames": [{"time", "duration", "metrics": {"SDR", ...}}]}]}``); there the
excerpt's SDR is the median over the frames lying inside the excerpt (the whole song when none does),
the same frame aggregation museval uses for whole songs.

The hidden reference (SDR infinite by construction) is left out of every comparison. Two scopes:
``systems`` (the systems under test only) and ``systems and anchors`` (every other condition too;
anchors spread the SDR range, so that correlation is higher by design). Per listener: Kendall's tau-b
(scipy.stats.kendalltau) between the SDR and that listener's own ratings over every (excerpt,
condition) they rated; Jaffe & Burgoyne (2025) report 0.09-0.32 for separation outputs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from listening_study.errors import StudyError
from listening_study.study import ANCHORS, REFERENCE

SCOPES = ("systems", "systems and anchors")
SDR_COLUMNS = ["song", "target", "condition", "sdr_db"]
LISTENER_COLUMNS = ["session_uuid", "participant_id", "scope", "n", "kendall_tau", "p_value"]
CORRELATION_COLUMNS = ["scope", "target", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
                       "kendall_tau", "kendall_p"]  # fmt: skip


@dataclass(frozen=True)
class SdrComparison:
    points: (
        pd.DataFrame
    )  # song, target, condition, sdr, mean_rating, n_ratings (one per excerpt and condition)
    correlation: pd.DataFrame  # CORRELATION_COLUMNS: across the points, per scope and target (and "all")
    listeners: pd.DataFrame  # LISTENER_COLUMNS: Kendall tau of each listener's own ratings with the SDR


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
         "sdr_db": excerpt_sdr(eval_dir, condition, song, target, start_s, end_s)}
        for (song, target, condition, start_s, end_s), _ in mushra.groupby(keys)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=SDR_COLUMNS).dropna(subset=["sdr_db"])


def _in_scope(conditions: pd.Series, scope: str) -> pd.Series:
    if scope == "systems":
        return ~conditions.isin([REFERENCE, *ANCHORS])
    return conditions != REFERENCE


def _correlatable(x: pd.Series, y: pd.Series) -> bool:
    """At least 3 points and neither side constant (otherwise a rank correlation is undefined)."""
    return len(x) >= 3 and x.nunique() > 1 and y.nunique() > 1


def _correlations(x: pd.Series, y: pd.Series) -> dict[str, float]:
    out = dict.fromkeys(CORRELATION_COLUMNS[3:], float("nan"))
    if _correlatable(x, y):
        out["pearson_r"], out["pearson_p"] = (float(v) for v in stats.pearsonr(x, y))
        out["spearman_rho"], out["spearman_p"] = (float(v) for v in stats.spearmanr(x, y))
        out["kendall_tau"], out["kendall_p"] = (float(v) for v in stats.kendalltau(x, y))
    return out


def sdr_vs_ratings(mushra: pd.DataFrame, sdr_table: pd.DataFrame) -> SdrComparison:
    """The kept MUSHRA rows beside ``sdr_table`` (SDR_COLUMNS), joined on (song, target, condition)."""
    missing = set(SDR_COLUMNS) - set(sdr_table.columns)
    if missing:
        raise StudyError(f"the SDR table lacks the columns {sorted(missing)} (needs {SDR_COLUMNS})")
    sdr = sdr_table[SDR_COLUMNS].copy()
    sdr["sdr_db"] = pd.to_numeric(sdr["sdr_db"], errors="coerce")
    sdr = sdr[np.isfinite(sdr["sdr_db"]) & (sdr["condition"] != REFERENCE)]
    rated = mushra.rename(columns={"rating_stimulus": "condition"}).merge(
        sdr.drop_duplicates(["song", "target", "condition"]), on=["song", "target", "condition"]
    )  # one row per rating that has an SDR
    points = (
        rated.groupby(["song", "target", "condition"], as_index=False)
        .agg(sdr=("sdr_db", "first"), mean_rating=("rating_score", "mean"), n_ratings=("rating_score", "size"))
    )  # fmt: skip
    correlation = []
    for scope in SCOPES:
        chosen = points[_in_scope(points["condition"], scope)]
        for target in [*sorted(chosen["target"].unique()), "all"]:
            subset = chosen if target == "all" else chosen[chosen["target"] == target]
            correlation.append({"scope": scope, "target": target, "n": len(subset),
                                **_correlations(subset["sdr"], subset["mean_rating"])})  # fmt: skip
    listeners = []
    for session_id, rows in rated.groupby("session_uuid", sort=True):  # a listener is a session
        participant = rows["participant_id"].iloc[0]
        for scope in SCOPES:
            chosen = rows[_in_scope(rows["condition"], scope)]
            tau = p_value = float("nan")
            if _correlatable(chosen["sdr_db"], chosen["rating_score"]):
                tau, p_value = (float(v) for v in stats.kendalltau(chosen["sdr_db"], chosen["rating_score"]))
            listeners.append({"session_uuid": session_id, "participant_id": participant, "scope": scope, "n": len(chosen),
                              "kendall_tau": tau, "p_value": p_value})  # fmt: skip
    return SdrComparison(
        points.reset_index(drop=True),
        pd.DataFrame(correlation, columns=CORRELATION_COLUMNS),
        pd.DataFrame(listeners, columns=LISTENER_COLUMNS),
    )
