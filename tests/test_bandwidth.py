"""The high band above a model's Nyquist frequency, split from the mixture (mss.bandwidth)."""

from __future__ import annotations

import torch

from mss.audio import resample
from mss.bandwidth import extend_high_band
from mss.dsp import stft

RATE, MODEL_RATE = 44100, 22050


def band_limited(x: torch.Tensor) -> torch.Tensor:
    """What a 22.05 kHz model's estimate looks like at 44.1 kHz: down and up again."""
    return resample(resample(x, RATE, MODEL_RATE), MODEL_RATE, RATE)[..., : x.shape[-1]]


def high_energy(x: torch.Tensor) -> float:
    spec = stft(x, 2048, 512)
    return float(spec[..., 540:, :].abs().square().sum())  # above 11.6 kHz (21.5 Hz bins)


def test_a_known_split_gives_back_the_sources():
    """Two noise sources that take turns (one plays the first second, the other the second): frame by
    frame each one owns the edge band, so it gets the mixture's high band and the estimates come back full
    band, except within the energy smoothing (about 0.1 s) around the change."""
    g = torch.Generator().manual_seed(0)
    sources = torch.zeros(2, 2, 2 * RATE)  # (S, C, T)
    sources[0, :, :RATE] = torch.randn(2, RATE, generator=g)
    sources[1, :, RATE:] = 0.5 * torch.randn(2, RATE, generator=g)
    mix = sources.sum(0)
    estimates = band_limited(sources)
    assert high_energy(estimates[0]) < 1e-2 * high_energy(sources[0])  # (nearly) empty above 11 kHz before
    extended = extend_high_band(mix, estimates, RATE, MODEL_RATE, covers_mixture=True)
    for k in range(2):
        before = float((estimates[k] - sources[k]).norm() / sources[k].norm())
        after = float((extended[k] - sources[k]).norm() / sources[k].norm())
        assert after < 0.12 and after < 0.2 * before, (k, before, after)
        assert abs(high_energy(extended[k]) / high_energy(sources[k]) - 1) < 0.05


def test_covering_sources_share_the_whole_high_band_and_a_single_target_at_most_its_part():
    g = torch.Generator().manual_seed(1)
    mix = torch.randn(2, RATE, generator=g)
    estimates = band_limited(torch.stack([0.5 * mix, 0.3 * mix, 0.2 * mix]))
    extended = extend_high_band(mix, estimates, RATE, MODEL_RATE, covers_mixture=True)
    added = extended - estimates
    assert abs(high_energy(added.sum(0)) / high_energy(mix) - 1) < 0.02  # the shares add up to one
    single = extend_high_band(mix, 3 * estimates[:1], RATE, MODEL_RATE, covers_mixture=False)
    # a louder-than-the-mix estimate in the edge band gets at most the mixture's high band, not three times
    assert high_energy(single[0]) <= 1.02 * high_energy(mix)


def test_nothing_changes_when_the_song_is_at_the_models_rate():
    mix = torch.randn(2, 8000)
    estimates = torch.randn(4, 2, 8000)
    assert extend_high_band(mix, estimates, MODEL_RATE, MODEL_RATE, covers_mixture=True) is estimates
    assert extend_high_band(mix, estimates, 16000, MODEL_RATE, covers_mixture=True) is estimates


def test_a_block_with_its_offset_gets_the_whole_songs_split_away_from_its_edges():
    g = torch.Generator().manual_seed(2)
    mix = torch.randn(2, 3 * RATE, generator=g)
    estimates = band_limited(
        torch.stack([0.7 * mix, 0.3 * mix + 0.1 * torch.randn(2, 3 * RATE, generator=g)])
    )
    whole = extend_high_band(mix, estimates, RATE, MODEL_RATE, covers_mixture=True)
    lo, hi = 12345, 12345 + 2 * RATE  # not a multiple of the STFT hop
    block = extend_high_band(mix[:, lo:hi], estimates[..., lo:hi], RATE, MODEL_RATE, True, offset=lo)
    inner = slice(RATE // 4, -RATE // 4)  # beyond the STFT window and the energy smoothing at the edges
    torch.testing.assert_close(block[..., inner], whole[..., lo:hi][..., inner], atol=1e-4, rtol=0)
    unaligned = extend_high_band(mix[:, lo:hi], estimates[..., lo:hi], RATE, MODEL_RATE, True)
    assert (unaligned[..., inner] - whole[..., lo:hi][..., inner]).abs().max() > 1e-3  # the offset matters
