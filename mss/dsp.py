"""Pure signal-processing helpers shared by the models, separation and evaluation.

Nothing here does I/O or holds state.
"""

from __future__ import annotations

import torch
from torch import Tensor


def stft(x: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """x: (..., T) real -> complex spectrogram (..., F, N), F = n_fft // 2 + 1.

    Hann window, ``center=True`` with reflect padding, so N = T // hop_length + 1.
    """
    shape = x.shape
    flat = x.reshape(-1, shape[-1])  # (B*, T)
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    pad_mode = "reflect" if shape[-1] > n_fft // 2 else "constant"
    spec = torch.stft(
        flat, n_fft, hop_length, window=window, center=True, pad_mode=pad_mode, return_complex=True
    )  # (B*, F, N)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: Tensor, n_fft: int, hop_length: int, length: int) -> Tensor:
    """Complex spec (..., F, N) -> real signal (..., length); inverse of :func:`stft`."""
    shape = spec.shape
    flat = spec.reshape(-1, *shape[-2:])  # (B*, F, N)
    window = torch.hann_window(n_fft, device=spec.device, dtype=spec.real.dtype)
    wave = torch.istft(flat, n_fft, hop_length, window=window, center=True, length=length)  # (B*, T)
    return wave.reshape(*shape[:-2], length)


def chunk_starts(length: int, segment: int, hop: int) -> list[int]:
    """Start offsets of chunks of ``segment`` samples every ``hop`` samples covering ``length`` samples.

    The last chunk may run past the end (the caller pads); a signal shorter than one segment gives [0].
    """
    if segment <= 0 or hop <= 0:
        raise ValueError(f"segment and hop must be positive, got segment={segment}, hop={hop}")
    if length <= segment:
        return [0]
    starts = list(range(0, length - segment + hop, hop))
    return [s for s in starts if s < length]


def triangle_window(segment: int, device: torch.device | str | None = None) -> Tensor:
    """Triangular overlap-add weights (segment,), strictly positive so every sample gets weight.

    As in Demucs' ``apply.py``: weights rise linearly to the centre and fall back; the overlap-add
    divides by the summed weights, so any window shape gives perfect reconstruction.
    """
    half = torch.arange(1, segment // 2 + 1, device=device, dtype=torch.float32)
    rest = torch.arange(segment - segment // 2, 0, -1, device=device, dtype=torch.float32)
    weight = torch.cat([half, rest])  # (segment,)
    return weight / weight.max()
