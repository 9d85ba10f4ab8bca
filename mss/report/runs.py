"""The report's Training section: curves, budget curves, one summary row per run, the curriculum ablation.

Run folders are read only through ``training.run_folder``: its rules for metrics.jsonl (only a torn last
line is skipped) and config.json, and the epoch best.pt holds as the training loop recorded it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mss.report.figures import ablation_plot, budget_curves, training_curves
from mss.report.page import Report
from training.config import TrainConfig
from training.run_folder import RunFolder, best_epoch, record_of
from training.run_folder import read_run as read_run_folder

#: Config keys that may differ between the two runs of an ablation pair besides ``curriculum``.
IGNORED_CONFIG_KEYS = frozenset(
    {"curriculum", "seed", "device", "threads", "num_workers", "out", "out_dir", "resume"}
)


def read_run(run_dir: str | Path) -> tuple[list[dict], dict]:
    """metrics.jsonl rows and the TrainConfig fields of a run folder (empty when absent; ValueError or
    OSError when unreadable), as training.run_folder reads them."""
    folder = read_run_folder(run_dir)
    return folder.history, folder.config


def training_section(report: Report, runs: Sequence[Path]) -> None:
    report.heading("Training")
    loaded = _load_runs(report, runs)
    if not loaded:
        report.note("No training runs given (--runs); curves and the curriculum ablation are omitted.")
        return
    histories = {name: run.history for name, run in loaded.items()}
    path = training_curves(histories, report.out_dir / "training_curves.png")
    report.image(path, "training curves")
    best_epochs = {name: run.best_epoch for name, run in loaded.items()}
    path = budget_curves(histories, best_epochs, report.out_dir / "budget_curves.png")
    report.text(
        "The verdict against the budget: validation SDR (solid) and real-clip SDR (dotted) against training "
        "steps and against the CPU time of the training process; the star marks the epoch best.pt holds."
    )
    report.image(path, "SDR against steps and CPU hours")
    rows = [run_summary(name, run.history, run.config) for name, run in loaded.items()]
    report.table(pd.DataFrame(rows))
    ablation_section(report, loaded)


def _load_runs(report: Report, runs: Sequence[Path]) -> dict[str, RunFolder]:
    """The readable runs with metrics rows, by label; the others are named in a note and left out."""
    loaded: dict[str, RunFolder] = {}
    for run in runs:
        try:
            folder = read_run_folder(run)
        except (OSError, ValueError) as exc:
            report.note(f"{run}: cannot read the run ({exc}); run left out.")
            continue
        if not folder.history:
            report.note(f"{run}: no metrics.jsonl records; run left out.")
            continue
        loaded[_run_label(Path(run), loaded)] = folder
    return loaded


def _run_label(run: Path, taken: dict) -> str:
    label = run.name
    return label if label not in taken else f"{run.parent.name}/{run.name}"


def run_summary(name: str, history: list[dict], config: dict) -> dict:
    """A run's summary. "best" is the epoch best.pt holds (training.run_folder.best_epoch) and "real
    clips" the real MUSDB18 clips' mean SDR (mss.data.real_clips) at that epoch: chosen on the validation
    songs, not on the clips."""
    scored = [v for r in history if (v := (r.get("valid_sdr") or {}).get("mean")) is not None]
    best = record_of(history, best_epoch(history, tuple(config.get("targets") or ()))) or {}
    return {
        "run": name,
        "model": config.get("model", "?"),
        "targets": ",".join(config.get("targets") or []) or "?",
        "curriculum": {True: "on", False: "off"}.get(config.get("curriculum"), "?"),
        "epochs": history[-1].get("epoch"),
        "final train loss": history[-1].get("train_loss", np.nan),
        "final valid SDR": scored[-1] if scored else np.nan,
        "best valid SDR": (best.get("valid_sdr") or {}).get("mean", np.nan),
        "real clips SDR": (best.get("real_sdr") or {}).get("mean", np.nan),
        "steps": history[-1].get("step"),
        "hours": history[-1].get("elapsed_s", np.nan) / 3600.0,
        "CPU hours": history[-1].get("cpu_s", np.nan) / 3600.0,
    }


def ablation_section(report: Report, loaded: dict[str, RunFolder]) -> None:
    """Pairs of runs whose config.json differ only by ``curriculum``."""
    report.heading("Curriculum ablation")
    pairs = _curriculum_pairs(loaded)
    if not pairs:
        report.note(
            "No pair of runs differs only by the curriculum setting; train the same model with --curriculum on and "
            "--curriculum off and pass both folders to --runs."
        )
        return
    rows = []
    for label, runs in pairs.items():
        on, off = (
            run_summary(name, history, loaded[name].config) for name, history in (runs[True], runs[False])
        )
        rows.append(
            {
                "pair (on / off)": label,
                "best SDR on": on["best valid SDR"],
                "best SDR off": off["best valid SDR"],
                "gain (on - off)": on["best valid SDR"] - off["best valid SDR"],
                "final SDR on": on["final valid SDR"],
                "final SDR off": off["final valid SDR"],
                "real clips on": on["real clips SDR"],
                "real clips off": off["real clips SDR"],
            }
        )
    report.table(pd.DataFrame(rows))
    path = ablation_plot(
        {label: {flag: runs[flag][1] for flag in runs} for label, runs in pairs.items()},
        report.out_dir / "ablation.png",
    )
    report.image(path, "curriculum ablation")


def _curriculum_pairs(loaded: dict[str, RunFolder]) -> dict[str, dict[bool, tuple[str, list[dict]]]]:
    """Runs alike but for the curriculum: {"on-run / off-run": {curriculum: (run label, history)}}."""
    groups: dict[str, dict[bool, tuple[str, list[dict]]]] = {}
    defaults = TrainConfig().to_dict()  # a field a run's config.json predates had its default value
    for name, run in loaded.items():
        if "curriculum" not in run.config:
            continue
        config = defaults | run.config
        key = json.dumps({k: v for k, v in config.items() if k not in IGNORED_CONFIG_KEYS}, sort_keys=True)
        groups.setdefault(key, {})[bool(run.config["curriculum"])] = (name, run.history)
    return {f"{runs[True][0]} / {runs[False][0]}": runs for runs in groups.values() if len(runs) == 2}
