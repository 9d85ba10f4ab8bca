"""Cheap mixing effects on ``(C, T)`` float32 audio: EQ, compression, constant-power pan, echo, reverb; and
``run_board``, how a pedalboard chain runs on such audio."""

from __future__ import annotations

import numpy as np
import pedalboard as pb
from scipy import fft, signal


def highpass(audio: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    if cutoff_hz <= 0:
        return audio
    sos = signal.butter(2, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, audio, axis=-1).astype(np.float32)


def shelves(
    audio: np.ndarray, low_db: float, high_db: float, sample_rate: int, low_hz=250.0, high_hz=4000.0
) -> np.ndarray:
    """Low and high shelving EQ as a crossover: gains applied to the band below/above each corner."""
    if abs(low_db) < 0.1 and abs(high_db) < 0.1:
        return audio
    # audio + a * low + b * high, in place in float64 (same values as the expression, ~3 fewer
    # float64 copies of the part: the per-part peak of memory at full song length).
    out = signal.sosfilt(signal.butter(2, low_hz, fs=sample_rate, output="sos"), audio, axis=-1)
    out *= 10 ** (low_db / 20) - 1
    out += audio
    high = signal.sosfilt(
        signal.butter(2, high_hz, btype="highpass", fs=sample_rate, output="sos"), audio, axis=-1
    )
    high *= 10 ** (high_db / 20) - 1
    out += high
    del high
    return out.astype(np.float32)


def compress(
    audio: np.ndarray, ratio: float, sample_rate: int, threshold_db: float = -12.0, time_ms: float = 20.0
) -> np.ndarray:
    """Feed-forward RMS compressor (threshold relative to the part's peak RMS), smoothed gain."""
    if ratio <= 1.0:
        return audio
    alpha = np.exp(-1.0 / (time_ms / 1000 * sample_rate))
    # Written in place (one (T,) float64 buffer reused), with the values of the plain expressions.
    level_db = signal.lfilter([1 - alpha], [1, -alpha], np.mean(audio**2, axis=0))  # power, (T,)
    np.maximum(level_db, 1e-12, out=level_db)
    np.log10(level_db, out=level_db)
    level_db *= 10
    threshold = level_db.max() + threshold_db
    gain_db = np.subtract(threshold, level_db, out=level_db)
    gain_db *= 1 - 1 / ratio
    np.minimum(gain_db, 0.0, out=gain_db)
    gain = signal.lfilter([1 - alpha], [1, -alpha], gain_db)
    del level_db, gain_db
    gain /= 20
    np.power(10.0, gain, out=gain)
    # float64 product rounded to float32 chunk by chunk, with no (C, T) float64 temporary.
    return np.multiply(audio, gain[None], out=np.empty_like(audio), casting="same_kind")


def pan(audio: np.ndarray, position: float) -> np.ndarray:
    """Constant-power balance: position -1 (left) .. 1 (right); unity gain at the centre."""
    angle = (position + 1) * np.pi / 4
    gains = np.sqrt(2) * np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)
    return audio * gains[:, None]


def echo(
    audio: np.ndarray, delay_s: float, feedback: float, mix: float, sample_rate: int, taps: int = 4
) -> np.ndarray:
    """Ping-pong echo: delayed copies alternate between the channels and decay by ``feedback``."""
    delay = int(delay_s * sample_rate)
    out = audio.copy()
    mono = audio.mean(axis=0)
    for k in range(1, taps + 1):
        if k * delay >= audio.shape[-1]:
            break
        channel = k % 2
        out[channel, k * delay :] += mix * feedback ** (k - 1) * mono[: -k * delay]
    return out


def room_impulse(rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A stereo room impulse response ``(2, L)``: sparse early reflections and a decaying, darkening noise tail."""
    length = int(min(rt60_s, 2.0) * sample_rate)
    t = np.arange(length) / sample_rate
    decay = np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    noise = rng.standard_normal((2, length)) * decay
    # The tail loses highs over time: blend a low-passed copy in progressively.
    dark = signal.sosfilt(signal.butter(1, 2500, fs=sample_rate, output="sos"), noise, axis=-1)
    blend = np.minimum(1.0, t / (0.5 * rt60_s))
    tail = (1 - blend) * noise + blend * dark
    predelay = int(0.015 * sample_rate)
    ir = np.zeros((2, length + predelay))
    ir[:, predelay:] = tail
    for _ in range(8):
        tap = predelay + int(rng.uniform(0.002, 0.04) * sample_rate)
        ir[int(rng.integers(2)), tap] += rng.uniform(0.3, 0.8)
    ir /= np.sqrt(np.sum(ir**2) / 2)  # unit energy per channel
    return ir.astype(np.float32)


def reverb(sends: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """Wet signals of mono reverb sends ``(K, T)`` through a stereo ``impulse (2, L)`` -> ``(K, 2, T)``.

    One FFT of the impulse serves every send (single precision: plenty for a reverb tail).
    """
    length = sends.shape[-1]
    n_fft = fft.next_fast_len(length + impulse.shape[-1] - 1, real=True)
    spectrum = fft.rfft(impulse.astype(np.float32), n_fft, axis=-1)  # (2, F)
    sends_spectrum = fft.rfft(sends.astype(np.float32), n_fft, axis=-1)  # (K, F)
    wet = fft.irfft(sends_spectrum[:, None, :] * spectrum[None], n_fft, axis=-1)  # (K, 2, n_fft)
    return wet[..., :length].astype(np.float32)


def run_board(board: pb.Pedalboard, audio: np.ndarray, rate: int) -> np.ndarray:
    """``board`` on ``audio (C, T)`` at ``rate`` -> (C, T) float32."""
    return np.asarray(board(np.ascontiguousarray(audio, dtype=np.float32), float(rate)), dtype=np.float32)
