"""What makes a stem sound recorded, as numbers: one song's stem ``(C, T)`` -> a handful of statistics.

Each statistic is computed on the stem's *active* audio (the 100-ms frames within ``ACTIVE_RANGE_DB``
of its loudest frame and above ``FLOOR_DBFS``), so a part that rests half the song is described by what
it plays, not by its silences:

- ``bands_db``: long-term average spectrum in octave bands (centres ``OCTAVE_CENTRES_HZ``), in dB relative
  to the stem's total power: the tonal balance, independent of level.
- ``high_share_db``: share of the energy above 11 kHz, in dB (espeak-ng renders at 22.05 kHz, so a voice
  rendered by it alone has nothing there; recorded vocals have breath and sibilance).
- ``flatness``: median spectral flatness of 2048-point frames (geometric over arithmetic mean of the power
  spectrum; 0 for a pure tone, about 0.56 for white noise), in dB, over ``FLATNESS_BAND_HZ`` only: MUSDB18's
  AAC stems are empty above ~16 kHz, and empty bins would make real stems look tonal.
- ``crest_db``: median over 1-s windows of the mono sum's peak over RMS: how much the stem was compressed.
- ``lra_lu``: EBU Tech 3342 loudness range of the active audio (pyloudnorm), in LU: dynamics over seconds.
- ``correlation``: Pearson correlation of left and right (1 for mono, 0 for unrelated channels or when one
  channel is silent).
- ``width_db``: side over mid energy, in dB (``DB_FLOOR`` for mono, ``-DB_FLOOR`` for pure side): how wide the
  stem is panned and spread. (``compare`` clamps it at ``WIDTH_FLOOR_DB``: below that it is inaudible.)
- ``onset_rate``: onsets per active second (librosa's onset detector on the mono sum).

The share above 11 kHz and the 16-kHz octave of real MUSDB18 stems stop at the AAC coder's ~16 kHz cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import pyloudnorm
from scipy import signal

#: Octave band centres (ISO 266), 31.5 Hz to 16 kHz.
OCTAVE_CENTRES_HZ: tuple[float, ...] = (31.5, 63, 125, 250, 500, 1000, 2000, 4000, 8000, 16000)
HIGH_BAND_HZ = 11025.0  # above espeak-ng's Nyquist: what a 22.05-kHz render cannot have
FLATNESS_BAND_HZ = (50.0, 15000.0)  # below MUSDB18's AAC cut-off
ACTIVE_RANGE_DB = 40.0
FLOOR_DBFS = -70.0
FRAME_S = 0.1
MIN_ACTIVE_S = 1.0  # less active audio than this describes nothing
DB_FLOOR = -100.0  # shares and ratios of silence are clamped here instead of -inf
#: The scalar statistics, in the order of tables.
SCALARS: tuple[str, ...] = (
    "high_share_db",
    "flatness_db",
    "crest_db",
    "lra_lu",
    "correlation",
    "width_db",
    "onset_rate",
)


@dataclass(frozen=True)
class StemStats:
    """The statistics of one stem of one song (see the module docstring for their meaning)."""

    bands_db: tuple[float, ...]  # one per OCTAVE_CENTRES_HZ
    high_share_db: float
    flatness_db: float
    crest_db: float
    lra_lu: float  # NaN when the active audio is too short for 3-s blocks
    correlation: float
    width_db: float
    onset_rate: float
    active_s: float


def _db(ratio: float) -> float:
    return max(DB_FLOOR, 10.0 * float(np.log10(ratio))) if ratio > 0 else DB_FLOOR


def active_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The frames of ``audio (C, T)`` where it plays, joined -> ``(C, T')`` (T' may be 0)."""
    size = int(FRAME_S * sample_rate)
    n = audio.shape[-1] // size
    if n == 0:
        return audio[:, :0]
    frames = audio[:, : n * size].reshape(audio.shape[0], n, size)  # (C, N, size)
    level = 10 * np.log10(np.maximum(np.mean(frames.astype(np.float64) ** 2, axis=(0, 2)), 1e-20))  # (N,)
    keep = (level > level.max() - ACTIVE_RANGE_DB) & (level > FLOOR_DBFS)
    return frames[:, keep].reshape(audio.shape[0], -1)


def octave_bands_db(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Welch power spectrum of ``mono (T,)`` summed in octave bands, dB relative to the total power -> (10,)."""
    freqs, power = signal.welch(mono, sample_rate, nperseg=8192)
    total = power[freqs >= 20].sum()
    bands = []
    for centre in OCTAVE_CENTRES_HZ:
        inside = (freqs >= centre / np.sqrt(2)) & (freqs < centre * np.sqrt(2))
        bands.append(_db(power[inside].sum() / total) if total > 0 else DB_FLOOR)
    return np.array(bands)


def band_share_db(mono: np.ndarray, sample_rate: int, low_hz: float, high_hz: float = np.inf) -> float:
    """Share of the power of ``mono (T,)`` in the band (``low_hz``, ``high_hz``], in dB (DC left out)."""
    spectrum = np.abs(np.fft.rfft(mono.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(mono.shape[-1], 1.0 / sample_rate)
    total = spectrum[1:].sum()
    inside = (freqs > low_hz) & (freqs <= high_hz)
    return _db(spectrum[inside].sum() / total) if total > 0 else DB_FLOOR


def high_share_db(mono: np.ndarray, sample_rate: int, cutoff_hz: float = HIGH_BAND_HZ) -> float:
    """Share of the power of ``mono (T,)`` above ``cutoff_hz``, in dB."""
    return band_share_db(mono, sample_rate, cutoff_hz)


def flatness_db(mono: np.ndarray, sample_rate: int) -> float:
    """Median spectral flatness of 2048-sample frames of ``mono (T,)`` over ``FLATNESS_BAND_HZ``, in dB."""
    power = np.abs(librosa.stft(mono.astype(np.float32), n_fft=2048, hop_length=1024)) ** 2  # (F, N)
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=2048)
    band = power[(freqs >= FLATNESS_BAND_HZ[0]) & (freqs <= FLATNESS_BAND_HZ[1])]
    flatness = librosa.feature.spectral_flatness(S=band, power=1.0)  # S is already a power spectrum
    return _db(float(np.median(flatness)))


def crest_db(mono: np.ndarray, sample_rate: int) -> float:
    """Median over 1-s windows of ``mono (T,)`` of 20 log10(peak / RMS)."""
    size = sample_rate
    n = max(1, mono.shape[-1] // size)
    values = []
    for k in range(n):
        window = mono[k * size : (k + 1) * size].astype(np.float64)
        rms = np.sqrt(np.mean(window**2))
        if rms > 0:
            values.append(20 * np.log10(np.abs(window).max() / rms))
    return float(np.median(values)) if values else 0.0


def loudness_range_lu(audio: np.ndarray, sample_rate: int) -> float:
    """EBU Tech 3342 loudness range of ``audio (C, T)`` (pyloudnorm); NaN under 3 s."""
    if audio.shape[-1] < 3 * sample_rate:
        return float("nan")
    meter = pyloudnorm.Meter(sample_rate)
    return float(meter.loudness_range(audio.T.astype(np.float64)))


def stereo(audio: np.ndarray) -> tuple[float, float]:
    """(Pearson correlation of left and right, side/mid energy in dB) of ``audio (C, T)``; one channel gives
    (1, DB_FLOOR); one silent channel of two gives correlation 0 (hard-panned, not mono)."""
    if audio.shape[0] == 1:
        return 1.0, DB_FLOOR
    left, right = audio[0].astype(np.float64), audio[1].astype(np.float64)
    mid, side = (left + right) / 2, (left - right) / 2
    mid_energy, side_energy = np.dot(mid, mid), np.dot(side, side)
    width = _db(side_energy / mid_energy) if mid_energy > 0 else -DB_FLOOR if side_energy > 0 else DB_FLOOR
    left, right = left - left.mean(), right - right.mean()
    energy_l, energy_r = np.dot(left, left), np.dot(right, right)
    if energy_l == 0 and energy_r == 0:
        return 1.0, width
    correlation = np.dot(left, right) / np.sqrt(energy_l * energy_r) if energy_l * energy_r > 0 else 0.0
    return float(correlation), width


def onset_rate(mono: np.ndarray, sample_rate: int) -> float:
    """Onsets per second of ``mono (T,)`` (librosa's spectral-flux detector at 22.05 kHz)."""
    y = (
        librosa.resample(mono.astype(np.float32), orig_sr=sample_rate, target_sr=22050)
        if sample_rate != 22050
        else mono
    )
    onsets = librosa.onset.onset_detect(y=y, sr=22050, units="time")
    return len(onsets) / (len(y) / 22050)


def stem_statistics(audio: np.ndarray, sample_rate: int) -> StemStats | None:
    """The statistics of one stem ``audio (C, T)`` (C = 1 or 2) at ``sample_rate``; None when it plays
    less than MIN_ACTIVE_S (an absent stem of that song)."""
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise ValueError(f"expected a (C, T) stem with 1 or 2 channels, got shape {audio.shape}")
    active = active_audio(audio, sample_rate)
    active_s = active.shape[-1] / sample_rate
    if active_s < MIN_ACTIVE_S:
        return None
    mono = active.mean(axis=0)
    correlation, width = stereo(active)
    return StemStats(
        bands_db=tuple(float(b) for b in octave_bands_db(mono, sample_rate)),
        high_share_db=high_share_db(mono, sample_rate),
        flatness_db=flatness_db(mono, sample_rate),
        crest_db=crest_db(mono, sample_rate),
        lra_lu=loudness_range_lu(active, sample_rate),
        correlation=correlation,
        width_db=width,
        onset_rate=onset_rate(mono, sample_rate),
        active_s=active_s,
    )
