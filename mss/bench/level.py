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

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mss.bench.sweep import load_songs, sweep
from mss.bench.sweep import summarise as summarise_conditions
from mss.checkpoint import DEFAULT_CHECKPOINTS
from mss.data.datasets import Song
from mss.errors import AudioError, CheckpointError, DatasetError
from mss.evaluation.methods import load_checkpoint_model
from mss.evaluation.tables import format_markdown

DEFAULT_GAINS_DB = (-18.0, -12.0, -6.0, 0.0, 6.0)
MIN_GAIN_DB, MAX_GAIN_DB = -60.0, 20.0


def level_sweep(model, songs: Sequence[Song], gains_db: Sequence[float], shifts: int = 0) -> pd.DataFrame:
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
    parser = argparse.ArgumentParser(prog="python -m mss.bench.level", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", action="append", default=[], help="repeatable; default: the committed 4-stem ones"
    )
    parser.add_argument(
        "--dataset", default="real-clips", help="real-clips (default) | default | a MUSDB18 root"
    )
    parser.add_argument(
        "--gains",
        default=",".join(f"{g:g}" for g in DEFAULT_GAINS_DB),
        help="dB, comma-separated; write --gains=-12,0 (a leading minus needs the =)",
    )
    parser.add_argument("--songs", type=int, default=3, help="at most this many songs")
    parser.add_argument("--seconds", type=float, default=30.0, help="first seconds of each song")
    parser.add_argument("--shifts", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the per-song figures here")
    args = parser.parse_args(argv)
    try:
        gains = _gains(args.gains)
    except ValueError as exc:
        parser.error(str(exc))
    if args.songs < 1 or not args.seconds > 0 or args.shifts < 0:
        parser.error(
            f"--songs must be >= 1, --seconds > 0 and --shifts >= 0 (got {args.songs}, {args.seconds}, {args.shifts})"
        )
    checkpoints = args.checkpoint or [str(p) for p in DEFAULT_CHECKPOINTS.values()]
    records = {}
    for path in checkpoints:
        try:
            model = load_checkpoint_model(path)
            songs = load_songs(args.dataset, tuple(model.sources), args.songs, args.seconds)
        except (CheckpointError, DatasetError, AudioError) as exc:
            parser.exit(2, f"error: {path}: {exc}\n")
        frame = level_sweep(model, songs, gains, shifts=args.shifts)
        print(f"\n{path} (songs: {', '.join(s.name for s in songs)}), museval SDR in dB")
        print(format_markdown(summarise(frame).rename_axis("input gain").reset_index()))
        records[path] = frame.to_dict(orient="records")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
