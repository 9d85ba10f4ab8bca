"""Training speed: optimiser steps per second and seconds of audio learnt per second, per model and precision.

``python -m training.bench [--models unet,demucs] [--presets small] [--amp off,bf16] [--threads 1]
[--device cpu|cuda|cuda:N] [--training-preset cpu|gpu]``

Each figure is a real training step of ``training.trainer``'s Trainer, in process: the remixed chunks drawn
by ``TrainChunks`` from the decoded-audio cache (data included), forward, loss, backward, gradient clip,
Adam and EMA, with the ``cpu`` training preset's batch (8 x 2 s at 22.05 kHz) unless ``--set`` says
otherwise. A few warm-up steps are run first and not counted. Run it on a quiet machine: another busy
process on the same cores slows every figure. ``--device cuda`` times the steps on a GPU (each step ends
with the loss read back, so the GPU's work is inside the timing); ``--training-preset gpu`` takes that
preset's batch and chunk length instead of the ``cpu`` preset's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import torch

from mss.data import open_db
from mss.data.datasets import TrainChunks
from training.config import make_config, parse_assignment
from training.distributed import DistContext
from training.process import seeded_rng, torch_threads
from training.run_data import chunk_config, make_loader
from training.trainer import amp_dtype, make_trainer


def bench_one(config, db, steps: int, warmup: int, device: torch.device | None = None) -> dict:
    """Time ``steps`` training steps of ``config`` (after ``warmup``) on chunks of ``db``, on ``device`` (CPU)."""
    device = device or torch.device("cpu")
    ctx = DistContext(
        rank=0, world_size=1, local_rank=0 if device.index is None else device.index, device=device
    )
    # the run's own chunks (augmentation, remixing, EQ, width included), as many as the timed steps need
    data_config = replace(chunk_config(config), samples_per_epoch=config.batch_size * (steps + warmup))
    chunks = TrainChunks(db, data_config, cache=config.cache_dir or None, progress=False)
    chunks.set_epoch(0)
    loader, per_epoch = make_loader(chunks, config, ctx)
    with seeded_rng(config.seed):  # the run's weights and draws; the caller's generators left as they were
        trainer = make_trainer(config, ctx, per_epoch)
        trainer.network.train()
        batches = iter(loader)
        for _ in range(warmup):
            trainer.train_step(*next(batches))
        wall, cpu = time.perf_counter(), time.process_time()
        losses = [trainer.train_step(*next(batches)) for _ in range(steps)]  # the data read is timed too
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    audio_per_step = config.batch_size * config.segment_s
    return {
        "device": str(device),
        "model": config.model,
        "preset": config.model_preset,
        "amp": str(amp_dtype(config, ctx.device) or "float32").replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "steps": steps,
        "s_per_step": round(wall / steps, 4),
        "steps_per_s": round(steps / wall, 3),
        "audio_s_per_s": round(steps * audio_per_step / wall, 1),
        "cpu_s_per_step": round(cpu / steps, 4),
        "mean_loss": round(sum(losses) / len(losses), 5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="default", help="dataset root, or 'default' (the embedded set)")
    parser.add_argument("--models", default="unet,demucs")
    parser.add_argument(
        "--presets", "--model-presets", dest="model_presets", default="small",
        help="model presets, comma-separated (tiny, small, large)",
    )  # fmt: skip
    parser.add_argument(
        "--amp", default="off,bf16", help="precisions to compare: off, bf16 (comma-separated)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="training option")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument(
        "--training-preset", default="cpu", choices=("cpu", "gpu"), help="batch and chunk length"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"error: --device {args.device}: no CUDA device is visible to torch", file=sys.stderr)
        return 2
    if device.type not in ("cpu", "cuda"):
        print(f"error: --device {args.device}: only cpu and cuda are supported", file=sys.stderr)
        return 2
    overrides = dict(parse_assignment(item) for item in args.set)
    db = open_db(None if args.dataset == "default" else args.dataset, subset="train", split="train")
    print(f"device {device}, training preset {args.training_preset}")
    print("model   preset  amp       threads  s/step  steps/s  audio s/s  cpu s/step")
    rows = []
    with torch_threads(args.threads):  # restored after: main() is callable in a process that goes on
        for model in args.models.split(","):
            for model_preset in args.model_presets.split(","):
                for amp in args.amp.split(","):
                    values = {**overrides, "model": model, "model_preset": model_preset, "amp": amp}
                    rows.append(_bench_row(make_config(args.training_preset, values), db, args, device))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0


def _bench_row(config, db, args: argparse.Namespace, device: torch.device) -> dict:
    """One configuration timed, and its line printed."""
    row = bench_one(config, db, args.steps, args.warmup, device)
    print(
        f"{row['model']:7s} {row['preset']:7s} {row['amp']:9s} {row['threads']:7d} "
        f"{row['s_per_step']:7.3f} {row['steps_per_s']:8.2f} {row['audio_s_per_s']:10.1f} "
        f"{row['cpu_s_per_step']:11.3f}",
        flush=True,
    )
    return row


if __name__ == "__main__":
    sys.exit(main())
