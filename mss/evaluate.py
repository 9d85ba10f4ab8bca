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

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import simplejson

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.audio import write_text_atomic
from mss.data.song_check import SongCheck
from mss.errors import CheckpointError, DatasetError, InvalidSongError, MSSError
from mss.oracles import ORACLES
from mss.report_tables import aggregate, format_markdown, track_table
from mss.scoring import (
    DITHER,
    MethodTask,
    SongAudio,
    SongJob,
    SongResult,
    SongSpec,
    TaskResult,
    score_song,
)

__all__ = ["Method", "aggregate", "evaluate", "score_track", "track_table", "main"]

#: BSS Eval v4 window and hop (seconds), as in SiSEC 2018 / museval defaults.
WINDOW_S: float = 1.0
HOP_S: float = 1.0


@dataclass(frozen=True)
class Method:
    """One row group of the results table: a checkpoint (optionally with Wiener filtering) or a baseline."""

    name: str
    kind: str  # "model" | "oracle"
    checkpoint: str | None = None
    wiener: bool = False
    shifts: int = 0  # the shift trick at separation (mss.separate.shift_average); 0 = off
    full_band: bool = True  # the band above the model's Nyquist filled from the mixture (mss.bandwidth)
    checkpoint_hash: str | None = None
    arch: str | None = None
    sources: tuple[str, ...] = ()
    parameters: int | None = None
    sample_rate: int | None = None

    @property
    def cache_key(self) -> str | None:
        """Folder of this method's separated audio under the cache dir (content hash: retrained = new key)."""
        if self.kind != "model":
            return None
        return f"{self.name}-{self.checkpoint_hash[:12]}" + ("" if self.full_band else "-band-limited")


# ----------------------------------------------------------------------------------------------- scoring


def score_track(
    references: np.ndarray,
    estimates: np.ndarray,
    targets: Sequence[str],
    rate: int = MUSDB_SAMPLE_RATE,
    track_name: str = "track",
    *,
    keep: Sequence[str] | None = None,
    win_s: float = WINDOW_S,
    hop_s: float = HOP_S,
):
    """BSS Eval v4 of one song -> ``museval.TrackStore`` (its ``.json`` is museval's per-track JSON).

    references, estimates: (S, C, T), S == len(targets), in the same order; estimates are padded or
    truncated to the references' length (as museval does). Frames where a reference is silent score
    NaN (museval's convention). ``keep``: targets stored in the result (default: all), so helper
    sources such as the residual take part in the projection without appearing in tables.
    """
    import museval

    references = np.asarray(references, dtype=np.float64)
    estimates = np.asarray(estimates, dtype=np.float64)
    if references.ndim != 3 or estimates.ndim != 3 or references.shape[:2] != estimates.shape[:2]:
        raise ValueError(
            f"expected references and estimates (S, C, T), got {references.shape} and {estimates.shape}"
        )
    if references.shape[0] != len(targets):
        raise ValueError(f"{references.shape[0]} references for {len(targets)} targets {list(targets)}")
    for name, reference in zip(targets, references, strict=True):
        if not np.any(reference):
            raise ValueError(f"reference {name!r} of {track_name!r} is all zeros: SDR is undefined")
    estimates = estimates.copy()
    for index in range(estimates.shape[0]):
        if not np.any(estimates[index]):
            # BSS Eval refuses all-zero estimates; a -160 dB dither scores what silence deserves (~0 dB SDR).
            rng = np.random.default_rng(index)
            estimates[index] = DITHER * rng.standard_normal(estimates[index].shape)
    sdr, isr, sir, sar = museval.evaluate(
        references.transpose(0, 2, 1),  # (S, T, C): museval's layout
        estimates.transpose(0, 2, 1),
        win=int(win_s * rate),
        hop=int(hop_s * rate),
        mode="v4",
    )
    keep = list(targets) if keep is None else list(keep)
    return track_store(track_name, targets, keep, sdr, isr, sir, sar, win_s, hop_s)


def track_store(
    track_name: str,
    names: Sequence[str],
    keep: Sequence[str],
    sdr: np.ndarray,
    isr: np.ndarray,
    sir: np.ndarray,
    sar: np.ndarray,
    win_s: float = WINDOW_S,
    hop_s: float = HOP_S,
):
    """``museval.TrackStore`` of framewise metrics ``(S, N)`` (rows in ``names`` order; only ``keep`` stored)."""
    import museval

    store = museval.TrackStore(win=win_s, hop=hop_s, track_name=track_name)
    for index, name in enumerate(names):
        if name in keep:
            values = {
                "SDR": np.asarray(sdr[index]).tolist(),
                "SIR": np.asarray(sir[index]).tolist(),
                "ISR": np.asarray(isr[index]).tolist(),
                "SAR": np.asarray(sar[index]).tolist(),
            }
            store.add_target(target_name=name, values=values)
    return store


def write_track_json(store, path: str | os.PathLike) -> Path:
    """Validate ``store`` against museval's schema and write its JSON atomically."""
    path = Path(path)
    store.validate()
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, store.json)


def is_scored(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a readable museval JSON (so a rerun skips it)."""
    try:
        data = simplejson.loads(Path(path).read_text(), allow_nan=True)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("targets"), list) and len(data["targets"]) > 0


def load_song(
    root: str | os.PathLike, subset: str, track_name: str, targets: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """mixture (C, T) and references (S, C, T) of one whole song at 44.1 kHz, aligned (for figures and
    tests; scoring streams the song through ``mss.scoring.SongAudio`` instead)."""
    from mss.scoring import SongAudio

    song = SongAudio.open(root, subset, track_name, targets)
    return song.mixture(0, song.length), song.references(0, song.length)


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)  # workers run in parallel already; oversubscription only slows museval down
    try:  # museval's time goes to numpy.linalg.solve: one BLAS thread per worker process
        from threadpoolctl import threadpool_limits  # installed with librosa (via scikit-learn)

        threadpool_limits(limits=1)
    except ImportError:
        pass


# ----------------------------------------------------------------------------------------------- models


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint_model(path: str | os.PathLike, wiener: bool = False):
    """The model of a checkpoint, in eval mode; ``wiener`` turns on the UNet's Wiener post-filter."""
    from mss.models import load_model

    model = load_model(path)
    if wiener:
        model = _enable_wiener(model)
    return model


def _enable_wiener(model, iterations: int = 1):
    import dataclasses

    config = model.config
    if not any(f.name == "wiener_iterations" for f in dataclasses.fields(config)):
        raise CheckpointError(f"{type(model).__name__} has no Wiener option (only the UNet has one)")
    if hasattr(model, "set_wiener_iterations"):
        model.set_wiener_iterations(iterations)
        return model
    from mss.models import build_model

    rebuilt = build_model(_arch_of(model), dataclasses.replace(config, wiener_iterations=iterations))
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt.eval()


def _arch_of(model) -> str:
    """Registry name of a model's architecture."""
    from mss.models import REGISTRY

    for name, (model_cls, _) in REGISTRY.items():
        if isinstance(model, model_cls):
            return name
    raise CheckpointError(f"{type(model).__name__} is not a registered architecture")


def describe_checkpoints(
    checkpoints: Sequence[str | os.PathLike], wiener: bool, shifts: int = 0, full_band: bool = True
) -> tuple[list[Method], dict]:
    """One Method per checkpoint (plus ``<stem>-wiener`` for UNets when ``wiener``, and ``<stem>-shifts<N>``
    for every model when ``shifts``) and the loaded models."""
    from mss.models import count_parameters
    from mss.separate import output_names

    methods, models = [], {}
    paths = list(dict.fromkeys(Path(c).resolve() for c in checkpoints))  # the same file twice is one method
    # runs/unet/best.pt and runs/demucs/best.pt -> "unet-best" and "demucs-best"
    for path, name in zip(paths, output_names([p.with_suffix("") for p in paths]), strict=True):
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
        model = load_checkpoint_model(path)
        arch = _arch_of(model)
        base = Method(
            name=name,
            kind="model",
            checkpoint=str(path.resolve()),
            checkpoint_hash=file_hash(path),
            arch=arch,
            sources=tuple(model.sources),
            parameters=int(count_parameters(model)),
            sample_rate=int(model.sample_rate),
            full_band=full_band,
        )
        variants = [base]
        if wiener and arch == "unet":
            variants.append(Method(**{**asdict(base), "name": f"{name}-wiener", "wiener": True}))
        if shifts > 0:
            variants.append(Method(**{**asdict(base), "name": f"{name}-shifts{shifts}", "shifts": shifts}))
        for method in variants:
            if any(m.name == method.name for m in methods):
                raise CheckpointError(
                    f"two methods share the name {method.name!r}; rename one checkpoint file"
                )
            methods.append(method)
            models[method.name] = None if method.wiener else model  # the Wiener variant is built when needed
    return methods, models


def separate_to_cache(method: Method, model, song, out_dir: Path, device: str = "cpu") -> Path:
    """Separate ``song`` (``mss.scoring.SongAudio``, 44.1 kHz) with ``model`` into ``out_dir/<source>.wav``
    (+ a completion marker), streamed in blocks: memory does not grow with the song's length."""
    from mss.separate import ReaderSource, separate_file

    source = ReaderSource(song.mixture, song.length, MUSDB_SAMPLE_RATE, song.channels, out_dir.name)
    written = separate_file(
        model, source, out_dir.parent, device=device, name=out_dir.name, shifts=method.shifts,
        full_band=method.full_band,
    )  # fmt: skip
    (out_dir / "complete.json").write_text(json.dumps({"method": method.name, "sources": sorted(written)}))
    return out_dir


#: Changes whenever the scores of the same inputs would change (scorer, framing, oracle settings).
SCORING_VERSION: str = "bsseval-v4-streamed-1"


def provenance(method: Method, root: Path, subset: str, targets: Sequence[str]) -> dict:
    """What a method's scores depend on: the checkpoint's content (or the oracle), the dataset, the
    targets and the scoring settings."""
    from mss.oracles import ORACLE_HOP_LENGTH, ORACLE_N_FFT

    record = {
        "method": method.name,
        "kind": method.kind,
        "checkpoint_hash": method.checkpoint_hash,
        "wiener": method.wiener,
        "shifts": method.shifts,
        "full_band": method.full_band,
        "dataset": str(Path(root).resolve()),
        "subset": subset,
        "targets": list(targets),
        "scoring": {"version": SCORING_VERSION, "window_s": WINDOW_S, "hop_s": HOP_S, "filters_len": 512},
    }
    if method.kind == "oracle":
        record["oracle"] = {"n_fft": ORACLE_N_FFT, "hop_length": ORACLE_HOP_LENGTH}
    return record


def refresh_provenance(method_dir: Path, record: dict) -> int:
    """Make ``method_dir/provenance-<subset>.json`` say ``record``; when it said something else, delete the
    score files of that subset made then (they would be stale) and return how many. A folder without
    one (an older run) counts as stale too, unless it holds no scores."""
    subset = record["subset"]
    path = method_dir / f"provenance-{subset}.json"
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = None
    if previous == record:
        return 0
    stale = sorted((method_dir / subset).glob("*.json")) if (method_dir / subset).is_dir() else []
    for old in stale:
        old.unlink()
    method_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(record, indent=2))
    return len(stale)


def record_conditioning(out_dir: Path, subset: str, conditions: dict[str, float]) -> None:
    """Merge each scored song's projection condition number into ``out_dir/conditioning.json``
    (``{subset: {track: number}}``; ``null`` for exactly singular), which the tables use to flag
    ISR/SIR/SAR that are rounding noise (``mss.report_tables.ILL_CONDITIONED``)."""
    values = {t: None if np.isinf(c) else float(c) for t, c in conditions.items() if not np.isnan(c)}
    merge_subset_json(out_dir / "conditioning.json", subset, values)


def merge_subset_json(path: Path, subset: str, values: dict) -> None:
    """Merge ``values`` (track -> JSON value) into ``{subset: {track: value}}`` at ``path`` (atomic);
    songs of earlier runs into the same folder are kept. Nothing is written for no values."""
    if not values:
        return
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    record.setdefault(subset, {}).update(values)
    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True))


def check_songs(tracks) -> tuple[dict[str, SongCheck], dict[str, SongCheck]]:
    """The song check (``mss.data.song_check``, measured once per song and kept) of every track: all of
    them, and the ones that fail. A track that cannot be read is left to the scoring, which names it."""
    from mss.data import song_check, track_info

    checks = {}
    for track in tracks:
        try:
            checks[track.name] = song_check(track_info(track))
        except MSSError:
            continue
    return checks, {name: check for name, check in checks.items() if not check.ok}


def record_song_checks(out_dir: Path, subset: str, checks: dict[str, SongCheck]) -> None:
    """Merge the song checks (``mss.data.song_check``: stream lengths, the mixture's residual to the sum
    of its stems, the problems of a refused song) into ``out_dir/song_checks.json``
    (``{subset: {track: check}}``), beside ``conditioning.json``."""
    merge_subset_json(out_dir / "song_checks.json", subset, {t: c.to_dict() for t, c in checks.items()})


def cache_complete(estimates_dir: Path, targets: Sequence[str]) -> bool:
    return (estimates_dir / "complete.json").is_file() and all(
        (estimates_dir / f"{t}.wav").is_file() for t in targets
    )


# ----------------------------------------------------------------------------------------------- driver


#: ``--dataset real-clips``: the real MUSDB18 clips at hand (mss.data.real_clips), as a train subset.
REAL_CLIPS = "real-clips"


def resolve_dataset(dataset: str | os.PathLike | None) -> Path:
    """The dataset root: ``None``/``"default"`` is the embedded default dataset (built on first use),
    ``"real-clips"`` a folder linking the real MUSDB18 clips at hand into ``train/``."""
    if dataset is None or str(dataset) == "default":
        from mss.data import ensure_default_dataset

        return Path(ensure_default_dataset())
    if str(dataset) == REAL_CLIPS:
        from mss.data.real_clips import real_clips_dataset

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
    wiener: bool = False,
    shifts: int = 0,
    full_band: bool = True,
    device: str = "cpu",
    tracks: Sequence[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Separate, score and tabulate; returns the results table (see ``aggregate``).

    ``df.attrs["errors"]`` lists the (method, song) pairs that failed (their JSON is absent; the others
    are written), ``df.attrs["notes"]`` the songs/targets skipped because the reference is silent.
    """
    from tqdm import tqdm

    from mss.data import available_targets, open_db

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / ".cache"
    root = resolve_dataset(dataset)
    db = open_db(root, subset=subset)
    chosen = [t for t in db.tracks if tracks is None or t.name in tracks]
    names = [t.name for t in chosen]
    unreadable = [(n, why) for n, why in db.unreadable if tracks is None or n in tracks]
    if not names and not unreadable:
        raise DatasetError(f"no {subset} songs in {root}" + (f" among {list(tracks)}" if tracks else ""))
    for oracle in oracles:
        if oracle not in ORACLES:
            raise DatasetError(f"unknown oracle {oracle!r}; known: {', '.join(ORACLES)}")
    methods, models = describe_checkpoints(checkpoints, wiener, shifts, full_band)
    methods += [Method(name=o, kind="oracle") for o in oracles]
    if not methods:
        raise CheckpointError("nothing to evaluate: give at least one --checkpoint, or keep the oracles")
    targets = choose_targets(targets, methods, available_targets(db))
    _write_methods(out_dir, methods, root, subset, targets, cache_dir)

    for method in methods:  # scores made by something else under the same name are removed, not shown
        stale = refresh_provenance(out_dir / method.name, provenance(method, root, subset, targets))
        if stale:
            print(
                f"{method.name}: {stale} score file(s) came from another checkpoint, dataset, target list or "
                f"scoring settings; rescoring",
                file=sys.stderr,
            )
    checks, refused = check_songs(chosen)  # every song, scored before or not: old scores of a bad song go
    for name in refused:
        for method in methods:
            (out_dir / method.name / subset / f"{name}.json").unlink(missing_ok=True)
    pending = {
        n: [m for m in methods if not is_scored(out_dir / m.name / subset / f"{n}.json")]
        for n in names
        if n not in refused
    }
    pending = {n: ms for n, ms in pending.items() if ms}
    results: list = []  # mss.scoring.TaskResult, one per (method, song)
    song_results: list[SongResult] = []
    executor = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init) if jobs > 1 else None
    bar = tqdm(
        total=sum(len(ms) for ms in pending.values()) + len(unreadable) * len(methods),
        desc="scoring",
        unit="score",
        disable=not progress or not pending,
    )
    futures = []
    by_name = {t.name: t for t in chosen}

    def collect(song_result: SongResult) -> None:
        song_results.append(song_result)
        results.extend(song_result.results)
        bar.update(len(song_result.results))

    def fail(method: Method, track: str, message: str) -> None:
        results.append(TaskResult(MethodTask(method, None, ""), track, False, [], message))
        bar.update(1)

    for track, why in unreadable:  # listed in the dataset but not readable: named, the others go on
        for method in methods:
            fail(method, track, f"{method.name} / {track}: cannot read the song: {why}")
    for track, check in refused.items():  # reads fine, but is no valid song: named with its figures
        for method in methods:
            fail(method, track, f"{method.name} / {track}: refused: {check.message}")
    try:
        for track, song_methods in pending.items():
            try:  # opening the song decodes a .stem.mp4 once into the cache (shared with the workers)
                song = SongAudio(SongSpec.of_track(by_name[track], targets))
            except InvalidSongError as exc:  # reads fine but is no valid song: refused, with its figures
                checks[track] = exc.check
                for method in song_methods:
                    fail(method, track, f"{method.name} / {track}: refused: {exc}")
                continue
            except Exception as exc:  # a bad song is reported and the others go on
                for method in song_methods:
                    fail(method, track, f"{method.name} / {track}: cannot read the song: {exc}")
                continue
            checks[track] = song.check
            tasks = []
            for method in song_methods:
                estimates_dir = None
                if method.kind == "model":
                    estimates_dir = cache_dir / method.cache_key / subset / track
                    if not cache_complete(estimates_dir, targets):
                        bar.set_postfix_str(f"separating {track} with {method.name}")
                        try:
                            if models[method.name] is None:
                                models[method.name] = load_checkpoint_model(method.checkpoint, method.wiener)
                            separate_to_cache(method, models[method.name], song, estimates_dir, device)
                        except Exception as exc:
                            fail(method, track, f"{method.name} / {track}: separation failed: {exc}")
                            continue
                json_path = out_dir / method.name / subset / f"{track}.json"
                tasks.append(
                    MethodTask(method, str(estimates_dir) if estimates_dir else None, str(json_path))
                )
            if not tasks:
                continue
            job = SongJob(song.spec, tuple(tasks))
            if executor is None:
                collect(score_song(job))
            else:
                futures.append(executor.submit(score_song, job))
        for future in as_completed(futures):
            collect(future.result())
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(cancel_futures=True)

    record_conditioning(out_dir, subset, {sr.track: sr.condition for sr in song_results})
    record_song_checks(out_dir, subset, checks)
    errors = [" ".join(r.error.split()) for r in results if not r.ok]  # one line per failure
    notes = sorted({note for r in results for note in r.notes})
    method_list = [m.name for m in methods]
    names = [n for n in names if n not in refused]
    table = aggregate(out_dir, subset=subset, methods=method_list, tracks=names)
    per_track = track_table(out_dir, subset=subset, methods=method_list, tracks=names)
    if not table.empty:
        table.to_csv(out_dir / "results.csv", index=False)
        per_track.to_csv(out_dir / "tracks.csv", index=False)
        (out_dir / "results.md").write_text(format_markdown(table) + "\n")
    (out_dir / "errors.txt").write_text("".join(f"{line}\n" for line in errors))
    if notes:
        (out_dir / "notes.txt").write_text("\n".join(notes) + "\n")
    table.attrs["errors"] = errors
    table.attrs["notes"] = notes
    table.attrs["scored"] = sum(r.ok for r in results)
    timings = [
        {"track": r.track, "method": r.task.method.name, "seconds": r.seconds, "ok": r.ok} for r in results
    ] + [
        {
            "track": sr.track,
            "method": "(shared)",
            "seconds": sr.shared_seconds,
            "peak_rss_mb": sr.peak_rss_mb,
            "audio_s": sr.audio_s,
        }
        for sr in song_results
    ]
    table.attrs["timings"] = timings
    if timings:
        pd.DataFrame(timings).to_csv(out_dir / "timings.csv", index=False)
    return table


def _write_methods(
    out_dir: Path, methods: list[Method], root: Path, subset: str, targets, cache_dir: Path
) -> None:
    record = {
        "dataset": str(root),
        "subset": subset,
        "targets": list(targets),
        "cache_dir": str(cache_dir.resolve()),
        "methods": {m.name: {**asdict(m), "cache_key": m.cache_key} for m in methods},
    }
    previous = out_dir / "methods.json"
    if previous.is_file():  # keep methods of earlier runs into the same folder
        try:
            old = json.loads(previous.read_text())
            record["methods"] = {**old.get("methods", {}), **record["methods"]}
        except ValueError:
            pass
    previous.write_text(json.dumps(record, indent=2))


#: MUSDB18's test set: 50 songs, about 3.5 hours of audio (12,710 s; SiSEC 2018).
MUSDB_TEST_SONGS: int = 50
MUSDB_TEST_SECONDS: float = 12710.0


def musdb_test_estimate(timings: Sequence[dict], jobs: int) -> str | None:
    """One line: how long scoring these methods on the whole MUSDB18 test set would take at this pace
    (scoring time per second of audio measured on this run's songs; separation not included)."""
    scored = [t for t in timings if t.get("method") != "(shared)" and t.get("ok")]
    scored_songs = {t["track"] for t in scored}  # refused and failed songs say nothing about the pace
    songs = {t["track"]: t for t in timings if t.get("method") == "(shared)" and t["track"] in scored_songs}
    if not songs or not scored:
        return None
    seconds = sum(t["seconds"] for t in scored) + sum(t["seconds"] for t in songs.values())
    audio_s = sum(t.get("audio_s", 0.0) for t in songs.values())
    if audio_s <= 0:
        return None
    methods = len({t["method"] for t in scored})
    total_h = seconds / audio_s * MUSDB_TEST_SECONDS / max(1, jobs) / 3600.0
    peak = max(t.get("peak_rss_mb", 0.0) for t in songs.values())
    return (
        f"scoring pace: {seconds / audio_s:.3f} s per second of audio for {methods} method(s); "
        f"the MUSDB18 test set ({MUSDB_TEST_SONGS} songs, {MUSDB_TEST_SECONDS / 3600:.1f} h) would take about "
        f"{total_h:.1f} h at --jobs {jobs} (peak {peak:.0f} MB per scoring process)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="model checkpoint (repeat for several; default: the committed checkpoints/unet.pt and demucs.pt)",
    )
    parser.add_argument("--oracles-only", action="store_true", help="score only the baselines, no model")
    parser.add_argument(
        "--dataset",
        default="default",
        help="dataset root (MUSDB18, MUSDB18-HQ layout), 'default', or 'real-clips' (the real MUSDB18 clips at "
        "hand: ../shared/data/musdb-sample and stempeg's clip; their subset is train)",
    )
    parser.add_argument("--subset", default=None, help="test (default), or train for --dataset real-clips")
    parser.add_argument(
        "--targets", nargs="+", default=None, help="targets to score (default: the models' stems)"
    )
    parser.add_argument("--tracks", nargs="+", default=None, help="only these songs")
    parser.add_argument("--jobs", type=int, default=1, help="parallel scoring processes")
    parser.add_argument(
        "--wiener", action="store_true", help="also score each UNet with its Wiener post-filter"
    )
    parser.add_argument(
        "--shifts", type=int, default=0, metavar="N",
        help="also score each model with the shift trick, N shifted separations averaged (N times slower)",
    )  # fmt: skip
    parser.add_argument(
        "--band-limited", action="store_true",
        help="leave the models' estimates empty above their Nyquist frequency (default: full band)",
    )  # fmt: skip
    parser.add_argument("--no-oracles", action="store_true", help="skip the IRM1/IRM2/MIX baselines")
    parser.add_argument(
        "--oracles", nargs="+", default=list(ORACLES), choices=ORACLES, help="baselines to score"
    )
    parser.add_argument("--cache-dir", default=None, help="separated-audio cache (default: OUT/.cache)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    checkpoints = list(args.checkpoint)
    if not checkpoints and not args.oracles_only:
        from mss.checkpoint import DEFAULT_CHECKPOINTS

        checkpoints = [str(path) for path in DEFAULT_CHECKPOINTS.values() if path.is_file()]
        if not checkpoints:
            print(
                "error: no --checkpoint given and no default checkpoint in checkpoints/; "
                "pass --checkpoint PATH (or --oracles-only)",
                file=sys.stderr,
            )
            return 2
    subset = args.subset or ("train" if args.dataset == REAL_CLIPS else "test")
    try:
        table = evaluate(
            checkpoints, args.dataset, subset, args.targets, args.jobs,
            out_dir=args.out, oracles=() if args.no_oracles else tuple(args.oracles), cache_dir=args.cache_dir,
            wiener=args.wiener, shifts=args.shifts, full_band=not args.band_limited, device=args.device,
            tracks=args.tracks,
        )  # fmt: skip
    except MSSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in table.attrs["notes"]:
        print(f"note: {note}")
    print(format_markdown(table) if not table.empty else "no scores")
    print(f"\nwritten: {Path(args.out) / 'results.csv'}, results.md, tracks.csv, timings.csv")
    estimate = musdb_test_estimate(table.attrs.get("timings", []), args.jobs)
    if estimate:
        print(estimate)
    if table.attrs["errors"]:
        print(
            f"\n{len(table.attrs['errors'])} (method, song) score(s) failed or refused "
            f"(see {Path(args.out) / 'errors.txt'}):",
            file=sys.stderr,
        )
        for error in table.attrs["errors"]:
            print("  " + error.splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
