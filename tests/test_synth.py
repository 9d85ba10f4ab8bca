"""The embedded dataset generator: MUSDB18-HQ layout, exact stems, invariants, determinism, CLI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import musdb
import numpy as np
import pytest
import soundfile as sf
import yaml

from mss import SOURCES
from mss.audio import save_audio
from mss.data import open_db
from mss.data.synth import DATASET_PRESETS, SynthPreset, generate_dataset
from mss.data.synth.formats import STEM_STREAMS
from mss.errors import DatasetError

ONE_SONG = SynthPreset("one-song", n_train=1, n_test=0, song_s=(3.0, 3.0))
TWO_SONGS = SynthPreset("two-songs", n_train=2, n_test=0, song_s=(3.0, 4.0))  # train + valid split
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
    preset = DATASET_PRESETS["tiny"]
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
    assert len(songs) == DATASET_PRESETS["tiny"].n_train + DATASET_PRESETS["tiny"].n_test
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
    assert len(train) == DATASET_PRESETS["tiny"].n_train - 1
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


# ---------------------------------------------------------------------------------------------------------
# Output formats: 16-bit wav, MUSDB18 stem files, file modes


@contextlib.contextmanager
def _umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture(scope="module")
def two_song_sets(tmp_path_factory) -> dict[str, Path]:
    """The same two songs as float wav, 16-bit wav and .stem.mp4, generated under umask 022."""
    base = tmp_path_factory.mktemp("formats")
    with _umask(0o022):
        return {
            "float": generate_dataset(base / "float", TWO_SONGS, seed=5, progress=False),
            "pcm16": generate_dataset(base / "pcm16", TWO_SONGS, seed=5, progress=False, subtype="PCM_16"),
            "stems": generate_dataset(base / "stems", TWO_SONGS, seed=5, progress=False, format="stems"),
        }


def test_musdb_presets_are_shaped_like_musdb18():
    musdb18, mini = DATASET_PRESETS["musdb"], DATASET_PRESETS["musdb-mini"]
    assert (musdb18.n_train, musdb18.n_test, musdb18.song_s) == (100, 50, (180.0, 420.0))
    assert musdb18.subtype == "PCM_16"  # 16-bit like MUSDB18-HQ
    assert round(musdb18.validation_fraction * musdb18.n_train) == 14  # musdb's validation split
    assert (mini.n_train + mini.n_test, mini.song_s, mini.subtype) == (7, (180.0, 420.0), "PCM_16")
    assert round(mini.validation_fraction * mini.n_train) == 1
    assert all(DATASET_PRESETS[name].subtype == "FLOAT" for name in ("tiny", "large"))
    assert DATASET_PRESETS["default"].subtype == "PCM_16"  # 3.4 GiB instead of 6.7 GiB on a user's disk


def test_pcm16_mixture_is_exactly_the_sum_of_the_stems(two_song_sets):
    songs = sorted((two_song_sets["pcm16"] / "train").iterdir())
    assert len(songs) == 2
    for song in songs:
        ints, floats = {}, {}
        for name in STEM_FILES:
            assert sf.info(song / f"{name}.wav").subtype == "PCM_16"
            ints[name], _ = sf.read(song / f"{name}.wav", dtype="int16")
            floats[name], _ = sf.read(song / f"{name}.wav", dtype="float32")
        # Exact, in integers and in float32 alike (k / 32768 values add up exactly).
        summed = sum(ints[name].astype(np.int32) for name in SOURCES)
        np.testing.assert_array_equal(ints["mixture"].astype(np.int32), summed)
        np.testing.assert_array_equal(floats["mixture"], sum(floats[name] for name in SOURCES))
        # Each stem is the float stem rounded to 16 bits; the mixture moves by at most 4 half steps.
        reference = two_song_sets["float"] / song.relative_to(two_song_sets["pcm16"])
        for name in STEM_FILES:
            exact, _ = sf.read(reference / f"{name}.wav", dtype="float64")
            limit = (2.0 if name == "mixture" else 0.5) / 32768 + 1e-9
            assert np.abs(floats[name] - exact).max() <= limit, name
    manifest = json.loads((two_song_sets["pcm16"] / "manifest.json").read_text())
    assert (manifest["format"], manifest["encoding"], manifest["dropped_stems"]) == ("wav", "PCM_16", [])


def test_stems_format_opens_like_musdb18(two_song_sets):
    root = two_song_sets["stems"]
    files = sorted((root / "train").iterdir())
    assert [f.name.endswith(".stem.mp4") for f in files] == [True, True]
    setup = yaml.safe_load((root / "setup.yaml").read_text())
    assert list(setup["sources"]) == list(SOURCES) and len(setup["validation_tracks"]) == 1
    # The project's loader detects the format and applies the validation split of setup.yaml.
    db = open_db(root, "train")
    assert len(db) == 2 and not db.is_wav and set(db[0].sources) == set(SOURCES)
    assert [t.name for t in open_db(root, "train", split="valid")] == setup["validation_tracks"]
    # musdb with its own setup (no setup.yaml) reads the five streams by MUSDB18's stem ids.
    track = musdb.DB(root=str(root), is_wav=False, subsets="train")[0]
    import stempeg

    streams, rate = stempeg.read_stems(track.path, dtype=np.float32, always_3d=True)  # (5, T, C)
    assert streams.shape[0] == 5 and streams.shape[2] == 2 and rate == 44100
    assert stempeg.Info(track.path).title_streams == list(STEM_STREAMS)
    # Every stream is the 16-bit stem of the same name, through AAC: the order is MUSDB's.
    song = two_song_sets["pcm16"] / "train" / track.name
    for index, name in enumerate(STEM_STREAMS):
        wav, _ = sf.read(song / f"{name}.wav", dtype="float32")
        decoded = track.sources[name].audio if name != "mixture" else track.audio
        length = min(len(wav), len(decoded))
        error = decoded[:length] - wav[:length]
        snr_db = 10 * np.log10(np.sum(wav[:length] ** 2) / np.sum(error**2))
        assert snr_db > 15, f"stream {index} ({name}): {snr_db:.1f} dB"
        # musdb has ffmpeg decode to 16-bit: the same stream to half a step.
        assert np.abs(streams[index, :length] - decoded[:length]).max() <= 0.5 / 32768 + 1e-9
    manifest = json.loads((root / "manifest.json").read_text())
    assert (manifest["format"], manifest["dropped_stems"]) == ("stems", ["piano"])
    assert manifest["stems"] == list(SOURCES)
    assert all("piano" not in entry["active_stems"] for entry in manifest["songs"].values())


def test_files_are_created_with_the_umask(two_song_sets, tmp_path):
    for root in two_song_sets.values():
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o755 if path.is_dir() else 0o644), f"{path}: {oct(mode)}"
    audio = np.zeros((2, 100), dtype=np.float32)
    with _umask(0o022):
        assert stat.S_IMODE(save_audio(tmp_path / "a.wav", audio, 44100).stat().st_mode) == 0o644
    with _umask(0o027):
        assert stat.S_IMODE(save_audio(tmp_path / "b.wav", audio, 44100).stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]  # no temp file left


def test_unknown_format_or_subtype_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="--format.*wav, stems"):
        generate_dataset(tmp_path / "x", preset=ONE_SONG, progress=False, format="flac")
    with pytest.raises(DatasetError, match="--subtype.*FLOAT, PCM_16"):
        generate_dataset(tmp_path / "x", preset=ONE_SONG, progress=False, subtype="PCM_24")
    with pytest.raises(DatasetError, match="--subtype.*wav only"):
        generate_dataset(tmp_path / "x", preset=ONE_SONG, progress=False, format="stems", subtype="PCM_16")
    assert not (tmp_path / "x").exists()
    result = subprocess.run(
        [sys.executable, "-m", "mss.data.synth", str(tmp_path / "x"), "--format", "flac"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--format" in result.stderr and "'stems'" in result.stderr


def test_options_after_the_seed_are_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        generate_dataset(tmp_path / "x", ONE_SONG, 0, False)  # progress= must be named
    assert not (tmp_path / "x").exists()
