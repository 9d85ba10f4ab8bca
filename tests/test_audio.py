"""mss.audio and mss.dsp: I/O round trips, resampling, channel handling, clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from mss import audio, dsp
from mss.errors import AudioError, MissingDependencyError


def test_save_load_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal((2, 4410)) * 0.1).astype(np.float32)
    path = audio.save_audio(tmp_path / "x.wav", signal, 44100)
    loaded, rate = audio.load_audio(path)
    assert rate == 44100
    np.testing.assert_array_equal(loaded, signal)
    assert not list(tmp_path.glob("*.tmp")), "atomic write left a temp file behind"


def test_load_resamples_to_requested_rate(tmp_path):
    t = np.arange(44100) / 44100
    tone = np.stack([np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32) * 0.5
    path = audio.save_audio(tmp_path / "tone.wav", tone, 44100)
    loaded, rate = audio.load_audio(path, sample_rate=22050)
    assert rate == 22050 and loaded.shape == (2, 22050)
    # The tone survives: its spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(loaded[0]))
    assert abs(np.argmax(spectrum) * 22050 / loaded.shape[1] - 440) < 2


def test_load_real_stem_mp4_reads_the_mixture(musdb_sample_root):
    path = next((musdb_sample_root / "train").glob("*.stem.mp4"))
    mix, rate = audio.load_audio(path)
    assert rate == 44100 and mix.shape[0] == 2
    import stempeg

    seconds = stempeg.Info(str(path)).duration(0)  # what ffprobe says of the mixture stream
    assert 5.0 < seconds < 8.0  # the 7-s MUSDB sample, or the 6-s clip that ships with stempeg
    assert abs(mix.shape[1] / rate - seconds) < 0.05
    assert np.abs(mix).max() > 0.01


def test_resample_keeps_type_and_identity():
    x = np.ones((2, 100), dtype=np.float32)
    assert audio.resample(x, 44100, 44100) is x
    y = audio.resample(torch.ones(2, 44100), 44100, 16000)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 16000)


def test_to_channels():
    mono = np.arange(6, dtype=np.float32)[None]
    stereo = audio.to_channels(mono, 2)
    assert stereo.shape == (2, 6) and np.array_equal(stereo[0], stereo[1])
    np.testing.assert_array_equal(audio.to_channels(stereo, 1), mono)
    with pytest.raises(AudioError):
        audio.to_channels(np.zeros((3, 4), dtype=np.float32), 2)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "not a valid"), (b"RIFF\x00\x00garbage", "not a valid")],
)
def test_corrupt_wav_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        audio.load_audio(path)


def test_missing_file_and_non_finite_samples(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        audio.load_audio(tmp_path / "nope.wav")
    path = tmp_path / "nan.wav"
    data = np.zeros((100, 2), dtype=np.float32)
    data[10, 0] = np.nan
    sf.write(path, data, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        audio.load_audio(path)


def test_check_audio():
    with pytest.raises(AudioError, match="empty"):
        audio.check_audio(np.zeros((2, 0)), "mix")
    with pytest.raises(AudioError, match="silent"):
        audio.check_audio(np.zeros((2, 10)), "mix")
    audio.check_audio(np.zeros((2, 10)), "mix", allow_silent=True)
    audio.check_audio(np.full((2, 10), 0.1), "mix")


def test_missing_ffmpeg_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="apt-get install -y ffmpeg"):
        audio.require_ffmpeg()


def test_stft_istft_round_trip():
    x = torch.randn(2, 3, 10000)
    spec = dsp.stft(x, 1024, 256)
    assert spec.shape == (2, 3, 513, 10000 // 256 + 1)
    y = dsp.istft(spec, 1024, 256, length=10000)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("length, segment, hop", [(1, 10, 5), (10, 10, 5), (11, 10, 5), (100, 10, 7)])
def test_chunk_starts_cover_the_signal(length, segment, hop):
    starts = dsp.chunk_starts(length, segment, hop)
    covered = np.zeros(length, dtype=bool)
    for s in starts:
        covered[s : s + segment] = True
    assert covered.all() and starts[0] == 0 and all(s < length for s in starts)


def test_triangle_window_is_positive_and_symmetric():
    for n in (1, 2, 7, 8):
        w = dsp.triangle_window(n)
        assert w.shape == (n,) and (w > 0).all() and torch.allclose(w, w.flip(0))
