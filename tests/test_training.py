"""Training: config/CLI, curriculum, losses, a loss that falls, checkpoints, resume, kill, torchrun."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CPU, read_metrics, tiny_args

from mss.checkpoint import load_checkpoint, save_checkpoint
from training.config import CLI_KEYS, TrainConfig, make_config, mix_sources_for_epoch
from training.losses import (
    global_sdr,
    loss_for,
    magnitude_l1,
    masked_magnitude_l1,
    objective_for,
    waveform_l1,
)
from training.process import seeded_rng, torch_threads
from training.run import main, parse_args

REPO = Path(__file__).resolve().parents[1]


# --- configuration -----------------------------------------------------------------------------------


def test_curriculum_schedule_per_epoch():
    config = TrainConfig(stage1_epochs=2, stage2_epochs=3)
    assert [mix_sources_for_epoch(e, config) for e in range(7)] == [2, 2, 3, 3, 3, None, None]
    off = TrainConfig(curriculum=False, stage1_epochs=2, stage2_epochs=3)
    assert [mix_sources_for_epoch(e, off) for e in range(4)] == [None] * 4
    no_stage1 = TrainConfig(stage1_epochs=0, stage2_epochs=1)
    assert [mix_sources_for_epoch(e, no_stage1) for e in range(3)] == [3, None, None]
    with pytest.raises(ValueError):
        mix_sources_for_epoch(-1, config)


def test_overrides_are_parsed_by_field_type():
    config = make_config("cpu", {"lr": "3e-4", "curriculum": "off", "targets": "piano", "batch_size": "3"})
    assert config.lr == pytest.approx(3e-4) and config.curriculum is False
    assert config.targets == ("piano",) and config.batch_size == 3
    assert config.model_preset == "small" and config.threads == 1  # from the cpu preset
    assert make_config("gpu").model_preset == "large"
    _, parsed = parse_args(
        ["--model", "demucs", "--dataset", "x", "--set", "ema_decay=0.5", "--grad-clip", "2"]
    )
    assert (parsed.model, parsed.ema_decay, parsed.grad_clip) == ("demucs", 0.5, 2.0)
    with pytest.raises(ValueError, match="batch_size expects a int"):
        make_config(None, {"batch_size": "many"})
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        make_config(None, {"lr_schedule": "zigzag"})


@pytest.mark.parametrize(
    "argv",
    [
        ["--set", "learning_rate=1"],  # unknown key through --set
        ["--bogus", "3"],  # unknown option
        ["--set", "curriculum=maybe"],  # bad value
    ],
)
def test_bad_options_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(["--model", "unet", "--dataset", "x", *argv])
    assert exc.value.code == 2
    message = capsys.readouterr().err
    if "maybe" in argv[-1]:
        assert "curriculum expects on/off" in message
    else:
        assert "valid keys" in message and all(key in message for key in CLI_KEYS)


# --- losses and metrics ----------------------------------------------------------------------------


def test_losses_and_sdr_against_known_values():
    target = torch.zeros(1, 2, 2, 8)
    estimate = torch.full((1, 2, 2, 8), 0.5)
    assert float(waveform_l1(None, estimate, target)) == pytest.approx(0.5)
    reference = np.random.default_rng(0).standard_normal((2, 1000))
    assert global_sdr(reference, 0.9 * reference) == pytest.approx(20.0, abs=1e-6)  # |s|^2 / |0.1 s|^2
    assert global_sdr(reference, reference) > 80
    assert loss_for("unet") is magnitude_l1 and loss_for("demucs") is waveform_l1
    with pytest.raises(ValueError, match="known"):
        loss_for("transformer")


def test_unet_trains_on_masked_magnitudes_and_demucs_on_waveforms(one_torch_thread):
    """The UNet's training loss is L1(M * |X|, |S|), without the iSTFT/STFT round trip; Demucs' is L1 on
    waveforms. Checked on the value a real optimiser step reports."""
    from training.trainer import make_trainer

    torch.manual_seed(0)
    mix = torch.randn(2, 2, 8000)
    targets = torch.randn(2, 4, 2, 8000) * 0.25
    assert objective_for("unet").loss is masked_magnitude_l1 and objective_for("demucs").loss is waveform_l1
    for arch in ("unet", "demucs"):
        # float32 steps: the expected values below are computed in float32 (bf16 is tested on its own)
        config = make_config(
            None, {"model": arch, "model_preset": "tiny", "sample_rate": "16000", "amp": "off"}
        )
        with seeded_rng(config.seed):
            trainer = make_trainer(config, CPU, steps_per_epoch=1)
        model = trainer.model.train()  # batch statistics, as in the step
        with torch.no_grad():
            if arch == "unet":
                expected = (model.masked_magnitudes(mix) - model.magnitude(targets)).abs().mean()
                round_trip = magnitude_l1(model, model(mix), targets)  # the loss before: |STFT(iSTFT(M X))|
                assert abs(float(round_trip) - float(expected)) > 1e-3 * float(expected)
            else:
                expected = (model(mix) - targets).abs().mean()
        assert trainer.train_step(mix, targets) == pytest.approx(float(expected), rel=1e-5)


def test_run_settings_are_the_runs_own_and_restored():
    """torch_threads and seeded_rng set the thread count and the generators for a block only."""
    threads, generator = torch.get_num_threads(), torch.get_rng_state()
    with torch_threads(threads + 1), seeded_rng(5):
        assert torch.get_num_threads() == threads + 1
        first = torch.rand(3)
    with torch_threads(0), seeded_rng(5):  # 0 threads: left as they are
        assert torch.get_num_threads() == threads and torch.equal(torch.rand(3), first)
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), generator)


# --- training steps --------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "lr", "steps"), [("unet", "3e-3", 25), ("demucs", "1e-2", 120)])
def test_loss_falls_and_checkpoint_reloads(arch, lr, steps, tiny_dataset, tmp_path, one_torch_thread):
    """Overfit 4 fixed chunks: the loss of the last steps is well below the first; reload is exact."""
    from mss.data import DataConfig, TrainChunks, open_db
    from mss.models import load_model
    from training.trainer import make_trainer

    config = make_config(
        None, {"model": arch, "model_preset": "tiny", "sample_rate": "16000", "lr": lr, "warmup_steps": "0"}
    )
    chunks = TrainChunks(
        open_db(tiny_dataset, subset="train", split="train"),
        DataConfig(targets=config.targets, sample_rate=16000, segment_s=1.0, samples_per_epoch=4, seed=3),
    )
    mix, targets = (torch.stack(items) for items in zip(*[chunks[i] for i in range(4)], strict=True))
    assert mix.shape == (4, 2, 16000) and targets.shape == (4, 4, 2, 16000)
    with seeded_rng(config.seed):
        trainer = make_trainer(config, CPU, steps_per_epoch=steps)
        losses = [trainer.train_step(mix, targets) for _ in range(steps)]
    assert trainer.step == steps
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.75 * first, f"{arch} loss did not fall: {first:.5f} -> {last:.5f}"

    path = save_checkpoint(tmp_path / "model.pt", trainer.model, training_config=config.to_dict(), step=steps)
    reloaded = load_model(path)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(reloaded(mix[:2]), trainer.model(mix[:2]))


@pytest.mark.parametrize(("arch", "lr"), [("unet", "3e-3"), ("demucs", "1e-2")])
def test_bf16_training_runs_and_its_loss_stays_close_to_float32(arch, lr, tiny_dataset, one_torch_thread):
    """The same steps on the same chunks from the same weights, float32 and bfloat16 autocast: the losses
    agree within the rounding bf16 adds, the weights stay float32, and the loss falls under both."""
    from mss.data import DataConfig, TrainChunks, open_db
    from training.trainer import amp_dtype, make_trainer

    chunks = TrainChunks(
        open_db(tiny_dataset, subset="train", split="train"),
        DataConfig(sample_rate=16000, segment_s=1.0, samples_per_epoch=4, seed=3),
    )
    mix, targets = (torch.stack(items) for items in zip(*[chunks[i] for i in range(4)], strict=True))
    losses = {}
    for amp in ("off", "bf16"):
        config = make_config(None, {"model": arch, "model_preset": "tiny", "sample_rate": "16000",
                                    "lr": lr, "warmup_steps": "0", "amp": amp})  # fmt: skip
        with seeded_rng(config.seed):  # the same initial weights for both precisions
            trainer = make_trainer(config, CPU, steps_per_epoch=30)
            losses[amp] = np.array([trainer.train_step(mix, targets) for _ in range(30)])
        assert trainer.autocast_dtype == (torch.bfloat16 if amp == "bf16" else None)
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # fp32 master weights
        assert losses[amp][-5:].mean() < 0.92 * losses[amp][:5].mean(), (amp, losses[amp])
    relative = np.abs(losses["bf16"] - losses["off"]) / losses["off"]
    assert relative[0] < 0.01 and relative.mean() < 0.05, relative  # step 1: the same weights, only rounding
    assert not np.array_equal(losses["bf16"], losses["off"])  # bf16 really ran
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        amp_dtype(make_config(None, {"amp": "fp16"}), torch.device("cpu"))


# --- whole runs ------------------------------------------------------------------------------------


def test_run_writes_outputs_and_resume_matches_an_uninterrupted_run(tiny_dataset, tmp_path):
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    assert main(tiny_args(tiny_dataset, resumed, "demucs", 1)) == 0
    for name in ("best.pt", "last.pt", "metrics.jsonl", "config.json", "curves.png"):
        assert (resumed / name).stat().st_size > 0, name
    config = json.loads((resumed / "config.json").read_text())["config"]
    assert config["model"] == "demucs" and config["sample_rate"] == 16000
    [record] = read_metrics(resumed)
    assert record["epoch"] == 1 and record["step"] == 2 and record["mix_sources"] == 2
    # sources silent in the validation excerpt have no SDR; the others and their mean do
    assert "mean" in record["valid_sdr"] and set(record["valid_sdr"]) <= {
        "vocals",
        "drums",
        "bass",
        "other",
        "mean",
    }
    assert set(record["valid_sdr_mixture"]) == set(record["valid_sdr"])
    assert np.isfinite(record["valid_loss"]) and np.isfinite(record["valid_sdr"]["mean"])
    last = load_checkpoint(resumed / "last.pt")  # weights_only=True
    assert (last["epoch"], last["step"]) == (1, 2)
    assert {"optimizer", "scheduler", "ema", "rng_torch"} <= set(last)

    # the same command again without --resume refuses to overwrite the run
    assert main(tiny_args(tiny_dataset, resumed, "demucs", 1)) == 2
    assert main(tiny_args(tiny_dataset, resumed, "demucs", 2, "--resume")) == 0
    history = read_metrics(resumed)
    assert [r["epoch"] for r in history] == [1, 2] and [r["step"] for r in history] == [2, 4]
    assert load_checkpoint(resumed / "last.pt")["step"] == 4

    # resuming reproduces an uninterrupted run exactly (same seed, CPU: same losses)
    assert main(tiny_args(tiny_dataset, straight, "demucs", 2)) == 0
    reference = read_metrics(straight)
    assert [r["train_loss"] for r in reference] == [r["train_loss"] for r in history]
    assert reference[-1]["valid_sdr"] == history[-1]["valid_sdr"]


def test_killed_run_leaves_a_loadable_last_checkpoint(tiny_dataset, tmp_path):
    from mss.models import load_model

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "training.run", *tiny_args(tiny_dataset, out, "unet", 1000)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while not (out / "last.pt").exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no last.pt after 90 s"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    epoch = load_checkpoint(out / "last.pt")["epoch"]
    assert epoch >= 1
    assert load_model(out / "last.pt").sources == ("vocals", "drums", "bass", "other")
    assert main(tiny_args(tiny_dataset, out, "unet", epoch + 1, "--resume")) == 0
    history = read_metrics(out)
    assert [r["epoch"] for r in history] == list(range(1, epoch + 2))
    assert history[-1]["step"] == 2 * (epoch + 1)


def test_torchrun_two_ranks_see_different_data(tiny_dataset, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "training.run"]
    result = subprocess.run(
        [*command, *tiny_args(tiny_dataset, out, "unet", 1, "--set", "debug=on")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checksums = dict(re.findall(r"\[debug\] rank (\d) epoch 0 first-batch checksum (\d+)", result.stdout))
    assert set(checksums) == {"0", "1"} and checksums["0"] != checksums["1"]
    assert sorted(p.name for p in out.iterdir()) == [
        "best.pt",
        "config.json",
        "curves.png",
        "last.pt",
        "metrics.jsonl",
    ]
    [record] = read_metrics(out)
    assert record["step"] == 2  # 8 samples, global batch 4 split over 2 ranks
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
