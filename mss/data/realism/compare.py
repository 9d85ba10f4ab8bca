"""Generated stems beside real ones: per-stem medians over songs, and one distance that summarises them.

The distance of a stem is the root mean square of its statistics' differences from the real stems',
each divided by a *scale*: a difference a mixing engineer would call clearly audible or clearly
different in kind. The scales are judgement, stated here so that the number can be argued with:

========================  ======  =========================================================================
statistic                 scale   why
========================  ======  =========================================================================
octave spectrum (RMS dB)  3 dB    a 3-dB tilt or bump over several octaves is an obvious EQ change
share above 11 kHz        6 dB    "air" present or absent is tens of dB; 6 dB is a clear shelf
spectral flatness         3 dB    noise-like (drums, distortion) against tonal (bass, voice)
crest factor              2 dB    2 dB is what a bus compressor and limiter take off a mix
loudness range            3 LU    EBU R 128's tolerance for programme dynamics is of this order
stereo correlation        0.15    mono-ish (0.9) against wide (0.6) stems
side / mid energy         4 dB    panning and doubling change it by several dB (both sides clamped at -30 dB:
                                  below that a stem is mono to the ear)
onset rate                x1.5    log ratio: half or twice as busy is a different part
========================  ======  =========================================================================

0 means the generated stems' medians equal the real ones; 1 is one scale off on average.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np

from .stats import SCALARS, StemStats

SPECTRUM_SCALE_DB = 3.0
WIDTH_FLOOR_DB = -30.0
SCALES: dict[str, float] = {
    "high_share_db": 6.0,
    "flatness_db": 3.0,
    "crest_db": 2.0,
    "lra_lu": 3.0,
    "correlation": 0.15,
    "width_db": 4.0,
    "onset_rate": math.log(1.5),  # applied to log(rate)
}


def summarise(stats: Iterable[StemStats]) -> dict[str, float | np.ndarray]:
    """Median over songs of every statistic (NaN-aware), ``bands_db`` an array; ``songs`` counts them."""
    stats = list(stats)
    if not stats:
        return {}
    bands = np.array([s.bands_db for s in stats], dtype=float)  # (songs, octaves); NaN above a common rate
    with warnings.catch_warnings():  # an octave NaN in every song stays NaN, without "All-NaN slice"
        warnings.simplefilter("ignore", RuntimeWarning)
        median_bands = np.nanmedian(bands, axis=0)
    summary: dict[str, float | np.ndarray] = {
        "bands_db": median_bands,
        "songs": float(len(stats)),
    }
    for name in SCALARS:
        values = np.array([getattr(s, name) for s in stats], dtype=float)
        summary[name] = float(np.nanmedian(values)) if np.isfinite(values).any() else math.nan
    return summary


def differences(generated: dict, real: dict) -> dict[str, float]:
    """Scaled differences (generated - real) / scale, one per statistic plus ``spectrum`` (RMS over the bands
    both have: an octave above a common rate's Nyquist frequency is NaN, see ``gauge``)."""
    out = {
        "spectrum": float(np.sqrt(np.nanmean((generated["bands_db"] - real["bands_db"]) ** 2)))
        / SPECTRUM_SCALE_DB
    }
    for name, scale in SCALES.items():
        a, b = generated[name], real[name]
        if name == "onset_rate":
            a, b = math.log(max(a, 0.05)), math.log(max(b, 0.05))
        elif name == "width_db":
            a, b = max(a, WIDTH_FLOOR_DB), max(b, WIDTH_FLOOR_DB)
        out[name] = (a - b) / scale if math.isfinite(a) and math.isfinite(b) else math.nan
    return out


def distance(generated: dict, real: dict) -> float:
    """RMS of the scaled differences (NaN ones left out): one number per stem, 0 = like the real stems."""
    values = [v for v in differences(generated, real).values() if math.isfinite(v)]
    return float(np.sqrt(np.mean(np.square(values)))) if values else math.nan


def bootstrap(
    per_song: dict[str, list[StemStats | None]],
    real: dict,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.9,
    resampled: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[float, float]]:
    """Interval of each set's distance to ``real`` (a summary) from resampling the set's songs with
    replacement: ``{set: (low, high)}``, the central ``level`` of ``draws`` resampled distances.

    ``per_song``: {set: one entry per song, None where the song's stem said nothing}. Sets with as many songs
    are resampled with the same song indices, so where song k of one set is song k of another (the same
    composition rendered by two generator versions) their intervals, and ``paired_changes``, are paired.
    The real reference is what it is (one clip, say): its own variability is not in the interval.
    ``resampled``: ``resampled_distances``' result, when the caller has it already (``draws`` and ``seed``
    then unused).
    """
    out = {}
    resampled = resampled if resampled is not None else resampled_distances(per_song, real, draws, seed)
    for name, distances in resampled.items():
        tail = 100 * (1 - level) / 2
        out[name] = _interval(distances, tail)
    return out


def paired_changes(
    per_song: dict[str, list[StemStats | None]],
    real: dict,
    baseline: str,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.9,
    resampled: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[float, float, float]]:
    """Each set's distance minus ``baseline``'s, and its interval: ``{set: (change, low, high)}``, over the
    same resampled song indices for both (paired when the sets hold the same compositions, song for song;
    sets of another size than the baseline's are left out; ``resampled`` as in ``bootstrap``)."""
    resampled = resampled if resampled is not None else resampled_distances(per_song, real, draws, seed)
    tail = 100 * (1 - level) / 2
    base = distance(summarise(s for s in per_song[baseline] if s is not None), real)
    out = {}
    for name, songs in per_song.items():
        if name == baseline or len(songs) != len(per_song[baseline]):
            continue
        change = distance(summarise(s for s in songs if s is not None), real) - base
        out[name] = (change, *_interval(resampled[name] - resampled[baseline], tail))
    return out


def _interval(values: np.ndarray, tail: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def resampled_distances(
    per_song: dict[str, list[StemStats | None]], real: dict, draws: int, seed: int
) -> dict[str, np.ndarray]:
    """{set: (draws,) distances of resampled song sets}; one index matrix per set size (``seed``'s)."""
    rng = np.random.default_rng(seed)
    indices: dict[int, np.ndarray] = {}
    out = {}
    for name, songs in per_song.items():
        n = len(songs)
        if n not in indices:
            indices[n] = rng.integers(0, n, size=(draws, n)) if n else np.zeros((draws, 0), dtype=int)
        out[name] = np.array(
            [
                distance(summary, real)
                if (summary := summarise(songs[i] for i in row if songs[i]))
                else math.nan
                for row in indices[n]
            ]
        )
    return out
