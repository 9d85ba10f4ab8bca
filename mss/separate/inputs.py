"""The input audio of a separation, read by blocks of samples: a wav/flac file read in place, a file
libsndfile cannot read (mp3, mp4) decoded whole, or a block reader the caller already has."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from mss.audio import check_audio, check_finite, load_audio
from mss.errors import AudioError


class SongInput(ABC):
    """A song to separate, read by blocks. ``path`` names it in messages and gives the default output
    folder name; ``rate`` (Hz), ``channels`` and ``length`` (samples) describe its audio."""

    path: Path
    rate: int
    channels: int
    length: int

    @abstractmethod
    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) as (C, stop - start) float32."""

    def check(self, block: int) -> None:
        """check_audio over the whole song, one block at a time."""
        what = f"{self.path}"
        if self.length == 0:
            raise AudioError(f"{what} is empty (0 samples)")
        peak_ok = False
        for start in range(0, self.length, block):
            piece = self.read(start, min(self.length, start + block))
            check_finite(piece, what, start, self.rate)
            try:
                check_audio(piece, what)
                peak_ok = True
            except AudioError:
                pass
        if not peak_ok:
            check_audio(np.zeros((1, 1), np.float32), what)  # raises the standard "is silent" message


class FileInput(SongInput):
    """A file libsndfile reads (wav, flac), read block by block from disk."""

    def __init__(self, path: Path):
        self.path = path
        info = sf.info(str(path))
        self.rate, self.channels, self.length = int(info.samplerate), int(info.channels), int(info.frames)

    def read(self, start: int, stop: int) -> np.ndarray:
        with sf.SoundFile(str(self.path)) as handle:
            handle.seek(start)
            return handle.read(stop - start, dtype="float32", always_2d=True).T  # (C, n)


class DecodedInput(SongInput):
    """A file libsndfile cannot read (mp3, mp4, .stem.mp4), decoded whole into memory (``load_audio``)."""

    def __init__(self, path: Path):
        self.path = path
        self.array, self.rate = load_audio(path)  # (C, T)
        self.channels, self.length = self.array.shape

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.array[:, start:stop]


class StreamInput(SongInput):
    """The input audio given as a block reader instead of a file: ``read(start, stop) -> (C, stop - start)``.

    Lets callers that already stream a song (the evaluation's decoded-audio cache) separate it with
    ``separate_file`` without writing it out first; ``what`` names it in messages and is the default
    output folder name.
    """

    def __init__(
        self, read: Callable[[int, int], np.ndarray], length: int, rate: int, channels: int, what: str
    ):
        self._read = read
        self.path = Path(what)
        self.length, self.rate, self.channels = int(length), int(rate), int(channels)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._read(start, stop)


def open_song(path: Path) -> SongInput:
    """The song at ``path``: read in place where libsndfile can, else decoded whole (ffmpeg)."""
    try:
        return FileInput(path)
    except (sf.LibsndfileError, RuntimeError, TypeError):  # mp3/mp4/...: decode it all with ffmpeg
        return DecodedInput(path)
