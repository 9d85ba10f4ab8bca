"""Separation speed and memory: ``python -m mss.bench [--json FILE] [--presets small] [--models unet,demucs]``.

For each model and preset (random weights: speed does not depend on their values):

- real-time factor: seconds of 44.1 kHz stereo audio separated per wall-clock second by
  ``mss.separate.separate`` on a 3-minute input, with ``--threads`` (default 2) CPU threads, with the preset's
  shift trick (``shifts``: the separations averaged by default, 3 for Demucs, 0 for the small UNet; ``--shifts N``
  times N instead, 0 one plain pass) and its Wiener post-filter (``wiener_iterations``: one EM iteration for the
  small UNet, none for Demucs), in the precision ``auto`` gives on this machine (``mss.precision``: bf16 autocast
  on a CPU with native bf16 units; ``--precision fp32`` for float32);
- peak resident memory (VmHWM, ``mss.memory.peak_rss_mb``) of a fresh subprocess separating a 1-minute and a 10-minute
  44.1 kHz stereo WAV file to stem files with ``mss.separate.separate_file`` (the CLI's path);
- parameter count.

Targets for the ``small`` presets: >= 20x real time, peak memory < 2 GB for 10 minutes and at most
20% above the 1-minute figure. The machine may be shared: rerun (or use ``--repeats``) when noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mss import shifts_arg, wiener_arg
from mss.memory import peak_rss_mb
from mss.models import build_model, count_parameters, model_preset
from mss.precision import PRECISIONS, resolve_precision
from mss.separate import separate, separate_file

RATE = 44100
TARGET_RTF = 20.0
TARGET_PEAK_MB = 2000.0
TARGET_GROWTH = 1.20


def synthetic_mix(seconds: float, seed: int = 0) -> np.ndarray:
    """A music-like stereo signal (C, T) at 44.1 kHz: decaying tones, noise bursts and a bass line."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    beat = np.exp(-8 * (t % 0.5))  # (T,) 120 bpm envelope
    tones = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (110.0, 220.0, 330.0, 523.3))
    left = (
        0.1 * tones * beat + 0.05 * rng.standard_normal(t.size) * beat**4 + 0.1 * np.sin(2 * np.pi * 55 * t)
    )
    right = 0.9 * left + 0.02 * rng.standard_normal(t.size)
    return np.stack([left, right]).astype(np.float32)


def _overrides(shifts: int | None, wiener_iterations: int | None) -> dict:
    """The preset fields the command line changes: ``--shifts`` and ``--wiener`` when given."""
    changes = {"shifts": shifts, "wiener_iterations": wiener_iterations}
    return {field: value for field, value in changes.items() if value is not None}


def _bench_model(arch: str, name: str, overrides: dict):
    """The preset's model (seeded random weights), with ``overrides`` (``_overrides``) of its config."""
    torch.manual_seed(0)
    return build_model(arch, model_preset(arch, name, **overrides)).eval()


def measure_rtf(
    arch: str,
    name: str,
    seconds: float,
    threads: int,
    repeats: int,
    batch_size: int,
    overrides: dict | None = None,
    precision: str = "auto",
) -> dict:
    torch.set_num_threads(threads)
    model = _bench_model(arch, name, overrides or {})
    mix = synthetic_mix(seconds)
    warm_up = int(max(10.0, batch_size * model.segment_s) * RATE)  # a full batch of chunks at least
    separate(model, mix[:, :warm_up], RATE, batch_size=batch_size, precision=precision)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        separate(model, mix, RATE, batch_size=batch_size, precision=precision)
        times.append(time.perf_counter() - start)
    return {
        "parameters": count_parameters(model),
        "shifts": model.shifts,  # the preset's shift trick, which separate() applies by default
        "wiener_iterations": model.wiener_iterations,  # its Wiener post-filter, likewise
        "precision": resolve_precision(precision),  # the model's number format on this machine
        "model_sample_rate": model.sample_rate,
        "segment_s": model.segment_s,
        "rtf_seconds": seconds,
        "rtf_wall_s": [round(t, 3) for t in times],
        "rtf": round(seconds / min(times), 2),
        "rtf_median": round(seconds / float(np.median(times)), 2),
    }


def memory_child(
    arch: str,
    name: str,
    wav: str,
    threads: int,
    batch_size: int,
    overrides: dict | None = None,
    precision: str = "auto",
) -> dict:
    """Run in a fresh process: separate ``wav`` to stem files and report the peak RSS."""
    torch.set_num_threads(threads)
    model = _bench_model(arch, name, overrides or {})
    before_mb = peak_rss_mb()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        separate_file(model, wav, out, batch_size=batch_size, precision=precision)
        elapsed = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    return {"peak_mb": round(peak_mb, 1), "model_loaded_mb": round(before_mb, 1), "wall_s": round(elapsed, 2)}


def measure_memory(
    arch: str,
    name: str,
    wav: Path,
    threads: int,
    batch_size: int,
    overrides: dict | None = None,
    precision: str = "auto",
) -> dict:
    command = [sys.executable, "-m", "mss.bench", "--memory-child", arch, name, str(wav)]
    command += ["--threads", str(threads), "--batch-size", str(batch_size), "--precision", precision]
    options = {"shifts": "--shifts", "wiener_iterations": "--wiener"}
    for field, value in (overrides or {}).items():
        command += [options[field], str(value)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory measurement failed for {arch}/{name}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mss.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--presets", default="small", help="comma-separated presets (default: small)")
    parser.add_argument("--models", default="unet,demucs", help="comma-separated architectures")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--batch-size", type=int, default=4, help="chunks per forward pass (separate's default)"
    )
    parser.add_argument("--rtf-seconds", type=float, default=180.0, help="input length for the speed test")
    parser.add_argument("--memory-seconds", default="60,600", help="short,long input lengths for peak memory")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per model; the best is reported")
    parser.add_argument("--skip-memory", action="store_true", help="speed and parameters only")
    parser.add_argument(
        "--shifts", type=shifts_arg, default=None,
        help="separations averaged (the shift trick; 0: one plain pass); default: each preset's own",
    )  # fmt: skip
    parser.add_argument(
        "--wiener", type=wiener_arg, default=None, metavar="N",
        help="EM iterations of the Wiener post-filter (0: none); default: each preset's own",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto",
        help="the model's number format (mss.precision; auto: bf16 on a CPU with native bf16 units, else fp32)",
    )  # fmt: skip
    parser.add_argument("--memory-child", nargs=3, metavar=("ARCH", "PRESET", "WAV"), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    overrides = _overrides(args.shifts, args.wiener)

    if args.memory_child:
        print(
            json.dumps(
                memory_child(*args.memory_child, args.threads, args.batch_size, overrides, args.precision)
            )
        )
        return 0

    short_s, long_s = (float(x) for x in args.memory_seconds.split(","))
    results = []
    with tempfile.TemporaryDirectory(prefix="mss-bench-") as tmp:
        wavs = {}
        if not args.skip_memory:
            for seconds in (short_s, long_s):
                wavs[seconds] = Path(tmp) / f"{seconds:g}s.wav"
                sf.write(wavs[seconds], synthetic_mix(seconds, seed=1).T, RATE, subtype="PCM_16")
        for arch in args.models.split(","):
            for name in args.presets.split(","):
                row = {"model": arch, "preset": name, "threads": args.threads, "batch_size": args.batch_size}
                row.update(
                    measure_rtf(
                        arch,
                        name,
                        args.rtf_seconds,
                        args.threads,
                        args.repeats,
                        args.batch_size,
                        overrides,
                        args.precision,
                    )
                )
                if not args.skip_memory:
                    short = measure_memory(
                        arch, name, wavs[short_s], args.threads, args.batch_size, overrides, args.precision
                    )
                    long = measure_memory(
                        arch, name, wavs[long_s], args.threads, args.batch_size, overrides, args.precision
                    )
                    row.update(
                        peak_mb_short=short["peak_mb"],
                        peak_mb_long=long["peak_mb"],
                        memory_growth=round(long["peak_mb"] / short["peak_mb"], 3),
                        file_rtf_long=round(long_s / long["wall_s"], 2),
                        memory_seconds=[short_s, long_s],
                    )
                row["meets_targets"] = row["rtf"] >= TARGET_RTF and (
                    args.skip_memory
                    or (row["peak_mb_long"] < TARGET_PEAK_MB and row["memory_growth"] <= TARGET_GROWTH)
                )
                results.append(row)
                print(format_row(row), flush=True)
    load = os.getloadavg()[0]
    print(f"(load average during the run: {load:.1f} on {os.cpu_count()} CPUs; rerun if it was high)")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "load_average": load}, indent=2))
    return 0


def format_row(row: dict) -> str:
    text = f"{row['model']:>7} {row['preset']:<6} params {row['parameters'] / 1e6:6.2f} M  "
    text += f"shifts {row.get('shifts', 0)}  wiener {row.get('wiener_iterations', 0)}  "
    text += f"{row.get('precision', 'fp32')}  RTF {row['rtf']:6.1f}x"
    if "peak_mb_long" in row:
        text += (
            f"  peak RSS {row['memory_seconds'][0]:g}s: {row['peak_mb_short']:.0f} MB,"
            f" {row['memory_seconds'][1]:g}s: {row['peak_mb_long']:.0f} MB (x{row['memory_growth']:.2f})"
        )
    return text + ("  [targets met]" if row["meets_targets"] else "  [TARGETS MISSED]")


if __name__ == "__main__":
    sys.exit(main())
