"""The realism gauge's uncertainty (``compare.bootstrap``, ``compare.changes``): intervals of a distance from
resampling songs, paired where two sets hold the same compositions, on statistics whose medians are known."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest

from mss.data.realism import compare
from mss.data.realism.__main__ import main
from mss.data.realism.stats import OCTAVE_CENTRES_HZ, StemStats

REAL = StemStats(
    bands_db=tuple(-10.0 for _ in OCTAVE_CENTRES_HZ),
    high_share_db=-30.0,
    flatness_db=-30.0,
    crest_db=10.0,
    lra_lu=3.0,
    correlation=0.9,
    width_db=-20.0,
    onset_rate=4.0,
    active_s=7.0,
)


def _songs(crests) -> list[StemStats]:
    """Songs like REAL but for their crest factor: the distance is that of the median crest alone."""
    return [replace(REAL, crest_db=float(c)) for c in crests]


def _distance_of_crest(crest: float) -> float:
    return compare.distance(compare.summarise(_songs([crest])), compare.summarise([REAL]))


def test_identical_songs_give_a_point_interval():
    real = compare.summarise([REAL])
    songs = _songs([14.0] * 6)
    low, high = compare.bootstrap({"a": songs}, real)["a"]
    assert low == high == pytest.approx(_distance_of_crest(14.0))


def test_interval_holds_the_distance_narrows_with_songs_and_repeats_for_a_seed():
    real = compare.summarise([REAL])
    rng = np.random.default_rng(3)
    few, many = _songs(12 + 2 * rng.standard_normal(6)), _songs(12 + 2 * rng.standard_normal(60))
    intervals = compare.bootstrap({"few": few, "many": many}, real)
    for name, songs in (("few", few), ("many", many)):
        point = compare.distance(compare.summarise(songs), real)
        assert intervals[name][0] <= point <= intervals[name][1]
    width = {name: high - low for name, (low, high) in intervals.items()}
    assert width["many"] < width["few"] / 2  # 10x the songs: about a third of the spread
    assert compare.bootstrap({"few": few}, real, seed=0) == compare.bootstrap({"few": few}, real, seed=0)
    assert compare.bootstrap({"few": few}, real, seed=0) != compare.bootstrap({"few": few}, real, seed=1)


def test_paired_change_of_the_same_songs_moved_apart():
    """Every song of ``b`` is ``a``'s with 1 dB more crest (the same compositions, rendered differently): paired,
    the change is exact in every resample whose median crest stays above the real one's, so its interval is a
    point; resampled independently (no group), the same two sets' change has a wide interval holding 0."""
    real = compare.summarise([REAL])
    crests = 13 + np.linspace(
        0, 4, 9
    )  # every song above the real crest: the distance is linear in the median
    a, b = _songs(crests), _songs(crests + 1)
    paired = compare.changes({"a": a, "b": b}, real, "a", groups={"a": 1, "b": 1})["b"]
    assert paired[0] == pytest.approx(
        1 / compare.SCALES["crest_db"] / np.sqrt(8)
    )  # 1 dB of 2, RMS over 8 terms
    assert paired[1] == pytest.approx(paired[0]) and paired[2] == pytest.approx(paired[0])
    change, low, high = compare.changes({"a": a, "b": b}, real, "a")["b"]
    assert change == pytest.approx(paired[0]) and low < 0 < high  # unpaired: the change does not show
    # a set of another size is compared too (independently); in one group it must have as many songs
    assert np.isfinite(compare.changes({"a": a, "c": a[:5]}, real, "a")["c"][1])
    with pytest.raises(ValueError, match="as many songs"):
        compare.changes({"a": a, "c": a[:5]}, real, "a", groups={"a": 1, "c": 1})


def test_paired_sets_keep_song_k_together_when_a_stem_said_nothing():
    """A song whose stem said nothing (None) in one set keeps its place, so song k stays song k in both: with
    every other song moved by 1 dB of crest, each resample's change stays near that move."""
    real = compare.summarise([REAL])
    crests = 13 + np.linspace(0, 4, 9)
    a, b = _songs(crests), _songs(crests + 1)
    b[4] = None  # the median song, silent in b
    change, low, high = compare.changes({"a": a, "b": b}, real, "a", groups={"a": 1, "b": 1})["b"]
    one_db = 1 / compare.SCALES["crest_db"] / np.sqrt(8)
    assert 0 < low <= change <= high <= 2 * one_db  # pairs kept: dropping None before resampling would not


def test_too_few_songs_give_no_interval_and_a_silent_stem_no_distance():
    real = compare.summarise([REAL])
    one = _songs([14.0])
    assert all(np.isnan(compare.bootstrap({"one": one}, real)["one"]))  # one song resamples only to itself
    silent = [None, None, None]
    assert all(np.isnan(compare.bootstrap({"silent": silent}, real)["silent"]))
    change = compare.changes({"a": _songs([12.0, 14.0, 13.0]), "silent": silent}, real, "a")["silent"]
    assert all(np.isnan(change))  # no song said anything: no change, no interval (and no crash)


def test_a_song_whose_stem_said_nothing_is_left_out():
    real = compare.summarise([REAL])
    low, high = compare.bootstrap({"a": [*_songs([14.0] * 4), None]}, real)["a"]
    assert low == high == pytest.approx(_distance_of_crest(14.0))


def test_command_line_draws(tiny_dataset, tmp_path, capsys):
    """--draws 0 writes no interval columns; a negative count is refused with the flag's name."""
    argv = ["--real", str(tiny_dataset / "train"), "--dataset", str(tiny_dataset / "train"), "--songs", "2"]
    assert main([*argv, "--draws", "0", "--out", str(tmp_path)]) == 0
    columns = next(csv.reader((tmp_path / "realism.csv").open()))
    assert "distance" in columns and "distance_lo" not in columns and "change" not in columns
    capsys.readouterr()
    assert main([*argv, "--draws", "-5"]) == 2
    assert "--draws must be 0 or more" in capsys.readouterr().err
