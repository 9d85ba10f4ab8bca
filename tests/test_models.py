"""Model shape contracts, presets, the UNet mask/STFT path and the Wiener option (checkpoints:
test_checkpoints.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import shift_batch_norm_statistics, tiny_model

from mss import SOURCES
from mss.checkpoint import (
    DEFAULT_CHECKPOINTS,
    load_checkpoint,
    save_checkpoint,
    write_checkpoint,
)
from mss.dsp import istft, stft
from mss.models import REGISTRY, build_model, count_parameters, load_model, model_preset
from mss.models.demucs import Demucs
from mss.models.unet import UNet

ARCHS = sorted(REGISTRY)
LENGTHS = [1, 101, 1000, 22050 + 7]


tiny = tiny_model


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("length", LENGTHS)
def test_tiny_shapes_any_length(arch, length):
    model = tiny(arch)
    mix = torch.randn(2, 2, length, generator=torch.Generator().manual_seed(length))
    with torch.inference_mode():
        stems = model(mix)
    assert stems.shape == (2, len(SOURCES), 2, length)
    assert torch.isfinite(stems).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_model_attributes_and_custom_config(arch):
    model = tiny(arch, sources=["vocals", "bass"], audio_channels=1, sample_rate=16000)
    assert model.sources == ("vocals", "bass") and isinstance(model.config.sources, tuple)
    assert (model.sample_rate, model.audio_channels, model.segment_s) == (16000, 1, 1.0)
    with torch.inference_mode():
        assert model(torch.randn(3, 1, 4000)).shape == (3, 2, 1, 4000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.depth = 9


@pytest.mark.parametrize("arch", ARCHS)
def test_small_preset_forward(arch):
    model = build_model(arch, model_preset(arch, "small")).eval()
    assert model.sample_rate == 22050 and 1e5 < count_parameters(model) < 5e7
    with torch.inference_mode():
        assert model(torch.randn(1, 2, 5000)).shape == (1, 4, 2, 5000)


def test_large_presets_construct():
    unet = build_model("unet", model_preset("unet", "large")).eval()
    assert unet.sample_rate == 44100
    with torch.inference_mode():
        assert unet(torch.randn(1, 2, 3000)).shape == (1, 4, 2, 3000)
    with torch.device("meta"):  # the paper-sized Demucs: check its size without allocating 1 GB
        demucs = build_model("demucs", model_preset("demucs", "large"))
    assert demucs.config.channels == 64 and demucs.config.depth == 6
    assert count_parameters(demucs) > count_parameters(build_model("demucs", model_preset("demucs", "small")))


def test_preset_errors():
    with pytest.raises(ValueError, match="unknown unet preset"):
        model_preset("unet", "huge")
    with pytest.raises(ValueError, match="unknown architecture"):
        model_preset("wavenet", "tiny")
    with pytest.raises(ValueError, match="nonsense"):
        model_preset("demucs", "tiny", nonsense=1)
    with pytest.raises(ValueError, match="input_norm"):
        model_preset("unet", "tiny", input_norm="zscore")


def test_count_parameters_counts_trainable_only():
    model = tiny("demucs")
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == total
    model.encoder[0].requires_grad_(False)
    assert count_parameters(model) == total - sum(p.numel() for p in model.encoder[0].parameters())


def test_stft_istft_round_trip():
    wave = torch.randn(2, 3, 12345, generator=torch.Generator().manual_seed(1))
    spec = stft(wave, 1024, 256)
    assert spec.shape == (2, 3, 513, 12345 // 256 + 1)
    assert torch.allclose(istft(spec, 1024, 256, 12345), wave, atol=1e-5)


def masked_mixture(model, mix, masks):
    """The UNet's estimate written out here, independently of the model: iSTFT(mask x X), mixture phase."""
    spec = model.spectrogram(mix).unsqueeze(1)  # (B, 1, C, F, N)
    return istft(masks * spec, model.config.n_fft, model.config.hop_length, mix.shape[-1])


def test_unet_all_pass_masks_give_back_the_mixture():
    """With the masking stage forced to all-ones (sigmoid of +inf) forward hands back the mixture, and
    with all-zeros silence: the mixture phase and the iSTFT lose nothing."""
    mix = torch.randn(2, 2, 5001, generator=torch.Generator().manual_seed(2))
    for bias, expected in ((float("inf"), mix), (float("-inf"), torch.zeros_like(mix))):
        model = tiny("unet").eval()
        with torch.no_grad():
            model.output.weight.zero_()
            model.output.bias.fill_(bias)
            stems = model(mix)
        assert stems.shape == (2, 4, 2, 5001)
        for s in range(4):
            assert torch.allclose(stems[:, s], expected, atol=1e-5)


def test_unet_masks_in_unit_interval_and_forward_uses_them():
    model = tiny("unet")
    mix = torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        masks = model.forward_masks(model.network_magnitude(mix, model.spectrogram(mix)))
        assert masks.shape == (1, 4, 2, 129, 4000 // 64 + 1)
        assert masks.min() >= 0 and masks.max() <= 1
        assert torch.allclose(model(mix), masked_mixture(model, mix, masks), atol=1e-6)


def test_unet_input_norm_log1p_is_the_affine_path_on_log_magnitudes():
    """input_norm="log1p" compresses the magnitudes before the network; "affine" feeds them as they are.
    With the same weights, the log1p model on |X| equals the affine model on log1p(|X|), and differs from
    the affine model on |X| (so the option reaches the network)."""
    mix = torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(3)) * 3.0
    log_model = tiny("unet", input_norm="log1p").eval()
    affine_model = tiny("unet", input_norm="affine").eval()
    affine_model.load_state_dict(log_model.state_dict())
    with torch.inference_mode():
        magnitude = log_model.magnitude(mix)
        log_masks = log_model.forward_masks(magnitude)
        assert torch.allclose(log_masks, affine_model.forward_masks(torch.log1p(magnitude)), atol=1e-6)
        assert (log_masks - affine_model.forward_masks(magnitude)).abs().max() > 1e-3


def test_unet_level_db_makes_the_output_follow_the_input_level():
    """With level_db the network sees every chunk at one RMS level and the masks apply to the unscaled
    mixture: separating g x mix gives g x the stems (to float precision), for quiet and loud inputs alike.
    Without it (the checkpoints before the sixth stage) the masks change with the level."""
    mix = torch.randn(2, 2, 5000, generator=torch.Generator().manual_seed(8)) * 0.1
    for level_db, follows in ((-16.0, True), (None, False)):
        model = shift_batch_norm_statistics(tiny("unet", level_db=level_db))
        with torch.inference_mode():
            stems = model(mix)
            for gain in (10 ** (-30 / 20), 10 ** (12 / 20)):
                scaled = model(mix * gain) / gain
                error = (scaled - stems).abs().max() / stems.abs().max()
                assert (error < 1e-4) == follows, (level_db, gain, float(error))


def test_unet_level_db_normalises_each_chunk_of_a_batch_on_its_own():
    """The gain is per chunk: a loud and a quiet chunk in one batch come out as each does alone."""
    model = tiny("unet")
    loud = torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(9)) * 0.3
    quiet = torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(10)) * 0.003
    with torch.inference_mode():
        together = model(torch.cat([loud, quiet]))
        for index, chunk in enumerate((loud, quiet)):
            alone = model(chunk)[0]
            assert (together[index] - alone).abs().max() < 1e-4 * alone.abs().max()


def test_unet_level_db_keeps_silence_silent_and_old_checkpoints_load_without_it(tmp_path):
    model = tiny("unet")
    assert model.config.level_db == -16.0  # the presets normalise
    with torch.inference_mode():
        silent = model(torch.zeros(1, 2, 3000))
    assert torch.equal(silent, torch.zeros_like(silent))
    # a checkpoint written before the field existed has no level_db: it rebuilds as the raw-level model
    path = save_checkpoint(tmp_path / "old.pt", model)
    payload = load_checkpoint(path)
    del payload["model_config"]["level_db"]
    write_checkpoint(tmp_path / "old.pt", payload)
    old = load_model(tmp_path / "old.pt")
    assert old.config.level_db is None
    assert old.config == dataclasses.replace(model.config, level_db=None)
    mix = torch.randn(1, 2, 3000, generator=torch.Generator().manual_seed(11)) * 0.05
    with torch.inference_mode():  # the raw-level model's masks see |X| itself, as before the field existed
        spec = old.spectrogram(mix)
        masks = old.forward_masks(spec.abs())
        expected = istft(masks * spec.unsqueeze(1), old.config.n_fft, old.config.hop_length, 3000)
        assert torch.allclose(old(mix), expected, atol=1e-6)
    for bad in (float("nan"), float("inf"), 3.0):
        with pytest.raises(ValueError, match="level_db"):
            dataclasses.replace(model.config, level_db=bad)


def test_committed_unets_normalise_the_level():
    """The app's UNets (4 stems and piano) are the level-normalised ones; the Demucs models normalise anyway."""
    from mss.checkpoint import PIANO_CHECKPOINTS

    for path in (DEFAULT_CHECKPOINTS["unet"], PIANO_CHECKPOINTS["unet"]):
        assert load_checkpoint(path)["model_config"]["level_db"] == -16.0, path


def test_unet_masked_magnitudes_share_the_forward_path():
    """forward is exactly iSTFT(M * X) and masked_magnitudes exactly M * |X|, from one mask computation."""
    model = shift_batch_norm_statistics(tiny("unet"))  # so eval and train mode differ
    n_fft, hop = model.config.n_fft, model.config.hop_length
    mix = torch.randn(2, 2, 5000, generator=torch.Generator().manual_seed(6))
    for training in (False, True):
        model.train(training)
        with torch.no_grad():
            spec = stft(mix, n_fft, hop)  # (B, C, F, N)
            masks = model.forward_masks(model.network_magnitude(mix, spec))  # (B, S, C, F, N)
            masked = model.masked_magnitudes(mix)
            assert masked.shape == (2, 4, 2, n_fft // 2 + 1, 5000 // hop + 1)
            assert torch.equal(masked, masks * spec.abs().unsqueeze(1))
            assert torch.equal(model(mix), istft(masks * spec.unsqueeze(1), n_fft, hop, 5000))
            # the spectrogram of the output is not M * |X|: the iSTFT/STFT round trip changes it
            assert not torch.allclose(model.magnitude(model(mix)), masked, atol=1e-3)
    wiener = tiny("unet", wiener_iterations=1)
    with torch.inference_mode():
        spec = stft(mix, n_fft, hop)
        expected = istft(wiener._wiener(wiener.masked_magnitudes(mix), spec), n_fft, hop, 5000)
        assert torch.equal(wiener(mix), expected)


def test_unet_wiener_option_keeps_shapes_and_sums_to_mixture():
    model = tiny("unet", wiener_iterations=1)
    plain = build_model("unet", dataclasses.replace(model.config, wiener_iterations=0)).eval()
    plain.load_state_dict(model.state_dict())
    mix = torch.randn(2, 2, 6000, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        filtered, unfiltered = model(mix), plain(mix)
    assert filtered.shape == unfiltered.shape == (2, 4, 2, 6000)
    assert torch.isfinite(filtered).all()
    assert not torch.allclose(filtered, unfiltered, atol=1e-4)
    # Wiener filters of all sources add up to the identity: the stems sum back to the mixture.
    assert torch.allclose(filtered.sum(1), mix, atol=1e-3)


def test_single_target_wiener_filters_against_the_rest_of_the_mixture():
    """A Wiener filter over one source is the identity: the piano model gets the rest of the mixture as a
    second source, so its filtered estimate is no longer the mixture, and lies near the plain mask's."""
    model = tiny("unet", sources=("piano",), wiener_iterations=1)
    plain = build_model("unet", dataclasses.replace(model.config, wiener_iterations=0)).eval()
    plain.load_state_dict(model.state_dict())
    assert model.needs_residual and not tiny("unet").needs_residual
    assert not tiny("unet", sources=("vocals", "accompaniment")).needs_residual
    mix = torch.randn(1, 2, 6000, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        filtered, unfiltered = model(mix)[:, 0], plain(mix)[:, 0]  # (1, C, T)
        # without the residual source the filter hands back the mixture itself
        spec = stft(mix, model.config.n_fft, model.config.hop_length)
        alone = istft(model._wiener(model.masked_magnitudes(mix), spec), model.config.n_fft,
                      model.config.hop_length, 6000)[:, 0]  # fmt: skip
    distance = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    assert distance(alone, mix) < 1e-3
    assert distance(filtered, mix) > 0.2  # far from the mixture
    assert distance(filtered, unfiltered) < distance(mix, unfiltered)  # closer to the mask's estimate


def test_demucs_wiener_option():
    """Demucs' post-filter: off, the output is bit-identical to the model without the option; on, the
    four stems still sum back to the mixture (filters of sources covering it add up to the identity),
    and a piano-only model is filtered against the rest of the mixture (not handed the mixture back)."""
    model = tiny("demucs", wiener_iterations=1, wiener_n_fft=256)
    plain = build_model("demucs", dataclasses.replace(model.config, wiener_iterations=0)).eval()
    plain.load_state_dict(model.state_dict())
    reference = tiny("demucs")  # the same seed and weights, built without the new fields given
    mix = torch.randn(2, 2, 6000, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        filtered, unfiltered = model(mix), plain(mix)
        assert torch.equal(unfiltered, reference(mix))
    assert filtered.shape == unfiltered.shape == (2, 4, 2, 6000) and torch.isfinite(filtered).all()
    assert not torch.allclose(filtered, unfiltered, atol=1e-4)
    assert float((filtered.sum(1) - mix).norm() / mix.norm()) < 1e-3  # the diagonal loading: not exactly 0
    piano = tiny("demucs", sources=("piano",), wiener_iterations=1, wiener_n_fft=256)
    piano_plain = build_model("demucs", dataclasses.replace(piano.config, wiener_iterations=0)).eval()
    piano_plain.load_state_dict(piano.state_dict())
    assert piano.needs_residual and not model.needs_residual
    with torch.inference_mode():
        one, raw = piano(mix)[:, 0], piano_plain(mix)[:, 0]
    distance = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    assert distance(one, mix) > 0.2 and distance(one, raw) < distance(mix, raw)
    # the training path never filters
    piano.train()
    assert torch.equal(piano(mix), piano_plain.train()(mix))


def test_demucs_valid_length_and_silence():
    model = tiny("demucs")
    for length in (1, 8, 9, 1000):
        valid = model.valid_length(length)
        assert valid >= length and model.valid_length(valid) == valid
    with torch.inference_mode():
        out = model(torch.zeros(1, 2, 777))
    assert torch.isfinite(out).all()
    assert isinstance(model, Demucs) and isinstance(tiny("unet"), UNet)
