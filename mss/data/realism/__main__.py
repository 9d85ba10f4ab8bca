"""The realism gauge: ``python -m mss.data.realism [--real PATH ...] [--synth 3 --synth 4 | --dataset ROOT ...]
[--chunks ROOT [--other-stack-prob P ...]] [--rate HZ]``

For each stem (vocals, drums, bass, other), the statistics of generated stems beside real MUSDB18
train-subset stems (``stats``), their medians over songs, and one distance per stem and source set that
summarises them (``compare``). It shows which stems of the generator are furthest from recorded music
before any training. Prints a markdown table; ``--out DIR`` also writes ``realism.csv`` (one row per set
and stem, the octave spectra included) and ``realism.png`` (octave spectra and the scalar statistics, real
against each set).

Real references default to ``mss.data.real_clips.find_real_clips()`` (the shared train clip); MUSDB18
test-set songs are left out, named on stderr. ``--synth V`` renders ``--songs`` songs of generator version V in memory.
``--chunks ROOT`` measures ``--songs`` training chunks of ``--chunk-s`` seconds drawn from ROOT's training songs
with ``DataConfig``'s default augmentation (remixed across songs; gains, channel swaps and sign flips; not a run's
EQ, width, repitch or narrowed vocals), one seed for every set, and each ``--other-stack-prob`` in a set of its
own, at the model rate; every other set is then resampled to that rate too (``--rate``), so that all are compared
alike (at 22.05 kHz nothing lies above 11 kHz: that share and the 16-kHz octave are left out). Distances at one
rate compare sets of one command, not figures measured at 44.1 kHz.

A distance compares the median statistics of a few songs with the real ones, so it moves with the songs drawn:
v5's "other" read 1.57 and 1.76 on two draws of 8 songs (seeds 0 and 1). Each generated set's distance comes with
its 90% bootstrap interval (``distance_lo``, ``distance_hi``: the songs resampled ``--draws`` times; none with
fewer than 2 songs), and every set after the first generated one with its change of distance from it and that
change's interval (``change``, ``change_lo``, ``change_hi``). The change is ``paired`` where song k of both sets
is one composition (``--synth`` versions that compose the same songs, 3 and 4; the ``--chunks`` sets): both are
resampled with the same song indices, so what the songs share cancels and only what the sets do differently moves
it. Any other two sets are resampled independently. The real reference is fixed: one 7-s clip by default, whose
own variability no interval here contains.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from mss import MODEL_SAMPLE_RATE, SOURCES
from mss.audio import resample
from mss.data.datasets import DataConfig
from mss.data.real_clips import find_real_clips
from mss.errors import MSSError
from mss.files import atomic_path

from .compare import bootstrap, changes, distance, resampled_distances, summarise
from .figure import save_figure
from .sources import chunk_songs, read_songs, synth_pairing, synth_songs
from .stats import HIGH_BAND_HZ, OCTAVE_CENTRES_HZ, SCALARS, StemStats, stem_statistics

#: ``uncertainty``'s columns, in the order tables give them (after ``distance``).
UNCERTAINTY_COLUMNS = ("distance_lo", "distance_hi", "change", "change_lo", "change_hi", "paired")


def measure(song_sets: dict[str, object], rate: int | None = None) -> dict[str, dict[str, list]]:
    """{set name: {stem: one StemStats per song, None where the stem says nothing (silent, too short)}} for
    every set of songs (an iterable of (name, stems, rate)); ``rate``: every stem resampled to it first (None:
    each at its own rate). At a common ``rate`` that leaves nothing above 11 kHz, that share and the octaves
    above its Nyquist frequency are NaN (left out of the distance: no set can differ there)."""
    measured: dict[str, dict[str, list]] = {}
    for set_name, songs in song_sets.items():
        per_stem: dict[str, list] = {stem: [] for stem in SOURCES}
        for song_name, stems, song_rate in songs:
            at = rate or song_rate
            for stem in SOURCES:
                stats = stem_statistics(resample(stems[stem], song_rate, at), at)
                if stats is not None and rate is not None:
                    stats = _within_band(stats, rate)
                per_stem[stem].append(stats)
            print(f"  {set_name}: {song_name}", file=sys.stderr)
        measured[set_name] = per_stem
    return measured


def summaries_of(measured: dict[str, dict[str, list]]) -> dict[str, dict[str, dict]]:
    """{set: {stem: summary}}: ``compare.summarise`` of each stem's songs (those whose stem said something)."""
    return {
        name: {stem: summarise(songs) for stem, songs in per_stem.items()}
        for name, per_stem in measured.items()
    }


def gauge(song_sets: dict[str, object], rate: int | None = None) -> dict[str, dict[str, dict]]:
    """{set name: {stem: summary}} for every set of songs: ``summaries_of(measure(song_sets, rate))``."""
    return summaries_of(measure(song_sets, rate))


def uncertainty(
    measured: dict[str, dict[str, list]],
    draws: int,
    seed: int,
    groups: dict[str, object] | None = None,
    real: str = "real",
) -> dict[str, dict[str, dict[str, float | bool]]]:
    """{set: {stem: columns}}: the 90% bootstrap interval of each generated set's distance (``distance_lo``,
    ``distance_hi``) and, for the sets after the first generated one, the change of distance from it and its
    interval (``change``, ``change_lo``, ``change_hi``), ``paired`` where the set is in the first one's
    ``groups`` key (the same compositions, resampled alike; ``compare.bootstrap``)."""
    groups = groups or {}
    generated = [name for name in measured if name != real]
    out: dict[str, dict[str, dict[str, float | bool]]] = {name: {} for name in generated}
    for stem in SOURCES:
        reference = summarise(measured[real][stem])
        if not reference:
            continue
        per_song = {name: measured[name][stem] for name in generated}
        resampled = resampled_distances(per_song, reference, draws, seed, groups)  # one pass for both
        intervals = bootstrap(per_song, reference, resampled=resampled)
        moves = changes(per_song, reference, generated[0], resampled=resampled)
        for name in generated:
            columns: dict[str, float | bool] = dict(
                zip(("distance_lo", "distance_hi"), intervals[name], strict=True)
            )
            if name in moves:
                columns.update(zip(("change", "change_lo", "change_hi"), moves[name], strict=True))
                first = groups.get(generated[0])
                columns["paired"] = first is not None and groups.get(name) == first
            out[name][stem] = columns
    return out


def _within_band(stats: StemStats, rate: int) -> StemStats:
    """``stats`` with what ``rate`` cannot hold set to NaN: octaves whose lower edge is above its Nyquist
    frequency, and the share above 11 kHz where that is too."""
    bands = tuple(
        np.nan if centre / np.sqrt(2) >= rate / 2 else band
        for centre, band in zip(OCTAVE_CENTRES_HZ, stats.bands_db, strict=True)
    )
    high = np.nan if rate / 2 <= HIGH_BAND_HZ else stats.high_share_db
    return replace(stats, bands_db=bands, high_share_db=high)


def table(
    summaries: dict[str, dict[str, dict]],
    real: str = "real",
    bands: bool = False,
    extra: dict[str, dict[str, dict[str, float]]] | None = None,
) -> pd.DataFrame:
    """One row per (set, stem): songs, distance to the real set, ``extra``'s columns for it (``uncertainty``),
    every scalar statistic and, with ``bands``, the octave spectrum (``octave_<centre>_db`` columns, dB re the
    stem's total power)."""
    rows = []
    for set_name, per_stem in summaries.items():
        for stem, summary in per_stem.items():
            if not summary:
                continue
            reference = summaries[real].get(stem)
            row = {"set": set_name, "stem": stem, "songs": int(summary["songs"])}
            row["distance"] = distance(summary, reference) if reference and set_name != real else math.nan
            row.update((extra or {}).get(set_name, {}).get(stem, {}))
            row.update({name: summary[name] for name in SCALARS})
            if bands:
                row.update(
                    {
                        f"octave_{c:g}_db": float(v)
                        for c, v in zip(OCTAVE_CENTRES_HZ, summary["bands_db"], strict=True)
                    }
                )
            rows.append(row)
    frame = pd.DataFrame(rows)
    first = [c for c in ("set", "stem", "songs", "distance", *UNCERTAINTY_COLUMNS) if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a markdown table, floats to 2 decimals (pandas' to_markdown needs tabulate)."""
    cells = [
        [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mss.data.realism", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--real", type=Path, action="append", help="real stem files or folders (train subset)"
    )
    parser.add_argument("--synth", type=int, action="append", default=[], help="generator version to render")
    parser.add_argument(
        "--dataset", type=Path, action="append", default=[], help="a generated dataset folder"
    )
    parser.add_argument(
        "--chunks", type=Path, help="a dataset whose training chunks (as a model sees them) are a set"
    )
    parser.add_argument(
        "--other-stack-prob",
        type=float,
        action="append",
        default=[],
        help="with --chunks: one more set of chunks with this DataConfig.other_stack_prob (repeatable)",
    )
    parser.add_argument("--chunk-s", type=float, default=8.0, help="training chunk length (s, default 8)")
    parser.add_argument(
        "--rate",
        type=int,
        help=f"resample every set to this rate (default: native; {MODEL_SAMPLE_RATE} with --chunks)",
    )
    parser.add_argument(
        "--songs", type=int, default=8, help="songs (or chunks) per generated set (default 8)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--draws",
        type=int,
        default=1000,
        help="bootstrap resamples of the songs for the distances' 90%% intervals (0: none)",
    )
    parser.add_argument("--song-s", type=float, default=30.0, help="length of rendered songs (s)")
    parser.add_argument("--out", type=Path, help="folder for realism.csv and realism.png")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        real_paths = args.real or find_real_clips()
        if not real_paths:
            raise MSSError("no real train-subset stems found: pass --real PATH (MUSDB18 train songs)")
        sets: dict[str, object] = {"real": read_songs(real_paths, real=True)}
        groups: dict[str, object] = {}  # sets whose song k is one composition: resampled alike
        for version in args.synth:
            sets[f"v{version}"] = synth_songs(version, args.songs, args.seed, (args.song_s, args.song_s))
            groups[f"v{version}"] = synth_pairing(version)
        for root in args.dataset:
            sets[root.name] = read_songs([root], limit=args.songs)
        rate = args.rate
        if rate is not None and rate <= 0:
            raise MSSError(f"--rate must be a positive sample rate in Hz, got {rate}")
        if args.chunks:
            rate = rate or MODEL_SAMPLE_RATE
            for probability in [0.0, *args.other_stack_prob]:
                config = DataConfig(segment_s=args.chunk_s, sample_rate=rate, seed=args.seed,
                                    other_stack_prob=probability)  # fmt: skip
                name = "chunks" if probability == 0 else f"chunks, other stacked p={probability:g}"
                sets[name] = chunk_songs(args.chunks, args.songs, config)
                groups[name] = "chunks"  # one seed: the same songs and starts in every set
        elif args.other_stack_prob:
            raise MSSError("--other-stack-prob describes training chunks: it needs --chunks ROOT")
        if len(sets) < 2:
            raise MSSError("nothing to compare: pass --synth VERSION, --dataset ROOT or --chunks ROOT")
        if args.draws < 0:
            raise MSSError(f"--draws must be 0 or more, got {args.draws}")
        measured = measure(sets, rate)
    except MSSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summaries = summaries_of(measured)
    extra = uncertainty(measured, args.draws, args.seed, groups) if args.draws else None
    frame = table(summaries, extra=extra)
    print(markdown(frame))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out / "realism.csv", ".tmp") as tmp:  # the spectra too: what the figure shows
            table(summaries, bands=True, extra=extra).to_csv(tmp, index=False, float_format="%.4f")
        save_figure(summaries, args.out / "realism.png")
        print(f"wrote {args.out / 'realism.csv'} and {args.out / 'realism.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
