"""Per-epoch validation on whole songs: L1 loss and a fast global SDR per source (numpy/torch).

museval's BSSEval v4 is far too slow to run every epoch; the global SDR
10 log10(|s|^2 / |s - s_hat|^2) (the SDX challenge's "new SDR") tracks it closely enough to pick the
best checkpoint. Songs are sharded over ranks and the sums all-reduced.

A target silent in every validation song (``--targets piano`` on songs without piano) has no SDR; then
best.pt is chosen by the validation loss instead (:func:`best_criterion`), and the run warns once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor, nn

from mss.errors import MSSError
from mss.separate import separate, with_wiener
from training.distributed import DistContext, all_reduce_sum
from training.losses import global_sdr

#: A reference quieter than this (RMS, dBFS) is treated as absent: its SDR is undefined and skipped.
SILENT_REFERENCE_DB = -60.0


def _is_silent(reference: np.ndarray) -> bool:
    rms = float(np.sqrt(np.mean(np.square(reference, dtype=np.float64))))
    return rms <= 10 ** (SILENT_REFERENCE_DB / 20)


def load_validation_songs(songs, ctx: DistContext, max_songs: int = 0, max_seconds: float = 0.0) -> list:
    """This rank's share (``rank::world_size``) of the first ``max_songs`` songs (0 = all), each cropped to
    its first ``max_seconds`` (0 = whole), read once and kept in memory for every epoch's validation."""
    count = len(songs) if max_songs <= 0 else min(max_songs, len(songs))
    kept = []
    for index in range(ctx.rank, count, ctx.world_size):
        try:
            song = songs[index]
        except MSSError as exc:  # a bad validation song is named and left out; the others are scored
            print(f"validation: skipping song {index + 1} of {count}: {exc}", file=sys.stderr, flush=True)
            continue
        if max_seconds > 0:
            length = int(max_seconds * song.sample_rate)
            song = replace(song, mix=song.mix[:, :length].copy(), targets=song.targets[..., :length].copy())
        kept.append(song)
    return kept


@torch.inference_mode()
def validate(
    model: nn.Module,
    songs: list,
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor],
    ctx: DistContext,
    *,
    batch_size: int = 4,
) -> dict:
    """Separate this rank's validation songs with ``model`` (eval mode); loss and SDRs averaged over all
    ranks' songs.

    ``songs``: ``Song(name, mix (C, T), targets (S, C, T), sample_rate)`` from :func:`load_validation_songs`.
    Returns ``{"valid_loss", "valid_sdr": {source: dB, "mean": dB}, "valid_sdr_mixture": {...},
    "valid_songs"}``, the mixture SDR being the score of the unprocessed mix as the estimate of every source.
    """
    sources = tuple(model.sources)
    # per source: [sum of SDR, sum of mixture SDR, number of songs where the source is present]
    sums = torch.zeros(len(sources), 3, dtype=torch.float64)
    loss_sum = torch.zeros(2, dtype=torch.float64)  # [sum of losses, number of songs]
    was_training = model.training
    model.eval()
    # one plain pass (shifts=0) of the network alone (no Wiener post-filter: a copy without it, made once), in
    # float32, whatever the model's inference defaults: validation ranks epochs, each shifted separation would
    # cost a whole separation more, and the figures stay comparable with every run's before the defaults changed
    network = with_wiener(model, 0)
    for song in songs:
        mix = np.asarray(song.mix, dtype=np.float32)  # (C, T)
        references = np.asarray(song.targets, dtype=np.float32)  # (S, C, T)
        estimates = separate(
            network,
            mix,
            song.sample_rate,
            batch_size=batch_size,
            device=str(ctx.device),
            progress=False,
            shifts=0,
            wiener_iterations=0,
            precision="fp32",
        )
        estimate = np.stack([estimates[name] for name in sources])  # (S, C, T)
        loss = loss_fn(model, torch.from_numpy(estimate)[None], torch.from_numpy(references)[None])
        loss_sum += torch.tensor([float(loss), 1.0], dtype=torch.float64)
        for s_index in range(len(sources)):
            if _is_silent(references[s_index]):
                continue
            sums[s_index, 0] += global_sdr(references[s_index], estimate[s_index])
            sums[s_index, 1] += global_sdr(references[s_index], mix)
            sums[s_index, 2] += 1
    model.train(was_training)
    sums = all_reduce_sum(sums, ctx)
    loss_sum = all_reduce_sum(loss_sum, ctx)
    result: dict = {"valid_songs": int(loss_sum[1])}
    result["valid_loss"] = float(loss_sum[0] / loss_sum[1]) if loss_sum[1] > 0 else None
    for key, column in (("valid_sdr", 0), ("valid_sdr_mixture", 1)):
        per_source = {
            name: float(sums[i, column] / sums[i, 2]) for i, name in enumerate(sources) if sums[i, 2] > 0
        }
        if per_source:
            per_source["mean"] = float(np.mean(list(per_source.values())))
        result[key] = per_source
    return result


def unscored_targets(record: dict, targets) -> list[str]:
    """Targets of a validated epoch's record without an SDR (silent in every validation song)."""
    if record.get("valid_songs") is None:  # not validated this epoch
        return []
    return [name for name in targets if name not in (record.get("valid_sdr") or {})]


def best_criterion(record: dict, targets) -> tuple[str, float] | None:
    """What ranks validated epochs for best.pt, as (criterion, score), higher is better:

    ``("sdr", mean SDR)`` when every target was scored; ``("valid_loss", -loss)`` when some target could
    not be (an SDR mean over the others would ignore it; the loss covers every target); ``("epoch",
    epoch)`` (the latest wins) when there was nothing to validate on. None for an epoch not validated.
    """
    if record.get("valid_songs") is None:
        return None
    sdr, loss = record.get("valid_sdr") or {}, record.get("valid_loss")
    if "mean" in sdr and not unscored_targets(record, targets):
        return "sdr", float(sdr["mean"])
    if loss is not None and np.isfinite(loss):
        return "valid_loss", -float(loss)
    return "epoch", float(record["epoch"])


def improves(candidate: tuple[str, float] | None, best: tuple[str, float] | None) -> bool:
    """Whether ``candidate`` beats ``best``; a change of criterion (a resumed run validating on other
    songs) starts the comparison afresh."""
    if candidate is None:
        return False
    return best is None or candidate[0] != best[0] or candidate[1] > best[1]
