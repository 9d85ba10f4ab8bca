"""Pure augmentation functions on stems ``(S, C, T)``.

Each function takes the stems and an explicit ``numpy.random.Generator`` and returns new stems; nothing
is modified in place and no global random state is touched. Every source gets its own random draw, so the
sources of one training example are transformed independently. The mixture is built *after* augmenting
(``mix = stems.sum(0)``), as in Demucs, so it stays the exact sum of what the model must recover.
"""

from __future__ import annotations

import numpy as np


def random_gain(stems: np.ndarray, rng: np.random.Generator, gain_db: tuple[float, float]) -> np.ndarray:
    """Scale each source by a gain drawn uniformly in ``gain_db`` (dB). stems: (S, C, T) -> (S, C, T)."""
    low, high = gain_db
    if low > high:
        raise ValueError(f"gain_db must be (low, high) with low <= high, got {gain_db}")
    gains_db = rng.uniform(low, high, size=stems.shape[0])  # (S,)
    gains = (10.0 ** (gains_db / 20.0)).astype(stems.dtype)
    return stems * gains[:, None, None]


def channel_swap(stems: np.ndarray, rng: np.random.Generator, probability: float = 0.5) -> np.ndarray:
    """Swap left and right of each stereo source with ``probability``. Mono stems are returned unchanged."""
    if stems.shape[1] != 2:
        return stems.copy()
    swap = rng.random(stems.shape[0]) < probability  # (S,)
    out = stems.copy()
    out[swap] = stems[swap][:, ::-1]  # (S_swapped, C, T) with the channel order reversed
    return out


def sign_flip(stems: np.ndarray, rng: np.random.Generator, probability: float = 0.5) -> np.ndarray:
    """Multiply each source by -1 with ``probability`` (inaudible on its own, but changes the sum)."""
    signs = np.where(rng.random(stems.shape[0]) < probability, -1.0, 1.0).astype(stems.dtype)  # (S,)
    return stems * signs[:, None, None]


def augment_params(
    rng: np.random.Generator,
    count: int,
    channels: int,
    gain_db: tuple[float, float] | None = (-6.0, 3.0),
    swap: bool = True,
    flip: bool = True,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """The random draws of ``augment`` for ``count`` sources: ``scale (count,)`` (gain times sign) and
    ``order (count, channels)`` (input channel of each output channel), drawn in augment's order."""
    scale = np.ones(count, dtype=dtype)  # (S,)
    if gain_db is not None:
        low, high = gain_db
        if low > high:
            raise ValueError(f"gain_db must be (low, high) with low <= high, got {gain_db}")
        scale = (10.0 ** (rng.uniform(low, high, size=count) / 20.0)).astype(dtype)
    order = np.tile(np.arange(channels), (count, 1))  # (S, C)
    if swap and channels == 2:
        order[rng.random(count) < 0.5] = [1, 0]
    if flip:
        scale = scale * np.where(rng.random(count) < 0.5, -1.0, 1.0).astype(dtype)
    return scale, order


def augment(
    stems: np.ndarray,
    rng: np.random.Generator,
    gain_db: tuple[float, float] | None = (-6.0, 3.0),
    swap: bool = True,
    flip: bool = True,
) -> np.ndarray:
    """Apply gain, channel swap and sign flip (each optional) in that order. stems: (S, C, T).

    Equal, bit for bit and draw for draw, to ``sign_flip(channel_swap(random_gain(...)))`` (a sign is
    exact and a swap only moves samples), but done in one pass over the audio: it runs on every
    training example, where three full copies were a third of the data time.
    """
    count = stems.shape[0]
    scale, order = augment_params(rng, count, stems.shape[1], gain_db, swap, flip, stems.dtype)
    out = stems[np.arange(count)[:, None], order]  # (S, C, T), channels reordered (one copy)
    out *= scale[:, None, None]
    return out
