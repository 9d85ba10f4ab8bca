"""python -m mss.data.bench [--root ROOT] [--json FILE]: generator speed and training-data throughput.

Generator speed: seconds of audio rendered per wall-clock second (``mss.data.synth.generator_speed``).
Throughput: training chunks per second through a DataLoader with 2 workers, batch 8, 4-s chunks at
22050 Hz, four targets (every source read from its own song). Without ``--root`` a tiny dataset is
generated in a temporary folder first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from mss import SOURCES
from mss.data.datasets import DataConfig, TrainChunks
from mss.data.musdb_io import open_db


def dataset_throughput(
    root,
    batches: int = 12,
    batch_size: int = 8,
    num_workers: int = 2,
    segment_s: float = 4.0,
    sample_rate: int = 22050,
) -> dict:
    """Chunks per second (after one warm-up batch, which includes starting the workers)."""
    db = open_db(root, "train")
    config = DataConfig(
        targets=SOURCES,
        sample_rate=sample_rate,
        segment_s=segment_s,
        samples_per_epoch=(batches + 1) * batch_size,
    )
    loader = DataLoader(TrainChunks(db, config), batch_size=batch_size, num_workers=num_workers)
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
        "tracks": len(db),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.data.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="dataset root (default: a tiny generated set in a temp folder)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--batches", type=int, default=12, help="timed batches (default 12)")
    args = parser.parse_args(argv)

    from mss.data.synth import generate_dataset, generator_speed  # lazily: the data layer works without it

    results: dict = {}
    results["generator_audio_s_per_s"] = float(generator_speed(preset="tiny", seed=0))
    print(f"generator: {results['generator_audio_s_per_s']:.1f} s of audio per second (preset tiny)")
    with tempfile.TemporaryDirectory(prefix="mss-bench-") as tmp:
        root = args.root
        if root is None:
            root = generate_dataset(Path(tmp) / "tiny", preset="tiny", seed=0, progress=False)
        results["dataset"] = str(root)
        results["throughput"] = dataset_throughput(root, batches=args.batches)
    t = results["throughput"]
    print(
        f"training data: {t['chunks_per_s']:.1f} chunks/s ({t['audio_s_per_s']:.0f} s of audio per second; "
        f"{t['num_workers']} workers, batch {t['batch_size']}, {t['segment_s']:g}-s chunks at {t['sample_rate']} Hz, "
        f"{len(SOURCES)} sources each from its own song)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
