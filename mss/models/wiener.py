"""The multichannel Wiener post-filter (EM as in Open-Unmix and norbert.wiener), for both models.

    wiener_filter(magnitudes, mix_spec, iterations) -> complex estimates
    waveform_wiener(estimates, mix, iterations, n_fft, hop_length, residual) -> filtered waveforms

The UNet filters its own masked magnitudes; Demucs, a waveform model, has its estimates' STFT
magnitudes filtered (``waveform_wiener``). Sources that do not cover the mixture (piano alone) get the
rest of the mixture as one more source, ``|X|`` minus the estimates (Open-Unmix's ``residual``), dropped
after: a Wiener filter over one source is the identity and would hand back the mixture. The EM itself is
``mss.models.wiener_em`` (norbert's computation, about 30 times faster).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mss.dsp import istft, stft
from mss.models.wiener_em import expectation_maximization


def wiener_filter(magnitudes: Tensor, mix_spec: Tensor, iterations: int) -> Tensor:
    """magnitudes: (B, S, C, F, N) source magnitude estimates; mix_spec: (B, C, F, N) complex
    -> complex estimates (B, S, C, F, N)."""
    return expectation_maximization(magnitudes.float(), mix_spec, iterations).to(mix_spec.device)


def with_residual(magnitudes: Tensor, mix_spec: Tensor) -> Tensor:
    """(B, S, C, F, N) -> (B, S + 1, C, F, N): the rest of the mixture's magnitude as the last source."""
    rest = torch.relu(mix_spec.abs() - magnitudes.sum(dim=1)).unsqueeze(1)  # (B, 1, C, F, N)
    return torch.cat([magnitudes, rest], dim=1)


def waveform_wiener(
    estimates: Tensor, mix: Tensor, iterations: int, n_fft: int, hop_length: int, residual: bool
) -> Tensor:
    """estimates: (B, S, C, T), mix: (B, C, T) -> (B, S, C, T): the estimates' STFT magnitudes through the
    Wiener filter against the mixture's STFT, back to waveforms (the mixture's phase, refined by EM)."""
    mix_spec = stft(mix, n_fft, hop_length)  # (B, C, F, N)
    magnitudes = stft(estimates, n_fft, hop_length).abs()  # (B, S, C, F, N)
    if residual:
        filtered = wiener_filter(with_residual(magnitudes, mix_spec), mix_spec, iterations)[:, :-1]
    else:
        filtered = wiener_filter(magnitudes, mix_spec, iterations)
    return istft(filtered, n_fft, hop_length, mix.shape[-1]).to(estimates.dtype)
