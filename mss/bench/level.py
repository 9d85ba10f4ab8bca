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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mss.checkpoint import DEFAULT_CHECKPOINTS
from mss.data import SongDataset, open_db
from mss.data.datasets import Song
from mss.data.real_clips import label, lacking_stems, load_real_clips
from mss.errors import AudioError, CheckpointError, DatasetError
from mss.evaluation.bsseval import evaluate_arrays
from mss.evaluation.methods import load_checkpoint_model
from mss.evaluation.scoring import RESIDUAL, ScoredSources, dither, reference_reader, scored_sources
from mss.evaluation.tables import format_markdown
from mss.separate import separate

DEFAULT_GAINS_DB = (-18.0, -12.0, -6.0, 0.0, 6.0)
MIN_GAIN_DB, MAX_GAIN_DB = -60.0, 20.0


@dataclass(frozen=True)
class _ArraySong:
    """A song held in memory, read as ``mss.evaluation.scoring`` reads a ``SongAudio``: the scored sources
    (silent targets dropped, the residual added when the targets do not cover the mixture) are the pipeline's."""

    targets: tuple[str, ...]
    mix: np.ndarray  # (C, T)
    refs: np.ndarray  # (S, C, T)

    @property
    def length(self) -> int:
        return self.mix.shape[-1]

    def mixture(self, start: int, stop: int) -> np.ndarray:
        return self.mix[:, start:stop]

    def references(self, start: int, stop: int) -> np.ndarray:
        return self.refs[:, :, start:stop]


def score_song(
    song: Song, estimates: dict[str, np.ndarray], sources: ScoredSources | None = None
) -> dict[str, float]:
    """{target: museval SDR (median over 1-s frames)} of one song's estimates, scored as ``mss.evaluate``
    scores them: a target silent throughout gets NaN; a piano (or any target set short of the four stems)
    is scored beside the residual, mixture minus targets; an all-zero estimate becomes the -160 dB dither.
    ``sources``: which sources to score (default: ``scored_sources`` of this song)."""
    audio = _ArraySong(tuple(song.target_names), song.mix, song.targets)
    sources = scored_sources(audio) if sources is None else sources
    sdr = dict.fromkeys(song.target_names, float("nan"))
    if not sources.names:
        return sdr
    references = reference_reader(audio, sources)(0, audio.length)  # (S', C, T)
    rows = [estimates[song.target_names[row]] for row in sources.rows]
    if sources.residual:
        rows.append(song.mix - sum(estimates.values()))
    stacked = np.stack(rows).astype(np.float64)  # (S', C, T)
    for index in np.flatnonzero(~stacked.any(axis=(1, 2))):
        stacked[index] = dither(int(index), 0, audio.length, stacked.shape[1])
    scores = evaluate_arrays(references, stacked)
    for name, frames in zip(sources.names, scores.sdr, strict=True):
        if name != RESIDUAL:
            sdr[name] = float(np.nanmedian(frames)) if np.isfinite(frames).any() else float("nan")
    return sdr


def level_sweep(model, songs: Sequence[Song], gains_db: Sequence[float], shifts: int = 0) -> pd.DataFrame:
    """Separate every song at every gain; one row per (song, gain_db, target) with its ``sdr`` (dB,
    :func:`score_song`). Songs are 44.1 kHz ``Song`` objects whose ``target_names`` are the model's sources.
    Which sources are scored is decided once per song, at its own level, as ``mss.evaluate`` decides: a quiet
    target is scored at every gain or at none (silence is an absolute threshold)."""
    rows = []
    for song in songs:
        sources = scored_sources(_ArraySong(tuple(song.target_names), song.mix, song.targets))
        for gain_db in gains_db:
            gain = np.float32(10.0 ** (gain_db / 20.0))
            scaled = Song(
                song.name, song.mix * gain, song.targets * gain, song.sample_rate, song.target_names
            )
            estimates = separate(model, scaled.mix, song.sample_rate, shifts=shifts)
            for target, sdr in score_song(scaled, estimates, sources).items():
                rows.append({"song": song.name, "gain_db": float(gain_db), "target": target, "sdr": sdr})
    return pd.DataFrame(rows, columns=["song", "gain_db", "target", "sdr"])


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows: each gain (median over songs per target, as the museval tables, and their ``average``), then
    ``spread``: max - min over the gains of each column (NaN where a gain has no score: a target silent in
    every song)."""
    targets = list(dict.fromkeys(frame["target"]))  # the model's order
    table = frame.pivot_table(index="gain_db", columns="target", values="sdr", aggfunc="median", dropna=False)
    table = table.reindex(columns=targets)  # gains sorted; a target never scored stays, as NaN
    table["average"] = table.mean(axis=1)
    table.index = [f"{g:+g} dB" for g in table.index]
    table.loc["spread"] = (table.max() - table.min()).where(table.notna().all())
    return table


def _songs(dataset: str, targets: tuple[str, ...], count: int, seconds: float) -> list[Song]:
    """The first ``count`` songs of ``dataset`` with ``targets``, their first ``seconds`` (44.1 kHz)."""
    if dataset == "real-clips":
        missing = lacking_stems(targets)
        if missing:
            raise DatasetError(
                f"MUSDB18 stem files have no {', '.join(missing)} stem: use --dataset default or ROOT"
            )
        songs = load_real_clips(targets, 44100)
        if not songs:
            raise DatasetError(
                "no real MUSDB18 clip at hand (set MSS_REAL_CLIPS): use --dataset default or ROOT"
            )
        end = int(seconds * 44100)
        return [Song(label(s.name), s.mix[..., :end], s.targets[..., :end], s.sample_rate, s.target_names)
                for s in songs[:count]]  # fmt: skip
    root = None if dataset == "default" else dataset
    songs = SongDataset(open_db(root, subset="test"), targets, sample_rate=None, max_seconds=seconds)
    if len(songs) == 0:
        raise DatasetError(f"{dataset}: no test songs")
    return [songs[i] for i in range(min(count, len(songs)))]


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
            songs = _songs(args.dataset, tuple(model.sources), args.songs, args.seconds)
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
