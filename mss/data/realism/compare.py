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


def summarise(stats: Iterable[StemStats | None]) -> dict[str, float | np.ndarray]:
    """Median over songs of every statistic (NaN-aware), ``bands_db`` an array; ``songs`` counts them. A None
    (a song whose stem said nothing, ``__main__.measure``) is left out; none left: ``{}``."""
    stats = [s for s in stats if s is not None]
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


#: Fewer songs than this (that said something) give no interval: one song resamples only to itself.
MIN_SONGS = 2


def bootstrap(
    per_song: dict[str, list[StemStats | None]],
    real: dict,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.9,
    groups: dict[str, object] | None = None,
    resampled: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[float, float]]:
    """Interval of each set's distance to ``real`` (a summary) from resampling the set's songs with
    replacement: ``{set: (low, high)}``, the central ``level`` of ``draws`` resampled distances (NaN with fewer
    than ``MIN_SONGS`` songs). A percentile interval of a median-based figure can leave out the figure itself
    when it sits at the edge of what resampling gives.

    ``per_song``: {set: one entry per song, None where the song's stem said nothing}. ``groups``: sets with
    one key hold the same compositions, song for song, and are resampled with the same song indices (paired);
    every other set is resampled on its own (``resampled_distances``, whose result ``resampled`` may pass in).
    The real reference is what it is (one clip, say): its own variability is not in the interval.
    """
    if resampled is None:
        resampled = resampled_distances(per_song, real, draws, seed, groups)
    return {
        name: _interval(distances, level) if _said(per_song[name]) >= MIN_SONGS else (math.nan, math.nan)
        for name, distances in resampled.items()
    }


def changes(
    per_song: dict[str, list[StemStats | None]],
    real: dict,
    baseline: str,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.9,
    groups: dict[str, object] | None = None,
    resampled: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[float, float, float]]:
    """Each other set's distance minus ``baseline``'s, and its interval: ``{set: (change, low, high)}``. In
    ``baseline``'s group (``bootstrap``) the resampled songs are the same for both, so what the compositions
    share cancels (paired); otherwise the two sets are resampled independently. NaN where either set has no
    song that said something (change) or fewer than ``MIN_SONGS`` (interval)."""
    if resampled is None:
        resampled = resampled_distances(per_song, real, draws, seed, groups)
    base = _distance_of(per_song[baseline], real)
    out = {}
    for name, songs in per_song.items():
        if name == baseline:
            continue
        enough = min(_said(songs), _said(per_song[baseline])) >= MIN_SONGS
        interval = _interval(resampled[name] - resampled[baseline], level) if enough else (math.nan, math.nan)
        out[name] = (_distance_of(songs, real) - base, *interval)
    return out


def resampled_distances(
    per_song: dict[str, list[StemStats | None]],
    real: dict,
    draws: int = 1000,
    seed: int = 0,
    groups: dict[str, object] | None = None,
) -> dict[str, np.ndarray]:
    """{set: (draws,) distances of the set's songs resampled with replacement}. Sets of one ``groups`` key
    share one index matrix (they must have as many songs); every other set draws its own. ``seed``'s stream,
    set by set in order."""
    rng = np.random.default_rng(seed)
    shared: dict[object, np.ndarray] = {}
    out = {}
    for name, songs in per_song.items():
        key = (groups or {}).get(name)
        n = len(songs)
        if key is not None and key in shared:
            indices = shared[key]
            if indices.shape[1] != n:
                raise ValueError(
                    f"paired sets must have as many songs: {name!r} has {n}, its group {indices.shape[1]}"
                )
        else:
            indices = rng.integers(0, n, size=(draws, n)) if n else np.zeros((draws, 0), dtype=int)
            if key is not None:
                shared[key] = indices
        out[name] = np.array([_distance_of([songs[i] for i in row], real) for row in indices])
    return out


def _said(songs: list[StemStats | None]) -> int:
    return sum(s is not None for s in songs)


def _distance_of(songs: Iterable[StemStats | None], real: dict) -> float:
    """The distance of these songs' summary to ``real``; NaN when none of them said something."""
    summary = summarise(songs)
    return distance(summary, real) if summary else math.nan


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` of the finite ``values`` (percentiles); NaN when none is finite."""
    tail = 100 * (1 - level) / 2
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)
