"""A UNet on a 2x finer STFT that runs its network on pooled bins (mss.models.unet_fine), and moving a trained
UNet onto it (mss.models.unet_regrid.refine_state_dict)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import CPU, perturbed_tiny

from mss.checkpoint import save_checkpoint
from mss.dsp import stft
from mss.models import build_model, load_model, model_preset
from mss.models.unet_fine import FineHead, head_bins, pool_bins, upsample_bins
from mss.models.unet_regrid import interpolate_bins, refine_state_dict, regrid_state_dict
from training.config import TrainConfig
from training.resume import init_weights
from training.trainer import make_trainer


def test_pooling_weights_neighbouring_powers_and_the_window_energy():
    """Coarse bin k = sqrt((P[2k-1]/4 + P[2k]/2 + P[2k+1]/4) / 2), the edges repeated: a flat spectrum of 1
    pools to sqrt(1/2) everywhere; a spike of power 16 in even fine bin 4 reaches coarse bin 2 alone (half of it,
    halved: 4), one in odd fine bin 3 reaches coarse bins 1 and 2 (a quarter each, halved: 2)."""
    flat = pool_bins(torch.ones(2, 9, 3))
    assert flat.shape == (2, 5, 3)
    torch.testing.assert_close(flat, torch.full((2, 5, 3), math.sqrt(0.5)))
    even, odd = torch.zeros(9, 1), torch.zeros(9, 1)
    even[4], odd[3] = 4.0, 4.0  # magnitude 4: power 16
    torch.testing.assert_close(pool_bins(even)[:, 0], torch.tensor([0.0, 0.0, 2.0, 0.0, 0.0]))
    torch.testing.assert_close(
        pool_bins(odd)[:, 0], torch.tensor([0.0, math.sqrt(2), math.sqrt(2), 0.0, 0.0])
    )


def test_pooled_noise_reads_like_the_half_length_stft():
    """White noise: the pooled 2048-point magnitude over the 1024-point one has a median within 5% of 1."""
    torch.manual_seed(0)
    noise = 0.1 * torch.randn(2, 22050 * 4)
    coarse = stft(noise, 1024, 512).abs()  # (2, 513, N)
    pooled = pool_bins(stft(noise, 2048, 512).abs())
    assert pooled.shape == coarse.shape
    ratio = (pooled[:, 2:-2] / coarse[:, 2:-2]).median().item()
    assert 0.95 < ratio < 1.05, ratio


def test_upsampling_is_linear_in_frequency():
    coarse = torch.arange(5, dtype=torch.float32)[None, None, :, None].expand(
        1, 2, 5, 4
    )  # value = coarse bin
    fine = upsample_bins(coarse, 9)
    torch.testing.assert_close(fine[0, 1, :, 2], torch.arange(9, dtype=torch.float32) / 2)
    with pytest.raises(ValueError, match="cannot spread 5 coarse bins onto 10 fine ones"):
        upsample_bins(coarse, 10)


def test_a_new_head_changes_nothing_and_a_trained_one_only_the_low_band():
    assert head_bins(2048, 22050, 3000.0) == 279  # 3000 Hz / 10.77 Hz per bin, and bin 0
    assert head_bins(2048, 22050, 11025.0) == 1025 and head_bins(2048, 22050, 1.0) == 1
    torch.manual_seed(0)
    head = FineHead(logits=8, channels=2, width=4, bins=6)
    logits, fine = torch.randn(1, 8, 20, 7), torch.randn(1, 2, 20, 7)
    torch.testing.assert_close(head(logits, fine), logits, rtol=0, atol=0)
    with torch.no_grad():
        head.out.weight.normal_()
    out = head(logits, fine)
    assert (out[..., :6, :] - logits[..., :6, :]).abs().min() > 0
    torch.testing.assert_close(out[..., 6:, :], logits[..., 6:, :], rtol=0, atol=0)


def test_configs_refuse_a_bad_pool():
    with pytest.raises(ValueError, match="bin_pool must be one of"):
        model_preset("unet", "tiny", bin_pool=3)
    with pytest.raises(ValueError, match="n_fft a multiple of 4"):
        model_preset("unet", "tiny", n_fft=258, bin_pool=2)
    with pytest.raises(ValueError, match="fine_max_hz"):
        model_preset("unet", "tiny", sample_rate=16000, n_fft=512, bin_pool=2, fine_max_hz=9000.0)


def _fine_of(small, **overrides):
    config = dict(sample_rate=16000, n_fft=small.config.n_fft * 2, bin_pool=2, **overrides)
    return build_model("unet", model_preset("unet", "tiny", **config)).eval()


def test_a_trained_unet_moved_onto_pooled_bins_keeps_its_masks_interpolated():
    """Started from a UNet that sees every bin, the pooled-bin UNet's masks are that UNet's masks on the
    pooled magnitude, interpolated (as logits) onto the fine bins: its network and normalisation are copied, the
    fine head's normalisation is interpolated and the head adds nothing yet."""
    small = perturbed_tiny("unet")
    fine = _fine_of(small)
    moved = refine_state_dict(small.state_dict(), small.config, fine)
    fine.load_state_dict(moved)
    for key, value in small.state_dict().items():
        torch.testing.assert_close(moved[key], value, rtol=0, atol=0)
    torch.testing.assert_close(moved["fine_scale"], interpolate_bins(small.input_scale, small.config.n_fft,
                                                                     fine.config.n_fft))  # fmt: skip
    torch.manual_seed(1)
    magnitude = stft(0.1 * torch.randn(1, 2, 16000), fine.config.n_fft, fine.config.hop_length).abs()
    with torch.no_grad():
        old_logits = torch.logit(small.forward_masks(pool_bins(magnitude)).flatten(1, 2), eps=1e-7)
        expected = torch.sigmoid(upsample_bins(old_logits, magnitude.shape[-2]))
        torch.testing.assert_close(fine.forward_masks(magnitude).flatten(1, 2), expected, atol=1e-5, rtol=0)
    # regrid_state_dict hands a change of bin_pool to refine_state_dict
    for key, value in regrid_state_dict(small.state_dict(), small.config, fine).items():
        torch.testing.assert_close(value, moved[key], rtol=0, atol=0)


def test_moving_onto_pooled_bins_refuses_other_grids():
    small = perturbed_tiny("unet")
    same_fft = build_model("unet", model_preset("unet", "tiny", sample_rate=16000, bin_pool=2))
    with pytest.raises(ValueError, match="only from bin_pool 1, with n_fft doubled and the hop unchanged"):
        refine_state_dict(small.state_dict(), small.config, same_fft)
    fine = _fine_of(small)
    with pytest.raises(ValueError, match="only from bin_pool 1"):
        refine_state_dict(fine.state_dict(), fine.config, small)


def test_a_pooled_bin_unet_round_trips_through_a_checkpoint(tmp_path):
    fine = _fine_of(perturbed_tiny("unet"))
    with torch.no_grad():
        fine.fine_head.out.weight.normal_(0, 0.1)
    path = save_checkpoint(tmp_path / "fine.pt", fine, step=3)
    loaded = load_model(path)
    assert loaded.config == fine.config and loaded.fine_head.bins == fine.fine_head.bins
    mix = torch.randn(1, 2, 16000)
    with torch.no_grad():
        out = fine(mix)
        torch.testing.assert_close(loaded(mix), out)
    assert out.shape == (1, len(fine.sources), 2, 16000) and torch.isfinite(out).all()


def test_a_run_starts_a_pooled_bin_unet_from_a_checkpoint(tmp_path, capsys):
    small = perturbed_tiny("unet")
    start = save_checkpoint(tmp_path / "small.pt", small, step=5)
    n_fft = small.config.n_fft * 2
    config = TrainConfig(model="unet", model_preset="tiny", sample_rate=16000, segment_s=1.0, samples_per_epoch=8,
                         batch_size=4, threads=1, progress=False, real_clips=False, ema_decay=0.9,
                         model_set=(f"n_fft={n_fft}", "bin_pool=2"))  # fmt: skip
    trainer = make_trainer(config, CPU, steps_per_epoch=2)
    assert init_weights(trainer, start) == 5
    assert "trained with bin_pool=1; this run uses 2" in capsys.readouterr().out
    expected = refine_state_dict(small.state_dict(), small.config, trainer.model)
    for model in (trainer.model, trainer.ema.shadow):
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


def test_the_head_reads_the_fine_magnitude_below_its_band_edge():
    torch.manual_seed(0)
    head = FineHead(logits=8, channels=2, width=4, bins=6)
    with torch.no_grad():
        head.out.weight.normal_()
    logits, fine = torch.randn(1, 8, 20, 7), torch.randn(1, 2, 20, 7)
    louder = fine.clone()
    louder[..., 2, 3] += 5.0  # one fine bin inside the head's band
    changed = head(logits, louder) - head(logits, fine)
    assert changed[..., :6, :].abs().max() > 0  # its neighbours within the 5 x 3 kernels move
    torch.testing.assert_close(changed[..., 6:, :], torch.zeros_like(changed[..., 6:, :]), rtol=0, atol=0)


def test_a_trained_pooled_bin_unet_wires_its_two_normalisations():
    """With a non-zero head, the masks are sigmoid(head(upsampled network logits on the pooled magnitude,
    normalised by input_*), the fine magnitude over the window gain, normalised by fine_*))."""
    fine = _fine_of(perturbed_tiny("unet"))
    torch.manual_seed(2)
    with torch.no_grad():
        for parameter in fine.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    magnitude = stft(0.1 * torch.randn(1, 2, 16000), fine.config.n_fft, fine.config.hop_length).abs()
    with torch.no_grad():
        coarse = (torch.log1p(pool_bins(magnitude)) + fine.input_offset) * fine.input_scale
        fine_in = (torch.log1p(magnitude / math.sqrt(2)) + fine.fine_offset) * fine.fine_scale
        logits = fine.fine_head(upsample_bins(fine._network(coarse), magnitude.shape[-2]), fine_in)
        torch.testing.assert_close(fine.forward_masks(magnitude).flatten(1, 2), torch.sigmoid(logits))
        swapped = (torch.log1p(magnitude) + fine.fine_offset) * fine.fine_scale  # without the window gain
        wrong = fine.fine_head(upsample_bins(fine._network(coarse), magnitude.shape[-2]), swapped)
        assert (torch.sigmoid(wrong) - fine.forward_masks(magnitude).flatten(1, 2)).abs().max() > 1e-4


def test_a_training_step_reaches_the_head_the_network_and_both_normalisations():
    fine = _fine_of(perturbed_tiny("unet")).train()
    with torch.no_grad():
        fine.fine_head.out.weight.normal_(0, 0.1)
    loss = fine.masked_magnitudes(0.1 * torch.randn(2, 2, 16000)).mean()
    loss.backward()
    for name in ("fine_head.hidden.weight", "fine_head.out.weight", "encoder.0.0.weight", "input_scale",
                 "fine_scale"):  # fmt: skip
        grad = dict(fine.named_parameters())[name].grad
        assert grad is not None and grad.abs().max() > 0, name


def test_a_pooled_bin_unet_moves_onto_another_grid_keeping_its_pool():
    """bin_pool 2 -> 2 with n_fft doubled again: the network's per-bin values move with n_fft / 2, the head's with
    n_fft, every convolution (the head's too) is copied."""
    fine = _fine_of(perturbed_tiny("unet"))
    config = dict(sample_rate=16000, n_fft=fine.config.n_fft * 2, bin_pool=2)
    finer = build_model("unet", model_preset("unet", "tiny", **config))
    moved = regrid_state_dict(fine.state_dict(), fine.config, finer)
    finer.load_state_dict(moved)
    n_fft = fine.config.n_fft
    expected = interpolate_bins(fine.input_scale, n_fft // 2, n_fft)
    torch.testing.assert_close(moved["input_scale"], expected)
    torch.testing.assert_close(moved["fine_offset"], interpolate_bins(fine.fine_offset, n_fft, 2 * n_fft))
    torch.testing.assert_close(moved["fine_head.hidden.weight"], fine.fine_head.hidden.weight, rtol=0, atol=0)
