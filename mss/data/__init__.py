"""Data layer: open datasets through musdb, training chunks, evaluation songs, augmentations.

The generator (``mss.data.synth``) is imported lazily by ``ensure_default_dataset`` (mss.data.default_dataset), so everything here works
without it. musdb/stempeg are imported lazily too (they need ffmpeg at import time).
"""

from mss.data.augment import augment, channel_swap, random_gain, sign_flip
from mss.data.datasets import DataConfig, TrainChunks, collate_chunks
from mss.data.default_dataset import default_root, ensure_default_dataset, is_dataset_built
from mss.data.musdb_io import available_targets, find_track, open_db
from mss.data.song_check import SongCheck
from mss.data.songs import Song, SongDataset
from mss.data.tracks import (
    Part,
    TrackInfo,
    TrackReader,
    plan_parts,
    read_part,
    read_parts,
    read_wav,
    song_check,
    track_info,
    track_recipes,
    track_stems,
)
from mss.errors import InvalidSongError

__all__ = [
    "DataConfig",
    "InvalidSongError",
    "Part",
    "Song",
    "SongCheck",
    "SongDataset",
    "TrackInfo",
    "TrackReader",
    "TrainChunks",
    "augment",
    "available_targets",
    "channel_swap",
    "collate_chunks",
    "default_root",
    "ensure_default_dataset",
    "find_track",
    "is_dataset_built",
    "open_db",
    "plan_parts",
    "read_part",
    "read_parts",
    "read_wav",
    "random_gain",
    "sign_flip",
    "song_check",
    "track_info",
    "track_recipes",
    "track_stems",
]
