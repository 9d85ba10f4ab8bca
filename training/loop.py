"""The training loop: epochs of random remixed chunks, validation on whole songs, checkpoints, metrics.

One process or many (torchrun + DistributedDataParallel): each rank draws different chunk indices,
validation is sharded over ranks, and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from mss.data.datasets import collate_chunks
from mss.errors import CheckpointError, MSSError
from training import state
from training.config import TrainConfig, mix_sources_for_epoch
from training.distributed import DistContext, all_reduce_sum, barrier
from training.ema import ModelEMA
from training.losses import Objective, loss_for, objective_for
from training.plots import plot_curves
from training.validation import best_criterion, improves, load_validation_songs, unscored_targets, validate


class TrainingDivergedError(MSSError, FloatingPointError):
    """The loss or the weights stopped being finite; nothing of the failing epoch was saved."""


class NonFiniteLoss(FloatingPointError):
    """Raised by a step whose loss is NaN/inf (on any rank), before the optimiser applies it."""

    def __init__(self, loss: float, step: int):
        super().__init__(f"loss {loss} at step {step}")
        self.loss, self.step = loss, step


def build_model(config: TrainConfig) -> nn.Module:
    """The model named by the config, built from its mss.models preset at the run's rate and targets."""
    from mss.models import build_model as build
    from mss.models import preset

    model_config = preset(
        config.model,
        config.model_preset,
        sources=tuple(config.targets),
        sample_rate=config.sample_rate,
        audio_channels=config.channels,
    )
    return build(config.model, model_config)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """Per-step LambdaLR: linear warm-up, then cosine to lr_min_ratio, step decay, or constant."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = max(0, config.warmup_steps)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.lr_schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return config.lr_min_ratio + (1 - config.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if config.lr_schedule == "step":
            return config.lr_gamma ** (step // (config.lr_step_epochs * steps_per_epoch))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX): there bf16 autocast is faster
    than float32; elsewhere PyTorch emulates it and it is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype of the forward pass (the weights, gradients and Adam stay float32).

    ``auto``: bf16 on CUDA where supported (else fp16), bf16 on a CPU with native bf16 units, else off.
    ``fp16`` needs CUDA (a gradient scaler on CPU buys nothing: use bf16 there).
    """
    if config.amp == "off":
        return None
    if device.type == "cpu":
        if config.amp == "fp16":
            raise ValueError("amp=fp16 needs a CUDA device; on a CPU use amp=bf16 (or auto, or off)")
        if config.amp == "bf16" or (config.amp == "auto" and cpu_has_bf16()):
            return torch.bfloat16
        return None
    if device.type != "cuda":
        return None
    if config.amp == "fp16":
        return torch.float16
    if config.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


class TrainingView(nn.Module):
    """Runs ``getattr(model, method)`` as its ``forward``: DistributedDataParallel syncs gradients through
    a module's ``forward`` only, and the UNet trains on ``masked_magnitudes``, not on its waveforms."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, mix: Tensor) -> Tensor:
        if self.method == "forward":
            return self.model(mix)  # through __call__, hooks included
        return getattr(self.model, self.method)(mix)


@dataclass
class Trainer:
    """The mutable pieces of a run, kept together so steps and epochs are small functions."""

    config: TrainConfig
    model: nn.Module  # the raw model (what gets saved)
    network: nn.Module  # what is called: TrainingView(model), or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    ctx: DistContext
    objective: Objective
    step: int = 0

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return amp_dtype(self.config, self.ctx.device)

    def train_step(self, mix: Tensor, targets: Tensor) -> float:
        """One optimiser step on mix (B, C, T) -> targets (B, S, C, T); returns the loss (NonFiniteLoss,
        before any update, when it is NaN/inf)."""
        mix = mix.to(self.ctx.device, non_blocking=True)
        targets = targets.to(self.ctx.device, non_blocking=True)
        dtype = self.autocast_dtype
        autocast = (
            torch.autocast(self.ctx.device.type, dtype=dtype)
            if dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            output = self.network(mix)  # stems (B, S, C, T), or the UNet's M * |X| (B, S, C, F, N)
        # the loss (an STFT of the targets for the UNet) runs in float32 outside autocast
        loss = self.objective.loss(self.model, output.float(), targets)
        value = float(loss.detach())
        # checked before the update, so the weights stay those of the last finite step; under torchrun
        # every rank learns that one rank failed, and all stop together instead of waiting for each other
        failed = torch.tensor([0.0 if math.isfinite(value) else 1.0])
        if float(all_reduce_sum(failed, self.ctx)[0]) > 0:
            raise NonFiniteLoss(value, self.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return value

    @property
    def eval_model(self) -> nn.Module:
        """The weights used for validation and best.pt: the EMA when enabled."""
        return self.ema.shadow if self.ema is not None else self.model


def make_trainer(config: TrainConfig, ctx: DistContext, steps_per_epoch: int) -> Trainer:
    torch.manual_seed(config.seed)  # same seed -> same initial weights on every rank
    model = build_model(config).to(ctx.device)
    objective = objective_for(config.model)
    network: nn.Module = TrainingView(model, objective.method)
    if ctx.enabled:
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        network = DistributedDataParallel(network, device_ids=device_ids)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    use_scaler = amp_dtype(config, ctx.device) == torch.float16
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=use_scaler)
    ema = ModelEMA(model, config.ema_decay) if config.ema_decay > 0 else None
    return Trainer(config, model, network, optimizer, scheduler, scaler, ema, ctx, objective)


def batch_checksum(mix: Tensor) -> int:
    """A short fingerprint of a batch, printed in debug mode to show that ranks see different data."""
    return zlib.crc32(mix.detach().cpu().contiguous().numpy().tobytes())


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
    from dataclasses import asdict

    saved, current = checkpoint.get("model_config", {}), asdict(model.config)
    diff = [key for key in current if key in saved and _plain(saved[key]) != _plain(current[key])]
    if checkpoint.get("arch") not in (None, model_arch_name(model)) or diff:
        raise CheckpointError(
            f"cannot resume from {path}: it holds a different model "
            f"(arch {checkpoint.get('arch')!r}, differing fields {diff}); use another --out"
        )


def _plain(value):
    return list(value) if isinstance(value, tuple | list) else value


def model_arch_name(model: nn.Module) -> str:
    from mss.models import REGISTRY

    for name, (cls, _config) in REGISTRY.items():
        if isinstance(model, cls):
            return name
    raise CheckpointError(f"{type(model).__name__} is not in mss.models.REGISTRY")


def train(
    config: TrainConfig,
    dataset: str | Path | None,
    out_dir: str | Path,
    ctx: DistContext,
    resume: bool = False,
) -> list[dict]:
    """Train per ``config`` on ``dataset`` (root, or None/"default"); returns the metrics history."""
    from mss.data import DataConfig, SongDataset, TrainChunks, open_db

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
                    from mss.checkpoint import save_checkpoint

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
    cannot be read is named and left out."""
    if not config.real_clips:
        return []
    from mss.data.real_clips import find_real_clips, lacking_stems, load_real_clips

    def say(message: object) -> None:
        if ctx.is_main:
            print(f"real clips: not scored: {message}", file=sys.stderr, flush=True)

    lacking = lacking_stems(config.targets)
    if lacking:
        say(f"MUSDB18 has no {', '.join(lacking)} stem")
        return []
    paths = find_real_clips()[ctx.rank :: ctx.world_size]
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
