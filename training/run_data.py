"""What a run trains and validates on, built from its TrainConfig: the remixed training chunks and this
rank's loader over them, this rank's validation songs and real clips (each rank a disjoint share)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader, DistributedSampler

from mss.data import DataConfig, SongDataset, TrainChunks, open_db
from mss.data.datasets import collate_chunks
from mss.data.real_clips import find_real_clips, is_test_set_song, lacking_stems, load_real_clips
from training.config import TrainConfig
from training.distributed import DistContext
from training.validation import load_validation_songs


@dataclass(frozen=True)
class RunData:
    chunks: TrainChunks  # epoch and curriculum are set on it before each epoch
    loader: DataLoader  # this rank's batches: mix (B, C, T), targets (B, S, C, T)
    steps: int  # optimiser steps per epoch
    valid_songs: list  # this rank's validation songs, cropped to valid_max_s
    real_songs: list  # this rank's real MUSDB18 clips ([] unless config.real_clips)


def load_run_data(config: TrainConfig, dataset: str | Path | None, ctx: DistContext) -> RunData:
    """The data of a run on ``dataset`` (a root, or None/"default" for the embedded set)."""
    root = None if dataset in (None, "default") else dataset
    chunks = TrainChunks(
        open_db(root, subset="train", split="train"),
        chunk_config(config),
        cache=config.cache_dir or None,
        progress=config.progress and ctx.is_main,
    )
    songs = SongDataset(
        open_db(root, subset="train", split="valid"),
        tuple(config.targets),
        config.sample_rate,
        max_seconds=config.valid_max_s,  # only what is scored is read
    )
    valid_songs = load_validation_songs(songs, ctx, config.valid_songs, config.valid_max_s)
    real_songs = load_real_songs(config, ctx)
    loader, steps = make_loader(chunks, config, ctx)
    if steps == 0:
        raise ValueError("no training steps per epoch: raise samples_per_epoch or lower batch_size")
    return RunData(chunks, loader, steps, valid_songs, real_songs)


def chunk_config(config: TrainConfig) -> DataConfig:
    """The training chunks' part of a TrainConfig."""
    return DataConfig(
        targets=tuple(config.targets),
        sample_rate=config.sample_rate,
        channels=config.channels,
        segment_s=config.segment_s,
        remix=config.remix,
        remix_prob=config.remix_prob,
        eq_db=config.eq_db,
        width_min=config.width_min,
        vocals_side_db=config.vocals_side_db,
        repitch_semitones=config.repitch_semitones,
        repitch_prob=config.repitch_prob,
        other_stack_prob=config.other_stack_prob,
        samples_per_epoch=config.samples_per_epoch,
        seed=config.seed,
        cache_dtype=config.cache_dtype,
    )


def make_loader(dataset, config: TrainConfig, ctx: DistContext) -> tuple[DataLoader, int]:
    """Per-rank loader over the epoch's chunk indices; ranks take disjoint indices rank::world_size."""
    per_rank_batch = max(1, config.batch_size // ctx.world_size)
    sampler = None
    if ctx.enabled:
        sampler = DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=False, drop_last=True
        )
    loader = DataLoader(
        dataset,
        batch_size=per_rank_batch,
        sampler=sampler,
        shuffle=False,  # TrainChunks already draws a random remix per (seed, epoch, index)
        num_workers=config.num_workers,
        collate_fn=collate_chunks,  # TrainChunks writes whole batches in place: no stacking copy
        drop_last=True,
        pin_memory=ctx.device.type == "cuda",
    )
    return loader, len(loader)


def load_real_songs(config: TrainConfig, ctx: DistContext) -> list:
    """This rank's share of the real clips (mss.data.real_clips) when ``config.real_clips``; a clip that
    cannot be read is named and left out, and so is a MUSDB18 test-set song: a curve watched every epoch
    must not include one."""
    if not config.real_clips:
        return []

    def say(message: object) -> None:
        if ctx.is_main:
            print(f"real clips: not scored: {message}", file=sys.stderr, flush=True)

    lacking = lacking_stems(config.targets)
    if lacking:
        say(f"MUSDB18 has no {', '.join(lacking)} stem")
        return []
    paths = []
    for path in find_real_clips():
        if is_test_set_song(path):
            say(f"{path.name} is a MUSDB18 test-set song: never scored during training")
        else:
            paths.append(path)
    paths = paths[ctx.rank :: ctx.world_size]
    return load_real_clips(tuple(config.targets), config.sample_rate, paths, on_error=say)
