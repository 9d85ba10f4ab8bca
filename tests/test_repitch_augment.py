"""Random repitch of each training source (``DataConfig.repitch_semitones``, ``mss.data.augment.repitch``):
a change of speed by polyphase resampling, so pitch and tempo scale together."""

from __future__ import annotations

import numpy as np
import pytest

from mss.data import DataConfig, TrainChunks, open_db
from mss.data.augment import REPITCH_STEPS, repitch, repitch_params, repitch_span
from mss.errors import DatasetError
from training.config import TrainConfig, parse_value
from training.run_data import chunk_config

FOUR = ("vocals", "drums", "bass", "other")
RATE = 22050


def _sine(frequency: float, positions: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * frequency * positions / RATE)


@pytest.mark.parametrize("steps", [89, 94, 106, 112])
def test_a_repitched_sine_is_the_sine_at_the_new_speed_in_phase(steps):
    """440 Hz read from sample 50,000 at speed steps/100: output sample j is the sine at input position
    50,000 + j * steps / 100 (pitch times the ratio, no time offset), before and after the start."""
    signal = _sine(440.0, np.arange(200_000))[None].astype(np.float32)  # (1, T)
    start, before, length = 50_000, 1_000, 22_050
    offset, count = repitch_span(steps, before, length)
    out = repitch(signal[:, start + offset : start + offset + count], steps, before + length)
    assert out.shape == (1, before + length) and out.dtype == np.float32
    positions = start + np.arange(-before, length) * steps / REPITCH_STEPS
    np.testing.assert_allclose(out[0], _sine(440.0, positions), atol=2e-3)
    # the dominant frequency moved by the ratio: 440 -> 440 * steps / 100 (0.3 Hz bins)
    spectrum = np.abs(np.fft.rfft(out[0, before:] * np.hanning(length), n=4 * RATE))
    assert abs(np.argmax(spectrum) / 4 - 440.0 * steps / REPITCH_STEPS) < 0.5


def test_repitch_at_speed_one_is_the_input_and_span_rules_are_checked():
    audio = np.random.default_rng(0).standard_normal((2, 1_000)).astype(np.float32)
    offset, count = repitch_span(REPITCH_STEPS, 0, 800)
    assert (offset, count) == (-REPITCH_STEPS, 1_000)
    np.testing.assert_allclose(repitch(audio, REPITCH_STEPS, 800), audio[:, 100:900], atol=1e-6)
    assert repitch(audio[:, :500], 112, 800).shape == (2, 800)  # a short read is zero-padded at the end
    with pytest.raises(ValueError, match="multiple of 100"):
        repitch_span(106, 150, 800)


def test_repitch_draws_follow_the_probability_and_the_range():
    steps = repitch_params(np.random.default_rng(1), 20_000, 2.0, 0.2)
    moved = steps != REPITCH_STEPS
    assert abs(moved.mean() - 0.2) < 0.015  # a few draws round back to 100: slightly under 0.2
    low, high = np.rint(REPITCH_STEPS * 2.0 ** (np.array([-2.0, 2.0]) / 12))
    assert steps.min() == low == 89 and steps.max() == high == 112
    np.testing.assert_array_equal(repitch_params(np.random.default_rng(2), 50, 0.0, 1.0), REPITCH_STEPS)
    for semitones, probability, match in (
        (5.0, 0.2, "semitones"),
        (-1.0, 0.2, "semitones"),
        (2.0, 0.0, "probability"),
    ):
        with pytest.raises(ValueError, match=match):
            repitch_params(np.random.default_rng(0), 2, semitones, probability)


def test_both_configs_check_and_carry_the_repitch_fields():
    for fields, match in (
        (dict(repitch_semitones=4.5), "repitch_semitones"),
        (dict(repitch_semitones=-1.0), "repitch_semitones"),
        (dict(repitch_prob=0.0), "repitch_prob"),
        (dict(repitch_prob=1.5), "repitch_prob"),
    ):
        with pytest.raises(DatasetError, match=match):
            DataConfig(**fields)
        with pytest.raises(ValueError, match=match):
            TrainConfig(**fields)
    data = chunk_config(TrainConfig(repitch_semitones=2.0, repitch_prob=0.5))
    assert (data.repitch_semitones, data.repitch_prob) == (2.0, 0.5)
    assert chunk_config(TrainConfig()).repitch_semitones == 0.0  # off by default
    assert parse_value("repitch_semitones", "2") == 2.0 and parse_value("repitch_prob", "0.2") == 0.2


def test_repitched_chunks_keep_the_draws_and_resample_the_chosen_sources(tiny_dataset):
    """With every source repitched or none (probability 1, ranges that round to a change): the songs, names,
    gains and channel orders are those of the plain chunks; a moved source at output sample 100 k is the plain
    source at input sample steps * k (its start moved back only where the song would end), and the mixture
    is exactly the sum of the sources."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.5, seed=7, samples_per_epoch=8)
    plain = TrainChunks(db, DataConfig(**values), progress=False)
    moved = TrainChunks(db, DataConfig(**values, repitch_semitones=2.0, repitch_prob=1.0), progress=False)
    compared = 0
    for index in range(6):
        a, b = plain.draw(index), moved.draw(index)
        assert a["songs"] == b["songs"] and a["names"] == b["names"]
        np.testing.assert_array_equal(b["mix"], b["sources"].sum(0))
        assert a["steps"] == [REPITCH_STEPS] * len(a["names"])
        steps = b["steps"]
        assert all(89 <= step <= 112 for step in steps)
        for k, step in enumerate(steps):
            source_a, source_b = a["sources"][k], b["sources"][k]
            if step == REPITCH_STEPS or np.abs(source_a).max() < 1e-3:
                continue
            shift = a["starts"][k] - b["starts"][k]  # > 0 where the start moved back to stay in the song
            assert shift >= 0
            picks = np.arange(0, source_b.shape[-1], REPITCH_STEPS)  # output samples 100 k
            inputs = shift + picks // REPITCH_STEPS * step  # their input samples, in the plain chunk
            keep = inputs < source_a.shape[-1]
            error = source_b[:, picks[keep]] - source_a[:, inputs[keep]]
            assert np.sqrt(np.mean(error**2)) < 0.1 * np.sqrt(np.mean(source_a**2)) + 1e-4
            compared += 1
    assert compared >= 6


def test_repitch_with_the_eq_runs_the_filters_through_a_repitched_preroll(tiny_dataset):
    """With the EQ on, a repitched source's preroll is repitched too: the EQ'd chunk equals the EQ run over
    preroll and chunk in one go, within float rounding (checked by the mixture being the sum and the sources
    continuing smoothly), and the preroll is a whole number of REPITCH_STEPS samples."""
    db = open_db(tiny_dataset, "train")
    chunks = TrainChunks(
        db,
        DataConfig(
            targets=FOUR,
            segment_s=0.5,
            seed=8,
            samples_per_epoch=8,
            eq_db=6.0,
            repitch_semitones=2.0,
            repitch_prob=1.0,
        ),  # fmt: skip
        progress=False,
    )
    for index in range(4):
        item = chunks.draw(index)
        np.testing.assert_array_equal(item["mix"], item["sources"].sum(0))
        assert np.isfinite(item["sources"]).all() and np.abs(item["sources"]).max() < 10
    scale, order = np.float32(1.0), np.array([0, 1])
    track = next(t for t, song in enumerate(chunks.songs) if song.num_samples > 20_000)
    before = chunks._before(0, track, 10_000, scale, order, 106)
    assert before.shape == (2, 2_000)  # min(2048, 10,000 * 100 // 106) rounded down to a multiple of 100
    offset, count = repitch_span(106, 2_000, 0)
    assert offset == -2_226 and count == 2_226 + 106
    chunk = chunks._repitched(0, track, 10_000, 106, 0, 500)
    joined = chunks._repitched(0, track, 10_000, 106, 2_000, 500)  # the preroll and chunk in one read
    np.testing.assert_allclose(joined[:, 2_000:], chunk, atol=1e-5)
    np.testing.assert_allclose(joined[:, :2_000], before, atol=1e-5)
    assert chunks._before(0, track, 50, scale, order, 106).shape == (2, 0)  # under 100 output samples: none
