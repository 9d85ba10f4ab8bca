"""Oracle and trivial baselines, computed from the references: IRM1, IRM2 (oracle
references for mask-based separation: not strict ceilings, since another grid or a Wiener post-filter can
exceed them) and MIX (the mixture as every estimate: the floor).

The ideal ratio masks follow the SiSEC 2018 oracles (sigsep/sigsep-mus-oracle ``IRM.py``): each
channel is processed independently, the mask of source j is ``|S_j|^alpha / (eps + sum_k |S_k|^alpha)``
applied to the mixture STFT, alpha = 1 (magnitude, IRM1) or 2 (power, IRM2). STFT of 4096 samples
with a hop of 1024 (Hann window), as in the SiSEC 2018 oracle analysis (Stöter, Liutkus, Ito, LVA/ICA 2018).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mss.dsp import istft, stft
from mss.errors import AudioError

#: Names of the baselines, in the order they appear in tables.
ORACLES: tuple[str, ...] = ("IRM1", "IRM2", "MIX")

#: STFT size and hop of the oracle masks (samples at 44.1 kHz).
ORACLE_N_FFT: int = 4096
ORACLE_HOP_LENGTH: int = 1024

#: Added to the mask denominator so silent bins give a zero mask instead of 0 / 0.
EPS: float = float(np.finfo(np.float32).eps)


def ideal_ratio_mask(
    mixture: np.ndarray,
    sources: np.ndarray,
    alpha: float,
    n_fft: int = ORACLE_N_FFT,
    hop_length: int = ORACLE_HOP_LENGTH,
) -> np.ndarray:
    """Oracle estimates by ideal ratio masking of the mixture.

    mixture: (C, T); sources: (S, C, T), a partition of the mixture (they sum to it) -> estimates (S, C, T).
    """
    mixture, sources = _check(mixture, sources)
    length = mixture.shape[-1]
    mix_spec = stft(torch.from_numpy(mixture).double(), n_fft, hop_length)  # (C, F, N)
    power = stft(torch.from_numpy(sources).double(), n_fft, hop_length).abs() ** alpha  # (S, C, F, N)
    masks = power / (EPS + power.sum(dim=0, keepdim=True))  # (S, C, F, N)
    estimates = istft(masks * mix_spec.unsqueeze(0), n_fft, hop_length, length)  # (S, C, T)
    return estimates.float().numpy()


def ideal_ratio_mask_span(
    read: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    length: int,
    start: int,
    stop: int,
    alpha: float,
    n_fft: int = ORACLE_N_FFT,
    hop_length: int = ORACLE_HOP_LENGTH,
) -> np.ndarray:
    """Samples ``[start, stop)`` of the whole-song IRM estimates, computed from a short stretch only.

    read(a, b) -> (mixture (C, b - a), sources (S, C, b - a)) of the song (``length`` samples). The stretch
    read starts on the STFT's hop grid at least ``n_fft`` before ``start`` and ends ``n_fft`` after
    ``stop``, so every frame that touches ``[start, stop)`` sees the same samples as in the whole-song
    STFT (and the same reflect padding at the song's ends): the result equals
    ``ideal_ratio_mask(whole mixture, whole sources)[..., start:stop]`` up to rounding, while memory
    follows ``stop - start``, not the song. -> (S, C, stop - start).
    """
    if not 0 <= start < stop <= length:
        raise AudioError(f"span [{start}, {stop}) is outside the song (0-{length})")
    low = max(0, (start - n_fft) // hop_length * hop_length)  # on the frame grid of the whole song
    high = min(length, stop + n_fft)
    mixture, sources = read(low, high)
    if high - low <= n_fft // 2 and (low > 0 or high < length):  # too short for reflect padding
        raise AudioError(f"span of {high - low} samples is too short for an STFT of {n_fft}")
    estimates = ideal_ratio_mask(mixture, sources, alpha, n_fft, hop_length)  # (S, C, high - low)
    return estimates[..., start - low : stop - low]


def mixture_estimates(mixture: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """The MIX baseline: the mixture (C, T) repeated as the estimate of each of the S sources -> (S, C, T)."""
    mixture, sources = _check(mixture, sources)
    return np.repeat(mixture[None], sources.shape[0], axis=0)


def oracle_estimates(name: str, mixture: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Estimates (S, C, T) of the baseline ``name`` (one of ORACLES) from mixture (C, T) and sources (S, C, T)."""
    if name == "IRM1":
        return ideal_ratio_mask(mixture, sources, alpha=1.0)
    if name == "IRM2":
        return ideal_ratio_mask(mixture, sources, alpha=2.0)
    if name == "MIX":
        return mixture_estimates(mixture, sources)
    raise ValueError(f"unknown oracle {name!r}; known: {', '.join(ORACLES)}")


def _check(mixture: np.ndarray, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mixture = np.asarray(mixture, dtype=np.float32)
    sources = np.asarray(sources, dtype=np.float32)
    if mixture.ndim != 2 or sources.ndim != 3 or sources.shape[1:] != mixture.shape:
        raise AudioError(
            f"expected mixture (C, T) and sources (S, C, T), got {mixture.shape} and {sources.shape}"
        )
    return mixture, sources
