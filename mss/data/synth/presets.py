"""Dataset presets of the embedded generator: how many songs, how long."""

from __future__ import annotations

from dataclasses import dataclass

from mss.errors import DatasetError


@dataclass(frozen=True)
class SynthPreset:
    """Size of a generated dataset.

    ``song_s`` is the (min, max) length of a song in seconds; each song draws its own length.
    ``validation_fraction`` of the train songs are listed as ``validation_tracks`` in setup.yaml.
    """

    name: str
    n_train: int
    n_test: int
    song_s: tuple[float, float]
    validation_fraction: float = 0.15

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


PRESETS: dict[str, SynthPreset] = {
    # Used by every test of the project (session fixture): keep it to a few seconds of work.
    "tiny": SynthPreset("tiny", n_train=3, n_test=2, song_s=(6.0, 8.0)),
    # What the CPU models train on.
    "default": SynthPreset("default", n_train=60, n_test=12, song_s=(27.0, 33.0)),
    # For GPU training: about 20 GB of float32 WAV.
    "large": SynthPreset("large", n_train=250, n_test=50, song_s=(25.0, 45.0)),
}


def resolve_preset(preset: str | SynthPreset) -> SynthPreset:
    """A preset by name (or a SynthPreset passed through); DatasetError naming the known presets."""
    if isinstance(preset, SynthPreset):
        return preset
    if preset not in PRESETS:
        raise DatasetError(f"unknown synth preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[preset]
