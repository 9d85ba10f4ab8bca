"""The analysis as a person reads it: ``report_markdown`` turns ``pipeline.analyze``'s tables into summary.md
(post-screening, scores, the anchors by cutoff, significance, the SDR and the other metrics beside the ratings,
A/B preferences)."""

from __future__ import annotations

import pandas as pd

from listening_study.analysis.stats import SCORE_RANGES


def _markdown_table(frame: pd.DataFrame, digits: int = 2) -> str:
    if frame is None or frame.empty:
        return "_(none)_\n"

    def cell(value) -> str:
        if isinstance(value, float):
            return (
                ""
                if pd.isna(value)
                else (f"{value:.2e}" if 0 < abs(value) < 10**-digits else f"{value:.{digits}f}")
            )
        return str(value).replace("|", "\\|")

    # headers with spaces, not underscores: a narrow column breaks between words, not inside one
    header = [str(column).replace("_", " ") for column in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def report_markdown(result: dict, source: str) -> str:
    """summary.md: the analysis ``result`` (``pipeline.analyze``'s fields, as a dict) in Markdown; ``source``
    names the ratings."""
    parts = [f"# Listening study results\n\nRatings: {source}. MUSHRA ratings kept: {result['n_ratings']} "
             f"from {len(result['participants']) - len(result['excluded'])} of {len(result['participants'])} "
             "sessions (each session is one listener).\n"]  # fmt: skip
    parts.append(_rejected_section(result["rejected"], result["rejected_counts"], result["n_rows"]))
    parts.append(
        "## Post-screening per session (ITU-R BS.1534-3: hidden reference < 90 in more than 15% of "
        "trials; and the headphone check, where the study had one)\n"
    )
    parts.append(_markdown_table(result["screening"]))
    if not result["shared_codes"].empty:
        parts.append(
            "### Participant codes typed in more than one session\n\nScreened and counted as "
            "separate listeners; check whether one person took the test twice.\n"
        )
        parts.append(_markdown_table(result["shared_codes"]))
    parts.append("## Scores per condition (mean, 95% CI from the t-distribution)\n")
    parts.append(_markdown_table(result["summary"]))
    if result["anchors"] is not None and not result["anchors"].empty:
        parts.append(
            "### The low-pass anchors by cutoff\n\n`anchor35` and `anchor70` are each trial's low and mid anchor: "
            "3.5 and 7 kHz, or lower where they would take away too little of that reference to be heard "
            "(fitted anchors). The table above pools each name over its cutoffs.\n"
        )
        parts.append(_markdown_table(result["anchors"]))
        unknown = result["anchors"][result["anchors"]["cutoff_hz"].isna()]
        if not unknown.empty:
            parts.append(
                f"{int(unknown['n'].sum())} anchor ratings are of trials the stimuli do not list (no cutoff): "
                "were these ratings given on other stimuli?\n"
            )
    if result["tests_withheld"]:
        parts.append(f"## Significance\n\n**Not reported:** {result['tests_withheld']}\n")
    else:
        parts.append("## Friedman test (blocks = participant x trial)\n")
        parts.append(_markdown_table(result["friedman"], digits=3))
        significant = result["pairwise"]
        if not significant.empty:
            significant = significant[significant["significant"]]
        parts.append(
            "## Significant pairwise differences (Wilcoxon signed-rank, Holm-corrected, alpha 0.05)\n"
        )
        parts.append(_markdown_table(significant, digits=3))
    if result["sdr_correlation"] is not None:
        parts.append(_sdr_section(result["sdr_correlation"], result["sdr_listeners"]))
    if result["metric_correlations"] is not None:
        parts.append(
            "## Which objective metric predicts these listeners?\n\nEvery metric oriented so that higher "
            "is better (MRSTFT: minus a multi-resolution STFT log-magnitude distance, which sees lost "
            "bandwidth); points: each rated excerpt and condition but the hidden reference, against the "
            "mean rating; `listener_kendall_tau_median`: the median of each session's own tau. Best "
            "per target (Spearman):\n"
        )
        parts.append(_markdown_table(result["best_metrics"], digits=3))
        parts.append(_markdown_table(result["metric_correlations"], digits=3))
    if not result["ab"].empty:
        parts.append("## A/B preferences (two-sided binomial test)\n")
        parts.append(_markdown_table(result["ab"], digits=3))
    return "\n".join(parts)


#: listeners whose Kendall tau summary.md lists one by one (all of them are in sdr_listeners.csv)
LISTENERS_SHOWN = 30


def _sdr_section(correlation: pd.DataFrame, listeners: pd.DataFrame) -> str:
    text = ["## SDR of the rated excerpts and the ratings\n",
            "Each point is one excerpt and condition: its SDR (BSS Eval v4, median over 1-s frames, the excerpt "
            "itself) and its mean rating; the hidden reference is left out. Anchors widen the SDR range, so "
            "correlations over *systems and anchors* are higher by design.\n",
            _markdown_table(correlation[correlation["target"] == "all"], digits=3)]  # fmt: skip
    if listeners is not None and not listeners.empty:
        summary = (listeners.dropna(subset=["kendall_tau"]).groupby("scope")["kendall_tau"]
                   .agg(["count", "median", "min", "max"]).reset_index()
                   .rename(columns={"count": "listeners", "median": "median_tau", "min": "min_tau", "max": "max_tau"}))  # fmt: skip
        text += ["### Each listener's Kendall tau between SDR and rating\n",
                 "Over every excerpt and condition the listener rated (Jaffe & Burgoyne 2025 report 0.09-0.32 "
                 "for separation outputs); all listeners in sdr_listeners.csv.\n", _markdown_table(summary, 3)]  # fmt: skip
        per_listener = listeners.pivot(
            index=["session_uuid", "participant_id"], columns="scope", values="kendall_tau"
        )
        per_listener = per_listener.rename(columns=lambda scope: f"tau ({scope})").reset_index()
        text.append(_markdown_table(per_listener.head(LISTENERS_SHOWN), digits=3))
        if len(per_listener) > LISTENERS_SHOWN:
            text.append(
                f"... and {len(per_listener) - LISTENERS_SHOWN} more listeners (sdr_listeners.csv).\n"
            )
    return "\n".join(text)


#: rows of the rejected table shown in summary.md (all of them are in rejected.csv)
REJECTED_SHOWN = 20


def _rejected_section(rejected: pd.DataFrame, counts: dict[str, int], n_rows: int) -> str:
    if rejected.empty:
        return f"Rows excluded before the analysis: none of {n_rows}.\n"
    reasons = ", ".join(f"{n} {reason}" for reason, n in counts.items())
    text = [f"## Rows excluded before the analysis: {len(rejected)} of {n_rows} ({reasons})\n",
            "Duplicated rows keep their first copy; conflicting ratings of one condition keep none; scores "
            f"must be numbers within {SCORE_RANGES['mushra'][0]:g}-{SCORE_RANGES['mushra'][1]:g} "
            f"(A/B: {SCORE_RANGES['ab'][0]:g}-{SCORE_RANGES['ab'][1]:g}). Lines count the header as line 1.\n",
            _markdown_table(rejected[["line", "participant_id", "trial_id", "rating_stimulus", "reason", "detail"]]
                            .head(REJECTED_SHOWN))]  # fmt: skip
    if len(rejected) > REJECTED_SHOWN:
        text.append(f"... and {len(rejected) - REJECTED_SHOWN} more (rejected.csv).\n")
    return "\n".join(text)
