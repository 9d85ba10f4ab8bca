"""Stacked "other" (``DataConfig.other_stack_prob``): a chunk's "other" part summed with a second "other" chunk
drawn like any part's, with its own gain, sign and channel order."""

from __future__ import annotations

import numpy as np
import pytest
from test_eq_augment import _scale_and_order

from mss.data import DataConfig, TrainChunks, open_db
from mss.errors import DatasetError
from training.config import TrainConfig, parse_value
from training.run_data import chunk_config

FOUR = ("vocals", "drums", "bass", "other")


def test_both_configs_check_and_carry_the_stack_probability():
    for fields, match in (
        (dict(other_stack_prob=-0.1), "other_stack_prob must be in \\[0, 1\\]"),
        (dict(other_stack_prob=1.5), "other_stack_prob must be in \\[0, 1\\]"),
        (dict(other_stack_prob=0.5, remix=False), "remix=false keeps every part of a chunk in one song"),
    ):
        with pytest.raises(DatasetError, match=match):
            DataConfig(**fields)
        with pytest.raises(ValueError, match=match):
            TrainConfig(**fields)
    assert chunk_config(TrainConfig(other_stack_prob=0.5)).other_stack_prob == 0.5
    assert chunk_config(TrainConfig()).other_stack_prob == 0.0  # off by default
    assert parse_value("other_stack_prob", "0.5") == 0.5
    DataConfig(other_stack_prob=0.0, remix=False)  # off: remix=false is fine


def test_stacking_needs_an_other_part(tiny_dataset):
    """With an accompaniment target, "other" is inside it, not a part of its own: nothing to stack."""
    db = open_db(tiny_dataset, "train")
    config = DataConfig(targets=("vocals", "accompaniment"), other_stack_prob=0.5)
    with pytest.raises(
        DatasetError, match="no training part is the other stem.*parts: vocals, accompaniment"
    ):
        TrainChunks(db, config, progress=False)


@pytest.mark.parametrize("augmented", [False, True])
def test_a_stacked_other_is_its_own_chunk_plus_an_augmented_second_chunk(tiny_dataset, augmented):
    """With probability 1: every draw but the stacked chunk's is the plain chunk's (songs, starts, speeds, and
    every source but "other" bit for bit, with the EQ, width, repitch and gains on or off), the other target
    is the plain other plus the chunk ``draw`` names, scaled by its own gain and sign and in its own channel
    order, and the mixture is the sum of the sources (the model is asked for both instruments as "other")."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.5, seed=3, samples_per_epoch=8)
    if augmented:
        values.update(eq_db=6.0, width_min=0.5, repitch_semitones=2.0, repitch_prob=0.5)
    else:
        values.update(gain_db=(0.0, 0.0), channel_swap=False, sign_flip=False)
    plain = TrainChunks(db, DataConfig(**values), progress=False)
    stacked = TrainChunks(db, DataConfig(**values, other_stack_prob=1.0), progress=False)
    keys = [track.key for track in stacked.tracks]
    other = FOUR.index("other")
    heard, scales = 0, set()
    for index in range(6):
        a, b = plain.draw(index), stacked.draw(index)
        assert [a[key] for key in ("songs", "starts", "names", "steps")] == [
            b[key] for key in ("songs", "starts", "names", "steps")
        ]
        assert a["stacked"] == [None] * 4
        row = b["names"].index("other")
        assert [s is None for s in b["stacked"]] == [k != row for k in range(4)]
        for k in range(4):
            if k != row:
                np.testing.assert_array_equal(b["sources"][k], a["sources"][k])
        np.testing.assert_array_equal(b["mix"], b["sources"].sum(0))
        np.testing.assert_array_equal(b["targets"][other], b["sources"][row])
        key, start = b["stacked"][row]
        added = stacked._read(other, keys.index(key), start)  # (C, T): the second chunk as recorded
        if np.abs(added).max() < 1e-3:
            continue  # a silent chunk: no gain or channel order to recover
        scale, _ = _scale_and_order(b["targets"][other] - a["targets"][other], added)
        scales.add(round(scale, 4))
        if not augmented:
            assert scale == pytest.approx(1.0, abs=1e-5)
        else:  # gain in [-6, +3] dB, either sign
            assert 10 ** (-6.001 / 20) <= abs(scale) <= 10 ** (3.001 / 20)
        heard += 1
    assert heard >= 3  # the stacked chunks were not all silence
    assert augmented == (len(scales) > 1)  # its own gain draws when augmented


def test_stack_draws_follow_the_probability_and_off_changes_nothing(tiny_dataset):
    """other_stack_prob = 0 draws nothing: the chunks of p = 1 differ from them in the other part only (their
    songs, starts and every other source equal); 0.5 stacks about half of the chunks."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.25, seed=4, samples_per_epoch=200)
    off = TrainChunks(db, DataConfig(**values, other_stack_prob=0.0), progress=False)
    on = TrainChunks(db, DataConfig(**values, other_stack_prob=1.0), progress=False)
    for index in range(4):
        a, b = off.draw(index), on.draw(index)
        assert (a["songs"], a["starts"]) == (b["songs"], b["starts"]) and a["stacked"] == [None] * 4
        keep = [k for k, name in enumerate(a["names"]) if name != "other"]
        np.testing.assert_array_equal(a["sources"][keep], b["sources"][keep])
    half = TrainChunks(db, DataConfig(**values, other_stack_prob=0.5), progress=False)
    count = sum(any(s is not None for s in half.draw(index)["stacked"]) for index in range(200))
    assert 70 <= count <= 130  # binomial(200, 0.5): about 4.2 standard deviations either side
