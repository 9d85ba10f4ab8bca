"""The shift trick (Défossez et al. 2019, Demucs' ``apply_model``): average separations of randomly
delayed copies of the mixture, so chunk edges fall in several places."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

#: Largest random delay of the shift trick, in seconds (Demucs' ``apply_model``: 0.5 s).
MAX_SHIFT_S: float = 0.5


def max_shift(rate: int) -> int:
    """The largest delay of the shift trick in samples at ``rate`` (the model's): the ``max_shift`` that
    separation passes to :func:`shift_average`, and the margin a window's span needs (``mss.chunking.chunk_span``)."""
    return int(MAX_SHIFT_S * rate)


def shift_average(
    separate_once: Callable[[Tensor], Tensor], mix: Tensor, shifts: int, max_shift: int, seed: int = 0
) -> Tensor:
    """The shift trick (Défossez et al. 2019): the average of ``shifts`` separations of ``mix`` delayed by
    random offsets in ``[0, max_shift)``, each moved back into place. ``separate_once``: (C, T') -> (S, C, T').

    mix: (C, T) -> (S, C, T). A time-invariant ``separate_once`` gives its own unshifted output back; a model
    whose output depends on where the chunk edges fall is averaged over several edge positions. The offsets
    come from ``seed``, so a separation is reproducible.
    """
    length = mix.shape[-1]
    padded = torch.nn.functional.pad(mix, (max_shift, max_shift))  # (C, T + 2 max_shift)
    offsets = np.random.default_rng(seed).integers(0, max(1, max_shift), size=shifts)
    total = None
    for offset in offsets:
        offset = int(offset)
        piece = padded[:, offset : offset + length + max_shift]  # index i holds sample i + offset - max_shift
        out = separate_once(piece)[..., max_shift - offset : max_shift - offset + length]  # (S, C, T)
        total = out if total is None else total.add_(out)
    return total.div_(shifts)
