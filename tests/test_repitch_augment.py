"""Random repitch of each training source (``DataConfig.repitch_semitones``, ``mss.data.augment.repitch``):
a change of speed by polyphase resampling, so pitch and tempo scale together."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import sosfilt
from test_eq_augment import _scale_and_order

from mss.data import DataConfig, TrainChunks, open_db
from mss.data.augment import REPITCH_STEPS, eq_params, repitch, repitch_params, repitch_span
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
    short, whole = repitch(audio[:, :500], 112, 800), repitch(audio, 112, 800)
    assert short.shape == (2, 800)  # a short read: what it covers, then zeros
    np.testing.assert_allclose(short[:, :200], whole[:, :200], atol=1e-6)
    np.testing.assert_array_equal(short[:, 350:], 0.0)  # 500 input samples give 446 outputs, 100 dropped
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
        (dict(repitch_semitones=0.05), "0 \\(off\\) or in \\[0.1, 4\\]"),  # would always round to no change
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


def _items(chunks: TrainChunks, count: int):
    for index in range(count):
        item = chunks.draw(index)
        np.testing.assert_array_equal(item["mix"], item["sources"].sum(0))
        yield item


def test_repitched_sources_stay_inside_their_song(tiny_dataset):
    """A repitched source reads ceil(T * steps / 100) samples from its start: inside the song wherever the song
    is that long (the start moved back if needed), from the song's first sample otherwise."""
    db = open_db(tiny_dataset, "train")
    config = DataConfig(targets=FOUR, segment_s=3.0, seed=9, samples_per_epoch=16, repitch_semitones=4.0,
                        repitch_prob=1.0)  # fmt: skip
    chunks = TrainChunks(db, config, progress=False)
    lengths = {track.key: song.num_samples for track, song in zip(chunks.tracks, chunks.songs, strict=True)}
    checked = 0
    for item in _items(chunks, 16):
        for key, start, step in zip(item["songs"], item["starts"], item["steps"], strict=True):
            read = -(-chunks.segment * step // REPITCH_STEPS)
            if lengths[key] >= read:
                assert 0 <= start <= lengths[key] - read
                checked += step > REPITCH_STEPS
            else:
                assert start == 0
    assert checked >= 8


def test_a_silent_anchor_is_played_as_recorded_and_remix_off_keeps_one_speed(tiny_dataset):
    """With a silence threshold no chunk can reach, every anchor comes out 'silent' at its new speed: it is
    played as recorded, sample for sample the plain chunk's anchor, while the other sources keep their speeds.
    Without remix, every part of a chunk has one speed (all recorded when the anchor reverted)."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.5, seed=10, samples_per_epoch=8, silence_threshold_db=100.0)
    plain = TrainChunks(db, DataConfig(**values), progress=False)
    moved = TrainChunks(db, DataConfig(**values, repitch_semitones=2.0, repitch_prob=1.0), progress=False)
    others = 0
    for a, b in zip(_items(plain, 6), _items(moved, 6), strict=True):
        assert b["steps"][0] == REPITCH_STEPS and b["starts"][0] == a["starts"][0]
        np.testing.assert_array_equal(b["sources"][0], a["sources"][0])
        others += sum(step != REPITCH_STEPS for step in b["steps"][1:])
    assert others >= 12
    values = dict(targets=FOUR, segment_s=0.5, seed=11, samples_per_epoch=8, remix=False)
    together = TrainChunks(db, DataConfig(**values, repitch_semitones=2.0, repitch_prob=1.0), progress=False)
    speeds = [item["steps"] for item in _items(together, 6)]
    assert all(len(set(steps)) == 1 for steps in speeds) and len({steps[0] for steps in speeds}) > 1
    values["silence_threshold_db"] = 100.0
    together = TrainChunks(db, DataConfig(**values, repitch_semitones=2.0, repitch_prob=1.0), progress=False)
    assert all(item["steps"] == [REPITCH_STEPS] * 4 for item in _items(together, 4))


def test_repitched_chunks_with_the_eq_are_the_eq_run_through_one_repitched_read(tiny_dataset):
    """Each repitched source of an EQ'd chunk equals the EQ run over one read of its 2,000-sample preroll and
    chunk, repitched together (the EQ's draws come after the repitch's)."""
    db = open_db(tiny_dataset, "train")
    values = dict(
        targets=FOUR, segment_s=0.5, seed=8, samples_per_epoch=8, repitch_semitones=2.0, repitch_prob=1.0
    )
    plain, eq = (
        TrainChunks(db, DataConfig(**values), progress=False),
        TrainChunks(db, DataConfig(**values, eq_db=6.0), progress=False),
    )
    checked = 0
    for index in range(4):
        generator = plain.rng(index)
        plain.rng = lambda _index, generator=generator: generator  # the plain draws, then the EQ's
        sources, chosen, songs, starts, steps, _ = plain._sources(index)
        sections = eq_params(generator, len(chosen), 6.0, plain.config.sample_rate)
        del plain.rng
        item = eq.draw(index)
        assert item["starts"] == starts and item["steps"] == steps
        for k, (part, track, start, step) in enumerate(zip(chosen, songs, starts, steps, strict=True)):
            if step == REPITCH_STEPS:
                continue
            joined = plain._repitched(part, track, start, step, 2_000, plain.segment)  # (C, 2000 + T)
            if np.abs(joined[:, 2_000:]).max() < 1e-4:
                continue  # a silent part: no gain or channel order to recover
            scale, order = _scale_and_order(sources[k], joined[:, 2_000:])
            whole = sosfilt(sections[k], scale * joined[order].astype(np.float64), axis=-1)
            np.testing.assert_allclose(item["sources"][k], whole[:, 2_000:], atol=2e-5)
            checked += 1
    assert checked >= 6
    # the preroll on its own: the same samples as the joined read's first 2,000, silence before the song
    scale, order = np.float32(1.0), np.array([0, 1])
    track = next(t for t, song in enumerate(plain.songs) if song.num_samples > 20_000)
    joined = plain._repitched(0, track, 10_000, 106, 2_000, 500)
    np.testing.assert_allclose(
        plain._before(0, track, 10_000, scale, order, 106), joined[:, :2_000], atol=1e-5
    )
    np.testing.assert_allclose(plain._repitched(0, track, 10_000, 106, 0, 500), joined[:, 2_000:], atol=1e-5)
    early = plain._before(0, track, 50, scale, order, 106)  # 2,000 samples, most of them before the song
    assert early.shape == (2, 2_000) and np.abs(early[:, :1_800]).max() == 0.0
