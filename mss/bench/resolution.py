"""python -m mss.bench.resolution: how much does a spectrogram model's STFT grid limit what masking can reach?

A mask-based model (the UNet) applies one mask value per bin of its own STFT grid, so what an oracle mask
on that grid scores is a reference for what masking at that time-frequency resolution can do (a reference, not
a strict ceiling: IRM2 often scores higher than IRM1, and a Wiener post-filter goes beyond one mask). This
benchmark computes the oracle's scores, per stem, for several grids given as ``n_fft/hop`` at the model's
rate (``--rate``, 22,050 Hz by default): IRM1 (magnitude ratio, alpha = 1: ``|S_j| / sum_k |S_k|``, what a
soft mask on magnitudes with the mixture's phase approximates; ``--alpha 2`` for IRM2) applied to the
mixture's STFT, no model involved. It runs at the references' 44.1 kHz, on grids of the same durations
(``n_fft`` and ``hop`` times 44,100 / ``--rate``: the same window and hop lengths in ms, the same bin spacing
in Hz), masking the full band (the UNet masks up to its rate's Nyquist frequency and takes the band above from
the mixture), and scores as ``mss.evaluate`` does (museval SDR, median over 1-s frames then songs).

Songs: ``--dataset real-clips`` (the default: the real MUSDB18 train clips at hand), ``default`` (the embedded
dataset's test songs) or a generated or MUSDB18 root's test songs, the first ``--songs`` and ``--seconds`` of
each. The gap between two grids on real songs against the same gap on generated ones says whether training
on generated songs can even show a model what a finer grid would buy on recorded music. Not part of the test
suite; ``--json FILE`` keeps the per-song figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.bench.sweep import load_songs, score_song, seconds_arg, song_sources, summarise
from mss.data.songs import Song
from mss.errors import AudioError, DatasetError
from mss.evaluation.oracles import ideal_ratio_mask
from mss.evaluation.tables import format_markdown

DEFAULT_GRIDS = "1024/512,1024/256,2048/1024,2048/512,4096/1024"
#: the masks are computed and scored at the references' rate, as mss.evaluate scores
SCORE_RATE = MUSDB_SAMPLE_RATE


def parse_grids(text: str, rate: int) -> list[tuple[int, int]]:
    """``"1024/512,2048/1024"`` -> [(1024, 512), (2048, 1024)]: STFT sizes and hops at ``rate``, each a whole
    number of samples at 44.1 kHz too, hop < n_fft (a Hann window at hop = n_fft cannot be inverted), each grid once. ValueError naming the bad item."""
    grids = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        n_fft_text, sep, hop_text = item.partition("/")
        try:
            n_fft, hop = int(n_fft_text), int(hop_text)
        except ValueError:
            raise ValueError(f"--grids item {item!r}: expected N_FFT/HOP, e.g. 2048/1024") from None
        if not sep or not 1 <= hop < n_fft or n_fft < 16:
            raise ValueError(f"--grids item {item!r}: need 16 <= N_FFT and 1 <= HOP < N_FFT")
        if (n_fft * SCORE_RATE) % rate or (hop * SCORE_RATE) % rate:
            raise ValueError(f"--grids item {item!r}: not a whole number of samples at {SCORE_RATE} Hz")
        if (n_fft, hop) in grids:
            raise ValueError(f"--grids names {item!r} twice")
        grids.append((n_fft, hop))
    if not grids:
        raise ValueError("--grids is empty")
    return grids


def grid_label(n_fft: int, hop: int, rate: int) -> str:
    """``2048/1024 (93/46 ms, 10.8 Hz)``: a grid at ``rate``, its window and hop and its bin spacing."""
    return f"{n_fft}/{hop} ({1000 * n_fft / rate:.0f}/{1000 * hop / rate:.0f} ms, {rate / n_fft:.1f} Hz)"


def resolution_sweep(
    songs: Sequence[Song], grids: Sequence[tuple[int, int]], rate: int, alpha: float
) -> pd.DataFrame:
    """One row per (song, grid, target) with the ``sdr`` (dB) of the ideal ratio mask of that grid (grids from
    :func:`parse_grids`: whole numbers of samples at 44.1 kHz, so the integer scaling is exact)."""
    rows = []
    for song in songs:
        if song.sample_rate != SCORE_RATE:
            raise AudioError(f"{song.name}: expected {SCORE_RATE} Hz audio, got {song.sample_rate}")
        sources = song_sources(song)
        for n_fft, hop in grids:
            estimates = ideal_ratio_mask(
                song.mix, song.targets, alpha, n_fft * SCORE_RATE // rate, hop * SCORE_RATE // rate
            )
            named = dict(zip(song.target_names, estimates, strict=True))  # (C, T) each
            for target, sdr in score_song(song, named, sources).items():
                rows.append(
                    {"song": song.name, "grid": grid_label(n_fft, hop, rate), "target": target, "sdr": sdr}
                )
    return pd.DataFrame(rows, columns=["song", "grid", "target", "sdr"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mss.bench.resolution", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--dataset", default="real-clips", help="real-clips (default) | default | a dataset root"
    )
    parser.add_argument("--songs", type=int, default=12, help="at most this many songs")
    parser.add_argument("--seconds", type=seconds_arg, default=30.0, help="first seconds of each song")
    parser.add_argument("--grids", default=DEFAULT_GRIDS, help="N_FFT/HOP at --rate, comma-separated")
    parser.add_argument(
        "--rate", type=int, default=22050, help="the model's sample rate the grids are given at"
    )
    parser.add_argument(
        "--alpha", type=float, default=1.0, choices=(1.0, 2.0), help="1: IRM1 (default), 2: IRM2"
    )
    parser.add_argument("--json", type=Path, help="write the per-song figures here")
    args = parser.parse_args(argv)
    if args.songs < 1 or args.rate < 1:
        parser.error(f"--songs and --rate must be >= 1 (got {args.songs}, {args.rate})")
    try:
        grids = parse_grids(args.grids, args.rate)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        songs = load_songs(args.dataset, SOURCES, args.songs, args.seconds)
        frame = resolution_sweep(songs, grids, args.rate, args.alpha)
    except (DatasetError, AudioError) as exc:
        parser.exit(2, f"error: {args.dataset}: {exc}\n")
    name = "IRM1" if args.alpha == 1.0 else "IRM2"
    print(f"{name} oracle scores by STFT grid at {args.rate} Hz (songs: {', '.join(s.name for s in songs)}), "
          "museval SDR in dB, 44.1 kHz")  # fmt: skip
    print(format_markdown(summarise(frame, column="grid").rename_axis("grid").reset_index()))
    if args.json:
        args.json.write_text(json.dumps(frame.to_dict(orient="records"), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
