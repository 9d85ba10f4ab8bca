"""The chunk layout of a separation: a song cut into overlapping chunks at the model's rate, each separated,
blended back with triangle weights. One definition, used by ``mss.separate`` and by whoever needs to know
which chunks a span of a song falls into (the spectrogram browser separates a window's chunks only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from mss.dsp import chunk_starts, triangle_window

#: chunk overlap of a separation by default (``separate``, the evaluation, the browser) in one plain pass ...
OVERLAP: float = 0.25
#: ... and with the shift trick (``shifts`` > 0): the averaged passes put the chunk edges in several places, which
#: is what the overlap's cross-fades are for, so an eighth suffices and each pass costs 14% less (1.14 instead of
#: 1.33 times the song). With the committed checkpoints' shifts: embedded test songs UNet 4.75 dB, Demucs 4.64
#: (at 0.25: 4.75, 4.63); union test songs 4.78, 4.24 (4.80, 4.28): checkpoints/history.md, "The shift trick by
#: default".
SHIFTED_OVERLAP: float = 0.125


def default_overlap(shifts: int) -> float:
    """The chunk overlap a separation uses unless told: ``OVERLAP`` in one plain pass, ``SHIFTED_OVERLAP`` when
    ``shifts`` shifted passes are averaged."""
    return SHIFTED_OVERLAP if shifts > 0 else OVERLAP


def chunk_segment(segment_s: float, model_rate: int) -> int:
    """Samples of one chunk at the model's rate."""
    return max(1, int(round(segment_s * model_rate)))


def chunk_hop(segment: int, overlap: float) -> int:
    """Samples between chunk starts: ``segment * (1 - overlap)``."""
    return max(1, int(round(segment * (1.0 - overlap))))


def chunk_span(
    lo: int,
    hi: int,
    length: int,
    rate: int,
    model_rate: int,
    segment_s: float,
    overlap: float = OVERLAP,
    margin: int = 0,
) -> tuple[int, int]:
    """Samples [lo, hi) of a song of ``length`` at ``rate`` -> the span [a, b) to separate for them.

    The span is the union of the chunks that ``apply_overlap_add`` runs over the whole song (starts every
    ``hop`` model-rate samples from 0) and that overlap [lo, hi). Separated alone, it gives the window the
    same chunks, the same chunk contents and the same overlap-add weights as the whole song does; only
    the resampling to the model's rate differs, within a few dozen samples of the span's edges, which
    lie at least ``segment * overlap`` away from the window.

    ``margin`` (model-rate samples): the span grows by as many whole hops as cover it on each side, so it
    stays on the song's chunk grid. The shift trick delays the song by up to ``margin`` samples
    (``mss.separate.shift``) and pads it with silence: with the margin, the shifted chunks that touch the
    window read the song's own audio there, as they do in the whole song.
    """
    ratio = model_rate / rate
    segment = chunk_segment(segment_s, model_rate)
    hop = chunk_hop(segment, overlap)
    extra = -(-max(0, int(margin)) // hop) * hop  # whole hops covering the margin
    low, high = int(np.floor(lo * ratio)), int(np.ceil(hi * ratio))  # window at the model's rate
    # first chunk start with start + segment > low
    first = max(0, -(-(low - segment + 1) // hop) * hop - extra)
    last = ((high - 1) // hop) * hop + extra  # last chunk start below high
    return int(np.floor(first / ratio)), min(length, int(np.ceil((last + segment) / ratio)))


def apply_overlap_add(
    fn: Callable[[Tensor], Tensor],
    mix: Tensor,
    segment: int,
    overlap: float,
    batch_size: int,
    on_batch: Callable[[int, int], None] | None = None,
) -> Tensor:
    """Run ``fn`` over overlapping chunks of ``mix`` and blend them with triangle weights.

    fn: (b, C, segment) -> (b, S, C, segment); mix: (C, T) -> (S, C, T). Chunks start every
    ``segment * (1 - overlap)`` samples; the last is zero-padded. Each output sample is the
    triangle-weighted average of the chunks covering it (weights divided by their sum, as in Demucs'
    ``apply.py``), so an identity ``fn`` gives back ``mix`` exactly. Only ``batch_size`` chunks exist at
    a time. ``on_batch(done, total)`` is called after each batch (progress bars).
    """
    if mix.dim() != 2:
        raise ValueError(f"mix must be (C, T), got shape {tuple(mix.shape)}")
    if segment < 1 or batch_size < 1 or not 0.0 <= overlap < 1.0:
        raise ValueError(
            f"need segment >= 1, batch_size >= 1, 0 <= overlap < 1; got {segment}, {batch_size}, {overlap}"
        )
    channels, length = mix.shape
    hop = chunk_hop(segment, overlap)
    starts = chunk_starts(length, segment, hop)
    window = triangle_window(segment).to(mix.dtype)  # (segment,)
    out: Tensor | None = None  # (S, C, T), allocated once the number of sources is known
    weight = torch.zeros(length, dtype=mix.dtype)  # (T,)
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first : first + batch_size]
        chunks = torch.zeros(len(batch_starts), channels, segment, dtype=mix.dtype)  # (b, C, segment)
        for i, start in enumerate(batch_starts):
            piece = mix[:, start : start + segment]
            chunks[i, :, : piece.shape[-1]] = piece
        estimates = fn(chunks).to("cpu", mix.dtype)  # (b, S, C, segment)
        if out is None:
            out = torch.zeros(estimates.shape[1], channels, length, dtype=mix.dtype)
        for i, start in enumerate(batch_starts):
            n = min(segment, length - start)
            out[..., start : start + n].addcmul_(
                estimates[i, ..., :n], window[:n]
            )  # in place: no temporaries
            weight[start : start + n] += window[:n]
        if on_batch is not None:
            on_batch(min(first + batch_size, len(starts)), len(starts))
    return out.div_(weight)  # (S, C, T)
