"""The comparison report: spectrogram (UNet) vs waveform (Demucs) separation, as one offline HTML page.

    python -m mss.report --eval eval --runs runs/unet runs/demucs [--bench bench.json] --out report

Reads an evaluation folder written by ``mss.evaluate`` (museval JSON, methods.json, the separated-audio
cache), training run folders (``metrics.jsonl``, ``config.json``) and ``mss.bench --json`` output, and
writes ``REPORT_DIR/index.html`` with PNG figures beside it. A missing piece is left out with a note.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mss import MUSDB_SAMPLE_RATE
from mss.audio import load_audio
from mss.data.real_clips import KNOWN_TEST_SET_SONGS
from mss.data.real_clips import label as clip_label
from mss.errors import MSSError
from mss.evaluation import load_song
from mss.evaluation.tables import FLOOR, aggregate, method_names, sdr_overview, track_table
from mss.report.figures import boxplots, spectrogram_excerpt
from mss.report.page import Report
from mss.report.runs import training_section

#: Length of each spectrogram excerpt (s), centred on the loudest second of the target.
EXCERPT_S: float = 4.0

# ------------------------------------------------------------------------------------------ sections


def load_methods(eval_dir: Path) -> dict:
    path = eval_dir / "methods.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def common_tracks(eval_dir: Path, subset: str, methods: Sequence[str]) -> list[str]:
    """Songs scored for every method (the table compares methods on the same songs)."""
    sets = [{p.stem for p in (eval_dir / m / subset).glob("*.json")} for m in methods]
    return sorted(set.intersection(*sets)) if sets else []


def scores_section(report: Report, eval_dir: Path, info: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    subset = info.get("subset", "test")
    methods = method_names(eval_dir, subset)
    report.heading("Objective scores (museval, BSS Eval v4)")
    if not methods:
        report.note(f"No museval results in {eval_dir}: run python -m mss.evaluate first.")
        return pd.DataFrame(), pd.DataFrame()
    tracks = common_tracks(eval_dir, subset, methods)
    all_tracks = sorted({p.stem for m in methods for p in (eval_dir / m / subset).glob("*.json")})
    if len(tracks) < len(all_tracks):
        report.note(
            f"{len(all_tracks) - len(tracks)} song(s) lack scores for some method; the table uses the {len(tracks)} songs every method has."
        )
    table = aggregate(eval_dir, subset, methods, tracks)
    per_track = track_table(eval_dir, subset, methods, tracks)
    kinds = {name: m.get("kind") for name, m in info.get("methods", {}).items()}
    _summary(report, table, info)
    report.text(
        f"{len(tracks)} {subset} song(s) of {info.get('dataset', '?')}. Median over 1-s frames, then median over songs "
        f"(museval's agg_frames_tracks_scores); 'average' is the mean over targets. SDRi: SDR improvement over the "
        f"mixture used as every estimate (MIX). IRM1/IRM2: ideal ratio masks on magnitude/power computed from the "
        f"true stems (oracle baselines for mask-based separation, STFT 4096/1024; not strict ceilings: a model on "
        f"another grid, or with a Wiener post-filter, can score above them). SIR, SAR and ISR split the error with "
        f"least-squares projections that become ill-conditioned when references are nearly linearly dependent "
        f"(tonal synthetic stems), so they can disagree with SDR there; compare methods on SDR first."
    )
    classes = [
        "average"
        if target == "average"
        else ("oracle" if kinds.get(method) == "oracle" or method in ("IRM1", "IRM2", FLOOR) else "")
        for method, target in zip(table["method"], table["target"], strict=True)
    ]
    overview = sdr_overview(table)
    report.table(overview, ["oracle" if m in ("IRM1", "IRM2", FLOOR) else "" for m in overview["method"]])
    report.text("All metrics per target:")
    report.table(table, classes)
    for metric in ("SDR", "SDRi"):
        if per_track[metric].notna().any():
            path = boxplots(per_track, report.out_dir / f"boxplot_{metric}.png", metric, methods)
            report.image(path, f"{metric} per song and target")
    return table, per_track


def real_clips_section(report: Report, real_dir: Path) -> None:
    """SDR of every method on the real MUSDB18 clips at hand (``mss.evaluate --dataset real-clips``)."""
    report.heading("Real clips (real MUSDB18 songs)")
    info = load_methods(real_dir) if real_dir.is_dir() else {}
    subset = info.get("subset", "train")
    methods = method_names(real_dir, subset) if real_dir.is_dir() else []
    if not methods:
        report.note(
            f"No scores in {real_dir}: run python -m mss.evaluate --dataset real-clips --out {real_dir} first."
        )
        return
    tracks = common_tracks(real_dir, subset, methods)
    table = aggregate(real_dir, subset, methods, tracks)
    test_songs = [t for t in tracks if t in KNOWN_TEST_SET_SONGS]
    clips = "this real MUSDB18 clip" if len(tracks) == 1 else f"these {len(tracks)} real MUSDB18 clips"
    report.text(
        f"The models were trained on generated audio only; {clips} "
        f"({', '.join(clip_label(t) for t in tracks)}) {'was' if len(tracks) == 1 else 'were'} never trained on "
        "(checkpoints/README.md says which adoption rules checked the train clip: not an independent test). "
        "Same BSS Eval v4 scoring as above, at 44.1 kHz. SIR/SAR/ISR are not valid (AAC-coded stems: the "
        "projection is ill-conditioned); SDR is."
        + (
            f" {len(test_songs)} of them belong to MUSDB18's test subset: a figure to report, never to tune on."
            if test_songs
            else ""
        )
    )
    overview = sdr_overview(table)
    report.table(overview, ["oracle" if m in ("IRM1", "IRM2", FLOOR) else "" for m in overview["method"]])


def _own_rows(info: dict) -> dict:
    """The methods.json entries of each model's own separation (its defaults), not its variants: ``variant_of``
    names a variant's model; in folders written before it, a variant is a row named after another row of the
    same checkpoint (``unet-wiener``, ``unet-shifts4`` beside ``unet``)."""
    methods = info.get("methods", {})

    def own(name: str, meta: dict) -> bool:
        if "variant_of" in meta:
            return meta["variant_of"] is None
        return not any(
            other != name
            and name.startswith(other + "-")
            and row.get("checkpoint_hash") == meta.get("checkpoint_hash")
            for other, row in methods.items()
        )

    return {name: meta for name, meta in methods.items() if meta.get("kind") == "model" and own(name, meta)}


def _summary(report: Report, table: pd.DataFrame, info: dict) -> None:
    """One sentence answering the research question from the average rows."""
    average = table[table["target"] == "average"].set_index("method")["SDR"]
    by_arch = {}
    for name, meta in _own_rows(info).items():
        if name in average.index:
            by_arch.setdefault(meta.get("arch"), []).append((average[name], name))
    if "unet" in by_arch and "demucs" in by_arch:
        unet, demucs = max(by_arch["unet"]), max(by_arch["demucs"])
        winner = "the waveform model (Demucs)" if demucs[0] > unet[0] else "the spectrogram model (UNet)"
        report.text(
            f"Spectrogram vs waveform: {unet[1]} averages {unet[0]:.2f} dB SDR, {demucs[1]} {demucs[0]:.2f} dB; "
            f"{winner} is ahead by {abs(demucs[0] - unet[0]):.2f} dB on these songs.",
            "summary",
        )


def spectrogram_section(
    report: Report, eval_dir: Path, info: dict, excerpts: int, targets: Sequence[str] | None
) -> None:
    report.heading("Spectrograms of excerpts")
    models = {
        n: m for n, m in info.get("methods", {}).items() if m.get("kind") == "model" and m.get("cache_key")
    }
    if not models or "dataset" not in info:
        report.note("No separated audio to show (no model was evaluated, or methods.json is missing).")
        return
    cache = Path(info.get("cache_dir", eval_dir / ".cache"))
    subset = info.get("subset", "test")
    targets = list(targets or info.get("targets", [])[:1])
    songs = sorted(
        {
            p.parent.name
            for name, m in models.items()
            for p in (cache / m["cache_key"] / subset).glob("*/complete.json")
        }
    )
    shown = 0
    for song in songs:
        if shown >= excerpts:
            break
        dirs = {name: cache / m["cache_key"] / subset / song for name, m in models.items()}
        if not all((d / "complete.json").is_file() for d in dirs.values()):
            continue
        try:
            mixture, references = load_song(info["dataset"], subset, song, targets)
        except (MSSError, OSError) as exc:
            report.note(f"{song}: cannot read the references ({exc}); excerpt skipped.")
            continue
        for target, reference in zip(targets, references, strict=True):
            _excerpt(report, song, target, mixture, reference, dirs)
        shown += 1
    if shown == 0:
        report.note("The audio cache of the evaluation is missing or incomplete; no excerpt shown.")


def _excerpt(
    report: Report, song: str, target: str, mixture: np.ndarray, reference: np.ndarray, dirs: dict[str, Path]
) -> None:
    """One excerpt's figure: mixture (C, T), reference (C, T), and each model's estimate and error, read
    from its separated-audio folder in ``dirs``."""
    start, end = _loudest_excerpt(reference, MUSDB_SAMPLE_RATE)
    panels = [("mixture", mixture), (f"reference {target}", reference)]
    for name, folder in dirs.items():
        estimate = load_audio(folder / f"{target}.wav")[0][:, : reference.shape[-1]]
        estimate = np.pad(estimate, [(0, 0), (0, reference.shape[-1] - estimate.shape[-1])])
        panels += [
            (f"{name} estimate", estimate),
            (f"{name} error (estimate - reference)", estimate - reference),
        ]
    safe = "".join(c if c.isalnum() else "_" for c in f"{song}_{target}")
    path = spectrogram_excerpt(panels, MUSDB_SAMPLE_RATE, start, end, report.out_dir / f"spec_{safe}.png")
    report.text(
        f"{song}, {target}, {start:.1f}-{end:.1f} s (log frequency, dB, one colour scale for all panels)."
    )
    report.image(path, f"spectrograms {song} {target}")


def _loudest_excerpt(reference: np.ndarray, rate: int) -> tuple[float, float]:
    """(start_s, end_s) of EXCERPT_S seconds centred on the loudest second of reference (C, T)."""
    duration = reference.shape[-1] / rate
    if duration <= EXCERPT_S:
        return 0.0, duration
    seconds = int(duration)
    energy = [float(np.mean(reference[:, i * rate : (i + 1) * rate] ** 2)) for i in range(seconds)]
    centre = int(np.argmax(energy)) + 0.5
    start = min(max(centre - EXCERPT_S / 2, 0.0), duration - EXCERPT_S)
    return start, start + EXCERPT_S


def cost_section(report: Report, info: dict, bench: Path | None) -> None:
    report.heading("Model size and speed")
    models = list(_own_rows(info).items())
    if models:
        rows = [
            {"method": n, "architecture": m.get("arch"), "parameters": f"{m.get('parameters', 0):,}",
             "sample rate (Hz)": m.get("sample_rate"), "checkpoint": Path(m.get("checkpoint") or "?").name}
            for n, m in models
        ]  # fmt: skip
        report.table(pd.DataFrame(rows))
    else:
        report.note("No model checkpoints in this evaluation; parameter counts omitted.")
    if bench is None:
        report.note("No benchmark given (--bench FILE from python -m mss.bench --json); speed omitted.")
        return
    try:
        data = json.loads(Path(bench).read_text())
    except (OSError, ValueError) as exc:
        report.note(f"cannot read the benchmark {bench}: {exc}")
        return
    frame = _bench_frame(data)
    if frame.empty:
        report.note(f"{bench} holds no benchmark rows.")
    else:
        report.table(frame, digits=3)


def _bench_frame(data) -> pd.DataFrame:
    """mss.bench JSON (a list of rows, or a dict holding one, or a dict of rows by model) -> table."""
    if isinstance(data, dict):
        lists = [
            v for v in data.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
        ]
        if lists:
            data = lists[0]
        elif all(isinstance(v, dict) for v in data.values()):
            data = [{"model": k, **v} for k, v in data.items()]
        else:
            data = [data]
    if not isinstance(data, list):
        return pd.DataFrame()
    rows = [
        {k: v for k, v in row.items() if not isinstance(v, dict | list)}
        for row in data
        if isinstance(row, dict)
    ]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ entry point


def build_report(
    eval_dir: str | Path,
    out_dir: str | Path,
    runs: Sequence[str | Path] = (),
    bench: str | Path | None = None,
    excerpts: int = 2,
    targets: Sequence[str] | None = None,
    real_eval: str | Path | None = None,
) -> Path:
    """Write ``out_dir/index.html`` (+ PNGs) and return its path."""
    eval_dir, out_dir = Path(eval_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(out_dir)
    info = load_methods(eval_dir) if eval_dir.is_dir() else {}
    if not eval_dir.is_dir():
        report.note(f"Evaluation folder {eval_dir} not found: scores and spectrograms omitted.")
    else:
        scores_section(report, eval_dir, info)
        spectrogram_section(report, eval_dir, info, excerpts, targets)
    if real_eval is not None:
        real_clips_section(report, Path(real_eval))
    training_section(report, [Path(r) for r in runs])
    cost_section(report, info, Path(bench) if bench else None)
    return report.write("Music source separation: spectrogram (UNet) vs waveform (Demucs)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", required=True, help="folder written by python -m mss.evaluate")
    parser.add_argument(
        "--runs", nargs="*", default=[], help="training run folders (metrics.jsonl, config.json)"
    )
    parser.add_argument("--bench", default=None, help="JSON written by python -m mss.bench --json")
    parser.add_argument(
        "--real-eval", default=None, help="folder written by python -m mss.evaluate --dataset real-clips"
    )
    parser.add_argument("--excerpts", type=int, default=2, help="songs shown as spectrograms")
    parser.add_argument(
        "--targets", nargs="+", default=None, help="targets shown as spectrograms (default: first)"
    )
    parser.add_argument("--out", required=True, help="report folder (index.html + PNGs)")
    args = parser.parse_args(argv)
    path = build_report(
        args.eval, args.out, args.runs, args.bench, args.excerpts, args.targets, real_eval=args.real_eval
    )
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
