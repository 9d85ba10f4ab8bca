"""Statistics of MUSHRA ratings (ITU-R BS.1534-3, section 9): pure functions on long-format DataFrames.

    screen_rows(ratings) -> (kept DataFrame, rejected DataFrame)     # duplicates, bad scores
    mean_ci(values, confidence=0.95) -> (mean, half_width)          # t-distribution
    holm(p_values) -> np.ndarray                                     # Holm-Bonferroni adjusted p-values
    screen_sessions(mushra, threshold=90, max_fraction=0.15, headphones=None) -> DataFrame   # per session
    condition_summary(mushra) -> DataFrame       # per target (and "all"): n, mean, CI (clipped to 0-100), median
    friedman_tests(mushra, systems) -> DataFrame
    pairwise_wilcoxon(mushra, alpha=0.05) -> DataFrame               # Holm within each target
    ab_summary(ab) -> DataFrame                  # preference counts + two-sided binomial test

Blocks for the paired tests are (session, trial): one listener rating every condition of one excerpt.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from listening_study.design.anchors import STANDARD_CUTOFFS_HZ
from listening_study.design.study import REFERENCE

ALL = "all"  # the target label of rows pooled over every target

#: Valid ``rating_score`` per mode: the MUSHRA scale is 0-100 (ITU-R BS.1534-3); an A/B row holds the
#: confidence 1-3 for the preferred condition and 0 for the other (listening_study.sessions.ratings).
SCORE_RANGES: dict[str, tuple[float, float]] = {"mushra": (0.0, 100.0), "ab": (0.0, 3.0)}
#: Fewest kept participants for which significance is reported. Blocks are (participant, trial), so one
#: listener's 16 trials make 16 blocks: tests on them speak about that listener, not about listeners.
MIN_PARTICIPANTS_FOR_TESTS = 5
REJECTED_COLUMNS = ["line", "mode", "participant_id", "session_uuid", "trial_id", "rating_stimulus",
                    "rating_score", "reason", "detail"]  # fmt: skip


def screen_rows(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ratings into (kept, rejected) rows before anything is counted.

    ``ratings`` as read by ``read_ratings(..., coerce_scores=True)``: index = data row number (line
    index + 2), ``rating_score`` NaN where the file has no finite number. A row is rejected, with one
    ``reason`` (and a ``detail`` naming lines and values), when it is

    - ``duplicate``: the same (session, trial, condition) and score as an earlier row, which is kept;
    - ``conflicting``: the same (session, trial, condition) with different scores: none is kept, as
      nothing tells which one the listener gave;
    - ``not a number``: a ``rating_score`` that is empty, text, NaN or infinite;
    - ``out of range``: outside :data:`SCORE_RANGES` of its mode;
    - ``incomplete A/B trial``: the other row of its A/B trial was rejected, or the trial does not
      prefer exactly one condition (score > 0), so it holds no decision.
    """
    reason = pd.Series("", index=ratings.index, dtype=object)
    detail = pd.Series("", index=ratings.index, dtype=object)
    keys = ["session_uuid", "trial_id", "rating_stimulus"]
    for _, group in ratings[ratings.duplicated(keys, keep=False)].groupby(keys, sort=False):
        lines = (group.index + 2).tolist()
        if group["rating_score"].nunique(dropna=False) == 1:
            reason[group.index[1:]] = "duplicate"
            detail[group.index[1:]] = f"same session, trial, condition and score as line {lines[0]}"
        else:
            reason[group.index] = "conflicting"
            scores = group["rating_score"].tolist()
            detail[group.index] = f"one condition of one trial rated {scores} on lines {lines}"
    score = ratings["rating_score"].astype(np.float64)
    not_number = (reason == "") & ~np.isfinite(score)
    reason[not_number], detail[not_number] = "not a number", "rating_score is not a finite number"
    low = ratings["mode"].map(lambda mode: SCORE_RANGES[mode][0]).astype(np.float64)
    high = ratings["mode"].map(lambda mode: SCORE_RANGES[mode][1]).astype(np.float64)
    outside = (reason == "") & ((score < low) | (score > high))
    reason[outside] = "out of range"
    detail[outside] = [
        f"rating_score {value:g} outside {SCORE_RANGES[mode][0]:g}-{SCORE_RANGES[mode][1]:g} ({mode})"
        for value, mode in zip(score[outside], ratings["mode"][outside], strict=True)
    ]
    ab = ratings[ratings["mode"] == "ab"]
    for _, group in ab.groupby(["session_uuid", "trial_id"], sort=False):
        valid = group[reason[group.index] == ""]
        if len(valid) != 2:
            why = "the other row of this A/B trial was rejected"
        elif int((valid["rating_score"] > 0).sum()) != 1:
            why = f"an A/B trial prefers exactly one condition (score > 0); scores {valid['rating_score'].tolist()}"
        else:
            continue
        reason[valid.index], detail[valid.index] = "incomplete A/B trial", why
    mask = (reason != "").to_numpy()
    rejected = ratings[mask].assign(line=ratings.index[mask] + 2, reason=reason[mask], detail=detail[mask])
    return ratings[~mask], rejected[REJECTED_COLUMNS].reset_index(drop=True)


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half width of its two-sided t confidence interval (nan for fewer than 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, float("nan")
    sem = values.std(ddof=1) / np.sqrt(values.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, values.size - 1) * sem)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment: sorted p_(i) * (m - i), made monotone, capped at 1 (original order)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def _per_target(frame: pd.DataFrame):
    """(target, rows) for each target, then ("all", every row)."""
    for target in sorted(frame["target"].unique()):
        yield target, frame[frame["target"] == target]
    yield ALL, frame


def screen_sessions(
    mushra: pd.DataFrame, threshold: float = 90.0, max_fraction: float = 0.15,
    headphones: dict[str, dict] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """BS.1534-3 post-screening, per session: exclude a session whose hidden reference is rated below
    ``threshold`` in more than ``max_fraction`` of its trials. Also records how often a trial had a rating
    of 100. Per session, not per participant code: two people who typed the same code are two listeners,
    and one careless session must not take an honest one with it. ``headphones``: session id -> its
    headphone-check result (``passed``, ``n_correct``, ``n_trials``); a session that failed is excluded
    too, with that reason (a session without a result is kept)."""
    rows = []
    for session_id, rows_s in mushra.groupby("session_uuid", sort=True):
        trials = rows_s.groupby("trial_id")
        reference = rows_s[rows_s["rating_stimulus"] == REFERENCE]
        below = int((reference["rating_score"] < threshold).sum())
        n_ref = len(reference)
        fraction = below / n_ref if n_ref else float("nan")
        reasons = []
        if n_ref and fraction > max_fraction:
            reasons.append(f"hidden reference rated below {threshold:g} in {below} of {n_ref} trials "
                           f"({fraction:.0%} > {max_fraction:.0%})")  # fmt: skip
        check = (headphones or {}).get(session_id)
        if check and not check.get("passed", True):
            reasons.append(
                f"failed the headphone check ({check.get('n_correct')} of {check.get('n_trials')} right)"
            )
        rows.append({
            "session_uuid": session_id,
            "participant_id": rows_s["participant_id"].iloc[0],
            "n_trials": trials.ngroups,
            "n_reference_below": below,
            "fraction_reference_below": fraction,
            "fraction_trials_with_100": float(trials["rating_score"].max().eq(100).mean()),
            "headphone_check": "" if not check else ("passed" if check.get("passed") else "failed"),
            "excluded": bool(reasons),
            "reason": "; ".join(reasons),
        })  # fmt: skip
    columns = ["session_uuid", "participant_id", "n_trials", "n_reference_below", "fraction_reference_below",
               "fraction_trials_with_100", "headphone_check", "excluded", "reason"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _clipped_ci(scores, confidence: float) -> tuple[float, float, float, float]:
    """(mean, low, high, half width) of MUSHRA ``scores``: the t interval clipped to the scale (no score lies
    outside it); no interval (NaN) from a single score, not the whole scale."""
    mean, half = mean_ci(scores, confidence)
    if not np.isfinite(half):
        return mean, np.nan, np.nan, half
    low, high = SCORE_RANGES["mushra"]
    return mean, max(low, mean - half), min(high, mean + half), half


def condition_summary(mushra: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    rows = []
    for target, frame in _per_target(mushra):
        for condition, scores in frame.groupby("rating_stimulus")["rating_score"]:
            mean, ci_low, ci_high, half = _clipped_ci(scores, confidence)
            rows.append({
                "target": target, "condition": condition, "n": int(scores.size), "mean": mean,
                "ci_low": ci_low, "ci_high": ci_high, "ci_half_width": half,
                "median": float(scores.median()), "std": float(scores.std(ddof=1)) if scores.size > 1 else np.nan,
            })  # fmt: skip
    columns = ["target", "condition", "n", "mean", "ci_low", "ci_high", "ci_half_width", "median", "std"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["target", "mean"], ascending=[True, False], ignore_index=True)


ANCHOR_COLUMNS = ("target", "condition", "cutoff_hz", "trials", "n", "mean", "ci_low", "ci_high")


def anchor_summary(
    mushra: pd.DataFrame, anchor_hz: dict[str, dict[str, float]], confidence: float = 0.95
) -> pd.DataFrame:
    """The low-pass anchors' scores per target and cutoff: ``anchor_hz`` ({trial id: {anchor: Hz}}, the
    stimuli's ``anchor_hz()``) says where each trial's anchors cut, and fitted anchors cut lower for a
    reference with little treble, so one condition name (``anchor35``) can stand for several filters.
    Ratings of trials ``anchor_hz`` does not know get a NaN cutoff. Columns ANCHOR_COLUMNS."""
    anchors = mushra[mushra["rating_stimulus"].isin(STANDARD_CUTOFFS_HZ)]
    if anchors.empty:
        return pd.DataFrame(columns=list(ANCHOR_COLUMNS))
    pairs = zip(anchors["trial_id"], anchors["rating_stimulus"], strict=True)
    cutoff = [anchor_hz.get(trial, {}).get(anchor, np.nan) for trial, anchor in pairs]
    anchors = anchors.assign(cutoff_hz=cutoff)
    rows = []
    keys = ["target", "rating_stimulus", "cutoff_hz"]
    for (target, condition, hz), frame in anchors.groupby(keys, dropna=False, sort=True):
        mean, ci_low, ci_high, _ = _clipped_ci(frame["rating_score"], confidence)
        rows.append({
            "target": target, "condition": condition, "cutoff_hz": hz, "trials": frame["trial_id"].nunique(),
            "n": len(frame), "mean": mean, "ci_low": ci_low, "ci_high": ci_high,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(ANCHOR_COLUMNS))


def _blocks(frame: pd.DataFrame, conditions) -> pd.DataFrame:
    """(blocks, conditions) table of scores; blocks missing a condition are dropped."""
    table = frame.pivot_table(index=["session_uuid", "trial_id"], columns="rating_stimulus",
                              values="rating_score", aggfunc="mean")  # fmt: skip
    return table.reindex(columns=list(conditions)).dropna()


def friedman_tests(mushra: pd.DataFrame, systems) -> pd.DataFrame:
    """Friedman test over all conditions, and over the systems alone where there are at least 3."""
    rows = []
    for target, frame in _per_target(mushra):
        present = sorted(frame["rating_stimulus"].unique())
        scopes = [("all conditions", present)]
        chosen = [s for s in present if s in set(systems)]
        if len(chosen) >= 3:
            scopes.append(("systems", chosen))
        for scope, conditions in scopes:
            blocks = _blocks(frame, conditions)
            statistic = p_value = np.nan
            if len(conditions) >= 3 and len(blocks) >= 2:
                statistic, p_value = stats.friedmanchisquare(*(blocks[c].to_numpy() for c in conditions))
            rows.append({"target": target, "scope": scope, "k": len(conditions), "n_blocks": len(blocks),
                         "statistic": float(statistic), "p_value": float(p_value)})  # fmt: skip
    return pd.DataFrame(rows, columns=["target", "scope", "k", "n_blocks", "statistic", "p_value"])


def pairwise_wilcoxon(mushra: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Wilcoxon signed-rank test for every pair of conditions on complete blocks; Holm within a target."""
    tables = []
    for target, frame in _per_target(mushra):
        conditions = sorted(frame["rating_stimulus"].unique())
        blocks = _blocks(frame, conditions)
        rows = []
        for a, b in itertools.combinations(conditions, 2):
            x, y = blocks[a].to_numpy(), blocks[b].to_numpy()
            if len(x) == 0 or np.all(x == y):
                statistic, p_value = np.nan, 1.0  # no differences: no evidence either way
            else:
                statistic, p_value = stats.wilcoxon(x, y)
            rows.append({"target": target, "condition_a": a, "condition_b": b, "n": len(x),
                         "mean_a": float(x.mean()) if len(x) else np.nan,
                         "mean_b": float(y.mean()) if len(y) else np.nan,
                         "median_difference": float(np.median(x - y)) if len(x) else np.nan,
                         "statistic": float(statistic), "p_value": float(p_value)})  # fmt: skip
        table = pd.DataFrame(rows)
        if len(table):
            table["p_holm"] = holm(table["p_value"].to_numpy())
            table["significant"] = table["p_holm"] < alpha
            better = np.where(table["mean_a"] > table["mean_b"], table["condition_a"], table["condition_b"])
            table["better"] = np.where(table["significant"], better, "")
        tables.append(table)
    columns = ["target", "condition_a", "condition_b", "n", "mean_a", "mean_b", "median_difference",
               "statistic", "p_value", "p_holm", "significant", "better"]  # fmt: skip
    frames = [t for t in tables if len(t)]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def ab_summary(ab: pd.DataFrame) -> pd.DataFrame:
    """Preference counts per pair of conditions; ``rating_score`` > 0 marks the preferred one."""
    columns = ["target", "condition_a", "condition_b", "n", "wins_a", "wins_b", "mean_confidence", "p_value"]
    if ab.empty:
        return pd.DataFrame(columns=columns)
    decisions = []
    for _, rows in ab.groupby(["session_uuid", "trial_id"]):
        names = sorted(rows["rating_stimulus"])
        winner = rows.loc[rows["rating_score"].idxmax()]
        decisions.append({"target": rows["target"].iloc[0], "pair": tuple(names),
                          "winner": winner["rating_stimulus"], "confidence": float(winner["rating_score"])})  # fmt: skip
    decisions = pd.DataFrame(decisions)
    rows = []
    for target, frame in _per_target(decisions):
        for (a, b), group in frame.groupby("pair"):
            wins_a = int((group["winner"] == a).sum())
            n = len(group)
            rows.append({"target": target, "condition_a": a, "condition_b": b, "n": n, "wins_a": wins_a,
                         "wins_b": n - wins_a, "mean_confidence": float(group["confidence"].mean()),
                         "p_value": float(stats.binomtest(wins_a, n, 0.5).pvalue)})  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
