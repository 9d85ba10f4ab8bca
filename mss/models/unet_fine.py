"""A finer frequency grid for the UNet at the cost of a small head: pooled bins in, full-resolution masks out.

The UNet's masks have one value per STFT bin, and at 1024 points and 22.05 kHz its bins are 21.5 Hz apart: a
bass line's fundamentals share bins with the kick drum. On the real train clip the ideal ratio mask gains 1.4
dB (bass 1.8) from a 2048-point window (``python -m mss.bench.resolution``). A UNet run on 1025 bins costs
twice as much and has to be trained again; moving a trained one onto 2048/1024 (bins twice as fine, frames
twice as long) lost 0.9 dB (checkpoints/history.md, "A finer STFT grid for the UNet").

With ``UNetConfig.bin_pool = 2`` the STFT has ``n_fft`` points (2048), but the encoder/decoder sees the
spectrum pooled to the bins of an ``n_fft / 2``-point one (:func:`pool_bins`), so the network, its shapes and
its time grid are those of a trained 1024-point UNet. Its mask logits are interpolated back onto the fine bins
(:func:`upsample_bins`) and :class:`FineHead`, two small convolutions over the fine bins, adds a correction
that can tell apart what shares a coarse bin. Started from a trained 1024-point UNet (mss.models.unet_regrid)
with the head's last layer at zero, the model computes nearly what the trained one did, and fine-tuning (of
every weight) starts from there instead of from a network that must relearn a new frequency axis.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional

#: the bin-pool factors a UNet supports: 1 (the network sees every bin) or 2
BIN_POOLS: tuple[int, ...] = (1, 2)
#: magnitude scale of an n-point Hann STFT over one of n / 2 points, for noise: the window's energy doubles
#: (about +3 dB). Measured on 20 generated training mixtures: the pooled 2048-point magnitude over the
#: 1024-point one has a median of 1.394-1.439, for sqrt(2) = 1.414.
WINDOW_GAIN: float = math.sqrt(2.0)


def pool_bins(magnitude: Tensor) -> Tensor:
    """magnitude (..., F, N) of an n-point STFT, F odd -> (..., (F + 1) // 2, N): an n/2-point STFT's bins.

    Coarse bin k takes the power of fine bins 2k-1, 2k, 2k+1 weighted 1/4, 1/2, 1/4 (the edges repeated),
    divided by the window's energy ratio (2), then the square root: about the magnitude the n/2-point STFT
    has there (median ratio 1.00 on generated music; a steady tone reads about 0.5 dB higher)."""
    power = magnitude.pow(2)
    flat = power.reshape(-1, 1, *power.shape[-2:])  # (B*, 1, F, N)
    padded = functional.pad(flat, (0, 0, 1, 1), mode="replicate")  # (B*, 1, F + 2, N)
    pooled = 0.25 * padded[..., 0:-2:2, :] + 0.5 * padded[..., 1:-1:2, :] + 0.25 * padded[..., 2::2, :]
    pooled = pooled.reshape(*power.shape[:-2], *pooled.shape[-2:])
    return (pooled / WINDOW_GAIN**2).sqrt()


def upsample_bins(values: Tensor, bins: int) -> Tensor:
    """values (B, K, Fc, N) on the coarse bins -> (B, K, bins, N), bins == 2 (Fc - 1) + 1, linear in
    frequency: fine bin 2k is coarse bin k, fine bin 2k+1 the mean of coarse bins k and k+1."""
    if bins != 2 * (values.shape[-2] - 1) + 1:
        raise ValueError(f"cannot spread {values.shape[-2]} coarse bins onto {bins} fine ones")
    fine = values.new_empty(*values.shape[:-2], bins, values.shape[-1])
    fine[..., 0::2, :] = values
    fine[..., 1::2, :] = 0.5 * (values[..., :-1, :] + values[..., 1:, :])  # half the time of F.interpolate
    return fine


class FineHead(nn.Module):
    """Correction of mask logits on the lowest ``bins`` fine bins: (B, K, F, N) and (B, C, F, N) -> (B, K, F, N).

    Its input is the upsampled logits (K = sources x audio channels) beside the fine magnitude (C planes,
    normalised); two 5 x 3 (frequency x time) convolutions, ``width`` channels between them. The last one starts
    at zero, so a new head leaves the logits as they are. Above ``bins`` the logits pass unchanged: the head
    refines the low band, where a bass line, the kick and the low harmonics share coarse bins, and costs a
    quarter of what it would on every bin (at 2048 points, 22.05 kHz and 3 kHz: 279 of 1025 bins)."""

    def __init__(self, logits: int, channels: int, width: int, bins: int):
        super().__init__()
        self.bins = bins
        self.hidden = nn.Conv2d(logits + channels, width, (5, 3), padding=(2, 1))
        self.act = nn.LeakyReLU(0.2)
        self.out = nn.Conv2d(width, logits, (5, 3), padding=(2, 1))
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, logits: Tensor, fine: Tensor) -> Tensor:
        """logits (B, K, F, N), fine (B, C, F', N) with F' >= ``bins`` -> logits + correction (B, K, F, N)."""
        low, high = logits[..., : self.bins, :], logits[..., self.bins :, :]
        x = torch.cat([low, fine[..., : self.bins, :]], dim=1)  # (B, K + C, bins, N)
        return torch.cat([low + self.out(self.act(self.hidden(x))), high], dim=-2)


def head_bins(n_fft: int, sample_rate: int, max_hz: float) -> int:
    """The fine bins at or below ``max_hz`` of an ``n_fft``-point STFT at ``sample_rate``: how many the head
    refines (at least 1, at most all)."""
    return max(1, min(n_fft // 2 + 1, int(max_hz * n_fft / sample_rate) + 1))
