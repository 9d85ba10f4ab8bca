"""PNG figures of the analysis (matplotlib, Agg backend; no global style changes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from listening_study.design.study import ANCHORS, REFERENCE


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
    """One panel per condition (systems first): mean rating per excerpt against the excerpt's SDR, one
    colour per target. The systems under test share one SDR axis, so their panels compare; the hidden
    reference and the anchors (SDR far above or below theirs) each get an axis of their own, so they do
    not squeeze the systems into a corner. The legend stands outside the panels."""
    conditions = sorted(
        points["condition"].unique(), key=lambda name: (name in ANCHORS, name == REFERENCE, name)
    )
    targets = sorted(points["target"].unique())
    colours = {target: f"C{i % 10}" for i, target in enumerate(targets)}
    systems = points[~points["condition"].isin([*ANCHORS, REFERENCE])]
    figure = _figure(figsize=(3.4 * max(1, len(conditions)) + 1.2, 3.6), layout="constrained")
    axes = figure.subplots(1, max(1, len(conditions)), squeeze=False, sharey=True)[0]
    for axis, condition in zip(axes, conditions, strict=False):
        group = points[points["condition"] == condition]
        for target, rows in group.groupby("target"):
            axis.scatter(rows["sdr"], rows["mean_rating"], color=colours[target], label=target, alpha=0.85)
        own = condition in ANCHORS or condition == REFERENCE or systems.empty
        axis.set_title(condition + (" (anchor)" if condition in ANCHORS else ""))
        axis.set_xlim(*_sdr_range(group["sdr"] if own else systems["sdr"]))
        axis.set_xlabel("SDR of the excerpt (dB)" + (", own axis" if own and not systems.empty else ""))
        axis.set_ylim(-2, 102)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("mean MUSHRA score")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=colours[t], label=t) for t in targets]
    figure.legend(handles=handles, loc="outside right upper", fontsize="small", title="target")
    figure.savefig(path, dpi=110)
    return path


def _sdr_range(sdr: pd.Series) -> tuple[float, float]:
    low, high = float(sdr.min()), float(sdr.max())
    pad = max(1.0, 0.08 * (high - low))
    return low - pad, high + pad
