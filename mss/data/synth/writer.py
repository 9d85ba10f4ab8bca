"""Build a whole dataset in the MUSDB18-HQ layout, atomically: songs, setup.yaml, manifest.json."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.errors import DatasetError

from .mix import EXTRA_STEMS
from .presets import SynthPreset, resolve_preset
from .render import Renderer
from .song import RenderedSong, build_song

GENERATOR = "mss.data.synth"


# One idle synth per process keeps FluidSynth's SoundFont sample cache alive, so the fresh synth
# each song gets loads in ~0.1 s instead of ~0.5 s. It never renders anything.
_SOUNDFONT_ANCHOR: list[Renderer] = []


def _init_worker() -> None:
    _SOUNDFONT_ANCHOR.append(Renderer())


def clear_peak_timestamp(path: Path) -> None:
    """Zero the timestamp libsndfile writes in the PEAK chunk of float WAVs, so equal audio gives equal bytes."""
    with open(path, "r+b") as handle:
        header = handle.read(4096)
        position = 12  # after "RIFF", size, "WAVE"
        while position + 8 <= len(header):
            chunk, size = (
                header[position : position + 4],
                int.from_bytes(header[position + 4 : position + 8], "little"),
            )
            if chunk == b"PEAK":  # version (4 bytes), timestamp (4 bytes), then peaks
                handle.seek(position + 12)
                handle.write(b"\0\0\0\0")
                return
            if chunk == b"data":
                return
            position += 8 + size + (size % 2)


def _song_job(args: tuple[int, int, tuple[float, float], str]) -> tuple[str, dict]:
    """Render one song and write its folder; returns (title, manifest entry). Runs in any process."""
    from mss.audio import save_audio  # imported here: it pulls in torch, which the CLI's checks don't need

    seed, index, song_s, folder = args
    song: RenderedSong = build_song(seed, index, song_s)
    song_dir = Path(folder) / song.title
    for name, audio in song.audio.stems.items():
        clear_peak_timestamp(
            save_audio(song_dir / f"{name}.wav", audio, song.audio.sample_rate, subtype="FLOAT")
        )
    return song.title, song.info


def setup_config(validation_tracks: list[str]) -> dict:
    """A musdb setup file: the four stems plus the extra per-instrument stems, and their targets."""
    sources = {name: f"{name}.wav" for name in (*SOURCES, *EXTRA_STEMS)}
    stem_ids = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
    stem_ids.update({name: 5 + i for i, name in enumerate(EXTRA_STEMS)})
    targets = {name: {name: 1} for name in (*SOURCES, *EXTRA_STEMS)}
    targets["accompaniment"] = {"bass": 1, "drums": 1, "other": 1}
    targets["linear_mixture"] = {name: 1 for name in SOURCES}
    return {
        "sample_rate": float(MUSDB_SAMPLE_RATE),
        "sources": sources,
        "mixture": "mixture.wav",
        "stem_ids": stem_ids,
        "targets": targets,
        "validation_tracks": validation_tracks,
    }


def _check_root(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise DatasetError(
            f"{root} already exists and is not empty; pass overwrite=True (--overwrite) to replace it"
        )


def generate_dataset(
    root: str | os.PathLike,
    preset: str | SynthPreset = "default",
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
    jobs: int = 1,
) -> Path:
    """Generate the embedded dataset at ``root`` (MUSDB18-HQ layout) and return ``root``.

    Songs are built in ``root``'s parent under a temporary name and renamed at the end, so an
    interrupted build never leaves something that looks like a finished dataset. The same
    (preset, seed) gives byte-identical files, with any number of ``jobs``.
    """
    preset = resolve_preset(preset)
    root = Path(root).expanduser().absolute()
    _check_root(root, overwrite)
    if jobs > 1:
        Renderer().close()  # fail early (MissingDependencyError) when FluidSynth is unusable
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = root.parent / f".{root.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    n_songs = preset.n_train + preset.n_test
    subsets = ["train"] * preset.n_train + ["test"] * preset.n_test
    jobs_args = [(seed, i, preset.song_s, str(partial / subsets[i])) for i in range(n_songs)]
    try:
        from tqdm import tqdm

        bar = tqdm(total=n_songs, unit="song", desc=f"synth {preset.name}", disable=not progress)
        if jobs > 1:
            # "spawn": a forked child deadlocks on locks held by the parent's FluidSynth/torch threads.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker) as pool:
                results = []
                for result in pool.map(_song_job, jobs_args):
                    results.append(result)
                    bar.update()
        else:
            _init_worker()
            try:
                results = []
                for args in jobs_args:
                    results.append(_song_job(args))
                    bar.update()
            finally:
                _SOUNDFONT_ANCHOR.pop().close()
        bar.close()
        songs = {f"{subsets[i]}/{title}": info for i, (title, info) in enumerate(results)}
        train_titles = [title for i, (title, _) in enumerate(results) if subsets[i] == "train"]
        n_valid = max(
            1 if len(train_titles) >= 2 else 0, round(preset.validation_fraction * len(train_titles))
        )
        picks = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31,))).permutation(
            len(train_titles)
        )
        validation = sorted(train_titles[i] for i in picks[:n_valid])
        (partial / "setup.yaml").write_text(yaml.safe_dump(setup_config(validation), sort_keys=False))
        manifest = {
            "version": 1,
            "generator": GENERATOR,
            "preset": preset.name,
            "seed": seed,
            "sample_rate": MUSDB_SAMPLE_RATE,
            "stems": [*SOURCES, *EXTRA_STEMS],
            "validation_tracks": validation,
            "songs": songs,
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if root.exists():
            trash = root.parent / f".{root.name}.old-{os.getpid()}"
            os.replace(root, trash)
            os.replace(partial, root)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(partial, root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def generator_speed(preset: str | SynthPreset = "tiny", seed: int = 0) -> float:
    """Seconds of song audio generated (rendered, mixed and written) per wall-clock second."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mss-synth-speed-") as tmp:
        start = time.perf_counter()
        root = generate_dataset(Path(tmp) / "dataset", preset=preset, seed=seed, progress=False)
        elapsed = time.perf_counter() - start
        manifest = json.loads((root / "manifest.json").read_text())
    audio_s = sum(song["duration_s"] for song in manifest["songs"].values())
    return audio_s / elapsed
