"""mss.data: opening datasets through musdb, stems, training chunks, songs, augmentation, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mss.data import (
    DataConfig,
    SongDataset,
    TrackReader,
    TrainChunks,
    available_targets,
    channel_swap,
    default_root,
    ensure_default_dataset,
    find_track,
    open_db,
    plan_parts,
    random_gain,
    sign_flip,
    track_stems,
)
from mss.data.bench import dataset_throughput
from mss.errors import DatasetError, MissingDependencyError

FOUR = ("vocals", "drums", "bass", "other")


def _rms_db(audio) -> float:
    power = float(np.mean(np.square(np.asarray(audio, dtype=np.float64))))
    return 10 * np.log10(power) if power > 0 else float("-inf")


# ----------------------------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_root(tiny_dataset) -> Path:
    return tiny_dataset


@pytest.fixture(scope="module")
def training_db(data_root):
    return open_db(data_root, "train")


@pytest.fixture(scope="module")
def heldout_db(data_root):
    return open_db(data_root, "test")


def _songs_with(db, stem: str, active: bool) -> list:
    """Tracks of ``db`` whose ``stem`` is (not) silent, read from the files themselves."""
    out = []
    for track in db.tracks:
        peak = np.abs(track_stems(track, [stem])).max()
        if (peak > 0) == active:
            out.append(track)
    return out


# -------------------------------------------------------------------------------------------- open_db


def test_open_db_subsets_and_official_split(data_root, training_db, heldout_db):
    train_names = {t.name for t in training_db.tracks}
    test_names = {t.name for t in heldout_db.tracks}
    expected_train = {p.name for p in (data_root / "train").iterdir() if p.is_dir()}
    expected_test = {p.name for p in (data_root / "test").iterdir() if p.is_dir()}
    assert train_names == expected_train and test_names == expected_test
    assert training_db.is_wav and not train_names & test_names

    valid = open_db(data_root, "train", split="valid")
    train_only = open_db(data_root, "train", split="train")
    valid_names = {t.name for t in valid.tracks}
    assert valid_names == set(training_db.setup["validation_tracks"]) and valid_names
    assert valid_names | {t.name for t in train_only.tracks} == train_names
    assert not valid_names & {t.name for t in train_only.tracks}
    # extra stems of the embedded set are declared through ROOT/setup.yaml
    assert {"vocals", "drums", "bass", "other", "piano", "accompaniment"} <= set(
        available_targets(training_db)
    )
    track = find_track(heldout_db, heldout_db.tracks[-1].name)
    assert track.subset == "test"


def test_mixture_is_the_sum_of_stems(heldout_db):
    songs = SongDataset(heldout_db, FOUR + ("piano",), sample_rate=None)
    for i in range(len(songs)):
        song = songs.reference(i)
        assert song.sample_rate == 44100 and song.targets.shape == (5,) + song.mix.shape
        # "other" next to "piano" is the rest of other, so the five targets still add up to the mixture
        np.testing.assert_allclose(song.targets.sum(0), song.mix, atol=1e-5)
    stems = track_stems(heldout_db.tracks[0], FOUR)  # (S, C, T)
    np.testing.assert_allclose(stems.sum(0), heldout_db.tracks[0].audio.T[:, : stems.shape[-1]], atol=1e-4)
    # piano is part of other: other == (other - piano) + piano
    other, piano = (
        track_stems(heldout_db.tracks[0], ["other"])[0],
        track_stems(heldout_db.tracks[0], ["piano"])[0],
    )
    residual = track_stems(heldout_db.tracks[0], ["other", "piano"])[0]
    np.testing.assert_allclose(residual + piano, other, atol=1e-6)


def test_plan_parts_residual_and_errors():
    sources = ["vocals", "drums", "bass", "other", "piano"]
    recipes = {"accompaniment": {"drums": 1, "bass": 1, "other": 1}}
    targets, distractors = plan_parts(sources, recipes, ["piano"])
    assert [p.name for p in targets] == ["piano"]
    assert [(p.name, p.terms) for p in distractors][-1] == ("other", (("other", 1.0), ("piano", -1.0)))
    targets, distractors = plan_parts(sources, recipes, ["vocals"])
    assert [p.name for p in distractors] == ["drums", "bass", "other"]  # piano stays inside other
    targets, distractors = plan_parts(sources, recipes, ["accompaniment"])
    assert [p.name for p in distractors] == ["vocals"]
    with pytest.raises(DatasetError, match="overlap"):
        plan_parts(sources, recipes, ["accompaniment", "drums"])
    with pytest.raises(DatasetError, match="unknown target 'guitar'.*vocals.*piano.*accompaniment"):
        plan_parts(sources, recipes, ["guitar"])


# ------------------------------------------------------------------------------------- real MUSDB clips


def _check_stem_dataset(root: Path, max_residual_db: float):
    db = open_db(root, "train")
    assert not db.is_wav and len(db) == 1
    track, reader = db.tracks[0], TrackReader()
    stems = track_stems(track, FOUR, reader=reader)
    assert stems.dtype == np.float32 and stems.shape[:2] == (4, 2)
    assert track.rate == 44100 and abs(stems.shape[-1] - track.samples) <= 2048
    # AAC-coded stems only approximately add up to the AAC-coded mixture (stempeg's example is also mastered);
    # musdb's own reader and ours must agree sample-exactly in time (a 1-sample shift costs > 3 dB here)
    mix = track.audio.T[:, : stems.shape[-1]]
    residual_db = _rms_db(stems.sum(0) - mix) - _rms_db(mix)
    assert residual_db < max_residual_db, residual_db
    accompaniment = track_stems(track, ["accompaniment"], reader=reader)[0]
    np.testing.assert_allclose(accompaniment, stems[1:].sum(0), atol=1e-5)
    chunks = TrainChunks(db, DataConfig(targets=("vocals", "bass"), segment_s=1.5, sample_rate=22050, seed=3))
    mix, targets = chunks[0]
    assert mix.shape == (2, 33075) and targets.shape == (2, 2, 33075)
    np.testing.assert_allclose(chunks.draw(0)["sources"].sum(0), mix.numpy(), atol=1e-6)
    song = SongDataset(db, ["vocals"], sample_rate=22050)[0]
    assert song.sample_rate == 22050 and song.targets.shape[:2] == (1, 2)
    assert abs(song.mix.shape[-1] - stems.shape[-1] / 2) <= 2


def test_real_musdb_clip(musdb_sample_root):
    from conftest import SHARED_DIR

    # the project's 7-s clip: stems add up to the mixture within -25 dB; stempeg's clip (the fallback on a
    # clone without ../shared) has a mastered mixture, -14 dB
    shared = musdb_sample_root == SHARED_DIR / "data" / "musdb-sample"
    _check_stem_dataset(musdb_sample_root, max_residual_db=-25.0 if shared else -14.0)


def test_stempeg_example_stem(tmp_path):
    import stempeg

    (tmp_path / "train").mkdir()
    source = Path(stempeg.example_stem_path())
    os.symlink(source, tmp_path / "train" / source.name)
    _check_stem_dataset(tmp_path, max_residual_db=-14.0)


# --------------------------------------------------------------------------------------- training chunks


def test_curriculum_source_counts(training_db):
    for mix_sources, expected in [(2, 2), (3, 3), (None, 4), (9, 4)]:
        chunks = TrainChunks(
            training_db, DataConfig(targets=("vocals",), segment_s=1.0, mix_sources=mix_sources)
        )
        for i in range(4):
            item = chunks.draw(i)
            assert item["names"][0] == "vocals" and len(item["names"]) == expected
            assert len(set(item["names"])) == expected
            assert sum(np.abs(s).max() > 0 for s in item["sources"]) >= 1
            np.testing.assert_allclose(item["mix"], item["sources"].sum(0), atol=1e-6)
            np.testing.assert_array_equal(item["targets"][0], item["sources"][0])
    # multi-target: one anchor target always in; targets left out of the mix are zeros
    chunks = TrainChunks(training_db, DataConfig(targets=FOUR, segment_s=1.0, mix_sources=2))
    for i in range(6):
        item = chunks.draw(i)
        present = [
            name for name, target in zip(FOUR, item["targets"], strict=True) if np.abs(target).max() > 0
        ]
        assert set(present) <= set(item["names"]) and len(item["names"]) == 2
        assert _rms_db(item["targets"][FOUR.index(item["names"][0])]) > -60
        absent = [k for k, name in enumerate(FOUR) if name not in item["names"]]
        assert len(absent) == 2 and all(not item["targets"][k].any() for k in absent)
    chunks.set_mix_sources(None)
    assert len(chunks.draw(0)["names"]) == 4


def test_remix_draws_sources_from_different_songs(training_db):
    chunks = TrainChunks(training_db, DataConfig(targets=FOUR, segment_s=1.0))
    songs = [tuple(chunks.draw(i)["songs"]) for i in range(8)]
    assert any(len(set(s)) > 1 for s in songs)
    same = TrainChunks(training_db, DataConfig(targets=FOUR, segment_s=1.0, remix=False))
    for i in range(4):
        item = same.draw(i)
        assert len(set(item["songs"])) == 1 and len(set(item["starts"])) == 1


def test_remix_prob_keeps_that_share_of_chunks_remixed_and_the_rest_in_one_song(training_db):
    """remix_prob: about that share of chunks draws its parts from several songs; the others are coherent (one
    song and offset, as recorded). 1 is the default's draws exactly (no coin is drawn)."""
    config = DataConfig(targets=FOUR, segment_s=1.0, samples_per_epoch=200)
    default = TrainChunks(training_db, config)
    every = TrainChunks(training_db, dataclasses.replace(config, remix_prob=1.0))
    for i in range(3):
        a, b = default.draw(i), every.draw(i)
        assert a["songs"] == b["songs"] and a["starts"] == b["starts"] and np.array_equal(a["mix"], b["mix"])
    half = TrainChunks(training_db, dataclasses.replace(config, remix_prob=0.5))
    coherent = []
    for i in range(60):
        item = half.draw(i)
        one_song = len(set(item["songs"])) == 1 and len(set(item["starts"])) == 1
        coherent.append(one_song)
        np.testing.assert_allclose(item["mix"], item["sources"].sum(0), atol=1e-6)
    # a remixed chunk can draw one song for all four parts by chance, rarely with the same offset too
    assert 18 <= sum(coherent) <= 42, sum(coherent)
    with pytest.raises(DatasetError, match="remix_prob"):
        DataConfig(targets=FOUR, remix_prob=1.5)
    with pytest.raises(DatasetError, match="needs remix=true"):
        DataConfig(targets=FOUR, remix=False, remix_prob=0.5)


def test_silent_targets_are_redrawn(training_db):
    without = {f"train/{t.name}" for t in _songs_with(training_db, "piano", active=False)}
    assert without, "the tiny set should have a train song without piano"
    config = DataConfig(targets=("piano",), segment_s=1.0, gain_db=(0.0, 0.0))
    blind = TrainChunks(training_db, config, use_manifest=False)  # only the silence check keeps piano audible
    informed = TrainChunks(training_db, config)  # manifest.json: piano parts come from piano songs only
    for i in range(10):
        for chunks in (blind, informed):
            item = chunks.draw(i)
            assert _rms_db(item["targets"][0]) > -60
            assert item["names"] == ["piano", "vocals", "drums", "bass", "other"]  # other is other - piano
            np.testing.assert_allclose(item["mix"], item["sources"].sum(0), atol=1e-6)
        assert item["songs"][0] not in without
    # the silence threshold is what rejects them: with no threshold, silent piano chunks do come through
    lax = TrainChunks(
        training_db,
        DataConfig(targets=("piano",), segment_s=1.0, silence_threshold_db=-np.inf),
        use_manifest=False,
    )
    assert any(not lax.draw(i)["targets"].any() for i in range(12))


def test_augmentation_invariants_and_batches(training_db):
    config = DataConfig(targets=FOUR, segment_s=0.5, gain_db=(-6.0, 3.0), seed=5, samples_per_epoch=8)
    chunks = TrainChunks(training_db, config)
    plain = TrainChunks(
        training_db,
        DataConfig(
            targets=FOUR,
            segment_s=0.5,
            seed=5,
            gain_db=(0.0, 0.0),
            channel_swap=False,
            sign_flip=False,
            samples_per_epoch=8,
        ),
    )
    for i in range(4):
        item, raw = chunks.draw(i), plain.draw(i)
        np.testing.assert_allclose(item["mix"], item["targets"].sum(0), atol=1e-6)
        assert item["songs"] == raw["songs"] and item["starts"] == raw["starts"]
        for aug, src in zip(item["sources"], raw["sources"], strict=True):
            # each source is ±gain * (possibly channel-swapped) original, with gain in [-6, 3] dB
            best = min(np.abs(aug).max() / max(np.abs(cand).max(), 1e-12) for cand in (src, src[::-1]))
            assert 10 ** (-6 / 20) - 1e-4 <= best <= 10 ** (3 / 20) + 1e-4
    mix, targets = next(iter(DataLoader(chunks, batch_size=4, num_workers=0)))
    assert mix.shape == (4, 2, 11025) and targets.shape == (4, 4, 2, 11025) and mix.dtype == torch.float32
    torch.testing.assert_close(targets.sum(1), mix, atol=1e-6, rtol=0)


def test_augment_functions_are_pure():
    rng = np.random.default_rng(0)
    stems = rng.standard_normal((6, 2, 100)).astype(np.float32)
    before = stems.copy()
    gained = random_gain(stems, np.random.default_rng(1), (-6.0, 3.0))
    ratios = np.abs(gained).max(axis=(1, 2)) / np.abs(stems).max(axis=(1, 2))
    assert np.all(ratios >= 10 ** (-6 / 20) - 1e-6) and np.all(ratios <= 10 ** (3 / 20) + 1e-6)
    swapped = channel_swap(stems, np.random.default_rng(2), probability=1.0)
    np.testing.assert_array_equal(swapped, stems[:, ::-1])
    flipped = sign_flip(stems, np.random.default_rng(3), probability=1.0)
    np.testing.assert_array_equal(flipped, -stems)
    np.testing.assert_array_equal(stems, before)
    mono = stems[:, :1]
    np.testing.assert_array_equal(channel_swap(mono, np.random.default_rng(4), probability=1.0), mono)


def test_determinism_epochs_and_workers(training_db):
    config = DataConfig(targets=("vocals", "bass"), segment_s=0.5, samples_per_epoch=6, seed=11)
    first, second = TrainChunks(training_db, config), TrainChunks(training_db, config)
    for i in (0, 3, 5):
        torch.testing.assert_close(first[i], second[i], atol=0, rtol=0)
    serial = [b for b in DataLoader(first, batch_size=3, num_workers=0)]
    parallel = [b for b in DataLoader(first, batch_size=3, num_workers=2)]
    for (mix_a, tgt_a), (mix_b, tgt_b) in zip(serial, parallel, strict=True):
        torch.testing.assert_close(mix_a, mix_b, atol=0, rtol=0)
        torch.testing.assert_close(tgt_a, tgt_b, atol=0, rtol=0)
    first.set_epoch(1)
    assert not torch.equal(first[0][0], second[0][0])
    first.set_epoch(0)
    torch.testing.assert_close(first[0], second[0], atol=0, rtol=0)
    other_seed = TrainChunks(training_db, DataConfig(targets=("vocals", "bass"), segment_s=0.5, seed=12))
    assert not torch.equal(other_seed[0][0], second[0][0])


@pytest.mark.parametrize("rate,channels", [(22050, 2), (16000, 2), (16000, 1), (44100, 1)])
def test_resampling_and_channels(training_db, rate, channels):
    chunks = TrainChunks(
        training_db, DataConfig(targets=("drums",), sample_rate=rate, channels=channels, segment_s=1.25)
    )
    mix, targets = chunks[2]
    assert mix.shape == (channels, int(1.25 * rate)) and targets.shape == (1, channels, int(1.25 * rate))
    torch.testing.assert_close(torch.from_numpy(chunks.draw(2)["sources"].sum(0)), mix, atol=1e-6, rtol=0)


def test_song_dataset_rates(heldout_db):
    songs = SongDataset(heldout_db, ["vocals", "accompaniment"], sample_rate=16000, channels=1)
    assert len(songs) == len(heldout_db) and songs.names == [t.name for t in heldout_db.tracks]
    song, reference = songs[0], songs.reference(0)
    assert song.mix.shape[0] == 1 and song.targets.shape[:2] == (2, 1) and song.sample_rate == 16000
    assert reference.sample_rate == 44100 and reference.mix.shape[0] == 2
    assert abs(song.mix.shape[-1] - reference.mix.shape[-1] * 16000 / 44100) <= 1
    np.testing.assert_allclose(reference.targets.sum(0), reference.mix, atol=1e-5)
    assert songs[0].name == song.name and np.array_equal(songs[0].mix, song.mix)


# ------------------------------------------------------------------------------------------------ errors


def test_errors(tmp_path, training_db):
    with pytest.raises(DatasetError, match="not found"):
        open_db(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="neither a train/ nor a test/"):
        open_db(tmp_path)
    (tmp_path / "train" / "Some Song").mkdir(parents=True)
    (tmp_path / "train" / "notes.txt").write_text("junk")
    (tmp_path / "train" / "Some Song" / "readme.md").write_text("junk")
    with pytest.raises(DatasetError, match="no tracks"):
        open_db(tmp_path)
    with pytest.raises(DatasetError, match="no test/ folder"):
        open_db(tmp_path, "test")
    with pytest.raises(DatasetError, match="unknown subset"):
        open_db(tmp_path, "validation")
    with pytest.raises(DatasetError, match="only applies to the train subset"):
        open_db(tmp_path, "test", split="valid")
    with pytest.raises(DatasetError, match="unknown split"):
        open_db(tmp_path, "train", split="dev")
    with pytest.raises(DatasetError, match="unknown target 'guitar'.*vocals"):
        TrainChunks(training_db, DataConfig(targets=("guitar",)))
    with pytest.raises(DatasetError, match="unknown target 'kazoo'.*piano"):
        track_stems(training_db.tracks[0], ["kazoo"])
    name = training_db.tracks[0].name
    with pytest.raises(DatasetError, match=f"unknown track.*did you mean '{name}'"):
        find_track(training_db, name[:-1] + "#")


def test_missing_ffmpeg_is_reported(monkeypatch, data_root):
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda cmd, *a, **k: None if cmd in ("ffmpeg", "ffprobe") else real_which(cmd)
    )
    with pytest.raises(MissingDependencyError, match="apt-get install"):
        open_db(data_root)


def test_default_root_and_existing_dataset(monkeypatch, tmp_path, data_root):
    monkeypatch.setenv("MSS_DATA_DIR", str(tmp_path))
    assert default_root() == tmp_path / "default"
    # a finished dataset (manifest.json written) is reused as it is: nothing is generated
    os.symlink(data_root, tmp_path / "default")
    assert ensure_default_dataset() == tmp_path / "default"
    for root in (None, "default"):
        db = open_db(root, "test")
        assert Path(db.root) == tmp_path / "default" and len(db) == len(list((data_root / "test").iterdir()))
    monkeypatch.delenv("MSS_DATA_DIR")
    assert default_root() == Path.home() / ".cache" / "mss" / "datasets" / "default"


def test_bench_throughput(data_root):
    result = dataset_throughput(data_root, batches=2, batch_size=2, num_workers=0, segment_s=1.0)
    assert result["chunks_per_s"] > 0 and result["tracks"] == len(open_db(data_root, "train"))
    assert result["audio_s_per_s"] == pytest.approx(result["chunks_per_s"] * 1.0)


def test_bench_command_prints_and_writes_every_figure(data_root, tmp_path, capsys):
    """``python -m mss.data.bench`` runs to the end (it once crashed on its last line) and writes its JSON."""
    from mss.data.bench import main as bench_main

    out = tmp_path / "bench.json"
    argv = ["--root", str(data_root), "--no-generator", "--batches", "2", "--eq-db", "6", "--repitch-semitones", "2",
            "--json", str(out)]  # fmt: skip
    assert bench_main(argv) == 0
    printed = capsys.readouterr().out
    assert "chunks/s" in printed and "main process (no workers)" in printed and "random EQ +-6 dB" in printed
    assert "a speed drawn for every source within +-2 semitones)" in printed
    figures = json.loads(out.read_text())
    for key in ("throughput", "throughput_in_process"):
        assert figures[key]["chunks_per_s"] > 0
    assert figures["throughput_in_process"]["num_workers"] == 0
    assert figures["throughput"]["eq_db"] == figures["throughput_in_process"]["eq_db"] == 6.0
    assert figures["throughput"]["repitch_semitones"] == 2.0 and figures["throughput"]["repitch_prob"] == 1.0
    assert bench_main(["--root", str(data_root), "--no-generator", "--repitch-semitones", "9"]) == 2
    assert "--repitch-semitones: repitch_semitones must be 0 (off) or in [0.1, 4]" in capsys.readouterr().err


@pytest.mark.parametrize("channels", [1, 2])
def test_fused_augment_equals_the_composition(channels):
    from mss.data.augment import augment, random_gain, sign_flip

    stems = np.random.default_rng(7).standard_normal((4, channels, 1000)).astype(np.float32)
    for seed in range(5):
        fused = augment(stems, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        composed = sign_flip(channel_swap(random_gain(stems, rng, (-6.0, 3.0)), rng), rng)
        np.testing.assert_array_equal(fused, composed)
        assert fused.dtype == np.float32 and fused is not stems
