"""Separate an array held in memory with any model: resampling and channels in and out, chunked overlap-add
(``mss.chunking``), the optional shift trick, and the high band above the model's Nyquist frequency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from mss import covers_mixture, shifts_problem, wiener_problem
from mss.audio import check_audio, resample, to_channels
from mss.bandwidth import extend_high_band
from mss.chunking import apply_overlap_add, chunk_segment, default_overlap
from mss.errors import AudioError
from mss.precision import autocast_for, precision_problem

from .runtime import flushed_denormals, inference_model
from .shift import max_shift, shift_average

#: ``on_batch(chunks done, chunks in all)``, called after each batch of chunks (progress bars)
OnBatch = Callable[[int, int], None]


@dataclass(frozen=True)
class SeparationOptions:
    """How the model runs over a song (the keyword arguments of ``separate`` and ``separate_file``).

    segment_s: chunk length (None: the model's); overlap: chunk overlap fraction; batch_size: chunks per
    forward pass (None: ``default_overlap`` of the shifts, 1/4 in one plain pass, 1/8 with the shift trick);
    device: where the model runs; shifts: None (the model's default, its config's ``shifts``), 0
    (one plain pass) or the number of shifted separations to average (``shift_average``); full_band: fill the
    band above the model's Nyquist frequency from the mixture; wiener_iterations: None (the model's own, its
    config's ``wiener_iterations``), 0 or the EM iterations of its Wiener post-filter: applied to the model by
    ``inference_model`` (``separate`` and ``separate_file`` do; ``separate_array`` runs the model it is given);
    precision: the model's number format (``mss.precision``: ``auto`` is bf16 autocast on a CPU with native
    bf16 units, else fp32).
    """

    segment_s: float | None = None
    overlap: float | None = None
    batch_size: int = 4
    device: str | torch.device = "cpu"
    shifts: int | None = None
    full_band: bool = True
    wiener_iterations: int | None = None
    precision: str = "auto"

    def __post_init__(self):
        if self.shifts is not None and (problem := shifts_problem(self.shifts)) is not None:
            raise ValueError(problem)
        if self.wiener_iterations is not None and (problem := wiener_problem(self.wiener_iterations)):
            raise ValueError(problem)
        if (problem := precision_problem(self.precision)) is not None:
            raise ValueError(problem)

    def shifts_for(self, model: nn.Module) -> int:
        """The shifted separations to average with ``model``: the options' own, else the model's default (0 for
        a module without one: any ``nn.Module`` with the separator attributes can separate). ValueError for a
        model whose own is not a valid number of shifts."""
        if self.shifts is not None:
            return self.shifts
        shifts = getattr(model, "shifts", 0)
        if (problem := shifts_problem(shifts, f"{type(model).__name__}.shifts")) is not None:
            raise ValueError(problem)
        return int(shifts)

    def overlap_for(self, model: nn.Module) -> float:
        """The chunk overlap to separate with ``model``: the options' own, else ``default_overlap`` of the shifts
        it is separated with."""
        return default_overlap(self.shifts_for(model)) if self.overlap is None else self.overlap


def _run_model(model: nn.Module, mix: Tensor, options: SeparationOptions, on_batch: OnBatch | None) -> Tensor:
    """mix (C_model, T_model) at the model's rate -> stems (S, C_model, T_model), chunk by chunk."""
    segment = chunk_segment(options.segment_s or model.segment_s, model.sample_rate)
    shifts, overlap = options.shifts_for(model), options.overlap_for(model)

    def run(chunks: Tensor) -> Tensor:
        return model(chunks.to(options.device)).float()  # (b, S, C_model, segment)

    def overlap_add(piece: Tensor, on_batch: OnBatch | None = None) -> Tensor:
        return apply_overlap_add(run, piece, segment, overlap, options.batch_size, on_batch)

    passes = iter(range(shifts))

    def shifted_pass(piece: Tensor) -> Tensor:
        """One of the shift trick's passes; progress counts the chunks of all passes."""
        done_before = next(passes)
        report = None
        if on_batch is not None:
            report = lambda done, total: on_batch(done_before * total + done, shifts * total)  # noqa: E731
        return overlap_add(piece, report)

    with flushed_denormals(), torch.inference_mode(), autocast_for(options.precision, options.device):
        if shifts > 0:
            return shift_average(shifted_pass, mix, shifts, max_shift(model.sample_rate))
        return overlap_add(mix, on_batch)


def _to_song_format(
    stems: Tensor, model_rate: int, sample_rate: int, channels: int, length: int
) -> np.ndarray:
    """stems (S, C_model, T_model) at ``model_rate`` -> (S, channels, length) float32 at ``sample_rate``."""
    out = np.zeros((stems.shape[0], channels, length), dtype=np.float32)  # (S, C, T)
    for i, stem in enumerate(stems):  # one stem at a time keeps the resampling buffers small
        stem = resample(stem, model_rate, sample_rate)[..., :length]  # (C_model, <=T)
        out[i, :, : stem.shape[-1]] = to_channels(stem, channels).numpy()
    return out


def separate_array(
    model: nn.Module,
    mix: np.ndarray,
    sample_rate: int,
    options: SeparationOptions,
    *,
    on_batch: OnBatch | None = None,
    offset: int = 0,
) -> np.ndarray:
    """mix (C, T) at ``sample_rate`` -> stems (S, C, T) at the same rate and channel count (no checks; the
    model is already on ``options.device`` in eval mode: ``inference_model``). ``offset``: where ``mix``
    starts in its song (samples), for the full-band split (``mss.bandwidth``)."""
    channels, length = mix.shape
    tensor = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32))  # (C, T)
    tensor = to_channels(tensor, model.audio_channels)  # (C_model, T)
    tensor = resample(tensor, sample_rate, model.sample_rate)  # (C_model, T_model)
    stems = _run_model(model, tensor, options, on_batch)  # (S, C_model, T_model)
    out = _to_song_format(stems, model.sample_rate, sample_rate, channels, length)  # (S, C, T)
    if options.full_band and sample_rate > model.sample_rate:  # above the model's Nyquist: from the mix
        full = extend_high_band(
            torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32)), torch.from_numpy(out),
            sample_rate, model.sample_rate, covers_mixture(model.sources), offset,
        )  # fmt: skip
        out = full.numpy()
    return out


def check_stems(model: nn.Module, stems) -> list[str]:
    """The stems asked for (a name, names, or None: all the model's), each one the model separates."""
    if stems is None:
        return list(model.sources)
    stems = [stems] if isinstance(stems, str) else list(stems)
    unknown = [s for s in stems if s not in model.sources]
    if unknown or not stems:
        raise ValueError(
            f"unknown stem(s) {unknown or stems}; this model separates {', '.join(model.sources)}"
        )
    return stems


def _as_channels_first(mix) -> np.ndarray:
    """mix (C, T) or (T,) -> (C, T) float32."""
    mix = np.asarray(mix, dtype=np.float32)
    if mix.ndim == 1:
        mix = mix[None]  # (1, T)
    if mix.ndim != 2:
        raise AudioError(f"expected audio of shape (C, T) or (T,), got {mix.shape}")
    return mix


@contextmanager
def _chunk_progress(show: bool) -> Iterator[OnBatch | None]:
    """An ``on_batch`` that moves a chunk progress bar, closed after the block; None when not ``show``."""
    if not show:
        yield None
        return
    bar = tqdm(total=0, unit="chunk", desc="separating")

    def on_batch(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield on_batch
    finally:
        bar.close()


def separate(
    model: nn.Module,
    mix,
    sample_rate: int,
    *,
    segment_s: float | None = None,
    overlap: float | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = False,
    stems=None,
    shifts: int | None = None,
    full_band: bool = True,
    offset: int = 0,
    wiener_iterations: int | None = None,
    precision: str = "auto",
) -> dict[str, np.ndarray]:
    """Separate ``mix`` ((C, T) or (T,), any rate) -> {stem: array} at the input's rate, channels, length.

    ``shifts``: None (the default: the model's own, its config's ``shifts``), 0 (one plain pass, fastest) or
    the number of randomly shifted separations to average (Demucs' shift trick: slower by that factor, a few
    tenths of a dB better for both models). ValueError outside [0, MAX_SHIFTS]. ``full_band``:
    above the model's Nyquist frequency (a 22.05 kHz model on a 44.1 kHz song) the estimates get the
    mixture's high band, split by their shares of the band below (``mss.bandwidth``); off: empty there.
    ``offset``: where ``mix`` starts in a longer song (samples), so that a span of a song gets the full-band
    split of the whole song (the browser's windows). ``wiener_iterations``: None (the default: the model's own,
    its config's ``wiener_iterations``), 0 (the network's estimates as they are) or the EM iterations of the
    multichannel Wiener post-filter (``mss.models.wiener``; ValueError for a model without one). ``precision``:
    ``auto`` (bf16 autocast on a CPU with native bf16 units, float32 elsewhere), ``fp32`` or ``bf16``
    (``mss.precision``).

    A 1-D input gives 1-D stems. AudioError for empty, non-finite or silent input. The model runs on
    ``device`` in eval mode (``inference_model``: the caller's model is not moved, its mode is restored).
    """
    names = check_stems(model, stems)
    one_dimensional = np.ndim(mix) == 1
    mix = _as_channels_first(mix)
    check_audio(mix, "input audio")
    options = SeparationOptions(
        segment_s, overlap, batch_size, device, shifts, full_band, wiener_iterations, precision
    )
    with _chunk_progress(progress) as on_batch, inference_model(model, device, wiener_iterations) as runner:
        out = separate_array(runner, mix, sample_rate, options, on_batch=on_batch, offset=offset)  # (S, C, T)
    result = {name: out[model.sources.index(name)] for name in names}
    return {k: v[0] if one_dimensional else v for k, v in result.items()}
