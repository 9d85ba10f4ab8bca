"""One run's training machinery: the model built from the config, the optimiser and its schedule, mixed
precision (bf16 autocast on CUDA and on CPUs with bf16 units), the EMA, and one optimiser step.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mss.models import build_model, parse_model_settings
from mss.models import model_preset as model_preset_config
from mss.precision import cpu_has_bf16
from training.config import TrainConfig
from training.distributed import DistContext, all_reduce_sum
from training.ema import ModelEMA
from training.losses import Objective, objective_for


class NonFiniteLoss(FloatingPointError):
    """Raised by a step whose loss is NaN/inf (on any rank), before the optimiser applies it."""

    def __init__(self, loss: float, step: int):
        super().__init__(f"loss {loss} at step {step}")
        self.loss, self.step = loss, step


def build_training_model(config: TrainConfig) -> nn.Module:
    """The model named by the config, built from its model preset (``config.model_preset``: mss.models'
    tiny | small | large) at the run's rate and targets; ``level_norm=False`` gives the raw-level UNet.

    A UNet separates in chunks as long as its training chunks (``segment_s``): its receptive field in time
    (about 5.1 s at the small preset, 2.5 s either side of a frame) is longer than the cpu preset's 2-s chunks,
    so trained on them it never saw a frame without zero padding in its field, and in 6-s chunks the 2-s-trained
    UNet lost 0.38 dB on the real train clip (``python -m mss.bench.chunk``; checkpoints/history.md, the eighth
    stage). Validation, and the exported model, then separate in that length. Demucs keeps its preset's chunk
    (its LSTM reads the whole chunk; on the real clip it separates best in its 6 s)."""
    overrides: dict = parse_model_settings(config.model, config.model_set)
    if config.model == "unet":
        overrides["segment_s"] = float(config.segment_s)
        if not config.level_norm:
            overrides["level_db"] = None
    model_config = model_preset_config(
        config.model,
        config.model_preset,
        sources=tuple(config.targets),
        sample_rate=config.sample_rate,
        audio_channels=config.channels,
        **overrides,
    )
    return build_model(config.model, model_config)


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
    """A run's trainer. The initial weights are drawn from torch's default generator: seed it first
    (``training.process.seeded_rng(config.seed)``, as ``training.loop.train`` does) for the same weights
    on every rank and every run."""
    model = build_training_model(config).to(ctx.device)
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
