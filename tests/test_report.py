"""mss.report renders a self-contained HTML page from an evaluation folder, run folders and a bench JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers import make_tiny_checkpoints
from PIL import Image

import mss.evaluation as ev
from mss.report import build_report, main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _checkpoints(folder: Path) -> list[Path]:
    return list(make_tiny_checkpoints(folder).values())


def _run(folder: Path, model: str, curriculum: bool, slope: float) -> Path:
    """A run folder as training.run wrote it before metrics rows named their ``best_epoch`` (config.json +
    metrics.jsonl records): the report derives the best epoch with the training loop's rule."""
    folder.mkdir(parents=True)
    config = {
        "model": model,
        "curriculum": curriculum,
        "epochs": 3,
        "lr": 1e-3,
        "seed": 0,
        "targets": ["vocals"],
    }
    # training.run nests the TrainConfig fields under "config" (the report once read the top level)
    (folder / "config.json").write_text(json.dumps({"config": config, "dataset": "default", "world_size": 1}))
    records = [
        {"epoch": e, "step": 10 * e, "train_loss": 1.0 / e, "valid_loss": 1.1 / e, "lr": 1e-3, "mix_sources": 2,
         "valid_songs": 1, "valid_sdr": {"vocals": slope * e, "mean": slope * e}, "seconds": 60.0,
         "elapsed_s": 60.0 * e}
        for e in (1, 2, 3)
    ]  # fmt: skip
    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records) + '{"epoch": 4, "trunc'
    )
    return folder


@pytest.fixture(scope="module")
def eval_dir(tiny_dataset, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report-eval")
    from mss.data import open_db

    song = sorted(t.name for t in open_db(tiny_dataset, subset="test").tracks)[0]
    ev.evaluate(
        _checkpoints(folder), tiny_dataset, "test", ["vocals"], 1, out_dir=folder / "eval", oracles=("MIX",),
        tracks=[song], progress=False,
    )  # fmt: skip
    return folder / "eval"


def _images(index: Path) -> list[Path]:
    sources = re.findall(r'<img src="([^"]+)"', index.read_text())
    return [index.parent / s for s in sources]


def test_report_renders_with_valid_images(eval_dir, tmp_path):
    runs = [_run(tmp_path / "runs" / n, m, c, s) for n, m, c, s in
            [("unet", "unet", True, 1.5), ("unet-off", "unet", False, 1.0), ("demucs", "demucs", True, 2.0)]]  # fmt: skip
    # the curriculum-off run was written after TrainConfig gained eq_db, the other before: they still pair
    off_config = json.loads((runs[1] / "config.json").read_text())
    off_config["config"]["eq_db"] = 0.0
    (runs[1] / "config.json").write_text(json.dumps(off_config))
    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps(
            {
                "results": [
                    {"model": "unet", "realtime_factor": 40.0},
                    {"model": "demucs", "realtime_factor": 12.5},
                ]
            }
        )
    )
    out = tmp_path / "report"
    assert (
        main(["--eval", str(eval_dir), "--runs", *map(str, runs), "--bench", str(bench), "--out", str(out)])
        == 0
    )
    index = out / "index.html"
    page = index.read_text()
    images = _images(index)
    names = {p.name for p in images}
    assert {"boxplot_SDR.png", "training_curves.png", "ablation.png"} <= names
    assert any(n.startswith("spec_") for n in names)
    for path in images:
        assert path.read_bytes()[:8] == PNG_MAGIC
        with Image.open(path) as image:
            image.verify()
            assert image.size[0] > 300 and image.size[1] > 200
    # the score table shows the evaluation's numbers
    results = pd.read_csv(eval_dir / "results.csv")
    for row in results.itertuples():
        assert f"<td>{row.method}</td><td>{row.target}</td><td>{row.SDR:.2f}</td>" in page
    # the ablation pairs the two UNet runs (same config but curriculum): gain 1.5*3 - 1.0*3 = 1.5 dB
    assert "unet / unet-off" in page and "<td>1.50</td>" in page
    assert "realtime_factor" in page and "12.500" in page
    assert re.search(r"<td>unet</td><td>unet</td><td>[\d,]+</td>", page)  # parameter count row
    assert "Spectrogram vs waveform" in page


def test_missing_pieces_are_notes_not_crashes(eval_dir, tmp_path):
    index = build_report(tmp_path / "no-eval", tmp_path / "r1", runs=[tmp_path / "no-run"])
    page = index.read_text()
    assert "not found" in page and "no metrics.jsonl" in page and "No benchmark" in page
    assert _images(index) == []
    # an evaluation whose audio cache was deleted still reports its scores
    import shutil

    copy = tmp_path / "eval-copy"
    shutil.copytree(eval_dir, copy, ignore=shutil.ignore_patterns(".cache"))
    methods = json.loads((copy / "methods.json").read_text())
    methods["cache_dir"] = str(copy / ".cache")
    (copy / "methods.json").write_text(json.dumps(methods))
    index = build_report(copy, tmp_path / "r2", bench=tmp_path / "missing.json")
    page = index.read_text()
    assert "cache of the evaluation is missing" in page and "cannot read the benchmark" in page
    assert {p.name for p in _images(index)} == {"boxplot_SDR.png", "boxplot_SDRi.png"}


def test_each_model_counts_once_by_its_own_row_whatever_its_defaults():
    """The summary and the cost table read each model's own row (its default separation): a UNet that filters
    by default is kept and its ``-nowiener``/``-shiftsN`` variants are not, also in an evaluation folder written
    before methods named their ``variant_of``."""
    from mss.report.build import _own_rows

    model = {"kind": "model", "arch": "unet"}
    info = {
        "methods": {
            "unet": {**model, "wiener": True, "variant_of": None},
            "unet-nowiener": {**model, "wiener": False, "variant_of": "unet"},
            "unet-shifts0": {**model, "wiener": True, "variant_of": "unet"},
            "demucs": {"kind": "model", "arch": "demucs", "wiener": False, "variant_of": None},
            "MIX": {"kind": "oracle"},
        }
    }
    assert list(_own_rows(info)) == ["unet", "demucs"]
    # folders written before ``variant_of``: a variant is named after a row of the same checkpoint
    old = {**model, "checkpoint_hash": "a"}
    before = {
        "methods": {
            "unet": {**old, "wiener": True},
            "unet-nowiener": {**old, "wiener": False},
            "unet-shifts4": {**old, "wiener": True},
            "unet-best": {
                **model,
                "checkpoint_hash": "b",
                "wiener": False,
            },  # another checkpoint, not a variant
        }
    }
    assert list(_own_rows(before)) == ["unet", "unet-best"]
