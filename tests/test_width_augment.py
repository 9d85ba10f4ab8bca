"""Random stereo width of each training source (``DataConfig.width_min``, ``mss.data.augment.narrow``) and
the stereo-image benchmark (``python -m mss.bench.stereo``) that measures what it is for."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import trained_looking_tiny

from mss.bench.stereo import SWAPPED, conditions, main, with_width
from mss.bench.sweep import summarise, sweep
from mss.checkpoint import save_checkpoint
from mss.data import DataConfig, TrainChunks, open_db
from mss.data.augment import narrow, width_params
from mss.data.songs import Song
from mss.errors import DatasetError
from mss.models import build_model, model_preset
from training.config import TrainConfig, parse_value
from training.run_data import chunk_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FOUR = ("vocals", "drums", "bass", "other")


def _correlation(x: np.ndarray) -> float:
    """Zero-lag L/R correlation of ``x (2, T)``."""
    left, right = x.astype(np.float64)
    return float(np.sum(left * right) / np.sqrt(np.sum(left**2) * np.sum(right**2)))


def test_narrow_keeps_the_mid_scales_the_side_and_folds_to_mono():
    rng = np.random.default_rng(0)
    stems = rng.standard_normal((3, 2, 1000)).astype(np.float32)  # (S, 2, T), uncorrelated channels
    mid, side = (stems[:, 0] + stems[:, 1]) / 2, (stems[:, 0] - stems[:, 1]) / 2
    out = stems.copy()
    narrow(out, np.array([1.0, 0.5, 0.0]))
    np.testing.assert_allclose((out[:, 0] + out[:, 1]) / 2, mid, atol=1e-6)
    np.testing.assert_allclose((out[:, 0] - out[:, 1]) / 2, side * np.array([1, 0.5, 0])[:, None], atol=1e-6)
    np.testing.assert_allclose(out[0], stems[0], atol=1e-6)  # width 1: as it was
    np.testing.assert_array_equal(out[2, 0], out[2, 1])  # width 0: mono
    # independent channels of equal power: correlation (1 - w^2) / (1 + w^2), so 0.6 at w = 0.5
    assert abs(_correlation(out[1]) - 0.6) < 0.1 and abs(_correlation(out[0])) < 0.1
    with pytest.raises(ValueError, match="stereo"):
        narrow(np.zeros((1, 1, 10), np.float32), np.ones(1))


def _both_configs_refuse(match: str, **fields) -> None:
    """``DataConfig(**fields)`` raises DatasetError and ``TrainConfig(**fields)`` ValueError, both matching."""
    with pytest.raises(DatasetError, match=match):
        DataConfig(**fields)
    with pytest.raises(ValueError, match=match):
        TrainConfig(**fields)


def test_width_draws_are_bounded_and_checked():
    widths = width_params(np.random.default_rng(1), 5000, 0.25)
    assert widths.min() >= 0.25 and widths.max() <= 1.0 and abs(widths.mean() - 0.625) < 0.01
    np.testing.assert_array_equal(width_params(np.random.default_rng(2), 4, 1.0), np.ones(4))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="width_min"):
            width_params(np.random.default_rng(0), 2, bad)
        _both_configs_refuse("width_min", width_min=bad)
    _both_configs_refuse("needs channels=2", channels=1, width_min=0.5)
    assert DataConfig(channels=1).width_min == 1.0  # off: a mono model is fine
    assert chunk_config(TrainConfig(width_min=0.5)).width_min == 0.5
    assert chunk_config(TrainConfig()).width_min == 1.0
    assert parse_value("width_min", "0") == 0.0  # --set width_min=0


def _paired_draws(db, values: dict, count: int, **change):
    """The first ``count`` chunks drawn with ``DataConfig(**values)`` and with ``change`` on top, in pairs."""
    plain, changed = TrainChunks(db, DataConfig(**values)), TrainChunks(db, DataConfig(**values, **change))
    for index in range(count):
        yield plain.draw(index), changed.draw(index)


def test_chunks_with_width_are_the_plain_chunks_narrowed(tiny_dataset):
    """The width is drawn after every other draw, the EQ's included: the same songs, offsets, gains, channel
    orders and EQ, each source's mid unchanged and its side scaled by one factor in [width_min, 1]; the mixture
    is exactly their sum."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.5, seed=5, samples_per_epoch=8, eq_db=3.0)
    factors = []
    for a, b in _paired_draws(db, values, 6, width_min=0.0):
        assert a["songs"] == b["songs"] and a["starts"] == b["starts"] and a["names"] == b["names"]
        np.testing.assert_allclose(b["sources"].sum(1), a["sources"].sum(1), atol=1e-5)  # the mids
        np.testing.assert_array_equal(b["mix"], b["sources"].sum(0))
        side_a = a["sources"][:, 0] - a["sources"][:, 1]  # (K, T)
        side_b = b["sources"][:, 0] - b["sources"][:, 1]
        for k in np.flatnonzero(np.abs(side_a).max(axis=1) > 1e-3):
            factor = float(np.sum(side_a[k] * side_b[k]) / np.sum(side_a[k] ** 2))
            np.testing.assert_allclose(side_b[k], factor * side_a[k], atol=1e-5)
            factors.append(factor)
    assert len(factors) >= 6 and min(factors) >= 0 and max(factors) <= 1 and np.ptp(factors) > 0.2


def test_vocals_side_db_narrows_the_vocals_alone_and_draws_nothing(tiny_dataset):
    """``vocals_side_db=10``: in every chunk the vocals' side is 10 dB lower (x 10^-0.5) and their mid is kept;
    every other source, the songs and offsets are bit for bit those of the plain chunks."""
    db = open_db(tiny_dataset, "train")
    values = dict(targets=FOUR, segment_s=0.5, seed=6, samples_per_epoch=8)
    checked = 0
    for a, b in _paired_draws(db, values, 6, vocals_side_db=10):
        assert a["songs"] == b["songs"] and a["starts"] == b["starts"] and a["names"] == b["names"]
        np.testing.assert_array_equal(a["targets"][1:], b["targets"][1:])  # drums, bass, other untouched
        np.testing.assert_array_equal(b["mix"], b["sources"].sum(0))
        vocals_a, vocals_b = a["targets"][0], b["targets"][0]  # (C, T)
        np.testing.assert_allclose(vocals_b.sum(0), vocals_a.sum(0), atol=1e-5)  # the mid
        side_a, side_b = vocals_a[0] - vocals_a[1], vocals_b[0] - vocals_b[1]
        np.testing.assert_allclose(side_b, side_a * 10 ** (-10 / 20), atol=1e-5)
        checked += np.abs(side_a).max() > 1e-3
    assert checked >= 3
    for bad in (-1.0, 41.0):
        _both_configs_refuse("vocals_side_db", vocals_side_db=bad)
    _both_configs_refuse("needs channels=2", channels=1, vocals_side_db=6)
    # vocals as a distractor (a drums model): the vocals rows narrowed, every other row bit for bit the same
    values = dict(targets=("drums",), segment_s=0.5, seed=3, samples_per_epoch=8)
    distracted = 0
    for a, b in _paired_draws(db, values, 8, vocals_side_db=6):
        assert a["names"] == b["names"]
        for k, name in enumerate(a["names"]):
            if name != "vocals":
                np.testing.assert_array_equal(a["sources"][k], b["sources"][k])
                continue
            distracted += 1
            side_a, side_b = a["sources"][k][0] - a["sources"][k][1], b["sources"][k][0] - b["sources"][k][1]
            np.testing.assert_allclose(side_b, side_a * 10 ** (-6 / 20), atol=1e-5)
    assert distracted >= 1
    assert chunk_config(TrainConfig(vocals_side_db=10)).vocals_side_db == 10.0
    assert parse_value("vocals_side_db", "10") == 10.0


def test_stereo_sweep_of_a_model_blind_to_the_image_is_flat():
    """A 'model' that gives each of two sources half the mixture scores 10 log10 2 = 3 dB under every
    condition: the sweep changes mixture and references alike. A model that gives the mixture's left channel
    to source a and its right to b depends on the image, and its spread shows it."""

    class Half(torch.nn.Module):
        sources, sample_rate, audio_channels, segment_s, config = ("a", "b"), 44100, 2, 1.0, None

        def forward(self, mix):  # (B, C, T) -> (B, 2, C, T)
            return torch.stack([mix * 0.5, mix * 0.5], dim=1)

    class Sides(Half):
        def forward(self, mix):  # a = the mixture's left channel, b = its right one
            silent = torch.zeros_like(mix[:, :1])
            return torch.stack(
                [torch.cat([mix[:, :1], silent], 1), torch.cat([silent, mix[:, 1:]], 1)], dim=1
            )

    rng = np.random.default_rng(3)
    noise = rng.standard_normal((4, 88200)).astype(np.float32) * np.float32(0.1)
    a = np.stack([noise[0], 0.01 * noise[1]])  # a panned hard left
    b = np.stack([0.01 * noise[2], noise[3]])  # b panned hard right
    song = Song("panned", a + b, np.stack([a, b]), 44100, ("a", "b"))
    half = summarise(sweep(Half(), [song], conditions([1.0, 0.0])))
    assert list(half.index) == ["as is", "mono", SWAPPED, "spread"]
    np.testing.assert_allclose(half.loc[["as is", "mono", SWAPPED], "average"], 10 * np.log10(2), atol=0.3)
    sides = summarise(sweep(Sides(), [song], conditions([1.0, 0.0])))
    assert sides.loc["as is", "average"] > 10 and sides.loc["spread", "average"] > 10  # lost when swapped


def test_with_width_matches_narrow_on_any_leading_shape():
    audio = np.random.default_rng(4).standard_normal((3, 2, 50)).astype(np.float32)
    expected = audio.copy()
    narrow(expected, np.full(3, 0.3))
    np.testing.assert_allclose(with_width(audio, 0.3), expected, atol=1e-7)
    np.testing.assert_allclose(with_width(audio[0], 0.3), expected[0], atol=1e-7)
    kept = audio.copy()
    np.testing.assert_array_equal(with_width(audio, 1.0), audio)  # as is, exactly
    np.testing.assert_array_equal(audio, kept)  # and the input is left as it was


def test_the_stereo_cli_prints_the_table_and_refuses_bad_options(tiny_dataset, tmp_path, capsys):
    path = save_checkpoint(tmp_path / "tiny.pt", trained_looking_tiny("unet"))
    out = tmp_path / "stereo.json"
    code = main(["--checkpoint", str(path), "--dataset", str(tiny_dataset), "--widths", "1,0", "--songs", "1",
                 "--seconds", "2", "--json", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| stereo image | vocals | drums | bass | other | average |" in printed
    assert "| mono |" in printed and f"| {SWAPPED} |" in printed and "| spread |" in printed
    rows = json.loads(out.read_text())[str(path)]
    assert {row["condition"] for row in rows} == {"as is", "mono", SWAPPED}
    code = main(["--checkpoint", str(path), "--dataset", str(tiny_dataset), "--widths", "0.5", "--no-swap",
                 "--songs", "1", "--seconds", "1"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "| width 0.5 |" in printed and SWAPPED not in printed and "| mono |" not in printed
    for options, message in (
        (["--widths", "1,1"], "names a width twice"),
        (["--widths", "3"], "must lie in"),
        (["--widths", "x"], "must be numbers"),
        (["--songs", "0"], "--songs must be >= 1"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(options)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, options
    mono = save_checkpoint(
        tmp_path / "mono.pt", build_model("unet", model_preset("unet", "tiny", audio_channels=1))
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(mono), "--dataset", str(tiny_dataset)])
    assert exit_info.value.code == 2 and "mono model" in capsys.readouterr().err
