"""Moving a trained UNet onto another STFT grid (mss.models.unet_regrid) and starting a run from it."""

from __future__ import annotations

import pytest
import torch
from helpers import CPU, perturbed_tiny

from mss.checkpoint import save_checkpoint
from mss.errors import CheckpointError
from mss.models import build_model, model_preset
from mss.models.unet_regrid import interpolate_bins, regrid_state_dict
from training.config import TrainConfig
from training.resume import init_weights
from training.trainer import make_trainer


def test_per_bin_values_are_interpolated_in_frequency():
    """A per-bin value that is linear in frequency stays that line on the finer grid; equal grids change
    nothing; the old bins' own frequencies keep their values exactly (every other new bin of 2x)."""
    old = 0.5 + 3.0 * torch.arange(9, dtype=torch.float32)[:, None] / 16  # n_fft 16: bins at k/16 cycles
    new = interpolate_bins(old.half(), 16, 32)  # as read from a float16 export
    assert new.shape == (17, 1) and new.dtype == torch.float32
    torch.testing.assert_close(
        new, 0.5 + 3.0 * torch.arange(17, dtype=torch.float32)[:, None] / 32, atol=2e-3, rtol=0
    )
    new = interpolate_bins(torch.nn.Parameter(old), 16, 32)  # a model's parameter, requiring grad
    torch.testing.assert_close(new[::2], old, rtol=0, atol=0)
    torch.testing.assert_close(new, 0.5 + 3.0 * torch.arange(17, dtype=torch.float32)[:, None] / 32)
    torch.testing.assert_close(interpolate_bins(old, 16, 16), old, rtol=0, atol=0)
    coarser = interpolate_bins(old, 16, 8)  # 5 bins at k/8 = bins 0, 2, 4, 6, 8 of the old grid
    torch.testing.assert_close(coarser, old[::2], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"expected \(9, 1\) per-bin values for n_fft 16"):
        interpolate_bins(old[:5], 16, 32)


def test_a_unet_moves_onto_a_finer_grid_keeping_its_convolutions():
    small = perturbed_tiny("unet")
    old = small.config
    target = build_model("unet", model_preset("unet", "tiny", sample_rate=16000, n_fft=old.n_fft * 2,
                                              hop_length=old.hop_length * 2, shifts=2))  # fmt: skip
    moved = regrid_state_dict(small.state_dict(), old, target)
    target.load_state_dict(moved)
    for key, value in small.state_dict().items():
        if key in ("input_scale", "input_offset"):
            assert moved[key].shape == (old.n_fft + 1, 1)
            torch.testing.assert_close(moved[key][::2], value, rtol=0, atol=0)  # the old bins keep theirs
        else:
            torch.testing.assert_close(moved[key], value, rtol=0, atol=0)
    mix = torch.randn(1, 2, 16000)
    with torch.no_grad():
        out = target.eval()(mix)
    assert out.shape == (1, len(old.sources), 2, 16000) and torch.isfinite(out).all()


def test_moving_refuses_another_model_or_missing_weights():
    small = perturbed_tiny("unet")
    wider = build_model("unet", model_preset("unet", "tiny", sample_rate=16000, channels=small.config.channels * 2,
                                             n_fft=small.config.n_fft * 2))  # fmt: skip
    with pytest.raises(ValueError, match=r"other fields differ \(\['channels'\]\)"):
        regrid_state_dict(small.state_dict(), small.config, wider)
    finer = build_model("unet", model_preset("unet", "tiny", sample_rate=16000, n_fft=small.config.n_fft * 2))
    state = {k: v for k, v in small.state_dict().items() if k != "output.bias"}
    with pytest.raises(ValueError, match=r"has no weight 'output\.bias'"):
        regrid_state_dict(state, small.config, finer)


def test_a_run_starts_a_finer_grid_unet_from_a_checkpoint(tmp_path, capsys):
    """init_from a UNet with model_set=n_fft=...: the run's model and EMA take the moved weights and say so;
    a Demucs-only field is still refused for a UNet."""
    small = perturbed_tiny("unet")
    start = save_checkpoint(tmp_path / "small.pt", small, step=5)
    n_fft, hop = small.config.n_fft * 2, small.config.hop_length * 2
    fields = dict(model="unet", model_preset="tiny", sample_rate=16000, segment_s=1.0, samples_per_epoch=8)
    config = TrainConfig(**fields, batch_size=4, threads=1, progress=False, real_clips=False, ema_decay=0.9,
                         model_set=(f"n_fft={n_fft}", f"hop_length={hop}"))  # fmt: skip
    trainer = make_trainer(config, CPU, steps_per_epoch=2)
    assert (trainer.model.config.n_fft, trainer.model.config.hop_length) == (n_fft, hop)
    assert init_weights(trainer, start) == 5
    out = capsys.readouterr().out
    assert (
        f"trained with n_fft={small.config.n_fft}; this run uses {n_fft} (moved onto the new STFT grid" in out
    )
    expected = regrid_state_dict(small.state_dict(), small.config, trainer.model)
    for model in (trainer.model, trainer.ema.shadow):
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0)

    other = TrainConfig(**(config.to_dict() | {"model_set": (f"n_fft={n_fft}", "channels=3")}))
    with pytest.raises(CheckpointError, match=r"cannot start from .*small\.pt.*differing fields"):
        init_weights(make_trainer(other, CPU, steps_per_epoch=2), start)
