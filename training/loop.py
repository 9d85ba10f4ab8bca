"""The training loop: epochs of random remixed chunks, validation on whole songs, checkpoints, metrics.

One process or many (torchrun + DistributedDataParallel): each rank draws different chunk indices,
validation is sharded over ranks, and only rank 0 writes files.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from mss.checkpoint import save_checkpoint
from mss.data import DataConfig, SongDataset, TrainChunks, open_db
from mss.data.datasets import collate_chunks
from mss.data.real_clips import find_real_clips, is_test_set_song, lacking_stems, load_real_clips
from mss.errors import CheckpointError, MSSError
from training import state
from training.config import TrainConfig, mix_sources_for_epoch
from training.distributed import DistContext, all_reduce_sum, barrier
from training.losses import loss_for
from training.plots import plot_curves
from training.trainer import NonFiniteLoss, Trainer, batch_checksum, make_trainer
from training.validation import best_criterion, improves, load_validation_songs, unscored_targets, validate


class TrainingDivergedError(MSSError, FloatingPointError):
    """The loss or the weights stopped being finite; nothing of the failing epoch was saved."""


def train_epoch(trainer: Trainer, loader: DataLoader, epoch: int, steps: int) -> float:
    """Run one epoch; returns the training loss averaged over all ranks' steps."""
    config, ctx = trainer.config, trainer.ctx
    trainer.network.train()
    show = ctx.is_main and config.progress
    bar = tqdm(
        total=steps,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not show,
        dynamic_ncols=True,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
    )
    total = torch.zeros(2, dtype=torch.float64)  # [sum of losses, steps]
    for batch_index, (mix, targets) in enumerate(loader):
        if config.debug and batch_index == 0:
            print(
                f"[debug] rank {ctx.rank} epoch {epoch} first-batch checksum {batch_checksum(mix)}",
                flush=True,
            )
        loss = trainer.train_step(mix, targets)
        total += torch.tensor([loss, 1.0], dtype=torch.float64)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{trainer.scheduler.get_last_lr()[0]:.2e}", refresh=False)
    bar.close()
    total = all_reduce_sum(total, ctx)
    return float(total[0] / max(1.0, float(total[1])))


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


def _check_compatible(checkpoint: dict, model: nn.Module, path: Path) -> None:
    saved, current = checkpoint.get("model_config", {}), asdict(model.config)
    diff = [key for key in current if key in saved and _plain(saved[key]) != _plain(current[key])]
    if checkpoint.get("arch") not in (None, model.arch) or diff:
        raise CheckpointError(
            f"cannot resume from {path}: it holds a different model "
            f"(arch {checkpoint.get('arch')!r}, differing fields {diff}); use another --out"
        )


def _plain(value):
    return list(value) if isinstance(value, tuple | list) else value


def train(
    config: TrainConfig,
    dataset: str | Path | None,
    out_dir: str | Path,
    ctx: DistContext,
    resume: bool = False,
) -> list[dict]:
    """Train per ``config`` on ``dataset`` (root, or None/"default"); returns the metrics history."""
    out_dir = Path(out_dir)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    last_path = out_dir / state.LAST_FILE
    if last_path.exists() and not resume:  # checked on every rank: none is left waiting for the others
        raise FileExistsError(
            f"{out_dir} already holds a run ({last_path.name}); pass --resume or another --out"
        )
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        state.remove_temp_files(out_dir)  # left by a killed run
    root = None if dataset in (None, "default") else dataset
    data_config = DataConfig(
        targets=tuple(config.targets),
        sample_rate=config.sample_rate,
        channels=config.channels,
        segment_s=config.segment_s,
        remix=config.remix,
        samples_per_epoch=config.samples_per_epoch,
        seed=config.seed,
        cache_dtype=config.cache_dtype,
    )
    chunks = TrainChunks(
        open_db(root, subset="train", split="train"),
        data_config,
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
    trainer = make_trainer(config, ctx, steps)

    history: list[dict] = []
    start_epoch, best, elapsed_before, cpu_before = 0, None, 0.0, 0.0
    if resume and last_path.exists():
        checkpoint = state.load_last(out_dir)
        _check_compatible(checkpoint, trainer.model, last_path)
        trainer.model.load_state_dict(checkpoint["state_dict"])
        trainer.optimizer.load_state_dict(checkpoint["optimizer"])
        trainer.scheduler.load_state_dict(checkpoint["scheduler"])
        trainer.scaler.load_state_dict(checkpoint["scaler"])
        if trainer.ema is not None and checkpoint.get("ema") is not None:
            trainer.ema.load_state_dict(checkpoint["ema"])
        torch.set_rng_state(checkpoint["rng_torch"])
        if torch.cuda.is_available() and checkpoint.get("rng_cuda"):
            torch.cuda.set_rng_state_all(checkpoint["rng_cuda"])
        start_epoch, trainer.step = int(checkpoint["epoch"]), int(checkpoint["step"])
        best, elapsed_before = state.best_of(checkpoint), float(checkpoint.get("elapsed_s", 0.0))
        cpu_before = float(checkpoint.get("cpu_s", 0.0))
        barrier(ctx)  # every rank has read last.pt before rank 0 may overwrite it
        if ctx.is_main:
            print(f"resuming {out_dir} at epoch {start_epoch}, step {trainer.step}", flush=True)
    elif resume and ctx.is_main:
        print(f"--resume: no {last_path} yet, starting a new run", flush=True)
    if ctx.is_main:
        # metrics.jsonl holds exactly the epochs of the checkpoint started from (none for a new run): a run
        # killed after a metrics line but before its last.pt would otherwise log that epoch twice
        history = state.truncate_metrics(out_dir, start_epoch)
        if state.saved_epoch(out_dir / state.BEST_FILE) > start_epoch:
            best = None  # best.pt holds an epoch the kill discarded: the next validated epoch replaces it
        info = {"config": config.to_dict(), "dataset": str(dataset), "world_size": ctx.world_size}
        info["device"] = str(ctx.device)
        state.write_json(out_dir / state.CONFIG_FILE, info)

    # a failing or interrupted run leaves no half-written temp files
    with state.temp_files_removed_on_failure(out_dir, ctx.is_main):
        warned = False
        run_start, cpu_start = time.monotonic(), time.process_time()
        for epoch in range(start_epoch, config.epochs):
            epoch_start = time.monotonic()
            mix_sources = mix_sources_for_epoch(epoch, config)
            chunks.set_epoch(epoch)
            chunks.set_mix_sources(mix_sources)
            try:
                train_loss = train_epoch(trainer, loader, epoch, steps)
            except NonFiniteLoss as exc:
                what = (
                    f"the training loss became {exc.loss} at epoch {epoch + 1}, step "
                    f"{exc.step - epoch * steps} of {steps} (global step {exc.step})"
                )
                raise _diverged(trainer, out_dir, what) from None
            record = {
                "epoch": epoch + 1,
                "step": trainer.step,
                "train_loss": train_loss,
                "lr": trainer.scheduler.get_last_lr()[0],
                "mix_sources": mix_sources,
                "valid_loss": None,
                "valid_sdr": {},
            }
            if (epoch + 1) % config.valid_every == 0 or epoch + 1 == config.epochs:
                record.update(
                    validate(
                        trainer.eval_model,
                        valid_songs,
                        loss_for(config.model),
                        ctx,
                        batch_size=config.valid_batch_size,
                    )
                )
                if real_songs:
                    real = validate(
                        trainer.eval_model,
                        real_songs,
                        loss_for(config.model),
                        ctx,
                        batch_size=config.valid_batch_size,
                    )
                    record["real_sdr"], record["real_sdr_mixture"] = (
                        real["valid_sdr"],
                        real["valid_sdr_mixture"],
                    )
                    record["real_clips"] = real["valid_songs"]
                if ctx.is_main and not warned:
                    _warn_unscored(record, config)
                    warned = True
            _check_finite_epoch(trainer, record, out_dir)
            record["seconds"] = time.monotonic() - epoch_start
            record["elapsed_s"] = elapsed_before + time.monotonic() - run_start
            # CPU time of this process (all its threads, validation included): the compute budget, which
            # other jobs on the machine do not inflate the way they inflate wall-clock time
            record["cpu_s"] = cpu_before + time.process_time() - cpu_start
            candidate = best_criterion(record, config.targets)
            improved = improves(candidate, best)
            if improved:
                best = candidate
            if ctx.is_main:
                history.append(record)
                # metrics first, then last.pt: a run killed in between re-does this epoch and drops the line
                state.append_metrics(out_dir, record)
                checkpoint_args = dict(training_config=config.to_dict(), epoch=epoch + 1, step=trainer.step)
                if improved:
                    save_checkpoint(
                        out_dir / state.BEST_FILE, trainer.eval_model, metrics=record, **checkpoint_args
                    )
                state.save_last(
                    out_dir,
                    trainer.model,
                    metrics=record,
                    optimizer=trainer.optimizer,
                    scheduler=trainer.scheduler,
                    scaler=trainer.scaler,
                    ema=trainer.ema,
                    best=best,
                    elapsed_s=record["elapsed_s"],
                    cpu_s=record["cpu_s"],
                    **checkpoint_args,
                )
                plot_curves(history, out_dir / state.CURVES_FILE)
                per_epoch = (time.monotonic() - run_start) / (epoch + 1 - start_epoch)
                eta_min = per_epoch * (config.epochs - epoch - 1) / 60
                print(f"{format_record(record, config.epochs)} (ETA {eta_min:.0f} min)", flush=True)
            barrier(ctx)
    return history


def _diverged(trainer: Trainer, out_dir: Path, what: str) -> TrainingDivergedError:
    """The error of a diverged run: what happened, which checkpoint is kept, the lr to lower."""
    lr, current = trainer.config.lr, trainer.scheduler.get_last_lr()[0]
    last = out_dir / state.LAST_FILE
    if last.exists():
        try:
            epoch = f" (epoch {state.load_last(out_dir)['epoch']})"
        except CheckpointError:
            epoch = ""
        kept = f"{last}{epoch} is the last good checkpoint, left as it was"
    else:
        kept = "no checkpoint was written: it diverged within the first epoch"
    return TrainingDivergedError(
        f"training diverged: {what}, at a learning rate of {current:.3g}; {kept}. "
        f"Lower the learning rate (--lr {lr:g} now), e.g. --lr {lr / 10:g}"
    )


def _check_finite_epoch(trainer: Trainer, record: dict, out_dir: Path) -> None:
    """After an epoch, before anything is saved: finite weights and validation loss."""
    epoch, step = record["epoch"], record["step"]
    if not all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters()):
        raise _diverged(trainer, out_dir, f"the weights stopped being finite in epoch {epoch} (step {step})")
    valid_loss = record.get("valid_loss")
    if valid_loss is not None and not math.isfinite(valid_loss):
        raise _diverged(trainer, out_dir, f"the validation loss became {valid_loss} after epoch {epoch}")


def _warn_unscored(record: dict, config: TrainConfig) -> None:
    missing = unscored_targets(record, config.targets)
    if record.get("valid_songs") == 0:
        print(
            "warning: no validation songs: best.pt is the last validated epoch", file=sys.stderr, flush=True
        )
    elif missing:
        cropped = f" (first {config.valid_max_s:g} s of each)" if config.valid_max_s > 0 else ""
        print(
            f"warning: validation cannot score {', '.join(missing)}: silent in all {record['valid_songs']} "
            f"validation songs{cropped}, so its SDR is undefined; best.pt is chosen by the validation loss",
            file=sys.stderr,
            flush=True,
        )


def load_real_songs(config, ctx) -> list:
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


def format_record(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']}/{epochs} step {record['step']} train {record['train_loss']:.5f}"
    if record.get("valid_loss") is not None:
        text += f" valid {record['valid_loss']:.5f}"
    sdr = record.get("valid_sdr") or {}
    if "mean" in sdr:
        mixture = (record.get("valid_sdr_mixture") or {}).get("mean", float("nan"))
        per_source = " ".join(f"{k}={v:.2f}" for k, v in sdr.items() if k != "mean")
        text += f" SDR {sdr['mean']:.2f} dB (mixture {mixture:.2f}; {per_source})"
    real = record.get("real_sdr") or {}
    if "mean" in real:
        text += f" real clips {real['mean']:.2f} dB"
    return text + f" lr {record['lr']:.2e} mix_sources {record['mix_sources']} {record['seconds']:.0f}s"
