"""The spectrogram browser's latency and memory per view, on a dataset's test songs.

python -m mss.bench.browser --dataset ROOT [--views 20] [--view-s 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from mss.browser import BrowserConfig, BrowserError, SpectrogramBrowser
from mss.checkpoint import DEFAULT_CHECKPOINTS
from mss.errors import MSSError
from mss.memory import rss_mb


def benchmark(
    dataset=None,
    views: int = 20,
    view_s: float = 10.0,
    *,
    checkpoints: Mapping[str, str | Path] | None = None,
    eval_dir: str | Path | None = None,
    target: str = "vocals",
    seed: int = 0,
    config: BrowserConfig | None = None,
    out: Callable[[str], None] = print,
) -> dict:
    """Open the browser on ``dataset``'s test songs and make ``views`` views of ``view_s`` seconds at
    different songs and offsets; print latency and RSS after each, then a summary. Returns the figures."""
    if views < 1 or view_s <= 0:
        raise BrowserError(f"need views >= 1 and view_s > 0, got {views} and {view_s}")
    rss_before = rss_mb()
    browser = SpectrogramBrowser(dataset, dict(checkpoints or DEFAULT_CHECKPOINTS), eval_dir, config)
    songs, systems = browser.songs(), browser.systems()
    rng = np.random.default_rng(seed)
    out(f"{len(songs)} test songs, systems {systems}, target {target}, {views} views of {view_s:g} s")
    latency, rss = [], []
    for index in range(views):
        song = songs[index % len(songs)]
        duration = browser.duration(song)
        start_s = round(float(rng.uniform(0.0, max(0.0, duration - view_s))), 1)
        end_s = min(duration, start_s + view_s)
        if end_s - start_s < browser.config.min_window_s:
            start_s = max(0.0, end_s - browser.config.min_window_s)
        began = time.perf_counter()
        view = browser.view(song, target, systems, start_s, end_s)
        latency.append(time.perf_counter() - began)
        rss.append(rss_mb())
        sdrs = ", ".join(f"{row.system} {row.window_sdr_db:.2f}" for row in view.rows)
        out(
            f"view {index + 1:3d}  {song[:40]:40s} {view.start_s:7.1f}-{view.end_s:7.1f} s  "
            f"{latency[-1]:6.2f} s  RSS {rss[-1]:8.1f} MB  window SDR: {sdrs}"
        )
        del view
    result = {
        "views": views,
        "view_s": view_s,
        "latency_s": latency,
        "rss_mb": rss,
        "median_latency_s": float(np.median(latency)),
        "max_latency_s": float(np.max(latency)),
        "rss_before_mb": rss_before,
        "rss_first_mb": rss[0],
        "rss_last_mb": rss[-1],
    }
    out(
        f"latency: median {result['median_latency_s']:.2f} s, max {result['max_latency_s']:.2f} s; "
        f"RSS: {rss_before:.0f} MB before opening, {rss[0]:.0f} MB after view 1, {rss[-1]:.0f} MB after view {views}"
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.bench.browser", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="default", help="dataset root (its test subset) or 'default'")
    parser.add_argument("--views", type=int, default=20, help="number of views (default 20)")
    parser.add_argument("--view-s", type=float, default=10.0, help="window length in seconds (default 10)")
    parser.add_argument("--target", default="vocals", help="target to separate (default vocals)")
    parser.add_argument("--eval-dir", default=None, help="python -m mss.evaluate output, to reuse its scores")
    parser.add_argument(
        "--checkpoint", action="append", default=[], metavar="NAME=PATH",
        help="system to compare (repeatable; default: the committed checkpoints)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the window offsets")
    args = parser.parse_args(argv)
    checkpoints = {}
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--checkpoint expects NAME=PATH, got {item!r}")
        checkpoints[name] = Path(path)
    try:
        benchmark(
            args.dataset, args.views, args.view_s, checkpoints=checkpoints or None,
            eval_dir=args.eval_dir, target=args.target, seed=args.seed,
        )  # fmt: skip
    except MSSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
