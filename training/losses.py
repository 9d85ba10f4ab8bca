"""Training losses. They live here, not in the models' ``forward`` (see HOUSE_STYLE.md)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def waveform_l1(model: nn.Module, estimate: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error between waveforms; estimate and target: (B, S, C, T). Used for Demucs."""
    return (estimate - target).abs().mean()


def magnitude_l1(model: nn.Module, estimate: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error between magnitude spectrograms from the model's own STFT. Used for the UNet.

    estimate, target: (B, S, C, T) -> magnitudes (B, S, C, F, N) through ``model.magnitude``.
    """
    return (model.magnitude(estimate) - model.magnitude(target)).abs().mean()


LOSSES: dict[str, Callable[[nn.Module, Tensor, Tensor], Tensor]] = {
    "unet": magnitude_l1,
    "demucs": waveform_l1,
}


def loss_for(arch: str) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    """The loss of an architecture: ``fn(unwrapped_model, estimate, target) -> scalar``."""
    if arch not in LOSSES:
        raise ValueError(f"no loss for architecture {arch!r}; known: {', '.join(LOSSES)}")
    return LOSSES[arch]


def global_sdr(reference: Tensor | object, estimate: Tensor | object, eps: float = 1e-8) -> float:
    """Global SDR in dB of one source, as the SDX challenge's "new SDR":
    10 log10(|s|^2 / |s - s_hat|^2) over the whole signal (any shape, e.g. (C, T))."""
    reference = torch.as_tensor(reference, dtype=torch.float64)
    estimate = torch.as_tensor(estimate, dtype=torch.float64)
    signal = (reference**2).sum()
    error = ((reference - estimate) ** 2).sum()
    return float(10.0 * torch.log10((signal + eps) / (error + eps)))
