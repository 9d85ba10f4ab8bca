"""PNG figures of the analysis (matplotlib, Agg backend; no global style changes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _figure(**kwargs):
    from matplotlib.figure import Figure  # the OO API: no pyplot state, safe inside a web server

    return Figure(**kwargs)


def boxplots(mushra: pd.DataFrame, summary: pd.DataFrame, path: Path) -> Path:
    """One panel per target: rating boxplots per condition, mean and 95% CI overlaid."""
    targets = sorted(mushra["target"].unique())
    figure = _figure(figsize=(4.0 * max(1, len(targets)), 4.2), layout="constrained")
    axes = figure.subplots(1, max(1, len(targets)), squeeze=False)[0]
    for axis, target in zip(axes, targets, strict=False):
        order = summary[summary["target"] == target]["condition"].tolist()
        data = [
            mushra[(mushra["target"] == target) & (mushra["rating_stimulus"] == c)]["rating_score"]
            for c in order
        ]
        axis.boxplot(data, showfliers=True)
        stats = summary[summary["target"] == target].set_index("condition").loc[order]
        positions = range(1, len(order) + 1)
        below = (stats["mean"] - stats["ci_low"]).fillna(0).clip(lower=0)  # the CI as clipped to 0-100
        above = (stats["ci_high"] - stats["mean"]).fillna(0).clip(lower=0)
        axis.errorbar(positions, stats["mean"], yerr=[below, above], fmt="o", color="tab:red",
                      capsize=3, label="mean ± 95% CI")  # fmt: skip
        axis.set_xticks(list(positions), order, rotation=30, ha="right")
        axis.set_ylim(-2, 102)
        axis.set_title(target)
        axis.set_ylabel("MUSHRA score")
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower left", fontsize="small")
    figure.savefig(path, dpi=110)
    return path


def sdr_scatter(points: pd.DataFrame, path: Path) -> Path:
    """Mean rating per excerpt and condition against the excerpt's museval SDR."""
    figure = _figure(figsize=(5.5, 4.2), layout="constrained")
    axis = figure.subplots()
    for condition, group in points.groupby("condition"):
        axis.scatter(group["sdr"], group["mean_rating"], label=condition, alpha=0.8)
    axis.set_xlabel("SDR of the excerpt (dB, museval median over frames)")
    axis.set_ylabel("mean MUSHRA score")
    axis.set_ylim(-2, 102)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.savefig(path, dpi=110)
    return path
