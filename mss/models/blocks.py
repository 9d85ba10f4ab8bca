"""Layers and helpers shared by the U-Net and Demucs models."""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import Tensor, nn

#: config fields that change only inference, not the weights: the chunk a model separates in, its default
#: shift trick and Wiener post-filter (the properties of SeparatorBase below that training never reads)
INFERENCE_ONLY: tuple[str, ...] = ("segment_s", "shifts", "wiener_iterations")


def differing_fields(old, new, ignore: tuple[str, ...] = ()) -> list[str]:
    """Names of the fields of the dataclass config ``old`` whose values differ in ``new`` (same class),
    those in ``ignore`` aside, in field order."""
    return [
        f.name for f in fields(old) if f.name not in ignore and getattr(new, f.name) != getattr(old, f.name)
    ]


class SeparatorBase(nn.Module):
    """Common read-only attributes every separation model exposes, all taken from its frozen config.

    Inference code (``mss.separate``) needs nothing but the model: its sources, rate, channel count
    and default chunk length travel with it (as in Demucs).
    """

    #: Registry name of the architecture (``mss.models.REGISTRY`` key), stored in checkpoints.
    arch: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.config.sources)

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def audio_channels(self) -> int:
        return int(self.config.audio_channels)

    @property
    def segment_s(self) -> float:
        return float(self.config.segment_s)

    @property
    def shifts(self) -> int:
        """Shifted separations ``mss.separate`` averages by default (0: one plain pass)."""
        return int(self.config.shifts)

    @property
    def wiener_iterations(self) -> int:
        """EM iterations of the Wiener post-filter the model runs at inference (0: none; ``mss.models.wiener``)."""
        return int(self.config.wiener_iterations)


def crop_to(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """Crop the trailing ``len(size)`` dimensions of ``x`` to ``size`` (keeping the start)."""
    slices = [slice(None)] * (x.dim() - len(size)) + [slice(0, s) for s in size]
    return x[tuple(slices)]


def center_trim(x: Tensor, length: int) -> Tensor:
    """Trim the last dimension of ``x`` (..., L) symmetrically to ``length`` samples."""
    delta = x.shape[-1] - length
    if delta < 0:
        raise ValueError(f"cannot trim {x.shape[-1]} samples to {length}")
    return x[..., delta // 2 : x.shape[-1] - (delta - delta // 2)]


def rescale_conv_weights(module: nn.Module, reference: float = 0.1) -> None:
    """Scale every conv's weights so their std moves toward ``reference`` (Demucs, Défossez et al. 2019).

    The Demucs paper reports this initialisation speeds up training noticeably; it only rescales, so
    the layers keep their random structure.
    """
    for sub in module.modules():
        if isinstance(sub, nn.Conv1d | nn.ConvTranspose1d | nn.Conv2d | nn.ConvTranspose2d):
            with torch.no_grad():
                std = sub.weight.std()
                scale = (std / reference) ** 0.5
                sub.weight.div_(scale)
                if sub.bias is not None:
                    sub.bias.div_(scale)


class BLSTM(nn.Module):
    """Bidirectional LSTM over time with a linear layer back to the input width: (B, H, L) -> (B, H, L)."""

    def __init__(self, width: int, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(input_size=width, hidden_size=width, num_layers=layers, bidirectional=True)
        self.linear = nn.Linear(2 * width, width)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(2, 0, 1)  # (L, B, H): nn.LSTM's default time-major layout
        x = self.lstm(x)[0]  # (L, B, 2H)
        x = self.linear(x)  # (L, B, H)
        return x.permute(1, 2, 0)  # (B, H, L)
