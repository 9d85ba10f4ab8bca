"""Objective metrics beside the ratings: every correlation of the analysis, computed one way (``correlate``).

    sdr_vs_ratings(mushra, sdr_table) -> SdrComparison(points, correlation, listeners)
        # the SDR of the rated excerpts: per scope ("systems", "systems and anchors") and target, and each
        # listener's Kendall tau (Jaffe & Burgoyne 2025 report 0.09-0.32 for separation outputs)
    metric_correlations(mushra, metrics, *, anchors=True)
        -> DataFrame[metric, target, n, pearson_r, spearman_rho, kendall_tau, listener_kendall_tau_median,
                     n_listeners]
    best_metrics(table) -> DataFrame[target, metric, spearman_rho]
    correlate(x, y) -> {pearson_r, pearson_p, spearman_rho, spearman_p, kendall_tau, kendall_p}   # NaN when
        # fewer than 3 points or a constant side (scipy.stats)
    CORRELATION_COLUMNS, SDR_CORRELATION_COLUMNS, LISTENER_COLUMNS, BEST_COLUMNS

``sdr_table`` (SDR_COLUMNS of listening_study.analysis.museval_sdr: song, target, condition, sdr_db; from the
stimuli, listening_study.analysis.metrics.study_excerpt_sdr, or from museval JSON) is joined with the kept
MUSHRA rows on (song, target, condition); the hidden reference (SDR infinite by construction) is left out.

For ``metric_correlations``:

``mushra``: ratings rows (listening_study.sessions.ratings.COLUMNS; rows whose ``mode`` is not "mushra" are
ignored); ``metrics``: the long table of listening_study.analysis.metrics (one value per trial x condition
x metric, every metric oriented so that higher is better). A point is one rated excerpt (song, target,
excerpt start and end) and condition, matched between the two tables on those keys (excerpt times to the
millisecond), so the ratings must be those of the study the metrics were computed for.

Points: every condition except the hidden reference (``reference``, where the metrics are infinite by
construction): the systems and, with ``anchors=True`` (default), the anchors too (``anchor35``,
``anchor70``, ``mixture``). Anchors spread the range of both the ratings and the metrics, so correlations
with them are higher by design; ``anchors=False`` keeps the systems only. Points whose metric is not
finite (NaN: a silent excerpt, SIR without the mixture anchor) are left out of that metric.

One row per metric and target (each target, then "all"): ``n`` points; Pearson's r, Spearman's rho and
Kendall's tau-b (scipy.stats) between the metric and each point's mean rating over listeners; and the
median over listeners (by ``session_uuid``) of each listener's own Kendall tau-b between the metric and
their ratings of those points, ``n_listeners`` being how many listeners had a tau. Fewer than 3 points, or
a constant side, give NaN (no crash). Pearson's r is swayed by extreme values (the mixture anchor's SAR is
at the rounding level, some 250 dB); the best metric is chosen by Spearman's rho.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from listening_study.analysis.museval_sdr import SDR_COLUMNS
from listening_study.design.study import ANCHORS, REFERENCE
from listening_study.errors import StudyError

CORRELATION_COLUMNS = ["metric", "target", "n", "pearson_r", "spearman_rho", "kendall_tau",
                       "listener_kendall_tau_median", "n_listeners"]  # fmt: skip
BEST_COLUMNS = ["target", "metric", "spearman_rho"]
#: Keys of a point besides the condition; excerpt times rounded to ROUND_S decimals before matching.
EXCERPT_KEYS = ["song", "target", "excerpt_start_s", "excerpt_end_s"]
ROUND_S = 3
RATING_COLUMNS = ["session_uuid", *EXCERPT_KEYS, "rating_stimulus", "rating_score"]
METRIC_COLUMNS = [*EXCERPT_KEYS, "condition", "metric", "value"]
ALL = "all"
NAN = float("nan")
SCOPES = ("systems", "systems and anchors")
LISTENER_COLUMNS = ["session_uuid", "participant_id", "scope", "n", "kendall_tau", "p_value"]
SDR_CORRELATION_COLUMNS = ["scope", "target", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
                       "kendall_tau", "kendall_p"]  # fmt: skip


@dataclass(frozen=True)
class SdrComparison:
    points: (
        pd.DataFrame
    )  # song, target, condition, sdr, mean_rating, n_ratings (one per excerpt and condition)
    correlation: pd.DataFrame  # SDR_CORRELATION_COLUMNS: across the points, per scope and target (and "all")
    listeners: pd.DataFrame  # LISTENER_COLUMNS: Kendall tau of each listener's own ratings with the SDR


def _check_columns(table: pd.DataFrame, needed: list[str], what: str) -> None:
    missing = sorted(set(needed) - set(table.columns))
    if missing:
        raise StudyError(f"the {what} table lacks the columns {missing} (needs {needed})")


def correlatable(x: pd.Series, y: pd.Series) -> bool:
    """At least 3 points and neither side constant (otherwise a correlation is undefined)."""
    return len(x) >= 3 and x.nunique() > 1 and y.nunique() > 1


def correlate(x: pd.Series, y: pd.Series) -> dict[str, float]:
    """Pearson's r, Spearman's rho and Kendall's tau-b with their p-values; NaN where not ``correlatable``."""
    out = dict.fromkeys(
        ["pearson_r", "pearson_p", "spearman_rho", "spearman_p", "kendall_tau", "kendall_p"], NAN
    )
    if correlatable(x, y):
        out["pearson_r"], out["pearson_p"] = (float(v) for v in stats.pearsonr(x, y))
        out["spearman_rho"], out["spearman_p"] = (float(v) for v in stats.spearmanr(x, y))
        out["kendall_tau"], out["kendall_p"] = (float(v) for v in stats.kendalltau(x, y))
    return out


def _rated_metrics(mushra: pd.DataFrame, metrics: pd.DataFrame, anchors: bool) -> pd.DataFrame:
    """One row per rating and metric: session_uuid, EXCERPT_KEYS, condition, metric, value, rating_score,
    only the points in scope with a finite metric."""
    _check_columns(mushra, RATING_COLUMNS, "ratings")
    _check_columns(metrics, METRIC_COLUMNS, "metrics")
    ratings = mushra if "mode" not in mushra.columns else mushra[mushra["mode"] == "mushra"]
    ratings = ratings[RATING_COLUMNS].rename(columns={"rating_stimulus": "condition"})
    ratings = ratings.assign(rating_score=pd.to_numeric(ratings["rating_score"], errors="coerce"))
    values = metrics[METRIC_COLUMNS].assign(value=pd.to_numeric(metrics["value"], errors="coerce"))
    excluded = [REFERENCE] if anchors else [REFERENCE, *ANCHORS]
    tables = []
    for table in (ratings, values):
        table = table[~table["condition"].isin(excluded)]
        times = {key: pd.to_numeric(table[key], errors="coerce").round(ROUND_S) for key in EXCERPT_KEYS[2:]}
        tables.append(
            table.assign(**times, song=table["song"].astype(str), target=table["target"].astype(str))
        )
    ratings, values = tables
    values = values[np.isfinite(values["value"])].drop_duplicates([*EXCERPT_KEYS, "condition", "metric"])
    rated = ratings.merge(values, on=[*EXCERPT_KEYS, "condition"])  # one row per rating and metric
    return rated[np.isfinite(rated["rating_score"])]


def _row(metric: str, target: str, rated: pd.DataFrame) -> dict:
    """The correlations of one metric over the ratings ``rated`` (CORRELATION_COLUMNS)."""
    points = rated.groupby([*EXCERPT_KEYS, "condition"], as_index=False).agg(
        value=("value", "first"), mean_rating=("rating_score", "mean")
    )  # one row per (excerpt, condition)
    together = correlate(points["value"], points["mean_rating"])
    pearson, spearman, kendall = together["pearson_r"], together["spearman_rho"], together["kendall_tau"]
    listeners = [
        correlate(rows["value"], rows["rating_score"])["kendall_tau"]
        for _, rows in rated.groupby("session_uuid")
    ]
    listeners = [tau for tau in listeners if np.isfinite(tau)]
    return {"metric": metric, "target": target, "n": len(points), "pearson_r": pearson,
            "spearman_rho": spearman, "kendall_tau": kendall,
            "listener_kendall_tau_median": float(np.median(listeners)) if listeners else NAN,
            "n_listeners": len(listeners)}  # fmt: skip


def metric_correlations(mushra: pd.DataFrame, metrics: pd.DataFrame, *, anchors: bool = True) -> pd.DataFrame:
    """CORRELATION_COLUMNS, one row per metric (in the metrics table's order) and target (sorted, then
    "all"); see the module docstring. StudyError when a table lacks a column it needs."""
    rated = _rated_metrics(mushra, metrics, anchors)
    order = list(dict.fromkeys(metrics["metric"]))  # every metric of the table, rated or not
    targets = sorted(set(metrics["target"].astype(str)))
    rows = []
    for metric in order:
        chosen = rated[rated["metric"] == metric]
        for target in [*targets, ALL]:
            subset = chosen if target == ALL else chosen[chosen["target"] == target]
            rows.append(_row(metric, target, subset))
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def best_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """BEST_COLUMNS: per target of a metric_correlations table (in its order), the metric with the highest
    Spearman rho (every metric is oriented so that higher is better, so the highest, not the largest in
    absolute value); the first in the table's order on a tie; metric None and rho NaN where no metric has
    a rho."""
    _check_columns(table, CORRELATION_COLUMNS, "correlation")
    rows = []
    for target in dict.fromkeys(table["target"]):
        candidates = table[(table["target"] == target) & np.isfinite(table["spearman_rho"])]
        if candidates.empty:
            rows.append({"target": target, "metric": None, "spearman_rho": NAN})
            continue
        best = candidates.loc[candidates["spearman_rho"].idxmax()]  # idxmax: the first of equal maxima
        rows.append({"target": target, "metric": best["metric"], "spearman_rho": float(best["spearman_rho"])})
    return pd.DataFrame(rows, columns=BEST_COLUMNS)


def _in_scope(conditions: pd.Series, scope: str) -> pd.Series:
    if scope == "systems":
        return ~conditions.isin([REFERENCE, *ANCHORS])
    return conditions != REFERENCE


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
                                **correlate(subset["sdr"], subset["mean_rating"])})  # fmt: skip
    listeners = []
    for session_id, rows in rated.groupby("session_uuid", sort=True):  # a listener is a session
        participant = rows["participant_id"].iloc[0]
        for scope in SCOPES:
            chosen = rows[_in_scope(rows["condition"], scope)]
            tau = p_value = float("nan")
            if correlatable(chosen["sdr_db"], chosen["rating_score"]):
                tau, p_value = (float(v) for v in stats.kendalltau(chosen["sdr_db"], chosen["rating_score"]))
            listeners.append({"session_uuid": session_id, "participant_id": participant, "scope": scope, "n": len(chosen),
                              "kendall_tau": tau, "p_value": p_value})  # fmt: skip
    return SdrComparison(
        points.reset_index(drop=True),
        pd.DataFrame(correlation, columns=SDR_CORRELATION_COLUMNS),
        pd.DataFrame(listeners, columns=LISTENER_COLUMNS),
    )
