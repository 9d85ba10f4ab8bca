"""python -m mss.bench.chunk: separation with several chunk lengths, scored as mss.evaluate scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import trained_looking_tiny

from mss.bench.chunk import chunk_label, chunk_sweep, main, segment_lengths
from mss.bench.sweep import score_song
from mss.checkpoint import save_checkpoint
from mss.data import SongDataset, open_db
from mss.separate import separate


def test_chunk_sweep_scores_each_length_and_the_models_own_is_its_segment(tiny_dataset):
    songs = SongDataset(open_db(tiny_dataset, subset="test"), ("vocals", "drums", "bass", "other"), None, 2.0)
    song = songs[0]
    model = trained_looking_tiny("unet")
    # the model's own length is 1 s: "1" is the same separation as "model", so it is one row, the model's
    frame = chunk_sweep(model, [song], ["model", "0.5", "1"])
    assert list(dict.fromkeys(frame["chunk"])) == ["1 s (the model's)", "0.5 s"]
    by_chunk = frame.pivot_table(index="chunk", columns="target", values="sdr")
    alone = chunk_sweep(model, [song], ["1"]).pivot_table(index="chunk", columns="target", values="sdr")
    np.testing.assert_array_equal(by_chunk.loc["1 s (the model's)"], alone.loc["1 s"])
    # another length cuts the song elsewhere: other estimates, scored as score_song scores them
    half = separate(model, song.mix, song.sample_rate, segment_s=0.5)
    expected = score_song(song, half)
    for target, sdr in expected.items():
        assert by_chunk.loc["0.5 s", target] == pytest.approx(sdr)
    assert not np.allclose(by_chunk.loc["0.5 s"], by_chunk.loc["1 s (the model's)"])


def test_segment_lengths_and_labels():
    assert segment_lengths("model, 2,3.5") == ["model", "2", "3.5"]
    assert chunk_label("model", 6.0) == "6 s (the model's)" and chunk_label("2.50", 6.0) == "2.5 s"
    for text, message in (("", "empty"), ("2,2", "twice"), ("2,2.0", "twice"), ("model,model", "twice"),
                          ("0", r"in \(0, 60\]"), ("-1", r"in \(0, 60\]"), ("nan", r"in \(0, 60\]"),
                          ("61", r"in \(0, 60\]"), ("two", "'model' or seconds")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            segment_lengths(text)


def test_the_cli_prints_a_row_per_length_and_refuses_bad_lengths(tiny_dataset, tmp_path, capsys):
    path = save_checkpoint(tmp_path / "demucs.pt", trained_looking_tiny("demucs"))
    out = tmp_path / "chunk.json"
    code = main(["--checkpoint", str(path), "--dataset", str(tiny_dataset), "--segments", "model,0.5",
                 "--songs", "1", "--seconds", "2", "--json", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| chunk | vocals | drums | bass | other | average |" in printed
    assert "| 1 s (the model's) |" in printed and "| 0.5 s |" in printed and "| spread |" in printed
    records = json.loads(out.read_text())[str(path)]
    assert {r["chunk"] for r in records} == {"1 s (the model's)", "0.5 s"} and len(records) == 8
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(path), "--segments", "0"])
    assert exit_info.value.code == 2 and "--segments must be seconds in (0, 60]" in capsys.readouterr().err
