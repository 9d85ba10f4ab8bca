"""The embedded dataset generator: MUSDB18-HQ layout, exact stems, invariants, determinism, CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import musdb
import numpy as np
import pytest
import soundfile as sf
import yaml

from mss import SOURCES
from mss.data.synth import PRESETS, SynthPreset, generate_dataset
from mss.errors import DatasetError

ONE_SONG = SynthPreset("one-song", n_train=1, n_test=0, song_s=(3.0, 3.0))
STEM_FILES = ("mixture", *SOURCES, "piano")


def _song_dirs(root: Path) -> list[Path]:
    return sorted(p for subset in ("train", "test") for p in (root / subset).iterdir() if p.is_dir())


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_musdb_lists_both_subsets(tiny_dataset):
    preset = PRESETS["tiny"]
    db = musdb.DB(root=str(tiny_dataset), is_wav=True)
    assert len(db.load_mus_tracks(subsets=["train"])) == preset.n_train
    assert len(db.load_mus_tracks(subsets=["test"])) == preset.n_test
    track = db.load_mus_tracks(subsets=["test"])[0]
    assert track.rate == 44100 and track.audio.shape[1] == 2
    # musdb reads WAVs through ffmpeg as 16-bit, so the sum holds to 16-bit precision there.
    summed = sum(track.sources[name].audio for name in SOURCES)
    assert np.abs(track.audio - summed).max() < 4 / 32768


def test_files_layout_and_exact_mixture(tiny_dataset):
    songs = _song_dirs(tiny_dataset)
    assert len(songs) == PRESETS["tiny"].n_train + PRESETS["tiny"].n_test
    for song in songs:
        stems = {}
        for name in STEM_FILES:
            info = sf.info(song / f"{name}.wav")
            assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "FLOAT")
            stems[name], _ = sf.read(song / f"{name}.wav", dtype="float32")
        mixture = stems["vocals"] + stems["drums"] + stems["bass"] + stems["other"]
        np.testing.assert_allclose(stems["mixture"], mixture, atol=1e-6, rtol=0)
        lengths = {audio.shape for audio in stems.values()}
        assert len(lengths) == 1 and 6.0 * 44100 <= stems["mixture"].shape[0] <= 8.0 * 44100 + 1


def test_no_silent_or_clipped_stem(tiny_dataset):
    manifest = json.loads((tiny_dataset / "manifest.json").read_text())
    for song in _song_dirs(tiny_dataset):
        entry = manifest["songs"][f"{song.parent.name}/{song.name}"]
        for name in ("mixture", *SOURCES):
            audio, rate = sf.read(song / f"{name}.wav", dtype="float32")
            assert np.abs(audio).max() <= 0.99, f"{song.name}/{name} clips"
            windows = audio[: len(audio) // rate * rate].reshape(-1, rate, 2)
            loudest_db = 10 * np.log10((windows.astype(np.float64) ** 2).mean(axis=(1, 2)).max())
            assert loudest_db > -60, f"{song.name}/{name} is silent"
        piano, _ = sf.read(song / "piano.wav", dtype="float32")
        has_piano = any("Piano" in name for name in entry["instruments"]["other"])
        assert has_piano == (np.abs(piano).max() > 1e-3) == ("piano" in entry["active_stems"])


def test_manifest_and_piano_share(tiny_dataset):
    manifest = json.loads((tiny_dataset / "manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["generator"] == "mss.data.synth"
    assert (manifest["preset"], manifest["seed"], manifest["sample_rate"]) == ("tiny", 1, 44100)
    assert set(manifest["songs"]) == {f"{p.parent.name}/{p.name}" for p in _song_dirs(tiny_dataset)}
    for entry in manifest["songs"].values():
        assert set(entry["instruments"]) == set(SOURCES)
        assert 1 <= len(entry["instruments"]["other"]) <= 3
        assert set(SOURCES) <= set(entry["active_stems"])
        assert 40 <= entry["tempo_bpm"] <= 160 and entry["key"].split()[1] in ("major", "minor")
    with_piano = [e for e in manifest["songs"].values() if "piano" in e["active_stems"]]
    assert 2 <= len(with_piano) < len(manifest["songs"])  # piano in most songs, not all


def test_setup_file_validation_split(tiny_dataset):
    setup = yaml.safe_load((tiny_dataset / "setup.yaml").read_text())
    assert set(setup["sources"]) == {*SOURCES, "piano"}
    assert {"vocals", "accompaniment", "piano"} <= set(setup["targets"])
    setup_file = str(tiny_dataset / "setup.yaml")
    valid = musdb.DB(
        root=str(tiny_dataset), is_wav=True, setup_file=setup_file, subsets="train", split="valid"
    )
    train = musdb.DB(
        root=str(tiny_dataset), is_wav=True, setup_file=setup_file, subsets="train", split="train"
    )
    assert [t.name for t in valid] == setup["validation_tracks"] and len(valid) == 1
    assert len(train) == PRESETS["tiny"].n_train - 1
    track = valid[0]
    piano, accompaniment = track.targets["piano"].audio, track.targets["accompaniment"].audio
    assert piano.shape == accompaniment.shape == track.audio.shape


def test_deterministic_for_a_seed(tmp_path):
    first = generate_dataset(tmp_path / "a", preset=ONE_SONG, seed=7, progress=False)
    second = generate_dataset(tmp_path / "b", preset=ONE_SONG, seed=7, progress=False)
    other = generate_dataset(tmp_path / "c", preset=ONE_SONG, seed=8, progress=False)
    assert _digest(first) == _digest(second)
    assert _digest(first) != _digest(other)


def test_refuses_to_overwrite_and_leaves_no_partial(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "keep.txt").write_text("precious")
    with pytest.raises(DatasetError, match="overwrite"):
        generate_dataset(root, preset=ONE_SONG, seed=0, progress=False)
    assert (root / "keep.txt").read_text() == "precious"
    generate_dataset(root, preset=ONE_SONG, seed=0, progress=False, overwrite=True)
    assert not (root / "keep.txt").exists() and (root / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temp folders left behind


def test_unknown_preset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="tiny, default, large"):
        generate_dataset(tmp_path / "x", preset="huge", progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_refuses_non_empty_root(tmp_path):
    (tmp_path / "file").write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "mss.data.synth", str(tmp_path), "--preset", "tiny"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--overwrite" in result.stderr
