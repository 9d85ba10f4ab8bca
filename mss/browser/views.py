"""The spectrogram browser without its UI: one time window of one test song, separated and scored alone.

A view reads from disk only the window plus the context the models need, separates only that span, and
scores only the window, so its cost depends on the window's length, not the song's, and nothing of a
whole song is kept in memory. app.py draws the widgets around :class:`SpectrogramBrowser`.

Context: the span a model separates is made of exactly the chunks that ``separate()`` runs over the
whole song (``mss.evaluate`` separates whole songs with it) and that overlap the window, so the window's
estimate is, up to resampling edge effects far from the window, the one the evaluation scored. A model whose
default is the shift trick (``shifts`` > 0, the committed ones) averages that many shifted separations of the
span, as the evaluation does of the song, on the same chunk grid; the span then reaches whole chunk hops
further on each side (``chunk_span``'s ``margin``), so the delayed copies read the song's audio near the window
where the whole song's do, not the silence the shift pads a span with.

    python -m mss.bench.browser --dataset ROOT [--views 20] [--view-s 10]   # latency and memory per view
"""

from __future__ import annotations

import gc
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.audio import SILENCE_DB, peak_db, resample
from mss.chunking import chunk_span
from mss.data import (
    TrackReader,
    available_targets,
    find_track,
    open_db,
    plan_parts,
    read_parts,
    track_info,
    track_recipes,
)
from mss.data.cache import AudioCache
from mss.errors import MSSError
from mss.evaluation.frame_sdr import window_sdr_frames
from mss.evaluation.museval_format import WINDOW_S, frames_in_window, median_sdr, museval_frames
from mss.models import load_model
from mss.report.spectrogram import spectrogram_figure
from mss.separate import SeparationOptions, max_shift, release_freed_memory, separate

RATE = MUSDB_SAMPLE_RATE
#: BSS Eval v4 frame length (s): the evaluation's (``mss.evaluation.museval_format``)
FRAME_S = WINDOW_S
EVALUATE_HINT = "python -m mss.evaluate --out {eval_dir}"


class BrowserError(MSSError, ValueError):
    """A view that cannot be made: unknown song/target/system or a bad time window."""


@dataclass(frozen=True)
class BrowserConfig:
    """Limits of the browser. Memory is bounded by ``cache_items`` windows of at most ``max_window_s``."""

    max_window_s: float = 60.0
    min_window_s: float = FRAME_S  # one BSS Eval frame: a shorter window has no SDR
    cache_items: int = 8  # (song, target, system, window) estimates kept for repeated views
    device: str = "cpu"
    cache_dir: str | None = None  # decoded-audio cache of .stem.mp4 songs (None: mss.data.cache's default)


@dataclass(frozen=True)
class SdrRow:
    """SDR of one system on one window. ``song_sdr_db`` is None when no evaluation output exists."""

    system: str
    target: str
    window_sdr_db: float  # median over the window's 1-s frames (NaN frames skipped, as museval does)
    window_frames: int  # frames with a finite SDR behind that median
    window_source: str  # "evaluation" (frames of the evaluation JSON) or "scored" (BSS Eval on the window)
    song_sdr_db: float | None  # median over all frames of the evaluation JSON

    def as_dict(self) -> dict:
        """A table row (units in the column names)."""
        return {
            "system": self.system,
            "target": self.target,
            "window SDR (dB)": round(self.window_sdr_db, 2),
            "frames": self.window_frames,
            "window SDR from": self.window_source,
            "song SDR (dB)": "not available" if self.song_sdr_db is None else round(self.song_sdr_db, 2),
        }


@dataclass(frozen=True)
class View:
    """One window: audio (C, T) at 44.1 kHz, T = the window's length, and its SDRs and figure."""

    song: str
    target: str
    start_s: float  # after clamping to the song
    end_s: float
    mixture: np.ndarray
    reference: np.ndarray
    estimates: dict[str, np.ndarray]
    rows: tuple[SdrRow, ...]
    figure: object  # matplotlib Figure (object API: never in pyplot's registry, so views do not pile up)
    notes: tuple[str, ...] = ()
    sample_rate: int = RATE

    def error(self, system: str) -> np.ndarray:
        """reference - estimate (C, T) of ``system``."""
        return self.reference - self.estimates[system]


@dataclass
class _Cached:
    estimate: np.ndarray  # (C, T) of the window
    scored: np.ndarray | None = None  # window SDR per frame, computed on first need


# ------------------------------------------------------------------------------------------ browser
class SpectrogramBrowser:
    """Windows of a dataset's songs separated by several checkpoints, with their SDR and spectrograms.

    dataset: a root folder, "default" / None (the embedded dataset) or an open ``musdb.DB`` (its tracks
    are used as they are; a root opens the test subset). checkpoints: {system name: checkpoint path},
    loaded once here. eval_dir: ``python -m mss.evaluate --out`` folder, read for
    ``<system>/test/<song>.json``. Thread-safe (views are made one at a time). ``targets()``: the dataset's
    targets that a system separates (``piano`` alone for piano-target models); the four stems without systems.
    """

    def __init__(
        self,
        dataset,
        checkpoints: Mapping[str, str | Path],
        eval_dir: str | Path | None = None,
        config: BrowserConfig | None = None,
    ):
        self.config = config or BrowserConfig()
        if self.config.cache_items < 0 or not 0 < self.config.min_window_s <= self.config.max_window_s:
            raise BrowserError(f"invalid BrowserConfig {self.config}")
        self.db = dataset if hasattr(dataset, "tracks") else open_db(dataset, subset="test")
        self.eval_dir = Path(eval_dir) if eval_dir is not None else None
        self._tracks = {track.name: track for track in self.db.tracks}
        self.models = {
            name: load_model(path, map_location=self.config.device) for name, path in checkpoints.items()
        }
        known = available_targets(self.db)
        if self.models:  # what the systems separate (piano models: piano alone), in the dataset's order
            separated = {source for model in self.models.values() for source in model.sources}
            self._targets = [t for t in known if t in separated]
            if not self._targets:
                raise BrowserError(
                    f"the systems separate {', '.join(sorted(separated))}; the dataset has none of these "
                    f"(it has {', '.join(known)})"
                )
        else:
            self._targets = [t for t in known if t in SOURCES] or known
        self._reader = TrackReader(AudioCache(self.config.cache_dir))
        self._infos: dict[str, object] = {}  # song -> TrackInfo (file names and lengths only)
        self._cache: OrderedDict[tuple, _Cached] = OrderedDict()
        self._lock = threading.RLock()

    # -------------------------------------------------------------------------------- what there is
    def songs(self) -> list[str]:
        return sorted(self._tracks)

    def targets(self) -> list[str]:
        return list(self._targets)

    def systems(self) -> list[str]:
        return list(self.models)

    def duration(self, song: str) -> float:
        """Length of ``song`` in seconds."""
        info = self._info(song)
        return info.num_samples / info.rate

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def _info(self, song: str):
        if song not in self._infos:
            track = self._tracks.get(song) or find_track(self.db, song)  # DatasetError with close names
            info = track_info(track)
            # InvalidSongError for a song that fails its check, before any view
            self._reader.num_samples(info)
            self._infos[song] = info
        return self._infos[song]

    # -------------------------------------------------------------------------------- views
    def view(
        self,
        song: str,
        target: str,
        systems: Sequence[str],
        start_s: float,
        end_s: float,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> View:
        """Separate and score [start_s, end_s] of ``song`` (end clamped to the song) with ``systems``."""
        progress = on_progress or (lambda fraction, message: None)
        systems = list(dict.fromkeys(systems))
        with self._lock:
            info = self._info(song)  # DatasetError for an unknown song
            self._check(target, systems)
            lo, hi = self._window(song, start_s, end_s)
            spans = {name: self._span(name, lo, hi, info.num_samples) for name in systems}
            span_lo = min([lo, *(a for a, _ in spans.values())])
            span_hi = max([hi, *(b for _, b in spans.values())])
            missing = [name for name in systems if (song, target, name, lo, hi) not in self._cache]
            progress(0.05, "reading the window")
            mix_span = self._read(info, None, span_lo, span_hi) if missing else None  # (C, span)
            mixture = (
                mix_span[:, lo - span_lo : hi - span_lo].copy() if missing else self._read(info, None, lo, hi)
            )
            reference = self._read(info, target, lo, hi)  # (C, T)
            estimates, rows, notes = {}, [], []
            for index, name in enumerate(systems):
                progress(0.1 + 0.7 * index / len(systems), f"separating with {name}")
                key = (song, target, name, lo, hi)
                cached = self._cache.get(key)
                if cached is None:
                    a, b = spans[name]
                    estimate = self._separate(
                        name, target, mix_span[:, a - span_lo : b - span_lo], a
                    )  # (C, b - a)
                    cached = _Cached(estimate[:, lo - a : hi - a].copy())  # a copy: the span is freed
                    self._remember(key, cached)
                else:
                    self._cache.move_to_end(key)
                estimates[name] = cached.estimate
                row, note = self._sdr_row(song, target, name, lo, hi, reference, cached)
                rows.append(row)
                notes += [note] if note else []
            progress(0.85, "drawing")
            figure = _figure(mixture, reference, estimates, target, lo / RATE)
            del mix_span
        # Earlier views' figures are reference cycles (matplotlib artists <-> axes), tens of MB each, that
        # only a full collection frees; then hand the freed pages back to the OS so the RSS stays flat.
        gc.collect()
        release_freed_memory()
        return View(
            song,
            target,
            lo / RATE,
            hi / RATE,
            mixture,
            reference,
            estimates,
            tuple(rows),
            figure,
            tuple(notes),
        )

    def _span(self, system: str, lo: int, hi: int, length: int) -> tuple[int, int]:
        """The span of the song ``separate`` would run ``system``'s chunks over for samples [lo, hi)."""
        model, options = self.models[system], SeparationOptions()  # what _separate's separate() resolves
        margin = max_shift(model.sample_rate) if options.shifts_for(model) > 0 else 0
        overlap = options.overlap_for(model)
        return chunk_span(lo, hi, length, RATE, model.sample_rate, model.segment_s, overlap, margin)

    def _check(self, target: str, systems: list[str]) -> None:
        if target not in self._targets:
            raise BrowserError(f"unknown target {target!r}; choose one of {', '.join(self._targets)}")
        unknown = [name for name in systems if name not in self.models]
        if unknown:
            raise BrowserError(f"unknown system(s) {unknown}; loaded: {', '.join(self.models) or 'none'}")
        for name in systems:
            if target not in self.models[name].sources:
                raise BrowserError(
                    f"system {name!r} separates {list(self.models[name].sources)}, not {target!r}"
                )

    def _window(self, song: str, start_s: float, end_s: float) -> tuple[int, int]:
        """[start_s, end_s] -> samples [lo, hi), end clamped to the song; BrowserError when unusable."""
        start_s, end_s = float(start_s), float(end_s)
        duration = self.duration(song)
        limits = self.config
        if not (np.isfinite(start_s) and np.isfinite(end_s)):
            raise BrowserError(f"start and end must be numbers of seconds, got {start_s} and {end_s}")
        if start_s < 0:
            raise BrowserError(f"start must be >= 0 s, got {start_s:g} s")
        if end_s <= start_s:
            raise BrowserError(f"end ({end_s:g} s) must be after start ({start_s:g} s)")
        if start_s >= duration:
            raise BrowserError(f"start {start_s:g} s is past the end of {song!r} ({duration:.2f} s)")
        end_s = min(end_s, duration)
        if end_s - start_s > limits.max_window_s:
            raise BrowserError(
                f"window of {end_s - start_s:g} s is longer than {limits.max_window_s:g} s; choose a shorter one"
            )
        if end_s - start_s < limits.min_window_s - 1e-9:
            raise BrowserError(
                f"window {start_s:g}-{end_s:g} s of {song!r} ({duration:.2f} s long) is shorter than "
                f"{limits.min_window_s:g} s (one 1-s BSS Eval frame); start earlier"
            )
        info = self._info(song)
        scale = RATE / info.rate
        return int(round(start_s * RATE)), min(int(round(end_s * RATE)), int(round(info.num_samples * scale)))

    def _read(self, info, target: str | None, lo: int, hi: int) -> np.ndarray:
        """(C, hi - lo) at 44.1 kHz of the mixture (target None) or a target, read from disk."""
        scale = info.rate / RATE
        start, length = int(round(lo * scale)), int(round((hi - lo) * scale))
        if target is None:
            audio = self._reader.read(info, "mixture", start, length)
        else:
            parts, _ = plan_parts(*track_recipes(self._tracks[info.name]), [target])
            audio = read_parts(info, parts, start, length, self._reader)[0]
        if info.rate != RATE:
            audio = resample(audio, info.rate, RATE)
            audio = np.pad(audio, ((0, 0), (0, max(0, hi - lo - audio.shape[-1]))))[:, : hi - lo]
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _separate(self, system: str, target: str, mix: np.ndarray, offset: int) -> np.ndarray:
        """The span of a song starting at sample ``offset``, separated as the whole song would be."""
        if peak_db(mix) < SILENCE_DB:  # separate() refuses silence; nothing to separate anyway
            return np.zeros_like(mix)
        model = self.models[system]
        return separate(model, mix, RATE, stems=[target], device=self.config.device, offset=offset)[target]

    def _remember(self, key: tuple, value: _Cached) -> None:
        if self.config.cache_items == 0:
            return
        self._cache[key] = value
        while len(self._cache) > self.config.cache_items:
            self._cache.popitem(last=False)

    def _sdr_row(self, song, target, system, lo, hi, reference, cached: _Cached) -> tuple[SdrRow, str]:
        """The window's SDR from the evaluation JSON when there is one, else BSS Eval on the window."""
        start_s, end_s = lo / RATE, hi / RATE
        path = self.eval_dir / system / "test" / f"{song}.json" if self.eval_dir is not None else None
        frames = None
        if path is not None and path.is_file():
            try:
                frames = museval_frames(json.loads(path.read_text()), target)
            except (OSError, ValueError) as exc:
                note = f"{system}: {path} cannot be read ({exc})"
                frames = None
            else:
                note = None if frames is not None else f"{system}: {path} has no {target!r} scores"
        elif self.eval_dir is None:
            note = f"{system}: no evaluation folder; the song SDR is not available"
        else:
            note = (
                f"{system}: no evaluation output at {path}; the song SDR is not available "
                f"(run `{EVALUATE_HINT.format(eval_dir=self.eval_dir)}`)"
            )
        song_sdr = None if frames is None else median_sdr(frames[:, 2])
        inside = frames_in_window(frames, start_s, end_s) if frames is not None else np.empty(0)
        if inside.size:
            values, source = inside, "evaluation"
        else:
            if cached.scored is None:
                cached.scored = window_sdr_frames(reference, cached.estimate)
            values, source = cached.scored, "scored"
        finite = int(np.isfinite(values).sum())
        return SdrRow(system, target, median_sdr(values), finite, source, song_sdr), note


def _figure(mixture, reference, estimates: Mapping[str, np.ndarray], target: str, offset_s: float):
    """Spectrogram panels of the window with the song's time on the x axis."""
    panels = [("mixture", mixture), (f"reference ({target})", reference)]
    for name, estimate in estimates.items():
        panels += [
            (f"{name}: estimate", estimate),
            (f"{name}: error (reference - estimate)", reference - estimate),
        ]
    try:
        figure = spectrogram_figure(panels, RATE)  # window time from 0; relabelled with song time below
    except MSSError as exc:
        raise BrowserError(str(exc)) from exc
    end_s = offset_s + mixture.shape[-1] / RATE
    ticks = MaxNLocator(nbins=10).tick_values(offset_s, end_s)
    ticks = ticks[(ticks >= offset_s - 1e-9) & (ticks <= end_s + 1e-9)]
    bottom = figure.axes[len(panels) - 1]  # the panels share x; the colour bar's axes come after them
    bottom.set_xticks(ticks - offset_s, labels=[f"{round(t, 3):g}" for t in ticks])
    return figure
