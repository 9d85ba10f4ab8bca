"""python -m mss.bench.chunk: how does a model's separation depend on the length of the chunks it runs on?

A song is separated in overlapping chunks (``mss.chunking``: ``segment_s`` each, 25% overlap, triangle
weights). A network whose receptive field is longer than the chunks it was *trained* on has only ever seen
positions near a chunk's edge, where its deepest layers read zero padding; run on longer chunks, the frames in
the middle are something it never saw. The seventh-stage UNet (2-s training chunks, a receptive field of about 5.1 s
in time at the small preset) was such a network: it separated in 6-s chunks and lost 0.38 dB to that on the
real train clip. This sweep separates each song with every chunk length of ``--segments`` (seconds at the
model's rate; ``model`` = the checkpoint's own ``segment_s``) and scores as ``mss.evaluate`` scores
(``mss.bench.sweep``: museval SDR, median over 1-s frames then over songs, 44.1 kHz).

Songs: ``--dataset real-clips`` (the default: the real MUSDB18 train clips at hand), ``default`` (the
embedded dataset's test songs) or a MUSDB18 root's test songs, the first ``--songs`` songs and ``--seconds``
seconds of each. Checkpoints: the committed 4-stem ones unless ``--checkpoint`` is given. Not part of the test
suite (a minute per checkpoint); ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import pandas as pd

from mss.bench.sweep import score_song, song_sources, summarise, sweep_main
from mss.checkpoint import MAX_SEGMENT_S
from mss.data.songs import Song
from mss.separate import separate

DEFAULT_SEGMENTS = ("model", "2", "3", "6", "12")
#: the chunk length column's name for the checkpoint's own ``segment_s``
MODEL = "model"


def segment_lengths(text: str) -> list[str]:
    """``--segments`` -> the names of the chunk lengths: ``model`` or seconds in (0, 60], each once (by value:
    ``2`` and ``2.0`` are the same length)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("--segments is empty")
    values = []
    for name in names:
        if name == MODEL:
            values.append(MODEL)
            continue
        try:
            seconds = float(name)
        except ValueError:
            raise ValueError(f"--segments must be 'model' or seconds, got {name!r}") from None
        if not (math.isfinite(seconds) and 0 < seconds <= MAX_SEGMENT_S):
            raise ValueError(f"--segments must be seconds in (0, {MAX_SEGMENT_S:g}], got {name!r}")
        values.append(seconds)
    if len(set(values)) < len(values):
        raise ValueError(f"--segments names a length twice: {text!r}")
    return names


def chunk_label(name: str, model_segment_s: float) -> str:
    """A table row's name: ``6 s`` or, for ``model``, ``6 s (the model's)``."""
    if name == MODEL:
        return f"{model_segment_s:g} s (the model's)"
    return f"{float(name):g} s"


def chunk_sweep(
    model, songs: Sequence[Song], segments: Sequence[str], shifts: int | None = None
) -> pd.DataFrame:
    """Separate every song with every chunk length; one row per (song, chunk, target) with its ``sdr`` (dB,
    ``mss.bench.sweep.score_song``). ``segments``: names from :func:`segment_lengths`; a length equal to the
    model's own is left out when ``model`` is named too (the same separation: one row, the model's)."""
    if MODEL in segments:
        segments = [n for n in segments if n == MODEL or float(n) != float(model.segment_s)]
    rows = []
    for song in songs:
        sources = song_sources(song)
        for name in segments:
            segment_s = None if name == MODEL else float(name)
            estimates = separate(model, song.mix, song.sample_rate, segment_s=segment_s, shifts=shifts)
            chunk = chunk_label(name, model.segment_s)
            for target, sdr in score_song(song, estimates, sources).items():
                rows.append({"song": song.name, "chunk": chunk, "target": target, "sdr": sdr})
    return pd.DataFrame(rows, columns=["song", "chunk", "target", "sdr"])


def main(argv: Sequence[str] | None = None) -> int:
    return sweep_main(
        argv, "python -m mss.bench.chunk", __doc__.split("\n\n")[0],
        ("--segments", ",".join(DEFAULT_SEGMENTS),
         "chunk lengths in seconds, comma-separated; 'model' = the checkpoint's own"),
        segment_lengths,
        lambda model, songs, segments, args: chunk_sweep(model, songs, segments, shifts=args.shifts),
        index="chunk", summary=lambda frame: summarise(frame, column="chunk"),
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
