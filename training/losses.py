"""Training losses. They live here, not in the models' ``forward`` (see HOUSE_STYLE.md).

Training (:func:`objective_for`): the UNet's loss is the L1 distance between the masked mixture magnitude
M * |X| (``UNet.masked_magnitudes``) and the sources' magnitudes |S| (Jansson et al. 2017); Demucs' is the
L1 distance between waveforms (the Demucs paper). Validation (:func:`loss_for`) scores what inference
outputs, the separated waveforms: their magnitudes (UNet) or themselves (Demucs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


def waveform_l1(model: nn.Module, estimate: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error between waveforms; estimate and target: (B, S, C, T). Used for Demucs."""
    return (estimate - target).abs().mean()


def magnitude_l1(model: nn.Module, estimate: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error between magnitude spectrograms of waveforms, from the model's own STFT.
    The UNet's validation loss (on separated waveforms).

    estimate, target: (B, S, C, T) -> magnitudes (B, S, C, F, N) through ``model.magnitude``.
    """
    return (model.magnitude(estimate) - model.magnitude(target)).abs().mean()


def masked_magnitude_l1(model: nn.Module, masked: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error between the masked mixture magnitudes and the sources' magnitudes. The UNet's
    training loss.

    masked: M * |X| (B, S, C, F, N) from ``model.masked_magnitudes(mix)``; target: stems (B, S, C, T),
    whose magnitudes (B, S, C, F, N) come from ``model.magnitude``, the same STFT as the mixture's.
    """
    return (masked - model.magnitude(target)).abs().mean()


@dataclass(frozen=True)
class Objective:
    """How an architecture trains: the model method run on the mix (through the DDP wrapper, whose
    gradient hooks only see a module's ``forward``), and the loss of its output against the stems."""

    method: str  # "forward" -> stems (B, S, C, T); "masked_magnitudes" -> (B, S, C, F, N)
    loss: Callable[[nn.Module, Tensor, Tensor], Tensor]  # fn(unwrapped_model, output, target (B, S, C, T))


OBJECTIVES: dict[str, Objective] = {
    "unet": Objective("masked_magnitudes", masked_magnitude_l1),
    "demucs": Objective("forward", waveform_l1),
}

#: losses of separated waveforms (validation): fn(unwrapped_model, estimate (B, S, C, T), target)
LOSSES: dict[str, Callable[[nn.Module, Tensor, Tensor], Tensor]] = {
    "unet": magnitude_l1,
    "demucs": waveform_l1,
}


def objective_for(arch: str) -> Objective:
    """The training objective of an architecture (see :class:`Objective`)."""
    if arch not in OBJECTIVES:
        raise ValueError(f"no training objective for architecture {arch!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[arch]


def loss_for(arch: str) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    """The validation loss of an architecture on separated waveforms: ``fn(unwrapped_model, estimate,
    target) -> scalar``, both (B, S, C, T)."""
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
