"""Evaluation songs: whole tracks of a musdb database, deterministic, at any rate and channel count.

``SongDataset(db, targets)[i]`` is a :class:`Song` (``mix (C, T)``, ``targets (S, C, T)``) for validation and
evaluation; ``reference(i)`` the same song as museval scores it (44.1 kHz, its own channels).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from torch.utils.data import Dataset

from mss import MUSDB_SAMPLE_RATE
from mss.audio import resample, to_channels
from mss.data.tracks import TrackInfo, TrackReader, plan_parts, read_part, setup_of, track_info


@dataclass(frozen=True)
class Song:
    """A whole song: ``mix (C, T)`` and ``targets (S, C, T)`` float32 numpy arrays at ``sample_rate``."""

    name: str
    mix: np.ndarray = field(repr=False)
    targets: np.ndarray = field(repr=False)
    sample_rate: int
    target_names: tuple[str, ...] = ()


class SongDataset(Dataset):
    """Whole songs in the database's (sorted) order, for validation and evaluation.

    ``sample_rate=None`` keeps the native 44.1 kHz; ``reference(i)`` always returns the native-rate, native
    channel originals (what museval scores against), whatever the model rate. ``max_seconds > 0`` keeps
    only each song's first ``max_seconds``, and only those samples are read and resampled, so memory
    follows what is scored, not the song's length.
    """

    def __init__(
        self,
        db,
        targets,
        sample_rate: int | None = None,
        channels: int | None = 2,
        max_seconds: float = 0.0,
        reader: TrackReader | None = None,
    ):
        self.targets = (targets,) if isinstance(targets, str) else tuple(targets)
        self.sample_rate = sample_rate
        self.channels = channels
        self.max_seconds = float(max_seconds)
        self.tracks: list[TrackInfo] = [track_info(track) for track in db.tracks]
        self.parts, _ = plan_parts(*setup_of(db), self.targets)
        self._reader = reader or TrackReader()  # wav: offset reads; .stem.mp4: the on-disk decoded cache

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def names(self) -> list[str]:
        return [track.name for track in self.tracks]

    def _song(self, index: int, sample_rate: int | None, channels: int | None) -> Song:
        if not 0 <= index < len(self):
            raise IndexError(index)
        track = self.tracks[index]
        length = self._reader.num_samples(track)
        if self.max_seconds > 0:
            length = min(length, int(round(self.max_seconds * track.rate)))
        mix = self._reader.read(track, "mixture", 0, length)  # (C, T)
        stems = np.stack(
            [read_part(part, functools.partial(self._reader.read, track), 0, length) for part in self.parts]
        )  # (S, C, T)
        rate = track.rate
        # One resampling, straight to the rate asked for (scores are defined at 44.1 kHz: the default).
        wanted = sample_rate if sample_rate is not None else MUSDB_SAMPLE_RATE
        if wanted != rate:
            mix, stems, rate = resample(mix, rate, wanted), resample(stems, rate, wanted), wanted
        if channels is not None:
            mix = to_channels(mix, channels)
            stems = np.stack([to_channels(stem, channels) for stem in stems])
        return Song(track.name, mix.astype(np.float32), stems.astype(np.float32), int(rate), self.targets)

    def __getitem__(self, index: int) -> Song:
        return self._song(index, self.sample_rate, self.channels)

    def reference(self, index: int) -> Song:
        """The song at 44.1 kHz with its original channels, for scoring."""
        return self._song(index, None, None)
