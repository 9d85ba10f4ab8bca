"""Moving a trained UNet onto another STFT grid (``n_fft``, ``hop_length``), so a fine-tune with a finer
frequency resolution starts from trained weights instead of from scratch.

Every convolution of the UNet is the same size whatever the grid: only the per-bin input normalisation
(``input_scale``, ``input_offset``: one value per frequency bin) depends on ``n_fft``. It is resampled onto
the new bins by linear interpolation in Hz, so each frequency keeps its normalisation. Unlike
``mss.models.demucs_growth`` this does **not** preserve what the model computes: the convolutions now read a
spectrogram whose frequency axis is finer (a harmonic spans twice the bins at twice the ``n_fft``) and whose
frames are longer, and the magnitudes of the longer window are larger (about +3 dB for noise, +6 dB for a
tone, before ``log1p``); the batch-norm statistics, copied too, were gathered on the old grid. What the
network learned about spectral shapes is a starting point that fine-tuning adapts (or fails to: measure it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mss.models.blocks import INFERENCE_ONLY, differing_fields
from mss.models.unet import UNet, UNetConfig

#: UNetConfig fields a trained UNet can be moved across (``bin_pool``: only from 1 to 2, with ``n_fft`` doubled)
REGRIDDABLE: tuple[str, ...] = ("n_fft", "hop_length", "bin_pool", "fine_channels", "fine_max_hz")
#: fields that may differ freely: inference-only ones, and the input's level normalisation (same weights)
_FREE: tuple[str, ...] = ("level_db", *INFERENCE_ONLY)
#: the parameters with one value per frequency bin: (F, 1): the network's bins (n_fft / bin_pool points) ...
PER_BIN: tuple[str, ...] = ("input_scale", "input_offset")
#: ... and, with bin_pool 2, the fine head's (n_fft points)
PER_FINE_BIN: tuple[str, ...] = ("fine_scale", "fine_offset")


def regrid_state_dict(state: dict[str, Tensor], old: UNetConfig, model: UNet) -> dict[str, Tensor]:
    """Weights of a UNet with config ``old`` (``state``) for ``model``, a UNet that differs only in its STFT
    grid (REGRIDDABLE fields, and inference-only ones): per-bin parameters are interpolated onto ``model``'s
    bins, every other weight is copied. ValueError if another field differs or ``state`` lacks a weight."""
    new = model.config
    differ = differing_fields(old, new, ignore=REGRIDDABLE + _FREE)
    if differ:
        raise ValueError(f"cannot move a UNet onto another STFT when other fields differ ({differ})")
    if new.bin_pool != old.bin_pool:
        return refine_state_dict(state, old, model)

    def weight_of(key: str, value: Tensor) -> Tensor | None:
        if key not in state:
            return None
        weight = state[key].detach().to("cpu")
        if key in PER_BIN:
            return interpolate_bins(weight, old.n_fft // old.bin_pool, new.n_fft // new.bin_pool)
        if key in PER_FINE_BIN:
            return interpolate_bins(weight, old.n_fft, new.n_fft)
        return weight

    return _mapped(model, weight_of, "onto another STFT")


def _mapped(model: UNet, weight_of, move: str) -> dict[str, Tensor]:
    """``model``'s state dict with every weight from ``weight_of(key, model's value)`` (None: the trained model
    lacks it), checked against the model's shape and cast to its dtype; ValueError naming the ``move``
    ("onto another STFT") otherwise."""
    moved = {}
    for key, value in model.state_dict().items():
        weight = weight_of(key, value)
        if weight is None:
            raise ValueError(f"cannot move a UNet {move}: the trained model has no weight {key!r}")
        if weight.shape != value.shape:
            raise ValueError(f"cannot move a UNet {move}: {key!r} is {tuple(weight.shape)}, "
                             f"the new model's {tuple(value.shape)}")  # fmt: skip
        moved[key] = weight.to(value.dtype)
    return moved


def interpolate_bins(values: Tensor, old_n_fft: int, new_n_fft: int) -> Tensor:
    """(F_old, 1) per-bin values of an ``old_n_fft`` STFT -> (F_new, 1) float32 at the bins of a ``new_n_fft``
    one, linear in frequency (bin k of an n-point STFT lies at k / n of the sample rate, whatever the rate)."""
    old_bins, new_bins = old_n_fft // 2 + 1, new_n_fft // 2 + 1
    if values.shape != (old_bins, 1):
        raise ValueError(
            f"expected ({old_bins}, 1) per-bin values for n_fft {old_n_fft}, got {tuple(values.shape)}"
        )
    old_freqs = np.arange(old_bins) / old_n_fft  # cycles per sample
    new_freqs = np.arange(new_bins) / new_n_fft
    source = values.detach().double().cpu().numpy()[:, 0]
    return torch.from_numpy(np.interp(new_freqs, old_freqs, source))[:, None].float()


def refine_state_dict(state: dict[str, Tensor], old: UNetConfig, model: UNet) -> dict[str, Tensor]:
    """Weights of a UNet that sees every bin (``old``: bin_pool 1) for ``model``, the same UNet on a 2x finer
    STFT with bin_pool 2 (mss.models.unet_fine): the encoder/decoder and its per-bin normalisation are copied
    unchanged, since the pooled spectrum it now sees approximates the old one; the fine head's normalisation is
    the old one interpolated onto the fine bins, and the head keeps ``model``'s own weights, whose last layer
    is zero. So the new model computes nearly what the old one did: the old masks, interpolated onto the fine
    bins. ValueError unless bin_pool goes 1 -> 2 with n_fft doubled and the hop unchanged."""
    new = model.config
    if (
        (old.bin_pool, new.bin_pool) != (1, 2)
        or new.n_fft != 2 * old.n_fft
        or new.hop_length != old.hop_length
    ):
        raise ValueError(
            "a UNet moves to bin_pool 2 only from bin_pool 1, with n_fft doubled and the hop unchanged; got "
            f"n_fft {old.n_fft} -> {new.n_fft}, hop {old.hop_length} -> {new.hop_length}, bin_pool "
            f"{old.bin_pool} -> {new.bin_pool}"
        )

    def weight_of(key: str, value: Tensor) -> Tensor | None:
        if key in PER_FINE_BIN:
            return interpolate_bins(state[key.replace("fine_", "input_")], old.n_fft, new.n_fft)
        if key.startswith("fine_head."):
            return value
        return state[key].detach().to("cpu") if key in state else None

    return _mapped(model, weight_of, "onto bin_pool 2")
