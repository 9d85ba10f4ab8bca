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
from helpers import CPU, tiny_args

from mss.checkpoint import load_checkpoint, save_checkpoint
from training import state
from training.config import CLI_KEYS, TrainConfig, make_config, mix_sources_for_epoch
from training.distributed import DistContext
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
from training.run_folder import read_run

REPO = Path(__file__).resolve().parents[1]


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


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


# --- failures: bad devices, divergence, unscorable targets, kills -----------------------------------


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error: ")]
    return line


def test_unavailable_device_is_a_clear_error(tiny_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without CUDA
    assert main(tiny_args(tiny_dataset, tmp_path / "cuda", "unet", 1, "--device", "cuda")) == 2
    assert "--device cuda requested but CUDA is not available" in _one_error_line(capsys)
    assert main(tiny_args(tiny_dataset, tmp_path / "gpu", "unet", 1, "--device", "gpu")) == 2
    assert "unknown device 'gpu'" in _one_error_line(capsys)
    assert not (tmp_path / "cuda").exists()  # refused before anything was written


def test_diverging_run_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    tiny_dataset, tmp_path, capsys
):
    # lr 1e30 from the start: NaN at the second step, nothing to keep
    out = tmp_path / "nan"
    assert main(tiny_args(tiny_dataset, out, "unet", 2, "--set", "lr=1e30")) == 2
    line = _one_error_line(capsys)
    assert "training diverged: the training loss became nan at epoch 1, step 2 of 2" in line
    assert "no checkpoint was written" in line and "--lr 1e+29" in line
    assert not (out / "last.pt").exists() and not list(out.glob(".*.tmp"))
    # a sane first epoch, then a step schedule that multiplies the lr by 1e30: epoch 2 diverges
    out = tmp_path / "later"
    extra = ("--set", "lr_schedule=step", "--set", "lr_step_epochs=1", "--set", "lr_gamma=1e30")
    assert main(tiny_args(tiny_dataset, out, "demucs", 3, *extra)) == 2
    line = _one_error_line(capsys)
    assert "at epoch 2, step" in line and f"{out / 'last.pt'} (epoch 1) is the last good checkpoint" in line
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert [r["epoch"] for r in read_metrics(out)] == [1]


@pytest.fixture(scope="module")
def piano_free_validation(tiny_dataset, tmp_path_factory) -> Path:
    """The tiny dataset, but its validation song has no piano (a silent piano.wav; links to the rest)."""
    import soundfile
    import yaml

    root = tmp_path_factory.mktemp("no-piano") / "tiny"
    root.mkdir()
    [valid_song] = yaml.safe_load((tiny_dataset / "setup.yaml").read_text())["validation_tracks"]
    for item in tiny_dataset.iterdir():
        if item.name != "train":
            (root / item.name).symlink_to(item)
    (root / "train").mkdir()
    for song in (tiny_dataset / "train").iterdir():
        if song.name != valid_song:
            (root / "train" / song.name).symlink_to(song)
            continue
        (root / "train" / song.name).mkdir()
        for stem in song.iterdir():
            if stem.name == "piano.wav":
                audio, rate = soundfile.read(stem, dtype="float32")
                soundfile.write(root / "train" / song.name / stem.name, np.zeros_like(audio), rate, "FLOAT")
            else:
                (root / "train" / song.name / stem.name).symlink_to(stem)
    return root


def test_unscorable_target_still_writes_best(piano_free_validation, tmp_path, capsys):
    out = tmp_path / "piano"
    assert main(tiny_args(piano_free_validation, out, "unet", 2, "--targets", "piano")) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning: validation cannot score piano") == 1
    assert "-inf" not in captured.out and "best validation loss" in captured.out
    history = read_metrics(out)
    assert all(r["valid_sdr"] == {} and np.isfinite(r["valid_loss"]) for r in history)
    best = load_checkpoint(out / "best.pt")
    best_epoch = min(history, key=lambda r: r["valid_loss"])["epoch"]
    assert best["epoch"] == best_epoch and best["metrics"]["valid_loss"] == min(
        r["valid_loss"] for r in history
    )
    assert load_checkpoint(out / "last.pt")["best"] == ["valid_loss", -best["metrics"]["valid_loss"]]
    assert read_run(out).best_epoch == best_epoch  # chosen by the loss, as recorded


def test_best_criterion_falls_back_from_sdr_to_loss_to_epoch():
    from training.validation import best_criterion, improves

    targets = ("vocals", "piano")
    scored = {
        "epoch": 3,
        "valid_songs": 2,
        "valid_loss": 0.2,
        "valid_sdr": {"vocals": 4.0, "piano": 2.0, "mean": 3.0},
    }
    assert best_criterion(scored, targets) == ("sdr", 3.0)
    partly = {**scored, "valid_sdr": {"vocals": 4.0, "mean": 4.0}}  # piano silent in every song
    assert best_criterion(partly, targets) == ("valid_loss", -0.2)
    assert best_criterion({"epoch": 3, "valid_songs": 0, "valid_loss": None, "valid_sdr": {}}, targets) == (
        "epoch",
        3.0,
    )
    assert best_criterion({"epoch": 3, "valid_loss": None, "valid_sdr": {}}, targets) is None  # not validated
    assert improves(("valid_loss", -0.1), ("valid_loss", -0.2)) and not improves(("sdr", 1.0), ("sdr", 2.0))
    assert not improves(None, None) and improves(("epoch", 1.0), None)


@pytest.mark.parametrize("resume", [True, False])
def test_kill_before_the_first_last_checkpoint(tiny_dataset, tmp_path, resume):
    """A run killed after its first metrics line (and best.pt) but before its first last.pt, mid-way through
    writing last.pt and a second metrics line: the next run logs each epoch once and leaves no temp files."""
    out = tmp_path / "killed"
    assert main(tiny_args(tiny_dataset, out, "unet", 1)) == 0
    (out / "last.pt").unlink()  # the kill came before last.pt was in place...
    (out / ".last.pt.k2j4_x.tmp").write_bytes(b"PK\x03\x04 half a zip")  # ...while torch.save was writing it
    with open(out / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 2, "step"')  # and a torn line, as if killed during an append
    (out / ".metrics.jsonl.tmp").write_text("{}")
    (out / "notes.tmp").write_text("not ours")
    args = tiny_args(tiny_dataset, out, "unet", 3, *(["--resume"] if resume else []))
    assert main(args) == 0
    assert [r["epoch"] for r in read_metrics(out)] == [1, 2, 3]
    assert [r["step"] for r in read_metrics(out)] == [2, 4, 6]
    assert load_checkpoint(out / "last.pt")["epoch"] == 3
    assert not list(out.glob(".*.tmp")) and (out / "notes.tmp").exists()


def test_best_checkpoint_of_a_discarded_epoch_is_replaced(tiny_dataset, tmp_path):
    """Killed after writing best.pt for epoch 2 but before last.pt: the redone epoch 2 replaces best.pt
    even when it scores below epoch 1, so best.pt always holds an epoch that metrics.jsonl logs."""
    out = tmp_path / "run"
    assert main(tiny_args(tiny_dataset, out, "unet", 1)) == 0
    stale = torch.load(out / "best.pt", weights_only=True)
    stale["epoch"], stale["metrics"] = 2, {**stale["metrics"], "epoch": 2}
    torch.save(stale, out / "best.pt")
    last = torch.load(out / "last.pt", weights_only=True)
    last["best"] = ["valid_loss", 0.0]  # epoch 1 scored better than epoch 2 can
    torch.save(last, out / "last.pt")
    assert main(tiny_args(tiny_dataset, out, "unet", 2, "--resume")) == 0
    best, logged = load_checkpoint(out / "best.pt"), read_metrics(out)
    assert best["epoch"] == 2 and best["metrics"] == logged[1]
    assert read_run(out).best_epoch == 2  # recorded: a re-derivation could name epoch 1


def test_temp_files_are_removed_when_a_run_fails(tmp_path):
    (tmp_path / ".last.pt.abc.tmp").write_bytes(b"x")
    (tmp_path / ".best.pt.def.tmp").write_bytes(b"x")
    with pytest.raises(KeyboardInterrupt), state.temp_files_removed_on_failure(tmp_path):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_verdict_compares_runs_at_the_smaller_runs_budget(tmp_path):
    """training.summary --verdict: each run at the least steps and the least CPU time any run had, as
    the checkpoint it would hand on then (its best validation epoch within that budget)."""
    from training.summary import verdict_table

    def write(run: Path, rows: list[tuple[int, float, float]]) -> Path:
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"config": {"targets": ["vocals"]}}))
        records = [{"epoch": i + 1, "step": step, "cpu_s": cpu, "valid_songs": 3, "valid_loss": 1.0,
                    "valid_sdr": {"vocals": v, "mean": v}, "real_sdr": {"mean": v - 1}}
                   for i, (step, cpu, v) in enumerate(rows)]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        return run

    slow = write(tmp_path / "slow", [(100, 600.0, 1.0), (200, 1200.0, 3.0), (300, 1800.0, 2.5)])
    fast = write(tmp_path / "fast", [(100, 300.0, 0.5), (200, 600.0, 2.0), (300, 900.0, 2.2),
                                     (400, 1200.0, 4.0), (500, 1500.0, 3.9)])  # fmt: skip
    rows = [line.split(" | ") for line in verdict_table([slow, fast]).splitlines()[2:]]
    got = {(r[0].strip("| "), r[1]): (r[2], r[5]) for r in rows}
    assert got[("300 steps", "slow")] == ("2", "3.00")  # best within 300 steps: epoch 2, not the last
    assert got[("300 steps", "fast")] == ("3", "2.20")
    assert got[("25 CPU min", "fast")] == ("4", "4.00")  # the fast run's 1500 CPU s, all of it
    assert got[("25 CPU min", "slow")] == ("2", "3.00")  # the slow run within 1500 s: epochs 1 and 2


def test_validation_separates_in_one_pass_whatever_the_models_default_shifts(monkeypatch):
    """Per-epoch validation ranks epochs with one plain pass of the network alone (shifts=0, no Wiener
    post-filter): a model whose inference default is the shift trick (the small presets') or the post-filter
    (the small UNet's) validates exactly as the same weights without them, and differently from a separation
    with the defaults it would use at inference."""
    import dataclasses

    from mss.data.songs import Song
    from mss.models import build_model, model_preset
    from mss.separate import separate
    from training.validation import validate

    torch.manual_seed(0)
    config = model_preset("demucs", "tiny", sample_rate=8000)
    plain = build_model("demucs", config).eval()
    shifted = build_model("demucs", dataclasses.replace(config, shifts=3)).eval()
    shifted.load_state_dict(plain.state_dict())
    rng = np.random.default_rng(0)
    targets = (rng.standard_normal((4, 2, 8000 * 3)) * 0.1).astype(np.float32)
    songs = [Song("a", targets.sum(axis=0), targets, 8000, tuple(config.sources))]
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    record = validate(shifted, songs, waveform_l1, ctx)
    assert record == validate(plain, songs, waveform_l1, ctx)
    estimate = separate(shifted, songs[0].mix, 8000)["vocals"]  # the inference default: 3 shifts
    assert not np.allclose(estimate, separate(plain, songs[0].mix, 8000)["vocals"], atol=1e-5)
    unet_config = model_preset("unet", "tiny", sample_rate=8000)
    unet = build_model("unet", unet_config).eval()
    filtering = build_model("unet", dataclasses.replace(unet_config, wiener_iterations=1)).eval()
    filtering.load_state_dict(unet.state_dict())
    record_unet = validate(unet, songs, waveform_l1, ctx)
    assert validate(filtering, songs, waveform_l1, ctx) == validate(unet, songs, waveform_l1, ctx)
    # and in float32 whatever the CPU: bf16 autocast (mss.precision) does not reach validation figures
    import mss.precision

    monkeypatch.setattr(mss.precision, "cpu_has_bf16", lambda: True)
    assert validate(unet, songs, waveform_l1, ctx) == record_unet
    monkeypatch.setattr(mss.precision, "cpu_has_bf16", lambda: False)
    assert validate(unet, songs, waveform_l1, ctx) == record_unet
    estimate = separate(filtering, songs[0].mix, 8000)["drums"]  # the inference default: the post-filter
    assert not np.allclose(estimate, separate(unet, songs[0].mix, 8000)["drums"], atol=1e-5)
