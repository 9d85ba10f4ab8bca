"""The number format separation runs its model in (mss.precision): bf16 autocast where the CPU computes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mss.precision
from mss.models import build_model, model_preset
from mss.precision import autocast_for, resolve_precision
from mss.separate import separate


def test_auto_is_bf16_only_on_a_cpu_with_bf16_units(monkeypatch):
    monkeypatch.setattr(mss.precision, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("auto", "cuda") == "fp32"  # CUDA keeps float32 unless asked
    monkeypatch.setattr(mss.precision, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16" and resolve_precision("fp32", "cpu") == "fp32"
    for bad in ("fp16", "", None):
        with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
            resolve_precision(bad)
    with autocast_for("bf16"):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.bfloat16
    with autocast_for("fp32"):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.float32


@pytest.mark.parametrize("arch", ["unet", "demucs"])
def test_bf16_separation_is_float32_output_within_two_percent(arch, monkeypatch):
    """bf16 autocast changes the model's arithmetic, not what comes out: float32 stems as long as the song,
    within 2% (relative error; about 35-40 dB SNR) of the float32 separation; ``auto`` is whichever this
    machine resolves it to, bit for bit."""
    torch.manual_seed(0)
    extra = {"wiener_iterations": 1} if arch == "unet" else {}
    model = build_model(arch, model_preset(arch, "tiny", sample_rate=8000, **extra)).eval()
    mix = np.random.default_rng(1).standard_normal((2, 8000 * 3 + 5)).astype(np.float32) * 0.1
    full = separate(model, mix, 8000, precision="fp32")
    half = separate(model, mix, 8000, precision="bf16")
    for name, stem in full.items():
        assert half[name].dtype == np.float32 and half[name].shape == stem.shape
        error = np.linalg.norm(half[name] - stem) / np.linalg.norm(stem)
        assert 0 < error < 2e-2, (name, error)
    for resolved in (True, False):
        monkeypatch.setattr(mss.precision, "cpu_has_bf16", lambda r=resolved: r)
        expected = half if resolved else full
        for name, stem in separate(model, mix, 8000).items():
            np.testing.assert_array_equal(stem, expected[name])
    with pytest.raises(ValueError, match="precision must be one of"):
        separate(model, mix, 8000, precision="half")
