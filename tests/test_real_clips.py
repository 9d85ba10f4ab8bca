"""The real MUSDB18 clips: found offline, read at the model's rate, scored in training and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import stempeg
from helpers import read_metrics, tiny_args

from mss.data import real_clips
from mss.errors import AudioError
from mss.report import read_run, run_summary
from training.losses import global_sdr
from training.run import main
from training.summary import run_table

STEMPEG_CLIP = Path(stempeg.example_stem_path())


@pytest.fixture(scope="module")
def train_clip(tiny_dataset, tmp_path_factory) -> Path:
    """A MUSDB18 stem file that is no test-set song: a generated train song written as ``.stem.mp4``."""
    from mss.audio import load_audio
    from mss.data.synth.formats import write_stems_song

    song = sorted((tiny_dataset / "train").iterdir())[0]
    stems = {
        name: load_audio(song / f"{name}.wav")[0] for name in ("mixture", "drums", "bass", "other", "vocals")
    }
    path = tmp_path_factory.mktemp("clips") / f"{song.name}.stem.mp4"
    write_stems_song(stems, 44100, path)
    return path


def test_stempeg_clip_is_a_test_set_song_and_not_a_default_clip(monkeypatch, tmp_path):
    """stempeg's example is MUSDB18 test-set song "The Easton Ellises - Falcon 69": never a default real clip."""
    monkeypatch.delenv("MSS_REAL_CLIPS", raising=False)
    found = real_clips.find_real_clips()
    assert STEMPEG_CLIP.resolve() not in {p.resolve() for p in found}
    assert len({p.resolve() for p in found}) == len(found)  # each clip once
    assert all(p.name.endswith(".stem.mp4") for p in found)
    assert real_clips.is_test_set_song(STEMPEG_CLIP)
    assert real_clips.is_test_set_song(tmp_path / "test" / "Any Song.stem.mp4")  # MUSDB18's test folder
    assert not real_clips.is_test_set_song(tmp_path / "train" / "Music Delta - 80s Rock.stem.mp4")
    assert (
        real_clips.label("The Easton Ellises - Falcon 69")
        == "The Easton Ellises - Falcon 69 (MUSDB18 test-set song)"
    )
    assert real_clips.label("Music Delta - 80s Rock") == "Music Delta - 80s Rock"
    monkeypatch.setenv("MSS_REAL_CLIPS", str(STEMPEG_CLIP))  # named explicitly, it is found
    assert [p.resolve() for p in real_clips.find_real_clips()] == [STEMPEG_CLIP.resolve()]


def test_clip_is_read_at_the_model_rate_with_its_stems():
    song = real_clips.load_real_clip(STEMPEG_CLIP, ("vocals", "bass"), 16000)
    assert song.name == "The Easton Ellises - Falcon 69"
    assert song.sample_rate == 16000 and song.target_names == ("vocals", "bass")
    assert song.mix.shape[0] == 2 and song.targets.shape == (2, 2, song.mix.shape[1])
    stems, rate = stempeg.read_stems(str(STEMPEG_CLIP), dtype=np.float32)
    assert song.mix.shape[1] == pytest.approx(stems.shape[1] * 16000 / rate, abs=2)
    # vocals are stream 4 of a MUSDB18 stem file: same energy (resampling keeps it within 2 %)
    energy = float(np.mean(song.targets[0] ** 2))
    assert energy == pytest.approx(float(np.mean(stems[4] ** 2)), rel=0.02)


def test_piano_and_unreadable_clips_are_named(tmp_path):
    with pytest.raises(AudioError, match="no piano stem"):
        real_clips.load_real_clip(STEMPEG_CLIP, ("piano",), 16000)
    assert real_clips.load_real_clips(("piano",), 16000) == []
    broken = tmp_path / "broken.stem.mp4"
    broken.write_bytes(b"not an mp4")
    with pytest.raises(AudioError, match="broken.stem.mp4"):
        real_clips.load_real_clip(broken, ("vocals",), 16000)


def test_real_clips_dataset_links_the_clips(tmp_path, monkeypatch):
    monkeypatch.setenv("MSS_REAL_CLIPS", str(STEMPEG_CLIP))
    root = real_clips.real_clips_dataset(tmp_path / "real")
    assert [p.name for p in (root / "train").iterdir()] == [STEMPEG_CLIP.name]
    assert (root / "train" / STEMPEG_CLIP.name).resolve() == STEMPEG_CLIP.resolve()
    real_clips.real_clips_dataset(tmp_path / "real")  # again: links replaced, not duplicated
    assert len(list((root / "train").iterdir())) == 1


def test_training_never_scores_a_test_set_song(tiny_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MSS_REAL_CLIPS", str(STEMPEG_CLIP))
    out = tmp_path / "run"
    assert main([*tiny_args(tiny_dataset, out, "demucs", 1), "--set", "real_clips=on"]) == 0
    assert "Falcon 69.stem.mp4 is a MUSDB18 test-set song" in capsys.readouterr().err
    assert all("real_sdr" not in r and "real_clips" not in r for r in read_metrics(out))


def test_training_scores_the_real_clips_every_epoch(tiny_dataset, train_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("MSS_REAL_CLIPS", str(train_clip))
    out = tmp_path / "run"
    assert main([*tiny_args(tiny_dataset, out, "demucs", 2), "--set", "real_clips=on"]) == 0
    history = read_metrics(out)
    assert [r["real_clips"] for r in history] == [1, 1]
    targets = ("vocals", "drums", "bass", "other")
    for record in history:
        assert set(record["real_sdr"]) == {*targets, "mean"}
        assert all(np.isfinite(v) for v in record["real_sdr"].values())
    # the mixture baseline is the clip's own mixture scored against each stem: a known answer
    song = real_clips.load_real_clip(train_clip, targets, 16000)
    for index, name in enumerate(targets):
        expected = global_sdr(song.targets[index], song.mix)
        assert history[-1]["real_sdr_mixture"][name] == pytest.approx(expected, abs=1e-4)
    # the report's run row gives the real-clip SDR of the best validation epoch (the one best.pt holds)
    history_read, config = read_run(out)  # the report reads training.run's config.json as written
    assert history_read == history and config["model"] == "demucs" and config["curriculum"] is True
    row = run_summary("run", history, config)
    assert (row["model"], row["targets"], row["curriculum"]) == ("demucs", "vocals,drums,bass,other", "on")
    best = max(history, key=lambda r: r["valid_sdr"]["mean"])
    assert row["real clips SDR"] == best["real_sdr"]["mean"]
    assert row["best valid SDR"] == best["valid_sdr"]["mean"]
    # python -m training.summary: one row per epoch, the real-clip column, the best epoch named
    table = run_table(out)
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 2 and rows[-1].split(" | ")[-3] == f"{history[-1]['real_sdr']['mean']:.2f}"
    assert f"best epoch {best['epoch']} (by sdr)" in table
    cpu_minutes = float(rows[-1].rstrip(" |").split(" | ")[-1])  # the run's CPU time so far (cpu_s)
    assert cpu_minutes == pytest.approx(history[-1]["cpu_s"] / 60, abs=0.05) and history[-1]["cpu_s"] > 0


def test_evaluate_scores_the_real_clips(tmp_path, monkeypatch):
    """``--dataset real-clips`` scores the clips (subset train) in museval's layout."""
    from mss.evaluate import main as evaluate_main

    monkeypatch.setenv("MSS_REAL_CLIPS", str(STEMPEG_CLIP))
    monkeypatch.setenv("MSS_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "eval"
    argv = [
        "--dataset",
        "real-clips",
        "--oracles-only",
        "--oracles",
        "MIX",
        "--targets",
        "vocals",
        "--out",
        str(out),
    ]
    assert evaluate_main(argv) == 0
    scores = json.loads((out / "MIX" / "train" / "The Easton Ellises - Falcon 69.json").read_text())
    assert [t["name"] for t in scores["targets"]] == ["vocals"]
    frames = [f["metrics"]["SDR"] for f in scores["targets"][0]["frames"]]
    assert len(frames) >= 5 and all(np.isfinite(v) for v in frames if v is not None)
