"""Which objective metric predicts the listeners: each metric of the rated excerpts beside the ratings.

    metric_correlations(mushra, metrics, *, anchors=True)
        -> DataFrame[metric, target, n, pearson_r, spearman_rho, kendall_tau, listener_kendall_tau_median,
                     n_listeners]
    best_metrics(table) -> DataFrame[target, metric, spearman_rho]
    CORRELATION_COLUMNS, BEST_COLUMNS

``mushra``: ratings rows (listening_study.ratings.COLUMNS; rows whose ``mode`` is not "mushra" are
ignored); ``metrics``: the long table of listening_study.excerpt_metrics (one value per trial x condition
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

import numpy as np
import pandas as pd
from scipy import stats

from listening_study.errors import StudyError
from listening_study.study import ANCHORS, REFERENCE

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


def _check_columns(table: pd.DataFrame, needed: list[str], what: str) -> None:
    missing = sorted(set(needed) - set(table.columns))
    if missing:
        raise StudyError(f"the {what} table lacks the columns {missing} (needs {needed})")


def _correlatable(x: pd.Series, y: pd.Series) -> bool:
    """At least 3 points and neither side constant (otherwise a correlation is undefined)."""
    return len(x) >= 3 and x.nunique() > 1 and y.nunique() > 1


def _kendall(x: pd.Series, y: pd.Series) -> float:
    return float(stats.kendalltau(x, y).statistic) if _correlatable(x, y) else NAN


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
    x, y = points["value"], points["mean_rating"]
    pearson = spearman = kendall = NAN
    if _correlatable(x, y):
        pearson = float(stats.pearsonr(x, y).statistic)
        spearman = float(stats.spearmanr(x, y).statistic)
        kendall = _kendall(x, y)
    listeners = [_kendall(rows["value"], rows["rating_score"]) for _, rows in rated.groupby("session_uuid")]
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
