"""python -m mss.bench.level: separation at several input levels, scored against equally scaled references."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import trained_looking_tiny

from mss.bench.level import level_sweep, main, summarise
from mss.bench.sweep import score_song
from mss.checkpoint import save_checkpoint
from mss.data.songs import Song
from mss.models import build_model, model_preset


def _tiny_unet(level_db):
    return trained_looking_tiny("unet", level_db=level_db)


def test_level_sweep_scores_each_gain_and_a_level_normalised_model_does_not_move(
    tiny_dataset, tmp_path, capsys
):
    paths = []
    for name, level_db in (("level", -16.0), ("raw", None)):
        paths += ["--checkpoint", str(save_checkpoint(tmp_path / f"{name}.pt", _tiny_unet(level_db)))]
    out = tmp_path / "level.json"
    code = main([*paths, "--dataset", str(tiny_dataset), "--gains=-20,0,6", "--songs", "1", "--seconds", "2",
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| input gain | vocals | drums | bass | other | average |" in printed
    assert "| -20 dB |" in printed and "| spread |" in printed
    records = json.loads(out.read_text())
    spreads = {}
    for path, rows in records.items():
        frame = pd.DataFrame(rows)
        assert sorted(frame["gain_db"].unique()) == [-20.0, 0.0, 6.0]
        assert set(frame["target"]) == {"vocals", "drums", "bass", "other"}
        assert len(frame) == 3 * 4 and frame["sdr"].notna().any()
        spreads[path.rsplit("/", 1)[-1]] = summarise(frame).loc["spread", "average"]
    assert spreads["level.pt"] < 0.01  # the same estimates, scaled: the same SDR at every gain
    assert spreads["raw.pt"] > 0.01  # without level_db the masks change with the input's level


def test_level_sweep_of_an_exact_scaler_is_flat_and_known():
    """A 'model' whose estimates are the references plus a fixed fraction of the mixture scores one known SDR
    at every gain, so the sweep scales mixture and references alike and nothing else."""

    class Leaky(torch.nn.Module):
        sources, sample_rate, audio_channels, segment_s = ("a", "b"), 44100, 2, 1.0
        config = None

        def forward(self, mix):  # mix (B, C, T) -> (B, 2, C, T): half the mix for each
            return torch.stack([mix * 0.5, mix * 0.5], dim=1)

    rng = np.random.default_rng(0)
    refs = rng.standard_normal((2, 2, 44100 * 2)).astype(np.float32) * np.float32(0.1)  # (S, C, T)
    song = Song("noise", refs.sum(0), refs, 44100, ("a", "b"))
    frame = level_sweep(Leaky(), [song], [-12.0, 0.0])
    table = summarise(frame)
    # each estimate is (a + b) / 2 for reference a: SDR = 10 log10(|a|^2 / |b/2 - a/2|^2) = 10 log10(2) ~ 3 dB
    assert np.allclose(table.loc[["-12 dB", "+0 dB"], "average"], 10 * np.log10(2), atol=0.3)
    assert table.loc["spread", "average"] < 1e-3


def test_score_song_drops_a_silent_target_and_scores_a_single_target():
    """As mss.evaluate scores: a target silent throughout gets no SDR (NaN); a single target (piano) scores
    its known SDR (BSS Eval v4's SDR does not depend on the residual beside it, so only the value is checked)."""
    rng = np.random.default_rng(1)
    piano, rest = rng.standard_normal((2, 2, 44100 * 2)).astype(np.float32) * np.float32(0.1)
    song = Song("two", piano + rest, piano[None], 44100, ("piano",))
    exact = score_song(song, {"piano": piano + 1e-3 * rest})["piano"]
    leaky = score_song(song, {"piano": piano + 0.5 * rest})["piano"]
    assert exact > 40 and 4 < leaky < 8  # 0.5 of an equally loud interferer: 10 log10(1 / 0.25) = 6 dB
    silent = Song("silent", rest, np.zeros((1, 2, 44100 * 2), np.float32), 44100, ("piano",))
    assert np.isnan(score_song(silent, {"piano": np.zeros_like(rest)})["piano"])


def test_summarise_orders_the_gains_lowest_first_whatever_order_they_ran_in():
    frame = pd.DataFrame(
        [{"song": "s", "gain_db": g, "target": "a", "sdr": 5.0 + g / 10} for g in (0.0, -12.0, 6.0)]
    )
    table = summarise(frame)
    assert list(table.index) == ["-12 dB", "+0 dB", "+6 dB", "spread"]
    np.testing.assert_allclose(table["a"], [3.8, 5.0, 5.6, 1.8])


def test_summarise_keeps_a_target_never_scored_and_flags_its_spread():
    frame = pd.DataFrame(
        [{"song": "s", "gain_db": g, "target": t, "sdr": (5.0 if t == "a" else float("nan"))}
         for g in (-6.0, 0.0) for t in ("a", "b")]
    )  # fmt: skip
    table = summarise(frame)
    assert list(table.columns) == ["a", "b", "average"]
    assert table.loc["spread", "a"] == 0.0 and np.isnan(table.loc["spread", "b"])


def test_the_cli_refuses_bad_options_and_a_target_real_clips_lack(tmp_path, capsys):
    for options, message in (
        (["--gains=nan"], "must lie in"),
        (["--gains=-200"], "must lie in"),
        (["--gains=a"], "must be numbers"),
        (["--songs", "0"], "--songs must be >= 1"),
        (["--seconds", "0"], "argument --seconds: must be a finite number of seconds > 0"),
        (["--seconds", "inf"], "argument --seconds: must be a finite number of seconds > 0"),
        (["--seconds", "nan"], "argument --seconds: must be a finite number of seconds > 0"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(options)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, options
    piano = save_checkpoint(
        tmp_path / "piano.pt", build_model("unet", model_preset("unet", "tiny", sources=("piano",)))
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(piano)])
    assert exit_info.value.code == 2 and "no piano stem" in capsys.readouterr().err
