"""Objective evaluation with museval (BSS Eval v4): separate every song with every checkpoint, score it,
store museval's per-track JSON, and tabulate SDR/SIR/SAR/ISR beside oracle and trivial baselines.

    python -m mss.evaluate --checkpoint checkpoints/unet.pt --checkpoint checkpoints/demucs.pt \\
        --dataset default --jobs 2 --out eval

Layout of ``--out DIR`` (the same as ``museval.eval_mus_track(output_dir=DIR/<method>)`` writes, so
``museval.MethodStore().add_eval_dir(DIR/<method>)`` and the SiSEC analysis tools read it):

- ``DIR/<method>/<subset>/<track>.json``  museval frame-wise scores (1 s windows and hops)
- ``DIR/results.csv`` / ``results.md``   median over frames, then over tracks, per method and target,
  plus the average over targets and the SDR improvement over the mixture (``SDRi``)
- ``DIR/tracks.csv``                     one row per (method, track, target): frame medians
- ``DIR/methods.json``                   what each method is (checkpoint, hash, audio cache) for the report
- ``DIR/.cache/<method>-<hash>/...``     separated audio, reused by reruns and by ``mss.report``

A rerun scores only what is missing (a JSON that exists and parses is kept).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.data import available_targets, ensure_default_dataset, open_db
from mss.data.real_clips import real_clips_dataset
from mss.errors import CheckpointError, DatasetError, InvalidSongError
from mss.evaluation.methods import (
    Method,
    describe_checkpoints,
    load_checkpoint_model,
    provenance,
    refresh_provenance,
    write_methods,
)
from mss.evaluation.museval_format import is_scored
from mss.evaluation.oracles import ORACLES
from mss.evaluation.records import cache_complete, check_songs, record_conditioning, record_song_checks
from mss.evaluation.scoring import (
    MethodTask,
    SongAudio,
    SongJob,
    SongResult,
    SongSpec,
    TaskResult,
    score_song,
)
from mss.evaluation.tables import aggregate, format_markdown, track_table
from mss.precision import resolve_precision
from mss.separate import StreamInput, separate_file


def load_song(
    root: str | os.PathLike, subset: str, track_name: str, targets: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """mixture (C, T) and references (S, C, T) of one whole song at 44.1 kHz, aligned (for figures and
    tests; scoring streams the song through ``mss.evaluation.scoring.SongAudio`` instead)."""
    song = SongAudio.open(root, subset, track_name, targets)
    return song.mixture(0, song.length), song.references(0, song.length)


def worker_init() -> None:
    """A scoring worker process: one thread for torch and BLAS."""
    torch.set_num_threads(1)  # workers run in parallel already; oversubscription only slows museval down
    try:  # museval's time goes to numpy.linalg.solve: one BLAS thread per worker process
        from threadpoolctl import threadpool_limits  # installed with librosa (via scikit-learn)

        threadpool_limits(limits=1)
    except ImportError:
        pass


#: below this much free space a failed write is most likely the disk: say so (libsndfile only says "System error.")
LOW_DISK_BYTES = 1 << 30


def low_disk_note(path: Path) -> str:
    """``" (only N MB free on the file system of FOLDER)"`` when the file system that holds ``path`` (or its
    nearest existing parent) has less than ``LOW_DISK_BYTES`` free, else ``""``."""
    folder = next((p for p in (Path(path), *Path(path).parents) if p.exists()), None)
    if folder is None:
        return ""
    free = shutil.disk_usage(folder).free
    return f" (only {free / 1e6:.0f} MB free on the file system of {folder})" if free < LOW_DISK_BYTES else ""


def separate_to_cache(method: Method, model, song, out_dir: Path, device: str = "cpu") -> Path:
    """Separate ``song`` (``SongAudio``, 44.1 kHz) with ``model`` into ``out_dir/<source>.wav``
    (+ a completion marker), streamed in blocks: memory does not grow with the song's length."""
    source = StreamInput(song.mixture, song.length, MUSDB_SAMPLE_RATE, song.channels, out_dir.name)
    written = separate_file(
        model, source, out_dir.parent, device=device, name=out_dir.name, shifts=method.shifts,
        full_band=method.full_band, precision=method.precision,
    )  # fmt: skip
    (out_dir / "complete.json").write_text(json.dumps({"method": method.name, "sources": sorted(written)}))
    return out_dir


#: ``--dataset real-clips``: the real MUSDB18 clips at hand (mss.data.real_clips), as a train subset.
REAL_CLIPS = "real-clips"


def resolve_dataset(dataset: str | os.PathLike | None) -> Path:
    """The dataset root: ``None``/``"default"`` is the embedded default dataset (built on first use),
    ``"real-clips"`` a folder linking the real MUSDB18 clips at hand into ``train/``."""
    if dataset is None or str(dataset) == "default":
        return Path(ensure_default_dataset())
    if str(dataset) == REAL_CLIPS:
        return real_clips_dataset()
    root = Path(dataset)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    return root


def choose_targets(
    targets: Sequence[str] | None, methods: Sequence[Method], available: Sequence[str]
) -> tuple[str, ...]:
    """Requested targets, checked against the dataset and every model; default: the stems they all have."""
    models = [m for m in methods if m.kind == "model"]
    if targets is None:
        targets = [s for s in SOURCES if s in available and all(s in m.sources for m in models)]
        if not targets:
            targets = [s for s in (models[0].sources if models else available) if s in available]
    for target in targets:
        if target not in available:
            raise DatasetError(f"unknown target {target!r}; this dataset has: {', '.join(available)}")
        for method in models:
            if target not in method.sources:
                raise CheckpointError(
                    f"checkpoint {method.name!r} does not separate {target!r} (it has {', '.join(method.sources)})"
                )
    if not targets:
        raise DatasetError("no target to evaluate")
    return tuple(targets)


@dataclass(frozen=True)
class EvaluationResult:
    """What ``evaluate`` returns: the results table and what the run has to say about it."""

    table: pd.DataFrame  # one row per method and target (``aggregate``): what results.csv holds
    errors: tuple[str, ...]  # one line per (method, song) that failed or was refused (errors.txt)
    notes: tuple[str, ...]  # songs/targets skipped, e.g. a silent reference (notes.txt)
    scored: int  # (method, song) pairs scored by this call (0: everything came from an earlier run)
    timings: tuple[dict, ...]  # per (song, method) seconds, and per song the shared work (timings.csv)


def evaluate(
    checkpoints: Sequence[str | os.PathLike] = (),
    dataset: str | os.PathLike | None = None,
    subset: str = "test",
    targets: Sequence[str] | None = None,
    jobs: int = 1,
    *,
    out_dir: str | os.PathLike,
    oracles: Sequence[str] = ORACLES,
    cache_dir: str | os.PathLike | None = None,
    audio_cache_dir: str | os.PathLike | None = None,
    wiener: bool = False,
    shifts: Sequence[int] = (),
    full_band: bool = True,
    device: str = "cpu",
    precision: str = "auto",
    tracks: Sequence[str] | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Separate, score and tabulate; returns the results table (see ``aggregate``) with what went wrong.

    ``cache_dir``: the separated audio (default ``OUT/.cache``); ``audio_cache_dir``: the decoded-audio
    cache of ``.stem.mp4`` and non-44.1 kHz songs (default ``mss.data.cache.default_cache_dir()``).
    ``errors`` lists the (method, song) pairs that failed (their JSON is absent; the others are written),
    ``notes`` the songs/targets skipped because the reference is silent (EvaluationResult). ``precision``: the
    models' number format (``mss.precision``; ``auto`` is recorded as what it resolves to on this machine).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / ".cache"
    root = resolve_dataset(dataset)
    db = open_db(root, subset=subset)
    chosen = [t for t in db.tracks if tracks is None or t.name in tracks]
    unreadable = [(n, why) for n, why in db.unreadable if tracks is None or n in tracks]
    if not chosen and not unreadable:
        raise DatasetError(f"no {subset} songs in {root}" + (f" among {list(tracks)}" if tracks else ""))
    for oracle in oracles:
        if oracle not in ORACLES:
            raise DatasetError(f"unknown oracle {oracle!r}; known: {', '.join(ORACLES)}")
    precision = resolve_precision(precision, device)  # "auto" -> what it is on this machine, in the records
    methods, models = describe_checkpoints(checkpoints, wiener, shifts, full_band, precision)
    methods += [Method(name=o, kind="oracle") for o in oracles]
    if not methods:
        raise CheckpointError("nothing to evaluate: give at least one --checkpoint, or keep the oracles")
    targets = choose_targets(targets, methods, available_targets(db))
    write_methods(out_dir, methods, root, subset, targets, cache_dir)
    for method in methods:  # scores made by something else under the same name are removed, not shown
        stale = refresh_provenance(out_dir / method.name, provenance(method, root, subset, targets))
        if stale:
            print(
                f"{method.name}: {stale} score file(s) came from another checkpoint, dataset, target list or "
                f"scoring settings; rescoring",
                file=sys.stderr,
            )
    run = _Run(out_dir, subset, targets, methods, models, cache_dir, audio_cache_dir, device)
    checks, refused = check_songs(chosen)  # every song, scored before or not: old scores of a bad song go
    for name in refused:
        for method in methods:
            run.json_path(method, name).unlink(missing_ok=True)
    pending = {t.name: run.unscored(t.name) for t in chosen if t.name not in refused}
    pending = {name: ms for name, ms in pending.items() if ms}
    run.bar = tqdm(
        total=sum(len(ms) for ms in pending.values()) + len(unreadable) * len(methods),
        desc="scoring", unit="score", disable=not progress or not pending,
    )  # fmt: skip
    for track, why in unreadable:  # listed in the dataset but not readable: named, the others go on
        run.fail_all(methods, track, f"cannot read the song: {why}")
    for track, check in refused.items():  # reads fine, but is no valid song: named with its figures
        run.fail_all(methods, track, f"refused: {check.message}")
    by_name = {t.name: t for t in chosen}
    run.score([(by_name[name], ms) for name, ms in pending.items()], jobs, checks)
    record_conditioning(out_dir, subset, {sr.track: sr.condition for sr in run.song_results})
    record_song_checks(out_dir, subset, checks)
    return run.write_tables([t.name for t in chosen if t.name not in refused])


class _Run:
    """The bookkeeping of one ``evaluate`` call: where things go, what was scored or failed."""

    def __init__(self, out_dir, subset, targets, methods, models, cache_dir, audio_cache_dir, device):
        self.out_dir, self.subset, self.targets = out_dir, subset, targets
        self.methods, self.models, self.device = methods, models, device
        self.cache_dir = cache_dir
        self.audio_cache_dir = None if audio_cache_dir is None else str(audio_cache_dir)
        self.results: list[TaskResult] = []  # one per (method, song)
        self.song_results: list[SongResult] = []
        self.bar = None

    def json_path(self, method: Method, track: str) -> Path:
        return self.out_dir / method.name / self.subset / f"{track}.json"

    def unscored(self, track: str) -> list[Method]:
        return [m for m in self.methods if not is_scored(self.json_path(m, track))]

    def fail(self, method: Method, track: str, message: str) -> None:
        self.results.append(TaskResult(MethodTask(method, None, ""), track, False, [], message))
        self.bar.update(1)

    def fail_all(self, methods: Sequence[Method], track: str, why: str) -> None:
        for method in methods:
            self.fail(method, track, f"{method.name} / {track}: {why}")

    def collect(self, song_result: SongResult) -> None:
        self.song_results.append(song_result)
        self.results.extend(song_result.results)
        self.bar.update(len(song_result.results))

    def score(self, pending: list, jobs: int, checks: dict) -> None:
        """Separate and score every (track, methods) of ``pending``: in this process, or one song per
        worker process when ``jobs`` > 1 (separation stays here: the models are loaded once)."""
        executor = ProcessPoolExecutor(max_workers=jobs, initializer=worker_init) if jobs > 1 else None
        futures = []
        try:
            for track, methods in pending:
                job = self.prepare(track, methods, checks)
                if job is None:
                    continue
                if executor is None:
                    self.collect(score_song(job))
                else:
                    futures.append(executor.submit(score_song, job))
            for future in as_completed(futures):
                self.collect(future.result())
        finally:
            self.bar.close()
            if executor is not None:
                executor.shutdown(cancel_futures=True)

    def prepare(self, track, methods: list[Method], checks: dict) -> SongJob | None:
        """Open the song, separate what the models have not separated yet -> the song's scoring job (None
        when nothing is left to score; failures are recorded)."""
        name = track.name
        try:  # opening the song decodes a .stem.mp4 once into the cache (shared with the workers)
            song = SongAudio(SongSpec.of_track(track, self.targets, self.audio_cache_dir))
        except InvalidSongError as exc:  # reads fine but is no valid song: refused, with its figures
            checks[name] = exc.check
            self.fail_all(methods, name, f"refused: {exc}")
            return None
        except Exception as exc:  # a bad song is reported and the others go on
            self.fail_all(methods, name, f"cannot read the song: {exc}")
            return None
        checks[name] = song.check
        tasks = []
        for method in methods:
            estimates_dir = None
            if method.kind == "model":
                estimates_dir = self.cache_dir / method.cache_key / self.subset / name
                if not self.separate(method, song, estimates_dir):
                    continue
            json_path = self.json_path(method, name)
            tasks.append(MethodTask(method, str(estimates_dir) if estimates_dir else None, str(json_path)))
        return SongJob(song.spec, tuple(tasks)) if tasks else None

    def separate(self, method: Method, song: SongAudio, estimates_dir: Path) -> bool:
        """The method's estimates of ``song`` in ``estimates_dir`` (separated now unless cached); False
        when the separation failed (recorded)."""
        if cache_complete(estimates_dir, self.targets):
            return True
        self.bar.set_postfix_str(f"separating {song.name} with {method.name}")
        try:
            if self.models[method.name] is None:
                self.models[method.name] = load_checkpoint_model(method.checkpoint, method.wiener)
            separate_to_cache(method, self.models[method.name], song, estimates_dir, self.device)
        except Exception as exc:
            message = f"{method.name} / {song.name}: separation failed: {exc}{low_disk_note(estimates_dir)}"
            self.fail(method, song.name, message)
            return False
        return True

    def write_tables(self, names: list[str]) -> EvaluationResult:
        """results.csv/.md, tracks.csv, errors.txt, notes.txt and timings.csv of the scored ``names``."""
        out_dir, results = self.out_dir, self.results
        errors = [" ".join(r.error.split()) for r in results if not r.ok]  # one line per failure
        notes = sorted({note for r in results for note in r.notes})
        method_list = [m.name for m in self.methods]
        table = aggregate(out_dir, subset=self.subset, methods=method_list, tracks=names)
        per_track = track_table(out_dir, subset=self.subset, methods=method_list, tracks=names)
        if not table.empty:
            table.to_csv(out_dir / "results.csv", index=False)
            per_track.to_csv(out_dir / "tracks.csv", index=False)
            (out_dir / "results.md").write_text(format_markdown(table) + "\n")
        (out_dir / "errors.txt").write_text("".join(f"{line}\n" for line in errors))
        if notes:
            (out_dir / "notes.txt").write_text("\n".join(notes) + "\n")
        timings = [
            {"track": r.track, "method": r.task.method.name, "seconds": r.seconds, "ok": r.ok} for r in results
        ] + [
            {"track": sr.track, "method": "(shared)", "seconds": sr.shared_seconds,
             "peak_rss_mb": sr.peak_rss_mb, "audio_s": sr.audio_s}
            for sr in self.song_results
        ]  # fmt: skip
        if timings:
            pd.DataFrame(timings).to_csv(out_dir / "timings.csv", index=False)
        return EvaluationResult(
            table, tuple(errors), tuple(notes), sum(r.ok for r in results), tuple(timings)
        )
