"""Scoring one song, streamed: every method of a song scored from one decode of its files, in memory
bounded by a block, not by the song's length.

The evaluation driver (``mss.evaluation.driver``) hands a worker one ``SongJob`` per song; the worker opens the
song (``SongAudio``: wav files read at an offset, ``.stem.mp4`` or non-44.1 kHz songs through the
decoded-audio cache at 44.1 kHz, streams cropped to a common length), finds the sources BSS Eval sees
(targets that are not silent, plus the residual when the targets do not cover the mixture), computes the
references' correlations once (``mss.evaluation.bsseval.ReferenceCorrelations``), then scores each method's
estimates with them: model estimates read from the separated wavs, oracle estimates computed span by
span (``mss.evaluation.oracles.ideal_ratio_mask_span``).
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.audio import SILENCE_DB
from mss.data import (
    find_track,
    open_db,
    plan_parts,
    read_part,
    read_wav,
    song_check,
    track_info,
    track_recipes,
)
from mss.data.cache import AudioCache, CacheSpec
from mss.errors import AudioError, DatasetError
from mss.evaluation.bsseval import BSSEvalConfig, ReferenceCorrelations, bss_eval_v4
from mss.evaluation.methods import Method
from mss.evaluation.museval_format import HOP_S, WINDOW_S, frame_samples, track_store, write_track_json
from mss.evaluation.oracles import ORACLES, ideal_ratio_mask_span
from mss.memory import peak_rss_mb, reset_peak

#: Samples read at a time when a whole song is scanned (peaks, silence): 30 s at 44.1 kHz.
SCAN_BLOCK: int = 30 * MUSDB_SAMPLE_RATE
#: Name of the extra source that completes a partial set of targets (e.g. piano alone) to the mixture.
RESIDUAL: str = "_residual"
#: Amplitude of the dither that replaces an all-zero estimate (BSS Eval rejects silent estimates).
DITHER: float = 1e-8
#: The dither is drawn in aligned blocks of this many samples, so any read of a span gives the same values.
DITHER_BLOCK: int = 1 << 16

Reader = Callable[[int, int], np.ndarray]  # (start, stop) -> (S, C, stop - start), zero past the end


@dataclass(frozen=True)
class SongSpec:
    """What a worker needs to open one song without listing the dataset again (picklable): the track's
    files (``mss.data.TrackInfo``) and the parts its targets are read as (``mss.data.Part``);
    ``cache_root``: the decoded-audio cache folder (None: ``mss.data.cache.default_cache_dir()``)."""

    info: object  # mss.data.TrackInfo
    parts: tuple  # of mss.data.Part, one per target
    targets: tuple[str, ...]
    cache_root: str | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @classmethod
    def of_track(cls, track, targets: Sequence[str], cache_root: str | None = None) -> SongSpec:
        """From a ``musdb`` track (reads wav headers)."""
        parts, _ = plan_parts(*track_recipes(track), tuple(targets))
        return cls(track_info(track), tuple(parts), tuple(targets), cache_root)

    @classmethod
    def find(cls, root: str | os.PathLike, subset: str, track_name: str, targets: Sequence[str]) -> SongSpec:
        """Lists the dataset (``open_db``) and picks ``track_name``."""
        return cls.of_track(find_track(open_db(root, subset=subset), track_name), targets)


class SongAudio:
    """One song of a dataset at 44.1 kHz: ``mixture(a, b) -> (C, n)``, ``references(a, b) -> (S, C, n)``.

    ``length`` is the number of samples every stream has (the shortest stream, for ``.stem.mp4``);
    ``check`` the song's ``mss.data.song_check.SongCheck`` (a failing song raises InvalidSongError).
    Built from a ``SongSpec``, or with ``SongAudio.open(root, subset, name, targets)``.
    """

    def __init__(self, spec: SongSpec):
        self.spec = spec
        self.name = spec.name
        self.targets = spec.targets
        self.info = spec.info
        self.parts = list(spec.parts)
        self.entry = None
        if not self.info.is_wav or self.info.rate != MUSDB_SAMPLE_RATE:
            # decoded (and resampled to 44.1 kHz) once, then read by slices like the wav files; the song
            # check is measured when the entry is built, and open() refuses a song that fails it
            rate = None if self.info.rate == MUSDB_SAMPLE_RATE else MUSDB_SAMPLE_RATE
            cache = AudioCache(spec.cache_root, CacheSpec(rate, "float32"))
            self.entry = cache.open(self.info)
            self.check = cache.check(self.info, self.entry).require()
            self.length = self.entry.num_samples
            self.channels = self.entry.channels
        else:
            self.check = song_check(self.info).require()  # InvalidSongError: lengths, mixture != sum
            self.length = self.info.num_samples
            self.channels = int(sf.info(self.info.file("mixture")).channels)
        if self.length <= 0:
            raise AudioError(f"{self.info.file('mixture')} is empty (0 samples)")

    @classmethod
    def open(cls, root: str | os.PathLike, subset: str, track_name: str, targets: Sequence[str]) -> SongAudio:
        return cls(SongSpec.find(root, subset, track_name, targets))

    def _read(self, source: str, start: int, length: int) -> np.ndarray:
        """(C, length) of one stream at 44.1 kHz (cache entries were checked for NaN when built)."""
        if self.entry is not None:
            return self.entry.read(source, start, length)
        return read_wav(self.info.file(source), start, length)

    def mixture(self, start: int, stop: int) -> np.ndarray:
        """(C, stop - start) of the mixture, zero past the song's end."""
        return self._read("mixture", start, stop - start)

    def references(self, start: int, stop: int) -> np.ndarray:
        """(S, C, stop - start): one row per target (a target may be a sum, e.g. other - piano)."""
        return np.stack([read_part(part, self._read, start, stop - start) for part in self.parts])

    def notes(self) -> list[str]:
        """What was done to the song to score it (other rate, mono), for the run's notes."""
        notes = []
        if self.info.rate != MUSDB_SAMPLE_RATE:
            notes.append(
                f"{self.name}: the files are at {self.info.rate} Hz; resampled once to {MUSDB_SAMPLE_RATE} Hz "
                f"for every method (models and oracles alike)"
            )
        if self.channels == 1:
            notes.append(f"{self.name}: mono; every method is scored on its one channel")
        return notes


def blocks(length: int, block: int = SCAN_BLOCK):
    """(start, stop) pairs covering ``[0, length)``."""
    for start in range(0, length, block):
        yield start, min(length, start + block)


def peaks_db(read: Reader, length: int) -> np.ndarray:
    """Peak level (dBFS) of each row of ``read`` over the whole song, one block at a time -> (S,)."""
    peak = None
    for start, stop in blocks(length):
        block = np.abs(read(start, stop)).max(axis=(-2, -1))
        peak = block if peak is None else np.maximum(peak, block)
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(np.maximum(peak, 0.0))


def dither(index: int, start: int, stop: int, channels: int) -> np.ndarray:
    """(C, stop - start) of the deterministic -160 dB dither of source ``index`` (same values whatever
    the span boundaries, so every pass over a song sees the same signal)."""
    pieces = []
    first = start // DITHER_BLOCK
    for block_index in range(first, (max(stop, start + 1) - 1) // DITHER_BLOCK + 1):
        rng = np.random.default_rng([index, block_index])
        pieces.append(DITHER * rng.standard_normal((channels, DITHER_BLOCK)))
    noise = np.concatenate(pieces, axis=-1)
    offset = start - first * DITHER_BLOCK
    return noise[:, offset : offset + stop - start]


@dataclass(frozen=True)
class ScoredSources:
    """What BSS Eval sees for one song: ``names`` (targets, then RESIDUAL if any) and the silent targets."""

    names: tuple[str, ...]
    rows: tuple[int, ...]  # row of each non-residual name in SongAudio.references
    silent: tuple[str, ...]
    residual: bool


def scored_sources(song: SongAudio) -> ScoredSources:
    """Targets whose reference is silent over the whole song are dropped (SDR is undefined for them);
    when the targets do not cover the four MUSDB stems, the residual ``mixture - sum(targets)`` is added
    (as SiSEC scores vocals against the accompaniment), so interference is measured against the whole
    mixture."""
    levels = peaks_db(song.references, song.length)
    names, rows, silent = [], [], []
    for row, (name, level) in enumerate(zip(song.targets, levels, strict=True)):
        if level < SILENCE_DB:
            silent.append(name)
        else:
            names.append(name)
            rows.append(row)
    residual = False
    if names and not set(SOURCES) <= set(song.targets):

        def read_residual(a: int, b: int) -> np.ndarray:
            return (song.mixture(a, b) - song.references(a, b).sum(0))[None]

        residual = bool(peaks_db(read_residual, song.length)[0] >= SILENCE_DB)
    if residual:
        names.append(RESIDUAL)
    return ScoredSources(tuple(names), tuple(rows), tuple(silent), residual)


def reference_reader(song: SongAudio, sources: ScoredSources) -> Reader:
    """(start, stop) -> (S', C, n) float64: the scored references, residual last."""

    def read(start: int, stop: int) -> np.ndarray:
        references = song.references(start, stop)  # (S, C, n)
        rows = [references[row] for row in sources.rows]
        if sources.residual:
            rows.append(song.mixture(start, stop) - references.sum(0))
        return np.stack(rows).astype(np.float64)

    return read


def wav_estimate_reader(song: SongAudio, sources: ScoredSources, folder: Path) -> Reader:
    """Estimates separated into ``folder/<target>.wav`` (padded or cut to the song's length, as museval
    does); the residual estimate is the mixture minus the target estimates; an estimate that is silent
    over the whole song is replaced by a -160 dB dither (BSS Eval refuses all-zero estimates)."""
    paths = {name: folder / f"{name}.wav" for name in song.targets}
    for path in paths.values():
        if not path.is_file():
            raise AudioError(f"separated estimate missing: {path}")

    def read_target(name: str, start: int, stop: int) -> np.ndarray:
        return read_wav(str(paths[name]), start, stop - start)

    def read_all(start: int, stop: int) -> np.ndarray:
        estimates = {name: read_target(name, start, stop) for name in song.targets}
        rows = [estimates[song.targets[row]] for row in sources.rows]
        if sources.residual:
            rows.append(song.mixture(start, stop) - sum(estimates.values()))
        return np.stack(rows).astype(np.float64)

    silent = np.flatnonzero(peaks_db(read_all, song.length) == -np.inf)

    def read(start: int, stop: int) -> np.ndarray:
        out = read_all(start, stop)
        for index in silent:
            out[index] = dither(int(index), start, stop, out.shape[1])
        return out

    return read


#: Span of one IRM computation when an oracle's estimates are rendered: 10 s (STFT margins 2% of the work;
#: the complex128 spectrograms of a span, ~0.4 GB for 4 stereo sources, bound the scoring memory).
ORACLE_SPAN: int = 10 * MUSDB_SAMPLE_RATE


def oracle_estimate_reader(name: str, song: SongAudio, sources: ScoredSources, scratch: Path) -> Reader:
    """Estimates of a baseline (``ORACLES``) over the scored sources.

    IRM estimates are rendered once, span by span (``ideal_ratio_mask_span``, equal to the whole-song
    IRM), into a float32 file in ``scratch``, and read from there: BSS Eval reads every estimate
    in two passes and in blocks of its own, and recomputing STFTs for each read cost 4x the scoring.
    """
    references = reference_reader(song, sources)
    if name == "MIX":
        return lambda a, b: np.repeat(song.mixture(a, b)[None].astype(np.float64), len(sources.names), 0)
    if name not in ("IRM1", "IRM2"):
        raise DatasetError(f"unknown oracle {name!r}; known: {', '.join(ORACLES)}")
    alpha = 1.0 if name == "IRM1" else 2.0

    def read_both(a: int, b: int):
        return song.mixture(a, b), references(a, b).astype(np.float32)

    shape = (len(sources.names), song.channels)
    frame_bytes = int(np.prod(shape)) * 4  # one sample of every (source, channel), float32
    path = scratch / f"{name}.f32"  # time-major (T, S, C): a span is one contiguous range of bytes
    with open(path, "wb") as handle:
        for start, stop in blocks(song.length, ORACLE_SPAN):
            span = ideal_ratio_mask_span(read_both, song.length, start, stop, alpha)  # (S, C, n)
            handle.write(np.ascontiguousarray(span.transpose(2, 0, 1), dtype=np.float32).tobytes())

    def read(start: int, stop: int) -> np.ndarray:
        # positioned reads, not a memory map: the rendered song stays in the page cache, out of this
        # process's resident memory (which is what keeps a scoring job's peak independent of song length)
        out = np.zeros((*shape, stop - start))
        available = max(0, min(stop, song.length) - start)
        if available:
            with open(path, "rb") as handle:
                data = os.pread(handle.fileno(), available * frame_bytes, start * frame_bytes)
            out[..., :available] = (
                np.frombuffer(data, dtype=np.float32).reshape(available, *shape).transpose(1, 2, 0)
            )
        return out

    return read


@dataclass(frozen=True)
class MethodTask:
    """One method to score on the job's song: where its estimates are and where its JSON goes."""

    method: Method
    estimates_dir: str | None
    json_path: str


@dataclass(frozen=True)
class SongJob:
    """Everything a worker needs to score every pending method of one song."""

    song: SongSpec
    tasks: tuple[MethodTask, ...]

    @property
    def track(self) -> str:
        return self.song.name


@dataclass
class TaskResult:
    task: MethodTask
    track: str
    ok: bool
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class SongResult:
    track: str
    results: list[TaskResult]
    shared_seconds: float = 0.0  # opening the song, silence scan, reference correlations
    peak_rss_mb: float = 0.0  # of the worker process while scoring this song
    error: str | None = None
    audio_s: float = 0.0  # length of the song (seconds at 44.1 kHz)
    condition: float = float("nan")  # of the references' projection system (mss.bsseval); NaN: not scored


def score_song(job: SongJob) -> SongResult:
    """Score every task of ``job``; never raises (a failure is reported per task or for the song).

    BLAS runs on one thread: the solves and FFTs are small, and on a busy 2-core machine one thread was
    measured twice as fast as two (parallel songs use processes instead, ``--jobs``).
    """
    try:
        from threadpoolctl import threadpool_limits  # installed with librosa (via scikit-learn)
    except ImportError:  # pragma: no cover - only the speed differs
        return _score_song(job)
    with threadpool_limits(limits=1):
        return _score_song(job)


def _score_song(job: SongJob) -> SongResult:
    reset_peak()
    start = time.perf_counter()
    try:
        song = SongAudio(job.song)
        sources = scored_sources(song)
        notes = song.notes() + [
            f"{job.track}: target {name!r} is silent in this song; not scored (SDR undefined)"
            for name in sources.silent
        ]
        correlations = config = None
        if sources.names:
            references = reference_reader(song, sources)
            config = BSSEvalConfig(
                window=frame_samples(MUSDB_SAMPLE_RATE, WINDOW_S), hop=frame_samples(MUSDB_SAMPLE_RATE, HOP_S)
            )
            correlations = ReferenceCorrelations.compute(
                references, song.length, len(sources.names), song.channels, config
            )
    except Exception as exc:  # the song itself is bad: every task fails with the same reason
        message = (
            f"{job.track}: {exc}"
            if isinstance(exc, (AudioError, DatasetError))
            else (f"{job.track}: {type(exc).__name__}: {exc}")
        )
        results = [
            TaskResult(task, job.track, False, [], f"{task.method.name} / {message}") for task in job.tasks
        ]
        return SongResult(job.track, results, time.perf_counter() - start, peak_rss_mb(), message)
    shared = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="mss-scoring-") as scratch:
        results = _score_tasks(job, song, sources, notes, correlations, config, Path(scratch))
    condition = correlations.condition if correlations is not None else float("nan")
    return SongResult(
        job.track, results, shared, peak_rss_mb(), None, song.length / MUSDB_SAMPLE_RATE, condition
    )


def _score_tasks(
    job: SongJob,
    song: SongAudio,
    sources: ScoredSources,
    notes: list[str],
    correlations,
    config,
    scratch: Path,
) -> list[TaskResult]:
    """Each method of the song scored against the shared ``correlations`` (None: nothing to score)."""
    references = reference_reader(song, sources)

    results = []
    for task in job.tasks:
        task_start = time.perf_counter()
        try:
            if correlations is not None:
                if task.method.kind == "oracle":
                    estimates = oracle_estimate_reader(task.method.name, song, sources, scratch)
                else:
                    estimates = wav_estimate_reader(song, sources, Path(task.estimates_dir))
                sdr, isr, sir, sar = bss_eval_v4(references, estimates, correlations, config)
                keep = [name for name in sources.names if name != RESIDUAL]
                store = track_store(job.track, sources.names, keep, sdr, isr, sir, sar)
                write_track_json(store, task.json_path)
            results.append(TaskResult(task, job.track, True, notes, None, time.perf_counter() - task_start))
        except Exception as exc:  # one bad method must not lose the others' results
            message = f"{task.method.name} / {job.track}: {type(exc).__name__}: {exc}"
            results.append(
                TaskResult(task, job.track, False, [], message + "\n" + traceback.format_exc(),
                           time.perf_counter() - task_start)
            )  # fmt: skip
    return results
