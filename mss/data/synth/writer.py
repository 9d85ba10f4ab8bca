"""Build a whole dataset in the MUSDB18(-HQ) layout, atomically: songs, setup.yaml, manifest.json."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.audio import require_ffmpeg
from mss.errors import DatasetError

from .formats import STEM_STREAMS, check_format, encoding, write_stems_song, write_wav_song
from .mix import EXTRA_STEMS
from .presets import SynthPreset, resolve_preset
from .render import Renderer
from .song import RenderedSong, build_song
from .versions import DEFAULT_VERSION, check_version
from .voice import warm_up

GENERATOR = "mss.data.synth"
#: The version the embedded default dataset is built with (``versions.GENERATORS`` lists what this code renders);
#: the default dataset is rebuilt when its manifest records another version.
GENERATOR_VERSION = DEFAULT_VERSION
#: What "mixture" means in the files, per wav subtype or stems format (manifest.json).
MIXTURE_NOTES = {
    "FLOAT": "exactly the float32 sum of vocals, drums, bass and other",
    "PCM_16": "exactly the 16-bit integer sum of the 16-bit vocals, drums, bass and other (no clipping)",
    "stems": "AAC-coded exact 16-bit sum of the four sources: after decoding, equal to their sum up to the "
    "coding error, as in MUSDB18; the piano stem is not stored (5-stream MUSDB stem file)",
}


# One idle synth per process keeps FluidSynth's SoundFont sample cache alive, so the fresh synth
# each song gets loads in ~0.1 s instead of ~0.5 s. It never renders anything.
_SOUNDFONT_ANCHOR: list[Renderer] = []


def _init_worker() -> None:
    _SOUNDFONT_ANCHOR.append(Renderer())


def _song_job(args: tuple[int, int, tuple[float, float], str, str, str, int]) -> tuple[str, dict]:
    """Render one song and write it into its subset folder; returns (title, manifest entry). Runs in any process."""
    seed, index, song_s, folder, file_format, subtype, version = args
    song: RenderedSong = build_song(seed, index, song_s, version=version)
    stems, rate = song.audio.stems, song.audio.sample_rate
    song.audio.stems = {}  # the writers free each buffer once written: drop every other reference
    if file_format == "stems":
        write_stems_song(stems, rate, Path(folder) / f"{song.title}.stem.mp4")
        info = dict(song.info, active_stems=[s for s in song.info["active_stems"] if s in STEM_STREAMS])
        return song.title, info
    write_wav_song(stems, rate, Path(folder) / song.title, subtype)
    return song.title, song.info


def setup_config(validation_tracks: list[str], extra_stems: tuple[str, ...] = EXTRA_STEMS) -> dict:
    """A musdb setup file: the four stems plus ``extra_stems`` (per-instrument stems), and their targets.

    ``stem_ids`` are the streams musdb reads from a ``.stem.mp4`` (MUSDB's five first); wav folders
    ignore them. The stems format passes ``extra_stems=()``: its files have the five MUSDB streams only.
    """
    sources = {name: f"{name}.wav" for name in (*SOURCES, *extra_stems)}
    stem_ids = {name: index for index, name in enumerate(STEM_STREAMS)}
    stem_ids.update({name: 5 + i for i, name in enumerate(extra_stems)})
    targets = {name: {name: 1} for name in (*SOURCES, *extra_stems)}
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


@dataclass(frozen=True)
class _DatasetSpec:
    """What a dataset is built from (recorded in its manifest): preset, seed, file format ("wav" or
    "stems"), wav subtype and generator version."""

    preset: SynthPreset
    seed: int
    file_format: str
    subtype: str
    version: int


def _dataset_spec(
    preset: str | SynthPreset, seed: int, file_format: str, subtype: str | None, version: int
) -> _DatasetSpec:
    """The checked spec (DatasetError for an unknown preset, format, subtype or version); a None subtype
    is the preset's."""
    preset = resolve_preset(preset)
    check_format(file_format, subtype)
    check_version(version)  # before rendering anything
    if file_format == "stems" and subtype is not None:
        raise DatasetError(f"--subtype / subtype= applies to --format wav only, not {file_format!r} (AAC)")
    return _DatasetSpec(preset, seed, file_format, subtype or preset.subtype, version)


def _check_tools(file_format: str, jobs: int) -> None:
    """Fail before rendering anything when a tool the build needs is missing."""
    if file_format == "stems":
        require_ffmpeg()
    if jobs > 1:
        Renderer().close()  # MissingDependencyError when FluidSynth is unusable


def _render_in_pool(jobs_args: list[tuple], jobs: int, on_song: Callable[[tuple[str, dict]], None]) -> None:
    """Run ``_song_job`` over ``jobs_args`` in ``jobs`` processes, ``on_song`` on each result in order."""
    # "spawn": a forked child deadlocks on locks held by the parent's FluidSynth/torch threads.
    context = multiprocessing.get_context("spawn")
    warm_up()  # numba's on-disk cache written here, once, not by the workers at the same moment
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker) as pool:
        for result in pool.map(_song_job, jobs_args):
            on_song(result)


def _render_here(jobs_args: list[tuple], on_song: Callable[[tuple[str, dict]], None]) -> None:
    """Run ``_song_job`` over ``jobs_args`` in this process, ``on_song`` on each result."""
    _init_worker()
    try:
        for args in jobs_args:
            on_song(_song_job(args))
    finally:
        _SOUNDFONT_ANCHOR.pop().close()


def _render_songs(
    jobs_args: list[tuple],
    jobs: int,
    desc: str,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> list[tuple[str, dict]]:
    """Render and write every song (``_song_job`` arguments) -> [(title, manifest entry)] in song order,
    with a progress bar and ``on_progress(songs done, songs in all)`` after each song."""
    bar = tqdm(total=len(jobs_args), unit="song", desc=desc, disable=not progress)
    results: list[tuple[str, dict]] = []

    def on_song(result: tuple[str, dict]) -> None:
        results.append(result)
        bar.update()
        if on_progress is not None:
            on_progress(len(results), len(jobs_args))

    if jobs > 1:
        _render_in_pool(jobs_args, jobs, on_song)
    else:
        _render_here(jobs_args, on_song)
    bar.close()
    return results


def _validation_tracks(train_titles: list[str], preset: SynthPreset, seed: int) -> list[str]:
    """The train songs held out for validation: ``validation_fraction`` of them (at least one of two or
    more), drawn from ``seed``'s own stream, sorted."""
    n_valid = max(1 if len(train_titles) >= 2 else 0, round(preset.validation_fraction * len(train_titles)))
    picks = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31,))).permutation(
        len(train_titles)
    )
    return sorted(train_titles[i] for i in picks[:n_valid])


def _manifest(spec: _DatasetSpec, validation: list[str], songs: dict[str, dict]) -> dict:
    """manifest.json's content: how the dataset was made and each song's entry (``subset/title``)."""
    extra_stems = _extra_stems(spec.file_format)
    return {
        "version": 1,
        "generator": GENERATOR,
        "generator_version": spec.version,
        "preset": spec.preset.name,
        "seed": spec.seed,
        "sample_rate": MUSDB_SAMPLE_RATE,
        "format": spec.file_format,
        "encoding": encoding(spec.file_format, spec.subtype),
        "mixture": MIXTURE_NOTES[spec.file_format if spec.file_format == "stems" else spec.subtype],
        "stems": [*SOURCES, *extra_stems],
        "dropped_stems": [name for name in EXTRA_STEMS if name not in extra_stems],
        "validation_tracks": validation,
        "songs": songs,
    }


def _extra_stems(file_format: str) -> tuple[str, ...]:
    """The per-instrument stems the files hold: all in wav folders, none in the 5-stream stem files."""
    return EXTRA_STEMS if file_format == "wav" else ()


def _write_metadata(
    folder: Path, spec: _DatasetSpec, subsets: list[str], results: list[tuple[str, dict]]
) -> None:
    """setup.yaml and manifest.json of the songs ``results`` (in song order, of ``subsets``) into ``folder``."""
    songs = {f"{subsets[i]}/{title}": info for i, (title, info) in enumerate(results)}
    train_titles = [title for i, (title, _) in enumerate(results) if subsets[i] == "train"]
    validation = _validation_tracks(train_titles, spec.preset, spec.seed)
    setup = setup_config(validation, _extra_stems(spec.file_format))
    (folder / "setup.yaml").write_text(yaml.safe_dump(setup, sort_keys=False))
    manifest = _manifest(spec, validation, songs)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _publish(partial: Path, root: Path) -> None:
    """Rename the finished ``partial`` folder to ``root``, replacing what was there."""
    if root.exists():
        trash = root.parent / f".{root.name}.old-{os.getpid()}"
        os.replace(root, trash)
        os.replace(partial, root)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(partial, root)


def generate_dataset(
    root: str | os.PathLike,
    preset: str | SynthPreset = "default",
    seed: int = 0,
    *,
    progress: bool = True,
    overwrite: bool = False,
    jobs: int = 1,
    format: str = "wav",  # shadows the builtin on purpose: named like the --format option
    subtype: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    version: int = DEFAULT_VERSION,
) -> Path:
    """Generate the embedded dataset at ``root`` and return ``root``.

    on_progress: called with (songs done, songs in all) after each song (e.g. the app's startup page).

    format: "wav" (MUSDB18-HQ folders) or "stems" (MUSDB18 ``.stem.mp4`` files, AAC, without the piano
    stem; see ``formats``). subtype: "FLOAT" or "PCM_16" samples of the wav format; None takes the
    preset's (FLOAT, or PCM_16 for the musdb presets). version: the generator version (``versions.GENERATORS``),
    recorded in the manifest.

    Songs are built in ``root``'s parent under a temporary name and renamed at the end, so an
    interrupted build never leaves something that looks like a finished dataset. The same
    (preset, seed, format, subtype) gives byte-identical wav files, with any number of ``jobs``.
    """
    spec = _dataset_spec(preset, seed, format, subtype, version)
    root = Path(root).expanduser().absolute()
    _check_root(root, overwrite)
    _check_tools(format, jobs)
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = root.parent / f".{root.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    subsets = ["train"] * spec.preset.n_train + ["test"] * spec.preset.n_test
    jobs_args = [
        (seed, i, spec.preset.song_s, str(partial / subset), format, spec.subtype, version)
        for i, subset in enumerate(subsets)
    ]
    try:
        results = _render_songs(jobs_args, jobs, f"synth {spec.preset.name}", progress, on_progress)
        _write_metadata(partial, spec, subsets, results)
        _publish(partial, root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def generator_speed(
    preset: str | SynthPreset = "tiny", seed: int = 0, version: int = DEFAULT_VERSION, jobs: int = 1
) -> dict:
    """How fast the generator builds ``preset`` (rendered, mixed and written, ``jobs`` processes):
    ``audio_s_per_s`` (seconds of song per wall-clock second), ``songs_per_min``, ``songs``, ``mean_song_s``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mss-synth-speed-") as tmp:
        start = time.perf_counter()
        root = generate_dataset(
            Path(tmp) / "dataset", preset=preset, seed=seed, progress=False, version=version, jobs=jobs
        )
        elapsed = time.perf_counter() - start
        manifest = json.loads((root / "manifest.json").read_text())
    durations = [song["duration_s"] for song in manifest["songs"].values()]
    return {
        "audio_s_per_s": sum(durations) / elapsed,
        "songs_per_min": 60 * len(durations) / elapsed,
        "songs": len(durations),
        "mean_song_s": sum(durations) / len(durations),
    }
