"""Dataset presets of the embedded generator: how many songs, how long."""

from __future__ import annotations

from dataclasses import dataclass

from mss.errors import DatasetError

from .formats import SUBTYPES


@dataclass(frozen=True)
class SynthPreset:
    """Size of a generated dataset.

    ``song_s`` is the (min, max) length of a song in seconds; each song draws its own length.
    ``validation_fraction`` of the train songs are listed as ``validation_tracks`` in setup.yaml.
    ``subtype`` is the default sample format of the wav files ("FLOAT" or "PCM_16").
    """

    name: str
    n_train: int
    n_test: int
    song_s: tuple[float, float]
    validation_fraction: float = 0.15
    subtype: str = "FLOAT"

    def __post_init__(self) -> None:
        if self.n_train < 0 or self.n_test < 0 or self.n_train + self.n_test == 0:
            raise DatasetError(
                f"preset {self.name!r}: needs at least one song (n_train={self.n_train}, n_test={self.n_test})"
            )
        low, high = self.song_s
        if not 1.0 <= low <= high:
            raise DatasetError(
                f"preset {self.name!r}: song_s must satisfy 1 <= min <= max, got {self.song_s}"
            )
        if self.subtype not in SUBTYPES:
            raise DatasetError(
                f"preset {self.name!r}: subtype must be one of {SUBTYPES}, got {self.subtype!r}"
            )


DATASET_PRESETS: dict[str, SynthPreset] = {
    # Used by every test of the project (session fixture): keep it to a few seconds of work.
    "tiny": SynthPreset("tiny", n_train=3, n_test=2, song_s=(6.0, 8.0)),
    # What the CPU models train on: 100 train songs (15 of them for validation) and 12 test songs, 16-bit
    # like MUSDB18-HQ (3.4 GiB, measured with du).
    "default": SynthPreset("default", n_train=100, n_test=12, song_s=(27.0, 33.0), subtype="PCM_16"),
    # For GPU training: about 20 GB of float32 WAV.
    "large": SynthPreset("large", n_train=250, n_test=50, song_s=(25.0, 45.0)),
    # Shaped like MUSDB18: 100 train + 50 test full-length songs, 14 of the train songs for validation
    # (musdb's split), 16-bit like MUSDB18-HQ. Songs average 300 s: about 48 GB as 16-bit wav (95 GB
    # as float32), 7 GB as --format stems.
    "musdb": SynthPreset(
        "musdb", n_train=100, n_test=50, song_s=(180.0, 420.0), validation_fraction=0.14, subtype="PCM_16"
    ),
    # Seven songs of the musdb preset's shape (4 train, 1 of them for validation, 3 test): a
    # full-length stand-in for scale benchmarks (memory, decoding, chunked separation of 3-7 min songs).
    "musdb-mini": SynthPreset(
        "musdb-mini", n_train=4, n_test=3, song_s=(180.0, 420.0), validation_fraction=0.14, subtype="PCM_16"
    ),
}


def resolve_preset(preset: str | SynthPreset) -> SynthPreset:
    """A preset by name (or a SynthPreset passed through); DatasetError naming the known presets."""
    if isinstance(preset, SynthPreset):
        return preset
    if preset not in DATASET_PRESETS:
        raise DatasetError(f"unknown synth preset {preset!r}; choose one of: {', '.join(DATASET_PRESETS)}")
    return DATASET_PRESETS[preset]
