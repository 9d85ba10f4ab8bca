"""The training loop: epochs of random remixed chunks, validation on whole songs, checkpoints, metrics.

One process or many (torchrun + DistributedDataParallel): each rank draws different chunk indices,
validation is sharded over ranks, and only rank 0 writes files. The run folder it writes is described
(and read) by training.run_folder.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mss.checkpoint import save_checkpoint
from mss.errors import CheckpointError, MSSError
from training import state
from training.clock import RunClock
from training.config import TrainConfig, mix_sources_for_epoch
from training.distributed import DistContext, all_reduce_sum, barrier
from training.losses import loss_for
from training.plots import plot_curves
from training.process import seeded_rng, torch_threads
from training.resume import ResumeState, check_resumable, init_weights
from training.run_data import RunData, load_run_data
from training.run_folder import BEST_EPOCH_KEY, BEST_FILE, CONFIG_FILE, CURVES_FILE, LAST_FILE
from training.trainer import NonFiniteLoss, Trainer, batch_checksum, make_trainer
from training.validation import unscored_targets, validate


class TrainingDivergedError(MSSError, FloatingPointError):
    """The loss or the weights stopped being finite; nothing of the failing epoch was saved."""


def train(
    config: TrainConfig,
    dataset: str | Path | None,
    out_dir: str | Path,
    ctx: DistContext,
    resume: bool = False,
) -> list[dict]:
    """Train per ``config`` on ``dataset`` (root, or None/"default"); returns the metrics history.

    torch's thread count (``config.threads``) and default generators (seeded with ``config.seed``) are
    the run's own and are restored when it returns or fails."""
    out_dir = Path(out_dir)
    with torch_threads(config.threads), seeded_rng(config.seed):
        _prepare_folder(out_dir, resume, ctx)
        if resume and (out_dir / LAST_FILE).exists():
            check_resumable(out_dir, config, dataset)  # before the data: a cache build can take minutes
        data = load_run_data(config, dataset, ctx)
        trainer = make_trainer(config, ctx, data.steps)  # weights from the seed: the same on every rank
        progress = _start_state(out_dir, trainer, resume)
        run = _Run(trainer, data, out_dir, progress, _open_history(out_dir, trainer, progress, dataset))
        with state.temp_files_removed_on_failure(out_dir, ctx.is_main):
            for epoch in range(progress.epoch, config.epochs):
                run.epoch(epoch)
    return run.history


def _prepare_folder(out_dir: Path, resume: bool, ctx: DistContext) -> None:
    """Refuse to overwrite a run unless resuming; clear the temp files a killed run left."""
    last_path = out_dir / LAST_FILE
    if last_path.exists() and not resume:  # checked on every rank: none is left waiting for the others
        raise FileExistsError(
            f"{out_dir} already holds a run ({last_path.name}); pass --resume or another --out"
        )
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        state.remove_temp_files(out_dir)  # left by a killed run


def _start_state(out_dir: Path, trainer: Trainer, resume: bool) -> ResumeState:
    """A new run's state, or last.pt restored into ``trainer`` under ``resume`` when there is one."""
    ctx, last_path = trainer.ctx, out_dir / LAST_FILE
    if not (resume and last_path.exists()):
        if resume and ctx.is_main:
            print(f"--resume: no {last_path} yet, starting a new run", flush=True)
        if trainer.config.init_from:
            step = init_weights(trainer, trainer.config.init_from)
            if ctx.is_main:
                print(f"starting from the weights of {trainer.config.init_from} (step {step})", flush=True)
        return ResumeState()
    progress = ResumeState.load(out_dir, trainer)
    barrier(ctx)  # every rank has read last.pt before rank 0 may overwrite it
    if ctx.is_main:
        print(f"resuming {out_dir} at epoch {progress.epoch}, step {trainer.step}", flush=True)
    return progress


def _open_history(out_dir: Path, trainer: Trainer, progress: ResumeState, dataset) -> list[dict]:
    """Rank 0: metrics.jsonl cut back to the epochs of ``progress``, best.pt checked against them, and
    config.json written; returns the history so far ([] on the other ranks)."""
    ctx = trainer.ctx
    if not ctx.is_main:
        return []
    # metrics.jsonl holds exactly the epochs of the checkpoint started from (none for a new run): a run
    # killed after a metrics line but before its last.pt would otherwise log that epoch twice
    history = state.truncate_metrics(out_dir, progress.epoch)
    progress.check_best_file(out_dir)
    info = {"config": trainer.config.to_dict(), "dataset": str(dataset), "world_size": ctx.world_size}
    info["device"] = str(ctx.device)
    state.write_json(out_dir / CONFIG_FILE, info)
    return history


@dataclass
class _Run:
    """The epochs of one process: train, validate when due, then (rank 0) log and checkpoint."""

    trainer: Trainer
    data: RunData
    out_dir: Path
    progress: ResumeState
    history: list[dict]  # rank 0's metrics rows
    warned: bool = False  # the unscored-target warning is given once per process
    clock: RunClock = field(init=False)  # started when the epochs start: after the setup
    first_epoch: int = field(init=False)  # this process's first epoch (0-based), for the ETA

    def __post_init__(self) -> None:
        self.clock = RunClock(self.progress.elapsed_s, self.progress.cpu_s)
        self.first_epoch = self.progress.epoch

    def epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based), all of it: its metrics row, best.pt, last.pt, curves and progress line."""
        config, ctx = self.trainer.config, self.trainer.ctx
        epoch_start = time.monotonic()
        record = self._train(epoch)
        if (epoch + 1) % config.valid_every == 0 or epoch + 1 == config.epochs:
            record.update(self._validate())
            if ctx.is_main and not self.warned:
                _warn_unscored(record, config)
                self.warned = True
        _check_finite_epoch(self.trainer, record, self.out_dir)
        record["seconds"] = time.monotonic() - epoch_start
        record["elapsed_s"], record["cpu_s"] = self.clock.elapsed_s(), self.clock.cpu_s()
        improved = self.progress.update_best(record, config.targets)
        record[BEST_EPOCH_KEY] = self.progress.best_epoch  # readers never re-derive it (training.run_folder)
        if ctx.is_main:
            self._save(record, improved)
            eta = self.clock.eta_minutes(epoch + 1 - self.first_epoch, config.epochs - epoch - 1)
            print(f"{format_record(record, config.epochs)} (ETA {eta:.0f} min)", flush=True)
        barrier(ctx)

    def _train(self, epoch: int) -> dict:
        """One epoch of optimiser steps on the curriculum's mixes; the start of its metrics row."""
        trainer, data = self.trainer, self.data
        mix_sources = mix_sources_for_epoch(epoch, trainer.config)
        data.chunks.set_epoch(epoch)
        data.chunks.set_mix_sources(mix_sources)
        try:
            train_loss = train_epoch(trainer, data.loader, epoch, data.steps)
        except NonFiniteLoss as exc:
            what = (
                f"the training loss became {exc.loss} at epoch {epoch + 1}, step "
                f"{exc.step - epoch * data.steps} of {data.steps} (global step {exc.step})"
            )
            raise _diverged(trainer, self.out_dir, what) from None
        return {
            "epoch": epoch + 1,
            "step": trainer.step,
            "train_loss": train_loss,
            "lr": trainer.scheduler.get_last_lr()[0],
            "mix_sources": mix_sources,
            "valid_loss": None,
            "valid_sdr": {},
        }

    def _validate(self) -> dict:
        """The validation fields of a metrics row: the validation songs, and the real clips when scored."""
        trainer = self.trainer
        config = trainer.config

        def score(songs: list) -> dict:
            loss = loss_for(config.model)
            return validate(trainer.eval_model, songs, loss, trainer.ctx, batch_size=config.valid_batch_size)

        fields = score(self.data.valid_songs)
        if self.data.real_songs:
            real = score(self.data.real_songs)
            fields["real_sdr"], fields["real_sdr_mixture"] = real["valid_sdr"], real["valid_sdr_mixture"]
            fields["real_clips"] = real["valid_songs"]
        return fields

    def _save(self, record: dict, improved: bool) -> None:
        """Rank 0: the metrics row first, then best.pt (when improved) and last.pt: a run killed in between
        re-does this epoch and drops the row (state.truncate_metrics)."""
        trainer, out_dir = self.trainer, self.out_dir
        self.history.append(record)
        state.append_metrics(out_dir, record)
        if improved:
            save_checkpoint(
                out_dir / BEST_FILE,
                trainer.eval_model,
                metrics=record,
                training_config=trainer.config.to_dict(),
                epoch=record["epoch"],
                step=trainer.step,
            )
        self.progress.save(out_dir, trainer, record)
        plot_curves(self.history, out_dir / CURVES_FILE)


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


def _diverged(trainer: Trainer, out_dir: Path, what: str) -> TrainingDivergedError:
    """The error of a diverged run: what happened, which checkpoint is kept, the lr to lower."""
    lr, current = trainer.config.lr, trainer.scheduler.get_last_lr()[0]
    last = out_dir / LAST_FILE
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
