"""What ``python -m mss.bench.level``, ``mss.bench.stereo`` and ``mss.bench.chunk`` share: play each song under
several *conditions* (level and stereo: a linear change of the mixture and of every reference alike, a gain or
a narrower stereo image; chunk: the separation's chunk length), separate, and score as ``mss.evaluate``
scores; one command line for the three (``sweep_main``).

A condition is a name and a function ``audio (..., C, T) -> (..., C, T)`` applied to the mixture ``(C, T)`` and
to the references ``(S, C, T)``; being linear, it keeps the mixture the sum of its references. The scores are
museval SDR (BSS Eval v4, median over 1-s frames per song, at 44.1 kHz). Which sources are scored is decided
once per song, on the song as it is, so a quiet target is scored under every condition or under none.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mss import shifts_arg, wiener_arg
from mss.checkpoint import DEFAULT_CHECKPOINTS
from mss.data import SongDataset, open_db
from mss.data.real_clips import label, lacking_stems, load_real_clips
from mss.data.songs import Song
from mss.errors import AudioError, CheckpointError, DatasetError
from mss.evaluation.bsseval import evaluate_arrays
from mss.evaluation.methods import load_checkpoint_model
from mss.evaluation.scoring import RESIDUAL, ScoredSources, dither, reference_reader, scored_sources
from mss.evaluation.tables import format_markdown
from mss.precision import resolve_precision
from mss.separate import separate, with_wiener

Condition = tuple[str, Callable[[np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class _ArraySong:
    """A song held in memory, read as ``mss.evaluation.scoring`` reads a ``SongAudio``: the scored sources
    (silent targets dropped, the residual added when the targets do not cover the mixture) are the pipeline's."""

    targets: tuple[str, ...]
    mix: np.ndarray  # (C, T)
    refs: np.ndarray  # (S, C, T)

    @property
    def length(self) -> int:
        return self.mix.shape[-1]

    def mixture(self, start: int, stop: int) -> np.ndarray:
        return self.mix[:, start:stop]

    def references(self, start: int, stop: int) -> np.ndarray:
        return self.refs[:, :, start:stop]


def song_sources(song: Song) -> ScoredSources:
    """Which of ``song``'s sources ``mss.evaluate`` would score (silent targets dropped, the residual added)."""
    return scored_sources(_ArraySong(tuple(song.target_names), song.mix, song.targets))


def score_song(
    song: Song, estimates: dict[str, np.ndarray], sources: ScoredSources | None = None
) -> dict[str, float]:
    """{target: museval SDR (median over 1-s frames)} of one song's estimates, scored as ``mss.evaluate``
    scores them: a target silent throughout gets NaN; a piano (or any target set short of the four stems)
    is scored beside the residual, mixture minus targets; an all-zero estimate becomes the -160 dB dither.
    ``sources``: which sources to score (default: ``song_sources`` of this song)."""
    audio = _ArraySong(tuple(song.target_names), song.mix, song.targets)
    sources = scored_sources(audio) if sources is None else sources
    sdr = dict.fromkeys(song.target_names, float("nan"))
    if not sources.names:
        return sdr
    references = reference_reader(audio, sources)(0, audio.length)  # (S', C, T)
    rows = [estimates[song.target_names[row]] for row in sources.rows]
    if sources.residual:
        rows.append(song.mix - sum(estimates.values()))
    stacked = np.stack(rows).astype(np.float64)  # (S', C, T)
    for index in np.flatnonzero(~stacked.any(axis=(1, 2))):
        stacked[index] = dither(int(index), 0, audio.length, stacked.shape[1])
    scores = evaluate_arrays(references, stacked)
    for name, frames in zip(sources.names, scores.sdr, strict=True):
        if name != RESIDUAL:
            sdr[name] = float(np.nanmedian(frames)) if np.isfinite(frames).any() else float("nan")
    return sdr


def sweep(
    model, songs: Sequence[Song], conditions: Sequence[Condition], shifts: int | None = None
) -> pd.DataFrame:
    """Separate every song under every condition; one row per (song, condition, target) with its ``sdr``
    (dB, :func:`score_song`). Songs are 44.1 kHz ``Song`` objects whose ``target_names`` are the model's."""
    rows = []
    for song in songs:
        sources = song_sources(song)
        for name, change in conditions:
            changed = Song(
                song.name,
                np.ascontiguousarray(change(song.mix), dtype=np.float32),
                np.ascontiguousarray(change(song.targets), dtype=np.float32),
                song.sample_rate,
                song.target_names,
            )
            estimates = separate(model, changed.mix, song.sample_rate, shifts=shifts)
            for target, sdr in score_song(changed, estimates, sources).items():
                rows.append({"song": song.name, "condition": name, "target": target, "sdr": sdr})
    return pd.DataFrame(rows, columns=["song", "condition", "target", "sdr"])


def summarise(frame: pd.DataFrame, column: str = "condition") -> pd.DataFrame:
    """Rows: each value of ``column`` in order of appearance (median over songs per target, as the museval
    tables, and their ``average``), then ``spread``: max - min over the rows of each column (NaN where a row
    has no score: a target silent in every song)."""
    targets = list(dict.fromkeys(frame["target"]))  # the model's order
    order = list(dict.fromkeys(frame[column]))
    table = frame.pivot_table(index=column, columns="target", values="sdr", aggfunc="median", dropna=False)
    table = table.reindex(index=order, columns=targets)  # a target never scored stays, as NaN
    table["average"] = table.mean(axis=1)
    table.loc["spread"] = (table.max() - table.min()).where(table.notna().all())
    return table


def load_songs(dataset: str, targets: tuple[str, ...], count: int, seconds: float) -> list[Song]:
    """The first ``count`` songs of ``dataset`` (``real-clips``, ``default`` or a MUSDB18 root's test songs)
    with ``targets``, their first ``seconds`` (44.1 kHz)."""
    if dataset == "real-clips":
        missing = lacking_stems(targets)
        if missing:
            raise DatasetError(
                f"MUSDB18 stem files have no {', '.join(missing)} stem: use --dataset default or ROOT"
            )
        songs = load_real_clips(targets, 44100)
        if not songs:
            raise DatasetError(
                "no real MUSDB18 clip at hand (set MSS_REAL_CLIPS): use --dataset default or ROOT"
            )
        end = int(seconds * 44100)
        return [Song(label(s.name), s.mix[..., :end], s.targets[..., :end], s.sample_rate, s.target_names)
                for s in songs[:count]]  # fmt: skip
    root = None if dataset == "default" else dataset
    songs = SongDataset(open_db(root, subset="test"), targets, sample_rate=None, max_seconds=seconds)
    if len(songs) == 0:
        raise DatasetError(f"{dataset}: no test songs")
    return [songs[i] for i in range(min(count, len(songs)))]


def seconds_arg(text: str) -> float:
    """The argparse ``type`` of the benchmarks' ``--seconds``: a finite number of seconds > 0 (``inf`` would reach
    ``int()`` when the songs are cut)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def sweep_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every sweep benchmark takes: ``--checkpoint`` (repeatable), ``--dataset``, ``--songs``,
    ``--seconds``, ``--shifts``, ``--wiener`` and ``--json``; the caller adds its conditions' option."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--checkpoint", action="append", default=[], help="repeatable; default: the committed 4-stem ones"
    )
    parser.add_argument(
        "--dataset", default="real-clips", help="real-clips (default) | default | a MUSDB18 root"
    )
    parser.add_argument("--songs", type=int, default=3, help="at most this many songs")
    parser.add_argument("--seconds", type=seconds_arg, default=30.0, help="first seconds of each song")
    parser.add_argument(
        "--shifts", type=shifts_arg, default=None,
        help="shifted separations averaged (0: one plain pass; default: each checkpoint's own)",
    )  # fmt: skip
    parser.add_argument(
        "--wiener", type=wiener_arg, default=None, metavar="N",
        help="EM iterations of the Wiener post-filter (0: none; default: each checkpoint's own)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the per-song figures here")
    return parser


def _settings_text(settings: dict) -> str:
    """``shifts: 2; wiener: 1; precision: bf16``: how a sweep's checkpoint separated."""
    names = {"shifts": "shifts", "wiener_iterations": "wiener", "precision": "precision"}
    return "; ".join(f"{names[key]}: {value}" for key, value in settings.items())


def run_sweeps(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    table: Callable[[object, list[Song]], tuple[pd.DataFrame, pd.DataFrame]],
    check_model: Callable[[object], None] | None = None,
) -> int:
    """Score each checkpoint of ``args`` (parsed by a :func:`sweep_parser`): ``table(model, songs)`` ->
    ``(per-song frame, summary table)``; the summary is printed as markdown, the frames go to ``--json``.
    ``check_model`` raises ``CheckpointError`` for a model the benchmark cannot score. A checkpoint or dataset
    that cannot be read ends the run with its path and the reason (exit status 2)."""
    if args.songs < 1:
        parser.error(f"--songs must be >= 1 (got {args.songs})")
    checkpoints = args.checkpoint or [str(p) for p in DEFAULT_CHECKPOINTS.values()]
    precision = resolve_precision("auto")  # what separate() runs the models in on this machine
    records = {}
    for path in checkpoints:
        try:
            model = with_wiener(load_checkpoint_model(path), args.wiener).eval()
            if check_model is not None:
                check_model(model)
            songs = load_songs(args.dataset, tuple(model.sources), args.songs, args.seconds)
        except (CheckpointError, DatasetError, AudioError) as exc:
            parser.exit(2, f"error: {path}: {exc}\n")
        frame, summary = table(model, songs)
        shifts = model.shifts if args.shifts is None else args.shifts
        settings = {"shifts": shifts, "wiener_iterations": model.wiener_iterations, "precision": precision}
        print(
            f"\n{path} (songs: {', '.join(s.name for s in songs)}; {_settings_text(settings)}), museval SDR in dB"
        )
        print(format_markdown(summary))
        records[path] = frame.assign(**settings).to_dict(orient="records")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 0


def sweep_main(
    argv: Sequence[str] | None,
    prog: str,
    description: str,
    option: tuple[str, str, str],
    parse: Callable[[str], list],
    frame_of: Callable[[object, list[Song], list, argparse.Namespace], pd.DataFrame],
    index: str,
    summary: Callable[[pd.DataFrame], pd.DataFrame] = summarise,
    add_options: Callable[[argparse.ArgumentParser], None] | None = None,
    check_model: Callable[[object], None] | None = None,
) -> int:
    """The whole command line of a sweep benchmark: :func:`sweep_parser`'s options, the benchmark's own
    ``option`` (flag, default, help) parsed by ``parse`` (ValueError -> a usage error naming it) and any
    ``add_options``; then for each checkpoint ``frame_of(model, songs, values, args)`` -> the per-song frame and
    ``summary(frame)`` -> the table (default :func:`summarise`), its first column headed ``index``
    (:func:`run_sweeps`)."""
    parser = sweep_parser(prog, description)
    flag, default, help_text = option
    action = parser.add_argument(flag, default=default, help=help_text)
    if add_options is not None:
        add_options(parser)
    args = parser.parse_args(argv)
    try:
        values = parse(getattr(args, action.dest))
    except ValueError as exc:
        parser.error(str(exc))

    def table(model, songs):
        frame = frame_of(model, songs, values, args)
        return frame, summary(frame).rename_axis(index).reset_index()

    return run_sweeps(parser, args, table, check_model=check_model)
