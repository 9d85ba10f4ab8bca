"""What ``python -m mss.bench.level`` and ``python -m mss.bench.stereo`` share: play each song under several
*conditions* (a linear change of the mixture and of every reference alike: a gain, a narrower stereo image),
separate, and score as ``mss.evaluate`` scores.

A condition is a name and a function ``audio (..., C, T) -> (..., C, T)`` applied to the mixture ``(C, T)`` and
to the references ``(S, C, T)``; being linear, it keeps the mixture the sum of its references. The scores are
museval SDR (BSS Eval v4, median over 1-s frames per song, at 44.1 kHz). Which sources are scored is decided
once per song, on the song as it is, so a quiet target is scored under every condition or under none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mss.data import SongDataset, open_db
from mss.data.datasets import Song
from mss.data.real_clips import label, lacking_stems, load_real_clips
from mss.errors import DatasetError
from mss.evaluation.bsseval import evaluate_arrays
from mss.evaluation.scoring import RESIDUAL, ScoredSources, dither, reference_reader, scored_sources
from mss.separate import separate

Condition = tuple[str, Callable[[np.ndarray], np.ndarray]]


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


def song_sources(song: Song) -> ScoredSources:
    """Which of ``song``'s sources ``mss.evaluate`` would score (silent targets dropped, the residual added)."""
    return scored_sources(_ArraySong(tuple(song.target_names), song.mix, song.targets))


def score_song(
    song: Song, estimates: dict[str, np.ndarray], sources: ScoredSources | None = None
) -> dict[str, float]:
    """{target: museval SDR (median over 1-s frames)} of one song's estimates, scored as ``mss.evaluate``
    scores them: a target silent throughout gets NaN; a piano (or any target set short of the four stems)
    is scored beside the residual, mixture minus targets; an all-zero estimate becomes the -160 dB dither.
    ``sources``: which sources to score (default: ``song_sources`` of this song)."""
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


def sweep(model, songs: Sequence[Song], conditions: Sequence[Condition], shifts: int = 0) -> pd.DataFrame:
    """Separate every song under every condition; one row per (song, condition, target) with its ``sdr``
    (dB, :func:`score_song`). Songs are 44.1 kHz ``Song`` objects whose ``target_names`` are the model's."""
    rows = []
    for song in songs:
        sources = song_sources(song)
        for name, change in conditions:
            changed = Song(
                song.name,
                np.ascontiguousarray(change(song.mix), dtype=np.float32),
                np.ascontiguousarray(change(song.targets), dtype=np.float32),
                song.sample_rate,
                song.target_names,
            )
            estimates = separate(model, changed.mix, song.sample_rate, shifts=shifts)
            for target, sdr in score_song(changed, estimates, sources).items():
                rows.append({"song": song.name, "condition": name, "target": target, "sdr": sdr})
    return pd.DataFrame(rows, columns=["song", "condition", "target", "sdr"])


def summarise(frame: pd.DataFrame, column: str = "condition") -> pd.DataFrame:
    """Rows: each value of ``column`` in order of appearance (median over songs per target, as the museval
    tables, and their ``average``), then ``spread``: max - min over the rows of each column (NaN where a row
    has no score: a target silent in every song)."""
    targets = list(dict.fromkeys(frame["target"]))  # the model's order
    order = list(dict.fromkeys(frame[column]))
    table = frame.pivot_table(index=column, columns="target", values="sdr", aggfunc="median", dropna=False)
    table = table.reindex(index=order, columns=targets)  # a target never scored stays, as NaN
    table["average"] = table.mean(axis=1)
    table.loc["spread"] = (table.max() - table.min()).where(table.notna().all())
    return table


def load_songs(dataset: str, targets: tuple[str, ...], count: int, seconds: float) -> list[Song]:
    """The first ``count`` songs of ``dataset`` (``real-clips``, ``default`` or a MUSDB18 root's test songs)
    with ``targets``, their first ``seconds`` (44.1 kHz)."""
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
