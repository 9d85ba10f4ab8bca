"""Training when things go wrong: a bad device, divergence, an unscorable target, kills before and after the
first checkpoint, a failed run's temp files; and the best-checkpoint criterion, the verdict's budget and
validation's single pass. The rest of training is test_training.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import read_metrics, tiny_args

from mss.checkpoint import load_checkpoint
from training import state
from training.distributed import DistContext
from training.losses import waveform_l1
from training.run import main
from training.run_folder import read_run

# --- failures: bad devices, divergence, unscorable targets, kills -----------------------------------


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error: ")]
    return line


def test_unavailable_device_is_a_clear_error(tiny_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without CUDA
    assert main(tiny_args(tiny_dataset, tmp_path / "cuda", "unet", 1, "--device", "cuda")) == 2
    assert "--device cuda requested but CUDA is not available" in _one_error_line(capsys)
    assert main(tiny_args(tiny_dataset, tmp_path / "gpu", "unet", 1, "--device", "gpu")) == 2
    assert "unknown device 'gpu'" in _one_error_line(capsys)
    assert not (tmp_path / "cuda").exists()  # refused before anything was written


def test_diverging_run_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    tiny_dataset, tmp_path, capsys
):
    # lr 1e30 from the start: NaN at the second step, nothing to keep
    out = tmp_path / "nan"
    assert main(tiny_args(tiny_dataset, out, "unet", 2, "--set", "lr=1e30")) == 2
    line = _one_error_line(capsys)
    assert "training diverged: the training loss became nan at epoch 1, step 2 of 2" in line
    assert "no checkpoint was written" in line and "--lr 1e+29" in line
    assert not (out / "last.pt").exists() and not list(out.glob(".*.tmp"))
    # a sane first epoch, then a step schedule that multiplies the lr by 1e30: epoch 2 diverges
    out = tmp_path / "later"
    extra = ("--set", "lr_schedule=step", "--set", "lr_step_epochs=1", "--set", "lr_gamma=1e30")
    assert main(tiny_args(tiny_dataset, out, "demucs", 3, *extra)) == 2
    line = _one_error_line(capsys)
    assert "at epoch 2, step" in line and f"{out / 'last.pt'} (epoch 1) is the last good checkpoint" in line
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert [r["epoch"] for r in read_metrics(out)] == [1]


@pytest.fixture(scope="module")
def piano_free_validation(tiny_dataset, tmp_path_factory) -> Path:
    """The tiny dataset, but its validation song has no piano (a silent piano.wav; links to the rest)."""
    import soundfile
    import yaml

    root = tmp_path_factory.mktemp("no-piano") / "tiny"
    root.mkdir()
    [valid_song] = yaml.safe_load((tiny_dataset / "setup.yaml").read_text())["validation_tracks"]
    for item in tiny_dataset.iterdir():
        if item.name != "train":
            (root / item.name).symlink_to(item)
    (root / "train").mkdir()
    for song in (tiny_dataset / "train").iterdir():
        if song.name != valid_song:
            (root / "train" / song.name).symlink_to(song)
            continue
        (root / "train" / song.name).mkdir()
        for stem in song.iterdir():
            if stem.name == "piano.wav":
                audio, rate = soundfile.read(stem, dtype="float32")
                soundfile.write(root / "train" / song.name / stem.name, np.zeros_like(audio), rate, "FLOAT")
            else:
                (root / "train" / song.name / stem.name).symlink_to(stem)
    return root


def test_unscorable_target_still_writes_best(piano_free_validation, tmp_path, capsys):
    out = tmp_path / "piano"
    assert main(tiny_args(piano_free_validation, out, "unet", 2, "--targets", "piano")) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning: validation cannot score piano") == 1
    assert "-inf" not in captured.out and "best validation loss" in captured.out
    history = read_metrics(out)
    assert all(r["valid_sdr"] == {} and np.isfinite(r["valid_loss"]) for r in history)
    best = load_checkpoint(out / "best.pt")
    best_epoch = min(history, key=lambda r: r["valid_loss"])["epoch"]
    assert best["epoch"] == best_epoch and best["metrics"]["valid_loss"] == min(
        r["valid_loss"] for r in history
    )
    assert load_checkpoint(out / "last.pt")["best"] == ["valid_loss", -best["metrics"]["valid_loss"]]
    assert read_run(out).best_epoch == best_epoch  # chosen by the loss, as recorded


def test_best_criterion_falls_back_from_sdr_to_loss_to_epoch():
    from training.validation import best_criterion, improves

    targets = ("vocals", "piano")
    scored = {
        "epoch": 3,
        "valid_songs": 2,
        "valid_loss": 0.2,
        "valid_sdr": {"vocals": 4.0, "piano": 2.0, "mean": 3.0},
    }
    assert best_criterion(scored, targets) == ("sdr", 3.0)
    partly = {**scored, "valid_sdr": {"vocals": 4.0, "mean": 4.0}}  # piano silent in every song
    assert best_criterion(partly, targets) == ("valid_loss", -0.2)
    assert best_criterion({"epoch": 3, "valid_songs": 0, "valid_loss": None, "valid_sdr": {}}, targets) == (
        "epoch",
        3.0,
    )
    assert best_criterion({"epoch": 3, "valid_loss": None, "valid_sdr": {}}, targets) is None  # not validated
    assert improves(("valid_loss", -0.1), ("valid_loss", -0.2)) and not improves(("sdr", 1.0), ("sdr", 2.0))
    assert not improves(None, None) and improves(("epoch", 1.0), None)


@pytest.mark.parametrize("resume", [True, False])
def test_kill_before_the_first_last_checkpoint(tiny_dataset, tmp_path, resume):
    """A run killed after its first metrics line (and best.pt) but before its first last.pt, mid-way through
    writing last.pt and a second metrics line: the next run logs each epoch once and leaves no temp files."""
    out = tmp_path / "killed"
    assert main(tiny_args(tiny_dataset, out, "unet", 1)) == 0
    (out / "last.pt").unlink()  # the kill came before last.pt was in place...
    (out / ".last.pt.k2j4_x.tmp").write_bytes(b"PK\x03\x04 half a zip")  # ...while torch.save was writing it
    with open(out / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 2, "step"')  # and a torn line, as if killed during an append
    (out / ".metrics.jsonl.tmp").write_text("{}")
    (out / "notes.tmp").write_text("not ours")
    args = tiny_args(tiny_dataset, out, "unet", 3, *(["--resume"] if resume else []))
    assert main(args) == 0
    assert [r["epoch"] for r in read_metrics(out)] == [1, 2, 3]
    assert [r["step"] for r in read_metrics(out)] == [2, 4, 6]
    assert load_checkpoint(out / "last.pt")["epoch"] == 3
    assert not list(out.glob(".*.tmp")) and (out / "notes.tmp").exists()


def test_best_checkpoint_of_a_discarded_epoch_is_replaced(tiny_dataset, tmp_path):
    """Killed after writing best.pt for epoch 2 but before last.pt: the redone epoch 2 replaces best.pt
    even when it scores below epoch 1, so best.pt always holds an epoch that metrics.jsonl logs."""
    out = tmp_path / "run"
    assert main(tiny_args(tiny_dataset, out, "unet", 1)) == 0
    stale = torch.load(out / "best.pt", weights_only=True)
    stale["epoch"], stale["metrics"] = 2, {**stale["metrics"], "epoch": 2}
    torch.save(stale, out / "best.pt")
    last = torch.load(out / "last.pt", weights_only=True)
    last["best"] = ["valid_loss", 0.0]  # epoch 1 scored better than epoch 2 can
    torch.save(last, out / "last.pt")
    assert main(tiny_args(tiny_dataset, out, "unet", 2, "--resume")) == 0
    best, logged = load_checkpoint(out / "best.pt"), read_metrics(out)
    assert best["epoch"] == 2 and best["metrics"] == logged[1]
    assert read_run(out).best_epoch == 2  # recorded: a re-derivation could name epoch 1


def test_temp_files_are_removed_when_a_run_fails(tmp_path):
    (tmp_path / ".last.pt.abc.tmp").write_bytes(b"x")
    (tmp_path / ".best.pt.def.tmp").write_bytes(b"x")
    with pytest.raises(KeyboardInterrupt), state.temp_files_removed_on_failure(tmp_path):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_verdict_compares_runs_at_the_smaller_runs_budget(tmp_path):
    """training.summary --verdict: each run at the least steps and the least CPU time any run had, as
    the checkpoint it would hand on then (its best validation epoch within that budget)."""
    from training.summary import verdict_table

    def write(run: Path, rows: list[tuple[int, float, float]]) -> Path:
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"config": {"targets": ["vocals"]}}))
        records = [{"epoch": i + 1, "step": step, "cpu_s": cpu, "valid_songs": 3, "valid_loss": 1.0,
                    "valid_sdr": {"vocals": v, "mean": v}, "real_sdr": {"mean": v - 1}}
                   for i, (step, cpu, v) in enumerate(rows)]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        return run

    slow = write(tmp_path / "slow", [(100, 600.0, 1.0), (200, 1200.0, 3.0), (300, 1800.0, 2.5)])
    fast = write(tmp_path / "fast", [(100, 300.0, 0.5), (200, 600.0, 2.0), (300, 900.0, 2.2),
                                     (400, 1200.0, 4.0), (500, 1500.0, 3.9)])  # fmt: skip
    rows = [line.split(" | ") for line in verdict_table([slow, fast]).splitlines()[2:]]
    got = {(r[0].strip("| "), r[1]): (r[2], r[5]) for r in rows}
    assert got[("300 steps", "slow")] == ("2", "3.00")  # best within 300 steps: epoch 2, not the last
    assert got[("300 steps", "fast")] == ("3", "2.20")
    assert got[("25 CPU min", "fast")] == ("4", "4.00")  # the fast run's 1500 CPU s, all of it
    assert got[("25 CPU min", "slow")] == ("2", "3.00")  # the slow run within 1500 s: epochs 1 and 2


def test_validation_separates_in_one_pass_whatever_the_models_default_shifts(monkeypatch):
    """Per-epoch validation ranks epochs with one plain pass of the network alone (shifts=0, no Wiener
    post-filter): a model whose inference default is the shift trick (the small presets') or the post-filter
    (the small UNet's) validates exactly as the same weights without them, and differently from a separation
    with the defaults it would use at inference."""
    import dataclasses

    from mss.data.songs import Song
    from mss.models import build_model, model_preset
    from mss.separate import separate
    from training.validation import validate

    torch.manual_seed(0)
    config = model_preset("demucs", "tiny", sample_rate=8000)
    plain = build_model("demucs", config).eval()
    shifted = build_model("demucs", dataclasses.replace(config, shifts=3)).eval()
    shifted.load_state_dict(plain.state_dict())
    rng = np.random.default_rng(0)
    targets = (rng.standard_normal((4, 2, 8000 * 3)) * 0.1).astype(np.float32)
    songs = [Song("a", targets.sum(axis=0), targets, 8000, tuple(config.sources))]
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    record = validate(shifted, songs, waveform_l1, ctx)
    assert record == validate(plain, songs, waveform_l1, ctx)
    estimate = separate(shifted, songs[0].mix, 8000)["vocals"]  # the inference default: 3 shifts
    assert not np.allclose(estimate, separate(plain, songs[0].mix, 8000)["vocals"], atol=1e-5)
    unet_config = model_preset("unet", "tiny", sample_rate=8000)
    unet = build_model("unet", unet_config).eval()
    filtering = build_model("unet", dataclasses.replace(unet_config, wiener_iterations=1)).eval()
    filtering.load_state_dict(unet.state_dict())
    record_unet = validate(unet, songs, waveform_l1, ctx)
    assert validate(filtering, songs, waveform_l1, ctx) == validate(unet, songs, waveform_l1, ctx)
    # and in float32 whatever the CPU: bf16 autocast (mss.precision) does not reach validation figures
    import mss.precision

    monkeypatch.setattr(mss.precision, "cpu_has_bf16", lambda: True)
    assert validate(unet, songs, waveform_l1, ctx) == record_unet
    monkeypatch.setattr(mss.precision, "cpu_has_bf16", lambda: False)
    assert validate(unet, songs, waveform_l1, ctx) == record_unet
    estimate = separate(filtering, songs[0].mix, 8000)["drums"]  # the inference default: the post-filter
    assert not np.allclose(estimate, separate(unet, songs[0].mix, 8000)["drums"], atol=1e-5)
