"""The realism gauge's figure: per stem, octave spectra of every set, and the scalar statistics side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mss import SOURCES
from mss.files import atomic_path

from .stats import OCTAVE_CENTRES_HZ, SCALARS

LABELS = {
    "high_share_db": "share > 11 kHz (dB)",
    "flatness_db": "flatness (dB)",
    "crest_db": "crest factor (dB)",
    "lra_lu": "loudness range (LU)",
    "correlation": "L/R correlation",
    "width_db": "side/mid (dB)",
    "onset_rate": "onsets per s",
}


def save_figure(summaries: dict[str, dict[str, dict]], path: Path) -> None:
    """Row per stem: its octave spectra (left), then one small bar chart per scalar statistic (a statistic no
    set has, such as the share above 11 kHz at 22.05 kHz, is left out)."""
    sets = list(summaries)
    colours = {name: f"C{k}" for k, name in enumerate(sets)}
    scalars = [
        statistic
        for statistic in SCALARS
        if any(
            np.isfinite(summary.get(statistic, np.nan))
            for per in summaries.values()
            for summary in per.values()
        )
    ]
    figure = Figure(figsize=(3.2 + 1.6 * len(scalars), 2.3 * len(SOURCES)), layout="constrained")
    grid = figure.add_gridspec(len(SOURCES), 2 + len(scalars))
    for row, stem in enumerate(SOURCES):
        spectrum = figure.add_subplot(grid[row, :2])
        for name in sets:
            summary = summaries[name].get(stem)
            if summary:
                label = f"{name} ({int(summary['songs'])} song{'s' if summary['songs'] != 1 else ''})"
                spectrum.semilogx(
                    OCTAVE_CENTRES_HZ, summary["bands_db"], "o-", color=colours[name], label=label, ms=3
                )
        spectrum.set_ylabel(f"{stem}\ndB re total")
        spectrum.set_ylim(-60, 0)
        spectrum.grid(alpha=0.3)
        if row == 0:
            spectrum.legend(fontsize=6, loc="lower center")
            spectrum.set_title("octave spectrum", fontsize=9)
        if row == len(SOURCES) - 1:
            spectrum.set_xlabel("Hz")
        for column, statistic in enumerate(scalars):
            axis = figure.add_subplot(grid[row, 2 + column])
            values = [summaries[name].get(stem, {}).get(statistic, np.nan) for name in sets]
            axis.bar(range(len(sets)), values, color=[colours[name] for name in sets])
            axis.set_xticks(range(len(sets)), sets, fontsize=6, rotation=45)
            axis.tick_params(axis="y", labelsize=7)
            if row == 0:
                axis.set_title(LABELS[statistic], fontsize=8)
    figure.suptitle(
        "Realism gauge: medians over songs of each stem's statistics (python -m mss.data.realism)",
        fontsize=10,
    )
    with atomic_path(path, ".png.tmp") as tmp:
        figure.savefig(tmp, dpi=110, format="png")
