"""The decoded-audio cache (mss.data.cache): chunks equal the direct read, entries follow their files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mss.data import DataConfig, SongDataset, TrainChunks, open_db
from mss.data.cache import AudioCache, CacheSpec, dequantize, stored_stream
from mss.data.tracks import TrackReader, track_info
from mss.errors import DatasetError

FOUR = ("vocals", "drums", "bass", "other")


def _plain_config(**overrides) -> DataConfig:
    """No augmentation, so the summed sources of an item are the raw cached parts."""
    values = dict(
        targets=FOUR, segment_s=1.0, gain_db=(0.0, 0.0), channel_swap=False, sign_flip=False, seed=5
    )
    values.update(overrides)
    return DataConfig(**values)


def _direct_chunk(info, source: str, spec: CacheSpec, start: int, length: int) -> np.ndarray:
    """The chunk read without the cache: decode and resample the whole stream, quantize, slice."""
    stored, _ = stored_stream(info, source, spec)
    return dequantize(stored)[:, start : start + length]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int16"])
def test_training_chunks_equal_the_direct_read(tiny_dataset, tmp_path, dtype):
    db = open_db(tiny_dataset, "train")
    config = _plain_config(sample_rate=22050, cache_dtype=dtype)
    chunks = TrainChunks(db, config, cache=tmp_path / "cache", progress=False)
    spec = CacheSpec(22050, dtype)
    assert chunks.cache_stats["built"] == len(db) and chunks.cache_stats["bytes"] > 0
    infos = {info.key: info for info in chunks.tracks}
    for index in range(6):
        item = chunks.draw(index)
        for name, song, start, source in zip(
            item["names"], item["songs"], item["starts"], item["sources"], strict=True
        ):
            direct = _direct_chunk(infos[song], name, spec, start, chunks.segment)
            assert direct.shape == source.shape
            np.testing.assert_array_equal(source, direct)  # bit-identical
    # a second dataset over the same cache builds nothing and gives the same items
    again = TrainChunks(db, config, cache=tmp_path / "cache", progress=False)
    assert again.cache_stats["built"] == 0
    np.testing.assert_array_equal(again.draw(3)["mix"], chunks.draw(3)["mix"])


def test_cache_rebuilds_when_a_file_changes(tiny_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset, root)
    db = open_db(root, "train")
    info = track_info(db.tracks[0])
    cache = AudioCache(tmp_path / "cache", CacheSpec(22050, "float32"))
    first = cache.open(info)
    before = first.read("bass", 0, 22050)
    assert np.abs(before).max() > 0
    # rewrite bass.wav with half the amplitude: same size, new content and mtime
    path = Path(info.file("bass"))
    audio, rate = sf.read(path, dtype="float32")
    stat = path.stat()
    sf.write(path, audio * 0.5, rate, subtype="FLOAT")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.lookup(info) is None  # the old entry no longer matches its files
    second = cache.open(info)
    assert second.path != first.path
    np.testing.assert_allclose(second.read("bass", 0, 22050), before * 0.5, atol=1e-7)


def test_stem_mp4_is_decoded_once_and_aligned(tmp_path):
    import stempeg

    (tmp_path / "train").mkdir()
    clip = Path(stempeg.example_stem_path())
    (tmp_path / "train" / clip.name).symlink_to(clip)
    db = open_db(tmp_path, "train")
    info = track_info(db.tracks[0])
    cache = AudioCache(tmp_path / "cache")
    reader = TrackReader(cache)
    length = reader.num_samples(info)
    entry = reader.entry(info)
    assert entry.num_samples == length == min(entry.meta["source_lengths"])
    assert entry.streams[0] == "mixture" and set(FOUR) <= set(entry.streams)
    # every stream read by slices equals the stream decoded directly, in time and value
    for source in ("mixture", "vocals", "bass"):
        np.testing.assert_array_equal(
            reader.read(info, source, 1000, 44100), _direct_chunk(info, source, CacheSpec(), 1000, 44100)
        )
    mtime = entry.path.stat().st_mtime_ns
    TrackReader(cache).read(info, "drums", 0, 10)  # a new reader (another process) reuses the entry
    assert entry.path.stat().st_mtime_ns == mtime and len(list(cache.root.glob("*.npy"))) == 1
    # past the end: zero-padded to the length asked for
    tail = reader.read(info, "vocals", length - 10, 100)
    assert tail.shape == (2, 100) and not np.any(tail[:, 10:])


def test_validation_reads_only_what_is_scored(tiny_dataset):
    db = open_db(tiny_dataset, "train")
    whole = SongDataset(db, ["vocals"], sample_rate=22050)
    cropped = SongDataset(db, ["vocals"], sample_rate=22050, max_seconds=2.0)
    song, short = whole[0], cropped[0]
    assert short.mix.shape == (2, 44100) and short.targets.shape == (1, 2, 44100)
    assert song.mix.shape[-1] > 3 * 22050
    # away from the crop's end (resampling context), the crop equals the whole song's start
    np.testing.assert_allclose(short.mix[:, :40000], song.mix[:, :40000], atol=1e-5)


def test_cache_errors(tiny_dataset, tmp_path):
    with pytest.raises(DatasetError, match="dtype"):
        CacheSpec(22050, "float64")
    db = open_db(tiny_dataset, "train")
    with pytest.raises(DatasetError, match="asks for"):
        TrainChunks(db, _plain_config(), cache=AudioCache(tmp_path, CacheSpec(16000)), progress=False)
    root = tmp_path / "broken"
    shutil.copytree(tiny_dataset / "train" / db.tracks[0].name, root / "train" / "song")
    (root / "train" / "song" / "bass.wav").write_bytes(b"RIFF not a wav")
    with pytest.raises(DatasetError, match="bass.wav"):  # named by open_db or by the cache build
        TrainChunks(open_db(root, "train"), _plain_config(), cache=tmp_path / "c", progress=False)


def test_batches_written_in_place_equal_the_items(tiny_dataset, tmp_path):
    import torch
    from torch.utils.data import DataLoader

    from mss.data import collate_chunks

    db = open_db(tiny_dataset, "train")
    chunks = TrainChunks(
        db,
        DataConfig(targets=FOUR, segment_s=0.5, samples_per_epoch=12, seed=2),
        cache=tmp_path,
        progress=False,
    )
    expected = [chunks[i] for i in range(12)]
    for workers in (0, 2):
        loader = DataLoader(chunks, batch_size=4, num_workers=workers, collate_fn=collate_chunks)
        batches = list(loader)
        assert len(batches) == 3
        for b, (mix, targets) in enumerate(batches):
            assert mix.shape == (4, 2, 11025) and targets.shape == (4, 4, 2, 11025)
            torch.testing.assert_close(
                mix, torch.stack([expected[4 * b + i][0] for i in range(4)]), rtol=0, atol=0
            )
            torch.testing.assert_close(
                targets, torch.stack([expected[4 * b + i][1] for i in range(4)]), rtol=0, atol=0
            )
    # without collate_chunks, torch's default collate stacks the same items
    mix, targets = next(iter(DataLoader(chunks, batch_size=4)))
    torch.testing.assert_close(mix, torch.stack([expected[i][0] for i in range(4)]), rtol=0, atol=0)
