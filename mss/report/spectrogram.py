"""Log-frequency dB spectrogram figures (matplotlib), shared by the app and reports. No UI here.

Every panel of one figure uses the same colour scale (``vmax`` = loudest bin over all panels,
``vmin`` = ``vmax - dynamic_range_db``) and the same time axis, so a mixture, a reference, the
estimates and their errors can be compared by eye.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure  # the object API: no pyplot registry or backend switch, thread-safe

from mss.dsp import stft
from mss.errors import AudioError

#: Lowest frequency drawn on the log axis (Hz); the DC bin cannot sit on a log scale.
MIN_FREQUENCY_HZ = 30.0


@dataclass(frozen=True)
class SpectrogramConfig:
    """STFT and display settings of a spectrogram figure."""

    n_fft: int = 2048
    hop_length: int = 512
    dynamic_range_db: float = 80.0
    colormap: str = "magma"
    panel_height_in: float = 1.6
    width_in: float = 10.0


def spectrogram_db(audio: np.ndarray, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """audio (C, T) or (T,) -> magnitude in dB (F, N) of the channel average (20 log10 |X|)."""
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=0)  # (T,)
    if wave.ndim != 1 or wave.size == 0:
        raise AudioError(f"spectrogram needs audio shaped (C, T) or (T,), got {np.shape(audio)}")
    if not np.all(np.isfinite(wave)):
        raise AudioError("spectrogram input contains NaN or inf samples")
    magnitude = stft(torch.from_numpy(wave), n_fft, hop_length).abs().numpy()  # (F, N)
    return 20.0 * np.log10(np.maximum(magnitude, 1e-10))


def crop(audio: np.ndarray, sample_rate: int, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
    """Samples of ``audio`` (..., T) between start_s and end_s (clamped to the signal)."""
    length = audio.shape[-1]
    start = min(max(int(round(start_s * sample_rate)), 0), length)
    end = length if end_s is None else min(max(int(round(end_s * sample_rate)), start), length)
    if end <= start:
        raise AudioError(f"empty time range {start_s:.2f}-{end_s} s (signal is {length / sample_rate:.2f} s)")
    return audio[..., start:end]


def spectrogram_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    sample_rate: int,
    start_s: float = 0.0,
    end_s: float | None = None,
    config: SpectrogramConfig | None = None,
) -> Figure:
    """One row per (title, audio (C, T)) panel, log-frequency, dB, one shared colour scale and time axis.

    ``start_s``/``end_s`` zoom into a time range; the time axis shows absolute song time.
    """
    config = config or SpectrogramConfig()
    if not panels:
        raise AudioError("spectrogram_figure needs at least one panel")
    spectra = [
        spectrogram_db(crop(audio, sample_rate, start_s, end_s), config.n_fft, config.hop_length)
        for _, audio in panels
    ]
    vmax = max(float(s.max()) for s in spectra)
    vmin = vmax - config.dynamic_range_db
    frequencies = np.fft.rfftfreq(config.n_fft, 1.0 / sample_rate)  # (F,)
    keep = frequencies >= MIN_FREQUENCY_HZ
    figure = Figure(
        figsize=(config.width_in, config.panel_height_in * len(panels) + 0.6), layout="constrained"
    )
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)
    image = None
    for axis, (title, _), spectrum in zip(axes[:, 0], panels, spectra, strict=True):
        times = start_s + np.arange(spectrum.shape[1] + 1) * config.hop_length / sample_rate  # frame edges
        image = axis.pcolormesh(
            times,
            _bin_edges(frequencies[keep]),
            spectrum[keep],
            vmin=vmin,
            vmax=vmax,
            cmap=config.colormap,
            shading="flat",
        )
        axis.set_yscale("log")
        axis.set_ylim(MIN_FREQUENCY_HZ, sample_rate / 2)
        axis.set_ylabel("Hz")
        axis.set_title(title, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    figure.colorbar(image, ax=axes[:, 0].tolist(), label="dB", pad=0.01)
    return figure


def _bin_edges(centres: np.ndarray) -> np.ndarray:
    """(F,) bin centres -> (F + 1,) edges, geometric midpoints so the bins tile a log axis."""
    middle = np.sqrt(centres[1:] * centres[:-1])
    first = centres[0] ** 2 / middle[0]
    last = centres[-1] ** 2 / middle[-1]
    return np.concatenate([[first], middle, [last]])
