"""python -m mss.bench.scale --root ROOT [--root ROOT2 ...]: how the project copes with full-length songs.

For each dataset root (MUSDB18 ``.stem.mp4`` or MUSDB18-HQ wav layout; e.g. the stand-ins built with
``python -m mss.data.synth ROOT --preset musdb-mini --format wav|stems``) it prints:

- training data: the decoded-audio cache's first build (seconds, GB) and chunks/s through a DataLoader
  (2 workers, batch 8, 4-s chunks at 22.05 kHz, 4 sources from different songs);
- training step time of each model on that data (CPU here), and how much of it is spent waiting for data;
- evaluation: seconds per song and method, the shared per-song work, and the peak memory of the scoring
  process per song, with the committed checkpoints and the IRM1/IRM2/MIX baselines; museval itself,
  run method by method on the first test song for comparison (``--museval``: minutes and GB per call);
- the spectrogram browser: latency and process memory over ``--views`` views (``mss.bench.browser``).

Not part of the test suite: it needs minutes and a full-length dataset. ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader

from mss import SOURCES
from mss.bench.browser import benchmark
from mss.browser import BrowserConfig
from mss.checkpoint import DEFAULT_CHECKPOINTS
from mss.data import DataConfig, TrainChunks, open_db
from mss.data.bench import dataset_throughput
from mss.evaluation import evaluate
from mss.evaluation.records import musdb_test_estimate
from mss.models import build_model, model_preset


def data_figures(root: Path, cache_dir: Path, batches: int) -> dict:
    """Cache build (cold) and chunks/s once it is built."""
    cold = dataset_throughput(root, batches=2, cache_dir=cache_dir, progress=True)  # builds the cache
    warm = dataset_throughput(root, batches=batches, cache_dir=cache_dir, progress=False)
    warm["cache_build_s"], warm["cache_bytes"] = cold["cache_build_s"], cold["cache_bytes"]
    warm["cache_songs_built"] = cold["cache_songs_built"]
    in_process = dataset_throughput(root, batches=batches, num_workers=0, cache_dir=cache_dir, progress=False)
    warm["chunks_per_s_in_process"] = in_process["chunks_per_s"]
    return warm


def training_step_figures(root: Path, cache_dir: Path, steps: int, batch_size: int = 8) -> dict:
    """Per model: seconds per optimiser step (2-s chunks, the cpu preset's small models, 2 loader workers)
    and the share of it spent waiting for the next batch."""
    db = open_db(root, "train", split="train")
    figures = {}
    for arch in ("unet", "demucs"):
        model = build_model(arch, model_preset(arch, "small"))
        config = DataConfig(
            targets=SOURCES,
            sample_rate=model.sample_rate,
            segment_s=2.0,
            samples_per_epoch=(steps + 2) * batch_size,
        )
        chunks = TrainChunks(db, config, cache=cache_dir, progress=False)
        loader = iter(DataLoader(chunks, batch_size=batch_size, num_workers=2, persistent_workers=False))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        waits, totals = [], []
        next(loader)  # workers start
        for _ in range(steps):
            t0 = time.perf_counter()
            mix, targets = next(loader)
            t1 = time.perf_counter()
            loss = (model(mix) - targets).abs().mean()  # L1 on waveforms: the step's compute, either model
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            t2 = time.perf_counter()
            waits.append(t1 - t0)
            totals.append(t2 - t0)
        figures[arch] = {
            "step_s": sum(totals) / steps,
            "data_wait_s": sum(waits) / steps,
            "data_wait_share": sum(waits) / sum(totals),
            "steps": steps,
            "batch_size": batch_size,
        }
        del loader
    return figures


def evaluation_figures(
    root: Path, out_dir: Path, jobs: int, tracks: list[str] | None, audio_cache: Path
) -> dict:
    """The evaluation of the committed checkpoints and the baselines, with its per-song timings."""
    checkpoints = [str(p) for p in DEFAULT_CHECKPOINTS.values() if p.is_file()]
    start = time.perf_counter()
    result = evaluate(
        checkpoints, root, "test", None, jobs, out_dir=out_dir, tracks=tracks, audio_cache_dir=audio_cache
    )
    wall = time.perf_counter() - start
    timings, table = list(result.timings), result.table
    return {
        "wall_s": wall,
        "timings": timings,
        "errors": list(result.errors),
        "estimate": musdb_test_estimate(timings, jobs),
        "table": table.to_dict(orient="records"),
    }


MUSEVAL_SCRIPT = """
import json, sys, time
import numpy as np, museval
from mss.evaluation import load_song
from mss.memory import peak_rss_mb
root, track, targets = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
mixture, references = load_song(root, "test", track, targets)
t0 = time.perf_counter()
estimates = np.repeat(mixture[None], len(targets), 0)  # the MIX baseline: any estimate costs the same
museval.evaluate(references.transpose(0, 2, 1), estimates.transpose(0, 2, 1), win=44100, hop=44100)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def museval_figures(root: Path, track: str) -> dict:
    """museval.evaluate (v4) of one method on one whole song, in a fresh process (its peak memory)."""
    result = subprocess.run(
        [sys.executable, "-c", MUSEVAL_SCRIPT, str(root), track, ",".join(SOURCES)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_evaluation(name: str, figures: dict, museval: dict | None) -> None:
    frame = pd.DataFrame(figures["timings"])
    if frame.empty:
        print(f"[{name}] evaluation: nothing scored ({figures['errors'][:1]})")
        return
    songs = frame[frame.method == "(shared)"].set_index("track")
    per = frame[frame.method != "(shared)"].pivot_table(index="track", columns="method", values="seconds")
    print(f"[{name}] evaluation, seconds per song (scoring only; separation not included):")
    for track, row in per.iterrows():
        shared = songs.loc[track]
        cells = ", ".join(f"{m} {v:.1f}" for m, v in row.items())
        total = float(row.sum() + shared.seconds)
        print(
            f"  {track[:40]:40s} {shared.audio_s:6.0f} s of audio: shared {shared.seconds:.1f}, {cells}; "
            f"all {total:.1f} s; peak {shared.peak_rss_mb:.0f} MB"
        )
    if figures["estimate"]:
        print(f"  {figures['estimate']}")
    if museval:
        if "error" in museval:
            print(f"  museval: {museval['error']}")
        else:
            first = per.index[0]
            ours = float(per.loc[first].sum() + songs.loc[first].seconds)
            methods = per.shape[1]
            print(
                f"  museval.evaluate, one method on {first[:40]}: {museval['seconds']:.1f} s, peak "
                f"{museval['peak_rss_mb']:.0f} MB; x{methods} methods = {museval['seconds'] * methods:.0f} s "
                f"against {ours:.1f} s here ({museval['seconds'] * methods / ours:.1f}x faster)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--root", action="append", required=True, type=Path, help="dataset root (repeatable)")
    parser.add_argument("--cache-dir", type=Path, help="decoded-audio cache (default: a fresh temporary one)")
    parser.add_argument("--batches", type=int, default=40, help="timed training-data batches (default 40)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per model (default 5)")
    parser.add_argument("--jobs", type=int, default=1, help="evaluation processes (default 1)")
    parser.add_argument("--tracks", nargs="+", help="evaluate only these test songs")
    parser.add_argument("--views", type=int, default=20, help="browser views (default 20)")
    parser.add_argument("--museval", action="store_true", help="also time museval on the first test song")
    parser.add_argument("--skip", nargs="+", default=[], choices=("data", "train", "eval", "browser"))
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="mss-scale-") as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "decoded"
        for root in args.root:
            name = root.name
            figures = results.setdefault(str(root), {})
            if "data" not in args.skip:
                data = figures["data"] = data_figures(root, cache_dir / "train", args.batches)
                print(
                    f"[{name}] training data ({data['layout']}, {data['tracks']} songs): cache built in "
                    f"{data['cache_build_s']:.1f} s ({data['cache_bytes'] / 1e9:.2f} GB), then "
                    f"{data['chunks_per_s']:.0f} chunks/s with 2 workers, {data['chunks_per_s_in_process']:.0f} in the "
                    f"main process (batch 8, 4-s chunks at 22.05 kHz, 4 sources from different songs)",
                    flush=True,
                )
            if "train" not in args.skip:
                steps = figures["train"] = training_step_figures(root, cache_dir / "train", args.steps)
                for arch, step in steps.items():
                    print(
                        f"[{name}] training step, {arch} small (CPU, batch 8 of 2-s chunks): {step['step_s']:.2f} s, "
                        f"of which {step['data_wait_s'] * 1e3:.0f} ms ({step['data_wait_share']:.1%}) waiting for data",
                        flush=True,
                    )
            if "eval" not in args.skip:
                evaluation = figures["eval"] = evaluation_figures(
                    root, Path(tmp) / f"eval-{name}", args.jobs, args.tracks, cache_dir
                )
                museval = None
                if args.museval and evaluation["timings"]:
                    first = next(t["track"] for t in evaluation["timings"] if t["method"] == "(shared)")
                    museval = figures["museval"] = museval_figures(root, first)
                print_evaluation(name, evaluation, museval)
            if "browser" not in args.skip:
                figures["browser"] = benchmark(
                    root, views=args.views, config=BrowserConfig(cache_dir=str(cache_dir))
                )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
