"""python -m mss.data.bench [--root ROOT] [--json FILE] [--eq-db D] [--repitch-semitones R] [--no-generator]
[--generator-version V] [--generator-jobs N] [--generator-only]: generator speed and training-data throughput.

Generator speed: seconds of audio rendered per wall-clock second and songs per minute
(``mss.data.synth.generator_speed``, the ``tiny`` preset's 5 songs, ``--generator-jobs`` processes).
Throughput: training chunks per second through a DataLoader with 2 workers, batch 8, 4-s chunks at
22050 Hz, four targets (every source read from its own song), once the decoded-audio cache
(``mss.data.cache``) is built; the time of its first build is printed too (``--cache-dir`` chooses where it
goes; a fresh temporary folder measures a cold build). Without ``--root`` a tiny dataset is generated
in a temporary folder first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from mss import MODEL_SAMPLE_RATE, SOURCES
from mss.data import open_db
from mss.data.datasets import DataConfig, TrainChunks, collate_chunks
from mss.errors import DatasetError


def dataset_throughput(
    root,
    batches: int = 12,
    batch_size: int = 8,
    num_workers: int = 2,
    segment_s: float = 4.0,
    sample_rate: int = MODEL_SAMPLE_RATE,
    cache_dir=None,
    progress: bool = False,
    eq_db: float = 0.0,
    repitch_semitones: float = 0.0,
) -> dict:
    """Chunks per second (after one warm-up batch, which includes starting the workers), and what the
    decoded-audio cache cost to build (``cache_build_s``: 0 when it was already there). ``eq_db``: the
    training chunks' random EQ (``DataConfig.eq_db``), 0 = off; ``repitch_semitones``: their random repitch
    (``DataConfig.repitch_semitones``, every source: probability 1, so the figure is its whole cost), 0 = off."""
    db = open_db(root, "train")
    config = DataConfig(
        targets=SOURCES,
        sample_rate=sample_rate,
        segment_s=segment_s,
        samples_per_epoch=(batches + 1) * batch_size,
        eq_db=eq_db,
        repitch_semitones=repitch_semitones,
        repitch_prob=1.0,
    )
    chunks = TrainChunks(db, config, cache=cache_dir, progress=progress)
    loader = DataLoader(chunks, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_chunks)
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start, first file opens
    start = time.perf_counter()
    count = 0
    for mix, _ in iterator:
        count += mix.shape[0]
    elapsed = time.perf_counter() - start
    chunks_per_s = count / elapsed
    return {
        "chunks_per_s": chunks_per_s,
        "audio_s_per_s": chunks_per_s * segment_s,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "segment_s": segment_s,
        "sample_rate": sample_rate,
        "eq_db": eq_db,
        "repitch_semitones": repitch_semitones,
        "repitch_prob": 1.0 if repitch_semitones else 0.0,
        "tracks": len(db),
        "layout": "wav" if db.is_wav else "stem.mp4",
        "cache_build_s": chunks.cache_stats["seconds"],
        "cache_songs_built": chunks.cache_stats["built"],
        "cache_bytes": chunks.cache_stats["bytes"],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mss.data.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="dataset root (default: a tiny generated set in a temp folder)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--batches", type=int, default=12, help="timed batches (default 12)")
    parser.add_argument("--cache-dir", help="decoded-audio cache folder (default: a fresh temporary one)")
    parser.add_argument(
        "--eq-db", type=float, default=0.0, help="the chunks' random EQ, +-dB (default 0: off)"
    )
    parser.add_argument(
        "--repitch-semitones",
        type=float,
        default=0.0,
        help="draw a speed for every source, up to +-this many semitones: 0 (off, the default) or 0.1-4",
    )
    parser.add_argument("--no-generator", action="store_true", help="skip the generator-speed figure")
    parser.add_argument("--generator-only", action="store_true", help="only the generator-speed figure")
    parser.add_argument(
        "--generator-version", type=int, default=None, help="generator version (default: the default)"
    )
    parser.add_argument(
        "--generator-jobs", type=int, default=1, help="songs rendered in parallel (default 1)"
    )
    return parser


def _print_throughput(results: dict) -> None:
    t = results["throughput"]
    print(
        f"decoded-audio cache ({t['layout']}, {t['tracks']} songs): built {t['cache_songs_built']} songs in "
        f"{t['cache_build_s']:.1f} s, {t['cache_bytes'] / 1e9:.2f} GB"
    )
    augmentation = f", random EQ +-{t['eq_db']:g} dB" if t["eq_db"] else ""
    if t["repitch_semitones"]:
        augmentation += f", a speed drawn for every source within +-{t['repitch_semitones']:g} semitones"
    print(
        f"training data: {t['chunks_per_s']:.1f} chunks/s ({t['audio_s_per_s']:.0f} s of audio per second; "
        f"{t['num_workers']} workers, batch {t['batch_size']}, {t['segment_s']:g}-s chunks at {t['sample_rate']} Hz, "
        f"{len(SOURCES)} sources each from its own song{augmentation})"
    )
    print(
        f"training data in the main process (no workers): {results['throughput_in_process']['chunks_per_s']:.1f} chunks/s"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:  # the chunks' settings, checked before anything is generated or read
        DataConfig(eq_db=args.eq_db, repitch_semitones=args.repitch_semitones)
    except DatasetError as exc:
        print(f"error: --eq-db / --repitch-semitones: {exc}", file=sys.stderr)
        return 2

    from mss.data.synth import generate_dataset, generator_speed  # lazily: the data layer works without it
    from mss.data.synth.versions import DEFAULT_VERSION, check_version

    results: dict = {}
    if not args.no_generator:
        version = args.generator_version or DEFAULT_VERSION
        try:
            check_version(version)
        except DatasetError as exc:
            print(f"error: --generator-version: {exc}", file=sys.stderr)
            return 2
        speed = generator_speed(preset="tiny", seed=0, version=version, jobs=args.generator_jobs)
        results["generator_version"] = version
        results["generator_audio_s_per_s"] = speed["audio_s_per_s"]
        results["generator_songs_per_min"] = speed["songs_per_min"]
        print(
            f"generator v{version}, {args.generator_jobs} job(s): {speed['audio_s_per_s']:.1f} s of audio per second, "
            f"{speed['songs_per_min']:.1f} songs per minute (preset tiny: {speed['songs']} songs of "
            f"{speed['mean_song_s']:.1f} s; a 30-s song takes about {30 / speed['audio_s_per_s']:.1f} s)"
        )
        if args.generator_only:
            return 0
    with tempfile.TemporaryDirectory(prefix="mss-bench-") as tmp:
        root = args.root
        if root is None:
            root = generate_dataset(Path(tmp) / "tiny", preset="tiny", seed=0, progress=False)
        results["dataset"] = str(root)
        chunks = dict(
            batches=args.batches,
            cache_dir=args.cache_dir or Path(tmp) / "cache",
            eq_db=args.eq_db,
            repitch_semitones=args.repitch_semitones,
        )
        results["throughput"] = dataset_throughput(root, progress=True, **chunks)
        # The same read in this process (no DataLoader workers): the per-core rate, without the
        # shared-memory cost of handing batches over from worker processes.
        results["throughput_in_process"] = dataset_throughput(root, num_workers=0, **chunks)
    _print_throughput(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
