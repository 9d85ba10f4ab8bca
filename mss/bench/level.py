"""python -m mss.bench.level: does a model's separation follow its input's level?

A recording can be mastered loud or quiet, and a separator should not care: its estimates of a mixture played
6 dB quieter should be the same estimates, 6 dB quieter. Each song's mixture *and* references are scaled by
every gain of ``--gains`` (dB); the model separates the scaled mixture, and museval SDR (BSS Eval v4, median
over 1-s frames then over songs, at 44.1 kHz, scored as ``mss.evaluate`` scores) is computed against the
scaled references. A level-invariant model scores the same at every gain; the ``spread`` row is the largest
minus the smallest average over the gains.

Songs: ``--dataset real-clips`` (the default: the real MUSDB18 train clips at hand, ``mss.data.real_clips``),
``default`` (the embedded dataset's test songs) or a MUSDB18 root's test songs, the first ``--songs`` songs
and ``--seconds`` seconds of each. Checkpoints: the committed 4-stem ones unless ``--checkpoint`` is given.
Not part of the test suite (a minute per checkpoint); ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mss.bench.sweep import summarise as summarise_conditions
from mss.bench.sweep import sweep, sweep_main
from mss.data.songs import Song

DEFAULT_GAINS_DB = (-18.0, -12.0, -6.0, 0.0, 6.0)
MIN_GAIN_DB, MAX_GAIN_DB = -60.0, 20.0


def level_sweep(
    model, songs: Sequence[Song], gains_db: Sequence[float], shifts: int | None = None
) -> pd.DataFrame:
    """Separate every song at every gain; one row per (song, gain_db, target) with its ``sdr`` (dB,
    ``mss.bench.sweep.score_song``). Songs are 44.1 kHz ``Song`` objects whose ``target_names`` are the model's
    sources. Which sources are scored is decided once per song, at its own level, as ``mss.evaluate`` decides:
    a quiet target is scored at every gain or at none (silence is an absolute threshold)."""
    conditions = [(float(g), lambda audio, g=g: audio * np.float32(10.0 ** (g / 20.0))) for g in gains_db]
    frame = sweep(model, songs, conditions, shifts=shifts)
    return frame.rename(columns={"condition": "gain_db"}).astype({"gain_db": float})


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows: each gain, lowest first (median over songs per target, as the museval tables, and their
    ``average``), then ``spread``: max - min over the gains of each column (NaN where a gain has no score: a
    target silent in every song)."""
    table = summarise_conditions(frame.sort_values("gain_db", kind="stable"), "gain_db")
    table.index = [f"{g:+g} dB" if g != "spread" else g for g in table.index]
    return table


def _gains(text: str) -> list[float]:
    """``--gains`` -> finite gains in dB, each in [-60, +20] (below -60 dB a song nears the silence threshold)."""
    try:
        gains = [float(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise ValueError(f"--gains must be numbers in dB separated by commas, got {text!r}") from None
    if not gains:
        raise ValueError("--gains is empty")
    bad = [g for g in gains if not (np.isfinite(g) and MIN_GAIN_DB <= g <= MAX_GAIN_DB)]
    if bad:
        raise ValueError(f"--gains must lie in [{MIN_GAIN_DB:g}, {MAX_GAIN_DB:g}] dB, got {bad}")
    return gains


def main(argv: Sequence[str] | None = None) -> int:
    return sweep_main(
        argv, "python -m mss.bench.level", __doc__.split("\n\n")[0],
        ("--gains", ",".join(f"{g:g}" for g in DEFAULT_GAINS_DB),
         "dB, comma-separated; write --gains=-12,0 (a leading minus needs the =)"),
        _gains,
        lambda model, songs, gains, args: level_sweep(model, songs, gains, shifts=args.shifts),
        index="input gain", summary=summarise,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
