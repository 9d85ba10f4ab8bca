"""The realism gauge (mss.data.realism) on signals whose statistics are known, and its command line."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from mss.audio import resample
from mss.data.realism import compare, stats
from mss.data.realism.__main__ import UNCERTAINTY_COLUMNS, gauge, main

RATE = 44100


def _tone(freq_hz: float, seconds: float = 4.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_pure_tone_is_tonal_mono_and_in_its_octave():
    tone = _tone(1000.0)
    result = stats.stem_statistics(np.stack([tone, tone]), RATE)
    assert result.flatness_db < -40  # a pure tone's spectrum is one line: flatness near 0 (far below noise)
    assert result.correlation == pytest.approx(1.0, abs=1e-9)  # mono: left == right
    assert result.width_db == stats.DB_FLOOR  # no side signal at all
    assert result.crest_db == pytest.approx(20 * math.log10(math.sqrt(2)), abs=0.05)  # sine: 3.01 dB
    bands = dict(zip(stats.OCTAVE_CENTRES_HZ, result.bands_db, strict=True))
    assert bands[1000] == pytest.approx(0.0, abs=0.1)  # all the power in the 1-kHz octave
    assert max(v for c, v in bands.items() if c != 1000) < -30
    assert result.high_share_db < -60  # nothing above 11 kHz


def test_white_noise_is_flat_and_uncorrelated_channels_are_wide():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((2, 4 * RATE)).astype(np.float32) * 0.1
    result = stats.stem_statistics(noise, RATE)
    assert result.flatness_db == pytest.approx(10 * math.log10(0.56), abs=1.0)  # white noise: about 0.56
    assert abs(result.correlation) < 0.02  # independent channels
    assert result.width_db == pytest.approx(0.0, abs=0.1)  # side and mid equally strong
    # white noise up to 22.05 kHz: the share above 11.025 kHz is half the power (-3 dB)
    assert result.high_share_db == pytest.approx(-3.01, abs=0.1)


def test_share_above_11k_of_two_tones():
    """1 kHz and 15 kHz tones, the high one 20 dB down: its share is 1/(1 + 100) of the power."""
    mixed = _tone(1000.0) + _tone(15000.0, amplitude=0.05)
    assert stats.high_share_db(mixed, RATE) == pytest.approx(10 * math.log10(1 / 101), abs=0.05)
    assert stats.high_share_db(_tone(1000.0), RATE) < -60


def test_onsets_silence_and_bad_shapes():
    clicks = np.zeros(4 * RATE, dtype=np.float32)
    burst = np.random.default_rng(1).standard_normal(2000).astype(np.float32) * np.hanning(2000).astype(
        np.float32
    )
    for k in range(8):  # 2 onsets per second
        start = int((0.25 + 0.5 * k) * RATE)
        clicks[start : start + 2000] += burst
    assert stats.onset_rate(clicks, RATE) == pytest.approx(2.0, abs=0.3)
    assert stats.stem_statistics(np.zeros((2, 4 * RATE), dtype=np.float32), RATE) is None  # silent stem
    with pytest.raises(ValueError, match="shape"):
        stats.stem_statistics(np.zeros((3, RATE), dtype=np.float32), RATE)


def test_distance_is_zero_for_equal_sets_and_grows_with_a_difference():
    tone = _tone(440.0)
    a = stats.stem_statistics(np.stack([tone, tone]), RATE)
    same = compare.summarise([a, a])
    assert compare.distance(same, same) == 0.0
    louder_side = np.stack([tone, 0.5 * tone])  # panned: wider
    b = compare.summarise([stats.stem_statistics(louder_side, RATE)])
    assert compare.distance(b, same) > 0.5


def test_gauge_command_line_on_generated_stems(tiny_dataset, tmp_path):
    """--real and --dataset on MUSDB18-HQ folders: a table for every stem, a CSV that parses, a figure."""
    out = tmp_path / "gauge"
    code = main(
        [
            "--real",
            str(tiny_dataset / "train"),
            "--dataset",
            str(tiny_dataset / "train"),
            "--songs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rows = list(csv.DictReader((out / "realism.csv").open()))
    spectrum = [float(rows[0][f"octave_{c:g}_db"]) for c in stats.OCTAVE_CENTRES_HZ]  # what the figure plots
    assert len(spectrum) == 10 and max(spectrum) <= 0.0 and all(math.isfinite(v) for v in spectrum)
    assert {(r["set"], r["stem"]) for r in rows} >= {
        ("real", s) for s in ("vocals", "drums", "bass", "other")
    }
    assert (out / "realism.png").stat().st_size > 10_000


def test_gauge_refuses_a_musdb18_test_set_song(tmp_path, capsys):
    import stempeg

    assert main(["--real", stempeg.example_stem_path(), "--dataset", str(tmp_path)]) == 2
    assert "test-set" in capsys.readouterr().err


def test_gauge_measures_training_chunks_at_the_model_rate(tiny_dataset, tmp_path, capsys):
    """--chunks: the training chunks and the same chunks with "other" stacked (one seed: only "other" differs)
    beside the real stems, all at 22.05 kHz, where nothing lies above 11 kHz (NaN)."""
    out = tmp_path / "gauge"
    argv = ["--real", str(tiny_dataset / "train"), "--chunks", str(tiny_dataset), "--chunk-s", "3"]
    assert main(argv + ["--other-stack-prob", "1", "--songs", "6", "--out", str(out)]) == 0
    rows = {(r["set"], r["stem"]): r for r in csv.DictReader((out / "realism.csv").open())}
    assert {s for s, _ in rows} == {"real", "chunks", "chunks, other stacked p=1"}
    assert all(r["high_share_db"] in ("", "nan") for r in rows.values())
    assert all(
        r["octave_16000_db"] in ("", "nan") and r["octave_8000_db"] not in ("", "nan") for r in rows.values()
    )
    statistics = [c for c in rows["real", "bass"] if c not in ("set", *UNCERTAINTY_COLUMNS)]
    for stem in ("vocals", "drums", "bass"):  # the same chunks: every statistic equal, a paired change of 0
        stacked = rows["chunks, other stacked p=1", stem]
        assert all(rows["chunks", stem][c] == stacked[c] for c in statistics)
        assert [float(stacked[c]) for c in ("change", "change_lo", "change_hi")] == [0.0, 0.0, 0.0]
        assert float(stacked["distance_lo"]) <= float(stacked["distance"]) <= float(stacked["distance_hi"])
    assert rows["chunks", "bass"]["change"] == ""  # the first generated set is what changes are measured from
    assert rows["chunks", "other"]["flatness_db"] != rows["chunks, other stacked p=1", "other"]["flatness_db"]
    assert all(float(r["distance"]) >= 0 for (s, _), r in rows.items() if s != "real")
    capsys.readouterr()
    assert (
        main(["--real", str(tiny_dataset / "train"), "--dataset", str(tmp_path), "--other-stack-prob", "1"])
        == 2
    )
    assert "needs --chunks" in capsys.readouterr().err
    assert main(["--real", str(tiny_dataset / "train"), "--dataset", str(tmp_path), "--rate", "-1"]) == 2
    assert "--rate must be a positive" in capsys.readouterr().err


def test_gauge_at_a_common_rate_resamples_and_leaves_out_what_the_rate_cannot_hold():
    """gauge(sets, 22050) equals the statistics of the stems resampled first, with the share above 11 kHz and
    the 16-kHz octave NaN; at their own 44.1 kHz they are numbers, and rate=None changes nothing."""
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal((2, 4 * 44100))).astype(np.float32)  # white: energy up to 22 kHz
    stems = {stem: noise for stem in ("vocals", "drums", "bass", "other")}
    low = gauge({"s": [("a", stems, 44100)]}, 22050)["s"]["drums"]
    own = gauge({"s": [("a", stems, 44100)]})["s"]["drums"]
    direct = stats.stem_statistics(resample(noise, 44100, 22050), 22050)
    assert np.isnan(low["high_share_db"]) and np.isnan(low["bands_db"][-1])
    np.testing.assert_allclose(low["bands_db"][:-1], direct.bands_db[:-1])
    assert low["flatness_db"] == pytest.approx(direct.flatness_db)
    assert own["high_share_db"] == pytest.approx(-3.0, abs=0.5)  # half of white noise lies above 11 kHz
    assert np.isfinite(own["bands_db"]).all()
    assert compare.distance(low, low) == 0.0
