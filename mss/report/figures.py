"""Figures of the comparison report (matplotlib's object API, no pyplot: nothing global): score boxplots, spectrogram excerpts, training
curves and the curriculum ablation. Every function writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mss import SOURCES
from mss.report.spectrogram import spectrogram_figure

DPI = 100


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def boxplots(
    per_track: pd.DataFrame, path: Path, metric: str = "SDR", methods: Sequence[str] | None = None
) -> Path:
    """One panel per target: the distribution over songs of ``metric`` (frame medians) for each method."""
    targets = sorted(
        dict.fromkeys(per_track["target"]), key=lambda t: SOURCES.index(t) if t in SOURCES else 99
    )
    methods = list(methods or dict.fromkeys(per_track["method"]))
    figure = Figure(figsize=(max(4.0, 1.0 + 0.7 * len(methods)) * len(targets), 4.2), layout="constrained")
    axes = figure.subplots(1, len(targets), squeeze=False)
    for axis, target in zip(axes[0], targets, strict=True):
        part = per_track[per_track["target"] == target]
        data = [part.loc[part["method"] == m, metric].dropna().to_numpy() for m in methods]
        positions = [i for i, values in enumerate(data) if len(values)]
        if positions:
            axis.boxplot([data[i] for i in positions], positions=positions, widths=0.6, showmeans=True)
            for i in positions:  # every song as a dot: with few songs the box alone hides the data
                jitter = np.linspace(-0.12, 0.12, len(data[i])) if len(data[i]) > 1 else [0.0]
                axis.scatter(np.asarray(jitter) + i, data[i], s=10, alpha=0.6, color="tab:blue", zorder=3)
        axis.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        axis.set_title(target)
        axis.set_ylabel(f"{metric} (dB)")
        axis.grid(True, axis="y", alpha=0.3)
    label = "SDR improvement over the mixture" if metric == "SDRi" else metric
    figure.suptitle(f"{label} per song (median over 1-s frames); box: quartiles, triangle: mean", fontsize=10)
    return _save(figure, path)


def spectrogram_excerpt(
    panels: Sequence[tuple[str, np.ndarray]], sample_rate: int, start_s: float, end_s: float, path: Path
) -> Path:
    """Mixture, reference, estimates and errors on one colour scale (see mss.spectrogram)."""
    figure = spectrogram_figure(panels, sample_rate, start_s, end_s)
    return _save(figure, path)


def training_curves(runs: dict[str, list[dict]], path: Path) -> Path:
    """Training loss (left) and validation mean SDR (right) per epoch for every run."""
    figure = Figure(figsize=(12, 4.2), layout="constrained")
    loss_axis, sdr_axis = figure.subplots(1, 2)
    for name, history in runs.items():
        epochs = [r.get("epoch") for r in history]
        line = loss_axis.plot(
            epochs, [r.get("train_loss", np.nan) for r in history], marker="o", ms=3, label=f"{name} train"
        )
        valid = [r for r in history if r.get("valid_loss") is not None]
        if valid:
            loss_axis.plot(
                [r["epoch"] for r in valid], [r["valid_loss"] for r in valid], linestyle="--",
                color=line[0].get_color(), label=f"{name} valid",
            )  # fmt: skip
        sdr = [(r["epoch"], (r.get("valid_sdr") or {}).get("mean")) for r in history]
        sdr = [(e, v) for e, v in sdr if v is not None]
        if sdr:
            sdr_axis.plot(*zip(*sdr, strict=True), marker="o", ms=3, color=line[0].get_color(), label=name)
        real = [(r["epoch"], (r.get("real_sdr") or {}).get("mean")) for r in history]
        real = [(e, v) for e, v in real if v is not None]
        if real:  # the real MUSDB18 clips (never selected on): dotted, same colour
            sdr_axis.plot(
                *zip(*real, strict=True), linestyle=":", color=line[0].get_color(), label=f"{name} real clips"
            )
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    loss_axis.set_yscale("log")
    sdr_axis.set_xlabel("epoch")
    sdr_axis.set_ylabel("SDR, mean over targets (dB): validation, real clips dotted")
    for axis in (loss_axis, sdr_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(True, alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    return _save(figure, path)


def budget_curves(runs: dict[str, list[dict]], best_epochs: dict[str, int | None], path: Path) -> Path:
    """The verdict against the budget: validation SDR (solid) and real-clip SDR (dotted) of every run
    against optimiser steps (left) and CPU hours (right, ``cpu_s`` of training.loop), with the epoch that
    best.pt holds (``best_epochs``, from training.run_folder: the checkpoint a run hands on) marked by a star."""
    figure = Figure(figsize=(12, 4.4), layout="constrained")
    axes = figure.subplots(1, 2)
    for name, history in runs.items():
        scored = [r for r in history if (r.get("valid_sdr") or {}).get("mean") is not None]
        best = next((r for r in scored if r.get("epoch") == best_epochs.get(name)), None)
        color = None
        for axis, key, scale in ((axes[0], "step", 1.0), (axes[1], "cpu_s", 1 / 3600.0)):
            color = _budget_lines(
                axis, name, [r for r in scored if r.get(key) is not None], key, scale, color
            )
            if best is not None and best.get(key) is not None:
                axis.plot([best[key] * scale], [best["valid_sdr"]["mean"]], marker="*", ms=14, color=color,
                          markeredgecolor="black", linestyle="none", label=f"{name} best.pt")  # fmt: skip
    axes[0].set_xlabel("optimiser steps (batch 8 x 2 s)")
    axes[1].set_xlabel("CPU hours of the training process (validation included)")
    for axis in axes:
        axis.set_ylabel("SDR, mean over targets (dB)")
        axis.grid(True, alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8, loc="lower right")
    axes[0].set_title("at equal steps", fontsize=10)
    axes[1].set_title("at equal compute", fontsize=10)
    return _save(figure, path)


def _budget_lines(axis, name: str, points: list[dict], key: str, scale: float, color):
    """A run's validation (solid) and real-clip (dotted) SDR against ``key`` * ``scale``; returns its colour."""
    if not points:
        return color
    x = [r[key] * scale for r in points]
    line = axis.plot(x, [r["valid_sdr"]["mean"] for r in points], color=color, label=f"{name} validation")
    color = line[0].get_color()
    real = [(r[key] * scale, (r.get("real_sdr") or {}).get("mean")) for r in points]
    real = [(a, b) for a, b in real if b is not None]
    if real:
        axis.plot(*zip(*real, strict=True), linestyle=":", color=color, label=f"{name} real clips")
    return color


def ablation_plot(pairs: dict[str, dict[bool, list[dict]]], path: Path) -> Path:
    """Validation SDR per epoch with the curriculum on (solid) and off (dashed), one colour per model."""
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    axis = figure.subplots()
    for index, (label, runs) in enumerate(pairs.items()):
        color = f"C{index}"
        for curriculum, history in sorted(runs.items(), reverse=True):
            points = [(r["epoch"], (r.get("valid_sdr") or {}).get("mean")) for r in history]
            points = [(e, v) for e, v in points if v is not None]
            if points:
                axis.plot(
                    *zip(*points, strict=True), color=color, linestyle="-" if curriculum else "--", marker="o", ms=3,
                    label=f"{label}, curriculum {'on' if curriculum else 'off'}",
                )  # fmt: skip
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel("validation SDR (dB)")
    axis.grid(True, alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    return _save(figure, path)
