"""The separation's pieces (issue 29): input readers behind one interface, options, the chunk progress bar."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from torch import nn

from mss.separate import (
    DecodedInput,
    FileInput,
    SeparationOptions,
    SongInput,
    StreamInput,
    open_song,
    separate,
    separate_file,
)


class Doubler(nn.Module):
    """Two sources: the mix and twice the mix."""

    sources = ("one", "two")
    audio_channels = 2
    segment_s = 0.1
    sample_rate = 10000

    def forward(self, mix):
        return (mix[:, None] * mix.new_tensor([1.0, 2.0])[None, :, None, None]).contiguous()  # (B, S, C, T)


def signal(channels: int, length: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((channels, length))).astype(np.float32)


def test_every_reader_is_a_song_input_with_its_own_constructor(tmp_path):
    mix = signal(2, 5000, seed=1)
    sf.write(tmp_path / "song.wav", mix.T, 10000, subtype="FLOAT")
    readers = [
        open_song(tmp_path / "song.wav"),
        DecodedInput(tmp_path / "song.wav"),
        StreamInput(lambda a, b: mix[:, a:b], 5000, 10000, 2, "streamed"),
    ]
    assert isinstance(readers[0], FileInput) and not issubclass(StreamInput, FileInput)
    for reader in readers:
        assert isinstance(reader, SongInput)
        assert (reader.rate, reader.channels, reader.length) == (10000, 2, 5000)
        np.testing.assert_array_equal(reader.read(100, 300), mix[:, 100:300])
    with pytest.raises(TypeError):
        SongInput()  # the interface alone reads nothing


def test_a_file_libsndfile_cannot_read_is_decoded_whole(musdb_sample_root):
    clip = next(Path(musdb_sample_root).rglob("*.stem.mp4"))
    song = open_song(clip)
    assert isinstance(song, DecodedInput) and song.read(0, 10).shape == (song.channels, 10)


def test_a_stream_separates_like_its_file(tmp_path):
    mix = signal(2, 25000, seed=2)
    sf.write(tmp_path / "song.wav", mix.T, 10000, subtype="FLOAT")
    from_file = separate_file(Doubler(), tmp_path / "song.wav", tmp_path / "file", block_s=0.7)
    stream = StreamInput(lambda a, b: mix[:, a:b], 25000, 10000, 2, "song")
    from_stream = separate_file(Doubler(), stream, tmp_path / "stream", block_s=0.7)
    assert from_stream["two"] == tmp_path / "stream" / "song" / "two.wav"  # named after ``what``
    for stem in Doubler.sources:
        np.testing.assert_array_equal(sf.read(from_file[stem])[0], sf.read(from_stream[stem])[0])


def test_progress_bar_gives_the_same_stems(capsys):
    mix = signal(2, 4321, seed=3)
    quiet = separate(Doubler(), mix, 10000, batch_size=3)
    shown = separate(Doubler(), mix, 10000, batch_size=3, progress=True)
    assert all(np.array_equal(quiet[k], shown[k]) for k in quiet)
    assert "separating" in capsys.readouterr().err


def test_options_are_frozen():
    options = SeparationOptions(shifts=2)
    assert (options.batch_size, options.shifts, options.full_band) == (4, 2, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.shifts = 3
