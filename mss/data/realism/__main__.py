"""The realism gauge: ``python -m mss.data.realism [--real PATH ...] [--synth 3 --synth 4 | --dataset ROOT ...]``

For each stem (vocals, drums, bass, other), the statistics of generated stems beside real MUSDB18
train-subset stems (``stats``), their medians over songs, and one distance per stem and source set that
summarises them (``compare``). It shows which stems of the generator are furthest from recorded music
before any training. Prints a markdown table; ``--out DIR`` also writes ``realism.csv`` (one row per set
and stem) and ``realism.png`` (octave spectra and the scalar statistics, real against each set).

Real references default to ``mss.data.real_clips.find_real_clips()`` (the shared train clip); MUSDB18
test-set songs are left out, named on stderr. ``--synth V`` renders ``--songs`` songs of generator version V in memory.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from mss import SOURCES
from mss.data.real_clips import find_real_clips
from mss.errors import MSSError
from mss.files import atomic_path

from .compare import distance, summarise
from .figure import save_figure
from .sources import read_songs, synth_songs
from .stats import SCALARS, stem_statistics


def gauge(song_sets: dict[str, object]) -> dict[str, dict[str, dict]]:
    """{set name: {stem: summary}} for every set of songs (an iterable of (name, stems, rate))."""
    summaries: dict[str, dict[str, dict]] = {}
    for set_name, songs in song_sets.items():
        per_stem: dict[str, list] = {stem: [] for stem in SOURCES}
        for song_name, stems, rate in songs:
            for stem in SOURCES:
                stats = stem_statistics(stems[stem], rate)
                if stats is not None:
                    per_stem[stem].append(stats)
            print(f"  {set_name}: {song_name}", file=sys.stderr)
        summaries[set_name] = {stem: summarise(values) for stem, values in per_stem.items()}
    return summaries


def table(summaries: dict[str, dict[str, dict]], real: str = "real") -> pd.DataFrame:
    """One row per (set, stem): songs, distance to the real set, and every scalar statistic."""
    rows = []
    for set_name, per_stem in summaries.items():
        for stem, summary in per_stem.items():
            if not summary:
                continue
            reference = summaries[real].get(stem)
            row = {"set": set_name, "stem": stem, "songs": int(summary["songs"])}
            row["distance"] = distance(summary, reference) if reference and set_name != real else math.nan
            row.update({name: summary[name] for name in SCALARS})
            rows.append(row)
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a markdown table, floats to 2 decimals (pandas' to_markdown needs tabulate)."""
    cells = [
        [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.data.realism", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--real", type=Path, action="append", help="real stem files or folders (train subset)"
    )
    parser.add_argument("--synth", type=int, action="append", default=[], help="generator version to render")
    parser.add_argument(
        "--dataset", type=Path, action="append", default=[], help="a generated dataset folder"
    )
    parser.add_argument("--songs", type=int, default=8, help="songs per generated set (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--song-s", type=float, default=30.0, help="length of rendered songs (s)")
    parser.add_argument("--out", type=Path, help="folder for realism.csv and realism.png")
    args = parser.parse_args(argv)
    try:
        real_paths = args.real or find_real_clips()
        if not real_paths:
            raise MSSError("no real train-subset stems found: pass --real PATH (MUSDB18 train songs)")
        sets: dict[str, object] = {"real": read_songs(real_paths, real=True)}
        for version in args.synth:
            sets[f"v{version}"] = synth_songs(version, args.songs, args.seed, (args.song_s, args.song_s))
        for root in args.dataset:
            sets[root.name] = read_songs([root], limit=args.songs)
        if len(sets) < 2:
            raise MSSError("nothing to compare: pass --synth VERSION or --dataset ROOT")
        summaries = gauge(sets)
    except MSSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    frame = table(summaries)
    print(markdown(frame))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out / "realism.csv", ".tmp") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4f")
        save_figure(summaries, args.out / "realism.png")
        print(f"wrote {args.out / 'realism.csv'} and {args.out / 'realism.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
