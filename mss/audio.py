"""Audio I/O and channel/rate handling. Arrays are float32 ``(C, T)``, channels first."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as taf

from mss.errors import AudioError, require_program
from mss.files import atomic_path

#: Peak level (dBFS) below which a signal counts as silent.
SILENCE_DB: float = -80.0


def require_ffmpeg() -> str:
    """Path of ffmpeg, or a MissingDependencyError that says how to install it."""
    return require_program(
        "ffmpeg",
        "ffmpeg is not installed, but it is needed to read MUSDB18 .stem.mp4 files and mp3/mp4 audio. "
        "Install it with: sudo apt-get install -y ffmpeg   (or run `make test`/`make demo` as root)",
    )


def read_stems(path: str | os.PathLike, stem_id: int | None = None) -> tuple[np.ndarray, int]:
    """Streams of a file decoded by ffmpeg (through stempeg), float32, and the rate.

    The one stempeg reader of the project: ``stem_id`` None gives every stream ``(streams, C, T)`` (a
    ``.stem.mp4``: mixture, then the stems), an int one stream ``(C, T)`` (0 for mp3/mp4 audio). AudioError
    when ffmpeg is missing or rejects the file.
    """
    require_ffmpeg()
    import stempeg  # imported lazily: it probes ffmpeg at import time

    try:
        audio, rate = stempeg.read_stems(
            str(path), stem_id=stem_id, dtype=np.float32, always_3d=stem_id is None
        )
    except Exception as exc:  # stempeg raises bare exceptions for anything ffmpeg rejects
        what = "" if stem_id is None else f"stream {stem_id} of "
        raise AudioError(f"cannot decode {what}{path} with ffmpeg: {exc}") from exc
    audio = np.asarray(audio, dtype=np.float32)  # (streams, T, C) or (T, C)
    if stem_id is not None and audio.ndim == 1:
        audio = audio[:, None]
    return np.ascontiguousarray(np.swapaxes(audio, -1, -2)), int(rate)


def load_audio(
    path: str | os.PathLike, sample_rate: int | None = None, mono: bool = False
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(C, T)``.

    wav/flac/ogg (and mp3 where libsndfile supports it) are read with soundfile, anything else
    (mp4/m4a/stems) through ffmpeg. When ``sample_rate`` is given the audio is resampled to it.
    Raises AudioError for a missing, unreadable or empty file, or one with non-finite samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
        audio = data.T.copy()  # (C, T)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        if path.suffix.lower() in {".wav", ".flac", ".ogg", ".aiff", ".aif"}:
            raise AudioError(
                f"cannot read {path}: not a valid {path.suffix} file (corrupt or truncated?)"
            ) from None
        audio, rate = read_stems(path, 0)
    if audio.shape[-1] == 0:
        raise AudioError(f"{path} contains no samples")
    check_finite(audio, str(path), 0, rate)
    if mono:
        audio = to_channels(audio, 1)
    if sample_rate is not None and sample_rate != rate:
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
    return audio, int(rate)


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> Path:
    """Write ``audio (C, T)`` atomically (temp file in the same folder, then os.replace)."""
    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise AudioError(f"expected audio of shape (C, T), got {audio.shape}")
    with atomic_path(path, ".wav.tmp") as tmp:
        sf.write(tmp, audio.T, sample_rate, subtype=subtype, format="WAV")
    return path


def resample(audio, from_rate: int, to_rate: int):
    """Resample ``(..., T)`` audio (numpy or torch; the type is kept) with torchaudio's sinc resampler."""
    if int(from_rate) == int(to_rate):
        return audio
    if isinstance(audio, torch.Tensor):
        return taf.resample(audio, int(from_rate), int(to_rate))
    tensor = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return taf.resample(tensor, int(from_rate), int(to_rate)).numpy()


def to_channels(audio, channels: int):
    """Adapt ``(C, T)`` audio to ``channels``: mono is duplicated, more channels are averaged to mono."""
    current = audio.shape[0]
    if current == channels:
        return audio
    if channels == 1:
        return audio.mean(0, keepdims=True) if isinstance(audio, np.ndarray) else audio.mean(0, keepdim=True)
    if current == 1:
        reps = (channels, 1)
        return np.tile(audio, reps) if isinstance(audio, np.ndarray) else audio.repeat(*reps)
    raise AudioError(f"cannot convert {current}-channel audio to {channels} channels")


def peak_db(audio) -> float:
    """Peak level in dBFS (-inf for digital silence)."""
    peak = float(np.max(np.abs(np.asarray(audio)))) if np.asarray(audio).size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def check_finite(audio, what: str, start: int = 0, rate: int | None = None) -> None:
    """Raise AudioError naming ``what`` when ``audio (..., T)`` holds NaN or infinite samples, with the time
    of the first one when ``rate`` is given (``start``: the sample index of ``audio[..., 0]``)."""
    array = np.asarray(audio)
    finite = np.isfinite(array)
    if finite.all():
        return
    when = ""
    if rate:
        first = start + int(np.flatnonzero(~finite.reshape(-1, array.shape[-1]).all(axis=0))[0])
        when = f" (first at {first / rate:.3f} s)"
    raise AudioError(f"{what}: NaN or infinite samples{when}")


def check_audio(audio, what: str, allow_silent: bool = False) -> None:
    """Raise AudioError when ``audio`` is empty, non-finite or (unless allowed) silent."""
    array = np.asarray(audio)
    if array.size == 0 or array.shape[-1] == 0:
        raise AudioError(f"{what} is empty (0 samples)")
    check_finite(array, what)
    if not allow_silent and peak_db(array) < SILENCE_DB:
        raise AudioError(f"{what} is silent (peak below {SILENCE_DB:.0f} dBFS); nothing to separate")
