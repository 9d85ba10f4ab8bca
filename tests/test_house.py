"""What the code does to its caller and its process: nothing behind their backs (issue 20's rules, tested)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from mss.files import TEMP_GLOB, atomic_path, write_text_atomic
from mss.models import build_model, model_preset
from mss.separate import denormals_flushed, flushed_denormals, inference_model, separate, separate_file


def tiny_unet():
    torch.manual_seed(0)
    return build_model("unet", model_preset("unet", "tiny"))


def test_separation_leaves_the_callers_model_and_the_cpu_setting_as_they_were(tmp_path):
    """separate and separate_file run the model in eval mode and give it back in its own mode, on its own
    device; the CPU's denormal setting they switch on while the model runs is put back."""
    torch.set_flush_denormal(False)
    model = tiny_unet().train()
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, 30000))).astype(np.float32)
    sf.write(tmp_path / "song.wav", mix.T, model.sample_rate, subtype="FLOAT")
    separate(model, mix, model.sample_rate)
    assert model.training and not denormals_flushed()
    separate_file(model, tmp_path / "song.wav", tmp_path / "out")
    assert model.training and not denormals_flushed()
    assert all(p.device.type == "cpu" for p in model.parameters())
    model.eval()
    separate_file(model, tmp_path / "song.wav", tmp_path / "out")
    assert not model.training


def test_flushed_denormals_is_on_inside_and_restores_either_setting():
    for before in (False, True):
        torch.set_flush_denormal(before)
        with flushed_denormals():
            assert denormals_flushed() or not torch.set_flush_denormal(True)  # a CPU without the setting
        assert denormals_flushed() == before
    torch.set_flush_denormal(False)


def test_inference_model_copies_a_model_to_another_device_instead_of_moving_it():
    model = tiny_unet().train()
    with inference_model(model, "meta") as runner:
        assert runner is not model and not runner.training
        assert next(runner.parameters()).device.type == "meta"
    assert model.training and next(model.parameters()).device.type == "cpu"
    with inference_model(model, "cpu") as runner:
        assert runner is model and not model.training
    assert model.training


def test_importing_the_project_switches_no_matplotlib_backend():
    """Modules that draw use matplotlib's object API; none calls matplotlib.use on import."""
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "import mss.report, mss.browser, mss.evaluation, training.plots, training.loop; "
        "print(matplotlib.get_backend())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "svg"


def test_atomic_writes_keep_the_old_file_when_a_write_fails(tmp_path):
    path = write_text_atomic(tmp_path / "results.json", "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert list(tmp_path.glob(TEMP_GLOB.format(name=path.name))) == []
    with atomic_path(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
