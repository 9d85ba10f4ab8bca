"""Stacked "other" (``DataConfig.other_stack_prob``): a chunk's "other" part summed with a second song's
"other" chunk, each with its own gain, sign and channel order."""

from __future__ import annotations

import numpy as np
import pytest

from mss.data import DataConfig, TrainChunks, open_db
from mss.errors import DatasetError
from training.config import TrainConfig, parse_value
from training.run_data import chunk_config

FOUR = ("vocals", "drums", "bass", "other")


def test_both_configs_check_and_carry_the_stack_probability():
    for value in (-0.1, 1.5):
        with pytest.raises(DatasetError, match="other_stack_prob must be in \\[0, 1\\]"):
            DataConfig(other_stack_prob=value)
        with pytest.raises(ValueError, match="other_stack_prob"):
            TrainConfig(other_stack_prob=value)
    assert chunk_config(TrainConfig(other_stack_prob=0.5)).other_stack_prob == 0.5
    assert chunk_config(TrainConfig()).other_stack_prob == 0.0  # off by default
    assert parse_value("other_stack_prob", "0.5") == 0.5


def test_stacking_needs_an_other_part(tiny_dataset):
    """With an accompaniment target, "other" is inside it, not a part of its own: nothing to stack."""
    db = open_db(tiny_dataset, "train")
    config = DataConfig(targets=("vocals", "accompaniment"), other_stack_prob=0.5)
    with pytest.raises(
        DatasetError, match="no training part is the other stem.*parts: vocals, accompaniment"
    ):
        TrainChunks(db, config, progress=False)


def test_a_stacked_other_is_its_own_chunk_plus_a_second_songs(tiny_dataset):
    """With probability 1 and no gain, sign or channel draws: every other draw is the plain chunk's, the other
    target is the plain other plus the stacked song's other chunk read where ``draw`` says, and the mixture is
    the sum of the sources (so the model is asked for both instruments as "other")."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.5, seed=3, samples_per_epoch=8, gain_db=(0.0, 0.0),
                  channel_swap=False, sign_flip=False)  # fmt: skip
    plain = TrainChunks(db, DataConfig(**values), progress=False)
    stacked = TrainChunks(db, DataConfig(**values, other_stack_prob=1.0), progress=False)
    keys = [track.key for track in stacked.tracks]
    other = FOUR.index("other")
    heard = 0
    for index in range(6):
        a, b = plain.draw(index), stacked.draw(index)
        assert (a["songs"], a["starts"], a["names"]) == (b["songs"], b["starts"], b["names"])
        assert a["stacked"] == [None] * 4
        row = b["names"].index("other")
        assert [s is None for s in b["stacked"]] == [k != row for k in range(4)]
        key, start = b["stacked"][row]
        added = stacked._read(other, keys.index(key), start)  # (C, T): the second song's other chunk
        np.testing.assert_allclose(b["targets"][other], a["targets"][other] + added, atol=1e-6)
        for k, name in enumerate(b["names"]):
            if name != "other":
                np.testing.assert_array_equal(b["sources"][k], a["sources"][k])
        np.testing.assert_array_equal(b["mix"], b["sources"].sum(0))
        heard += np.abs(added).max() > 1e-3
    assert heard >= 3  # the stacked chunks were not all silence


def test_stack_draws_follow_the_probability_and_off_changes_nothing(tiny_dataset):
    """other_stack_prob = 0 gives bit for bit the chunks of a config without it; 0.5 stacks about half."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.25, seed=4, samples_per_epoch=200)
    plain = TrainChunks(db, DataConfig(**values), progress=False)
    off = TrainChunks(db, DataConfig(**values, other_stack_prob=0.0), progress=False)
    for index in range(4):
        np.testing.assert_array_equal(plain.draw(index)["mix"], off.draw(index)["mix"])
    half = TrainChunks(db, DataConfig(**values, other_stack_prob=0.5), progress=False)
    count = sum(any(s is not None for s in half.draw(index)["stacked"]) for index in range(200))
    assert 70 <= count <= 130  # binomial(200, 0.5): 5 standard deviations either side
