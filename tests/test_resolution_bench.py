"""python -m mss.bench.resolution: ideal-ratio-mask scores of several STFT grids, scored as mss.evaluate scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mss.bench.resolution import grid_label, main, parse_grids, resolution_sweep
from mss.data.songs import Song

SOURCES = ("vocals", "drums", "bass", "other")


def _tone_song(seconds: float = 4.0) -> Song:
    """Four steady tones at 44.1 kHz: vocals and drums 12 Hz apart (one 21.5-Hz bin of a 1024-point STFT at
    22.05 kHz holds both; a 4096-point one, 5.4-Hz bins, tells them apart), bass and other far from them."""
    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
    freqs = {"vocals": 441.0, "drums": 453.0, "bass": 110.0, "other": 1800.0}
    targets = np.stack(
        [np.stack([0.2 * np.sin(2 * np.pi * freqs[s] * t + k)] * 2) for k, s in enumerate(SOURCES)]
    )
    targets = targets.astype(np.float32)  # (S, C, T)
    return Song("tones", targets.sum(axis=0), targets, rate, SOURCES)


def test_a_finer_grid_separates_tones_a_coarser_one_cannot():
    frame = resolution_sweep([_tone_song()], [(1024, 512), (4096, 1024)], 22050, alpha=1.0)
    sdr = frame.pivot_table(index="grid", columns="target", values="sdr")
    coarse, fine = grid_label(1024, 512, 22050), grid_label(4096, 1024, 22050)
    assert coarse == "1024/512 (46/23 ms, 21.5 Hz)" and fine == "4096/1024 (186/46 ms, 5.4 Hz)"
    # the two close tones: shared bins at 21.5 Hz, apart at 5.4 Hz
    for target in ("vocals", "drums"):
        assert sdr.loc[fine, target] > sdr.loc[coarse, target] + 6.0
    # the isolated tones are separated on both grids
    for target in ("bass", "other"):
        assert sdr.loc[coarse, target] > 20.0 and sdr.loc[fine, target] > 20.0


def test_grids_parse_and_name_what_is_wrong():
    assert parse_grids("1024/512, 2048/1024", 22050) == [(1024, 512), (2048, 1024)]
    assert parse_grids("441/147", 14700) == [(441, 147)]  # 1323/441 at 44.1 kHz
    for text, message in (("", "empty"), ("1024", "expected N_FFT/HOP"), ("a/b", "expected N_FFT/HOP"),
                          ("1024/2048", "HOP < N_FFT"), ("1024/1024", "HOP < N_FFT"), ("8/4", "16 <= N_FFT"), ("1024/0", "1 <= HOP"),
                          ("1024/512,1024/512", "twice")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            parse_grids(text, 22050)
    with pytest.raises(ValueError, match="whole number of samples at 44100"):
        parse_grids("1000/500", 16000)  # 2756.25 samples at 44.1 kHz


def test_the_cli_prints_a_row_per_grid_and_refuses_bad_grids(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "grids.json"
    code = main(["--dataset", str(tiny_dataset), "--songs", "1", "--seconds", "2", "--grids", "1024/512,2048/1024",
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("IRM1 oracle scores by STFT grid at 22050 Hz")
    assert "| grid | vocals | drums | bass | other | average |" in printed
    assert "| 1024/512 (46/23 ms, 21.5 Hz) |" in printed and "| spread |" in printed
    records = json.loads(out.read_text())
    assert {r["grid"] for r in records} == {grid_label(1024, 512, 22050), grid_label(2048, 1024, 22050)}
    assert len(records) == 8 and all(np.isfinite(r["sdr"]) for r in records)
    with pytest.raises(SystemExit) as exit_info:
        main(["--grids", "1024/4096"])
    assert exit_info.value.code == 2 and "HOP < N_FFT" in capsys.readouterr().err
    for options in (["--seconds", "inf"], ["--seconds", "nan"], ["--seconds", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(options)
        assert (
            exit_info.value.code == 2
            and "argument --seconds: must be a finite number of seconds > 0" in capsys.readouterr().err
        ), options
