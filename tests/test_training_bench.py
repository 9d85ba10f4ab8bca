"""python -m training.bench: real training steps timed on the device asked for."""

from __future__ import annotations

import json

import pytest
import torch

from training.bench import main


def test_bench_times_real_steps_on_the_cpu(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--dataset", str(tiny_dataset), "--models", "demucs", "--presets", "tiny", "--amp", "off"]
    assert main([*argv, "--steps", "2", "--warmup", "1", "--device", "cpu", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["device"] == "cpu" and row["model"] == "demucs" and row["steps"] == 2
    assert row["s_per_step"] > 0 and row["mean_loss"] > 0
    assert "device cpu, training preset cpu" in capsys.readouterr().out


def test_bench_names_a_missing_gpu(tiny_dataset, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the cuda run is the device check itself")
    assert main(["--dataset", str(tiny_dataset), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert main(["--dataset", str(tiny_dataset), "--device", "mps"]) == 2
