"""Where the gauge's songs come from: real MUSDB18 stems (train subset only) and generated songs.

A song here is ``(name, {stem: (C, T) float32}, sample_rate)`` with the four MUSDB18 stems. Real
references are MUSDB18 ``.stem.mp4`` files or MUSDB18-HQ song folders (``vocals.wav``...), found under
the paths given; MUSDB18 test-set songs are left out (``real_clips.is_test_set_song``), because the
generator is tuned on this gauge. Generated songs are read from a dataset folder of the same layout,
or rendered in memory by a generator version (``mss.data.synth``) without writing a dataset. Training
chunks (``chunk_songs``) are what a model trains on: a dataset's songs remixed and augmented by
``TrainChunks`` at the model rate, each chunk one "song".
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.audio import load_audio
from mss.data.datasets import DataConfig, TrainChunks
from mss.data.musdb_io import open_db
from mss.data.real_clips import is_test_set_song, load_real_clip
from mss.errors import AudioError, DatasetError

Song = tuple[str, dict[str, np.ndarray], int]


def _stem_file(path: Path) -> Song:
    clip = load_real_clip(path, SOURCES, MUSDB_SAMPLE_RATE)  # targets (S, C, T), in SOURCES order
    return clip.name, dict(zip(SOURCES, clip.targets, strict=True)), clip.sample_rate


def _song_folder(folder: Path) -> Song:
    stems, rates = {}, set()
    for stem in SOURCES:
        stems[stem], rate = load_audio(folder / f"{stem}.wav")
        rates.add(rate)
    if len(rates) != 1:
        raise AudioError(f"{folder}: its stems have different sample rates {sorted(rates)}")
    return folder.name, stems, rates.pop()


def find_songs(paths: list[Path]) -> list[Path]:
    """Every ``.stem.mp4`` and MUSDB18-HQ song folder under ``paths`` (files or folders), sorted, each once."""
    found: dict[Path, Path] = {}
    for path in paths:
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(path.rglob("*.stem.mp4")) + sorted(p.parent for p in path.rglob("vocals.wav"))
        else:
            raise DatasetError(f"{path}: no such file or folder")
        for candidate in candidates:
            found.setdefault(candidate.resolve(), candidate)
    return sorted(found.values(), key=lambda p: (str(p.parent), p.name))


def read_songs(paths: list[Path], limit: int | None = None, real: bool = False) -> Iterator[Song]:
    """The songs under ``paths``, up to ``limit``. ``real``: MUSDB18 test-set songs are left out (named on
    stderr: the generator is tuned on this gauge), and DatasetError when nothing else is left."""
    songs = find_songs(paths)
    if not songs:
        raise DatasetError(
            f"no .stem.mp4 file or song folder with vocals.wav under {', '.join(map(str, paths))}"
        )
    if real:
        test = [p for p in songs if is_test_set_song(p)]
        songs = [p for p in songs if not is_test_set_song(p)]
        if test:
            print(
                f"realism: left out {len(test)} MUSDB18 test-set song(s), never a reference: "
                + ", ".join(p.name for p in test[:5])
                + (" ..." if len(test) > 5 else ""),
                file=sys.stderr,
            )
        if not songs:
            raise DatasetError(
                "only MUSDB18 test-set songs given; the realism gauge takes train-subset songs as references "
                f"(the generator is tuned on it): {', '.join(str(p) for p in test)}"
            )
    for path in songs[:limit]:
        yield _stem_file(path) if path.is_file() else _song_folder(path)


def chunk_songs(root: Path, count: int, config: DataConfig) -> Iterator[Song]:
    """The first ``count`` training chunks of the training songs (the training split: not the validation
    songs) of the dataset at ``root``, as ``TrainChunks`` draws them with ``config`` (its 4 targets: the MUSDB18
    stems; epoch 0), at ``config.sample_rate``: ``(name, {stem: (C, T)}, rate)`` each."""
    if tuple(config.targets) != SOURCES:
        raise DatasetError(f"training chunks for the gauge need the targets {', '.join(SOURCES)}")
    chunks = TrainChunks(open_db(root, "train", split="train"), replace(config, samples_per_epoch=count))
    for index in range(count):
        targets = chunks.draw(index)["targets"]  # (S, C, T)
        yield f"chunk {index}", dict(zip(SOURCES, targets, strict=True)), config.sample_rate


def synth_pairing(version: int) -> tuple[str, tuple[bool, bool]]:
    """The realism gauge's pairing key of a ``--synth`` set: versions that compose the same songs for a seed
    share it (``mss.data.synth.versions.GeneratorVersion.composition``)."""
    from mss.data.synth.versions import generator  # lazily, as in synth_songs

    return "synth", generator(version).composition


def synth_songs(version: int, n_songs: int, seed: int, song_s: tuple[float, float]) -> Iterator[Song]:
    """``n_songs`` songs of generator ``version`` (the dataset of ``seed``'s first songs), rendered in memory."""
    from mss.data.synth import build_song  # lazily: the generator needs FluidSynth, optional elsewhere

    for index in range(n_songs):
        song = build_song(seed, index, song_s, version=version)
        yield f"v{version} {song.title}", {s: song.audio.stems[s] for s in SOURCES}, song.audio.sample_rate
