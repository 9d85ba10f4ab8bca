"""training.run_folder reads the folder a real (tiny) training run wrote: its rows, config and best epoch;
the report reads runs through it; the run leaves the process's torch settings as they were."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import read_metrics, tiny_args

from mss.checkpoint import load_checkpoint
from mss.report import build_report, run_summary
from training.process import torch_threads
from training.run import main
from training.run_folder import BEST_EPOCH_KEY, best_epoch, derive_best_epoch, read_run
from training.validation import best_criterion


@pytest.fixture(scope="module")
def real_run(tiny_dataset, tmp_path_factory) -> dict:
    """A 3-epoch run of the tiny UNet (2 steps per epoch), and torch's settings around it."""
    out = tmp_path_factory.mktemp("run-folder") / "unet"
    with torch_threads(3):  # not the run's 1 thread: the test sees whether the run restores it
        before = (torch.get_num_threads(), torch.get_rng_state())
        assert main(tiny_args(tiny_dataset, out, "unet", 3)) == 0
        after = (torch.get_num_threads(), torch.get_rng_state())
    return {"out": out, "before": before, "after": after}


def test_a_real_run_is_read_with_the_epoch_best_pt_holds(real_run):
    out = real_run["out"]
    folder = read_run(out)
    best = load_checkpoint(out / "best.pt")
    assert folder.history == read_metrics(out) and [r["epoch"] for r in folder.history] == [1, 2, 3]
    assert folder.config["model"] == "unet" and folder.targets == ("vocals", "drums", "bass", "other")
    assert all(BEST_EPOCH_KEY in row for row in folder.history)  # recorded by the loop, every epoch
    assert folder.best_epoch == best["epoch"] and folder.best_record == best["metrics"]
    assert load_checkpoint(out / "last.pt")["best"] == list(
        best_criterion(folder.best_record, folder.targets)
    )


def test_only_a_torn_last_line_is_skipped(real_run, tmp_path):
    copy = Path(shutil.copytree(real_run["out"], tmp_path / "run"))
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    (copy / "metrics.jsonl").write_text("\n".join(lines) + '\n{"epoch": 4, "st')  # killed mid-append
    assert read_run(copy).history == read_run(real_run["out"]).history
    (copy / "metrics.jsonl").write_text("\n".join([lines[0], '{"epoch": 2, "st', *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_run(copy)
    page = build_report(tmp_path / "no-eval", tmp_path / "report", runs=[copy]).read_text()
    assert "cannot read the run" in page and "line 2 is not JSON" in page  # named, not half-read


def test_rows_without_the_record_are_ranked_by_the_loops_rule(real_run, tmp_path):
    """Run folders of versions before ``best_epoch``: derived with best_criterion, as the loop chose."""
    folder = read_run(real_run["out"])
    copy = Path(shutil.copytree(real_run["out"], tmp_path / "old"))
    old_rows = [{k: v for k, v in row.items() if k != BEST_EPOCH_KEY} for row in folder.history]
    (copy / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in old_rows))
    assert read_run(copy).best_epoch == folder.best_epoch == derive_best_epoch(folder.history, folder.targets)
    # the record wins over a re-derivation (best.pt of a resumed run can hold a lower-scoring epoch)
    recorded = [*folder.history[:-1], {**folder.history[-1], BEST_EPOCH_KEY: 1}]
    assert best_epoch(recorded, folder.targets) == 1
    # any leading part of the rows: the epoch best.pt held then
    assert best_epoch(folder.history[:1], folder.targets) == 1


def test_the_report_gives_the_epoch_best_pt_holds(real_run, tmp_path):
    out = real_run["out"]
    folder, best = read_run(out), load_checkpoint(out / "best.pt")
    row = run_summary("unet", folder.history, folder.config)
    assert row["best valid SDR"] == best["metrics"]["valid_sdr"]["mean"]
    assert row["epochs"] == 3 and row["model"] == "unet"
    page = build_report(tmp_path / "no-eval", tmp_path / "report", runs=[out]).read_text()
    assert f"<td>{best['metrics']['valid_sdr']['mean']:.2f}</td>" in page and "budget_curves.png" in page


def test_training_leaves_the_process_as_it_was(real_run):
    threads, generator = real_run["before"]
    assert real_run["after"][0] == threads == 3
    assert torch.equal(real_run["after"][1], generator)
