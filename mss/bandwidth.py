"""Full-band estimates from models that run below the song's rate.

A model at 22.05 kHz separates a 44.1 kHz song only up to 11.025 kHz: every estimate is empty above, while
the references are not (drums carry a few percent of their energy there, every stem its "air"). The
mixture's high band is the sum of the stems' high bands, so it can be handed out among the estimates the
way they share the band just below the model's Nyquist frequency (the "edge band"): frame by frame, each
estimate gets the mixture's high band times its share of the edge band's energy, a Wiener-like gain that
is the best linear split for independent sources with those energies (Open-Unmix's ``max_bin`` and
Spleeter's 16 kHz models extend their masks above the modelled band in the same spirit).

With sources that cover the mixture (the four MUSDB18 stems) the shares add up to one, so the estimates'
high bands add up to the mixture's; with a single target (piano) the share is the estimate's energy over
the mixture's in the edge band, at most one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mss.dsp import istft, stft

#: STFT of the high-band split at the song's rate: 23 ms Hann windows at 44.1 kHz, 50% overlap (which still
#: reconstructs exactly, and costs half of a 75%-overlap STFT: this split runs on every separation).
N_FFT: int = 1024
HOP: int = 512
#: The edge band, as fractions of the model's Nyquist frequency: below the roll-off of the resampling to
#: the model's rate and back (torchaudio's default sinc filter, down and up: -0.3 dB of amplitude from
#: about 0.78 of Nyquist, half the energy lost near 0.95). From its top (``EDGE[1]``, 8.6 kHz for a
#: 22.05 kHz model) up, the estimates are replaced by the split mixture.
EDGE: tuple[float, float] = (0.5, 0.78)
#: Frames over which the edge-band energies are averaged (a moving average: about 0.1 s at 44.1 kHz).
SMOOTH_FRAMES: int = 9


def _smooth(energy: Tensor, frames: int) -> Tensor:
    """(..., N) moving average over ``frames`` frames (edges replicated)."""
    if frames <= 1:
        return energy
    flat = energy.reshape(-1, 1, energy.shape[-1])
    padded = torch.nn.functional.pad(flat, (frames // 2, frames - 1 - frames // 2), mode="replicate")
    kernel = torch.full((1, 1, frames), 1.0 / frames, dtype=energy.dtype)
    return torch.nn.functional.conv1d(padded, kernel).reshape(energy.shape)


def extend_high_band(
    mix: Tensor, estimates: Tensor, rate: int, model_rate: int, covers_mixture: bool, offset: int = 0
) -> Tensor:
    """mix (C, T) and band-limited estimates (S, C, T), both at ``rate`` -> estimates (S, C, T) with the
    band above ``model_rate / 2`` filled from the mixture (see the module docstring). Returns
    ``estimates`` itself when the song's rate is not above the model's (nothing is missing).

    ``offset``: where ``mix`` starts in the whole song (samples): the STFT frames are laid on the song's
    grid, so a block or a window of a song gets the same split as the whole song, away from its edges.
    """
    if rate <= model_rate:
        return estimates
    pad = int(offset) % HOP  # frames centred on multiples of HOP in song time
    if pad:
        mix = torch.nn.functional.pad(mix, (pad, 0))
        estimates = torch.nn.functional.pad(estimates, (pad, 0))
    length = mix.shape[-1]
    bin_hz = rate / N_FFT
    nyquist = model_rate / 2
    lo, hi = int(EDGE[0] * nyquist / bin_hz), int(EDGE[1] * nyquist / bin_hz)  # hi: the first bin replaced
    mix_spec = stft(mix, N_FFT, HOP)  # (C, F, N) complex
    # one STFT per source, kept above ``lo`` only (a whole song's spectrograms of every stem would not fit)
    highs = [stft(estimate, N_FFT, HOP)[..., lo:, :].clone() for estimate in estimates]  # S x (C, F - lo, N)
    energy = torch.stack([spec[..., : hi - lo, :].abs().square().sum(dim=(0, 1)) for spec in highs])  # (S, N)
    energy = _smooth(energy, SMOOTH_FRAMES)
    tiny = torch.finfo(energy.dtype).tiny
    if covers_mixture:
        share = energy / energy.sum(dim=0, keepdim=True).clamp_min(tiny)  # (S, N), sums to 1
    else:
        mix_energy = _smooth(mix_spec[..., lo:hi, :].abs().square().sum(dim=(0, 1)), SMOOTH_FRAMES)  # (N,)
        share = (energy / mix_energy.clamp_min(tiny)).clamp(max=1.0)  # (S, N)
    out = torch.empty_like(estimates)
    change = torch.zeros_like(mix_spec)  # (C, F, N), zero below ``hi``
    for k, estimate in enumerate(estimates):
        # the change above ``hi`` only: the split mixture minus what the estimate has there (the resampler's
        # roll-off); the STFT reconstructs exactly, so adding its inverse changes nothing below
        change[..., hi:, :] = mix_spec[..., hi:, :] * share[k] - highs[k][..., hi - lo :, :]
        out[k] = estimate + istft(change, N_FFT, HOP, length)  # (C, T)
    return out[..., pad:]  # (S, C, T)
