"""Training on several generated datasets at once (mss.data.union) and starting a run from a checkpoint
(TrainConfig.init_from)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import CPU, tiny_args

from mss.data import SongDataset, TrainChunks, open_db
from mss.data.union import build_union, tagged
from mss.errors import CheckpointError, DatasetError
from training.config import TrainConfig
from training.resume import init_weights
from training.run import main
from training.run_data import chunk_config
from training.trainer import make_trainer


@pytest.fixture(scope="module")
def union(tiny_dataset, tmp_path_factory):
    return build_union(tmp_path_factory.mktemp("union") / "ab", [tiny_dataset, tiny_dataset], ["a", "b"])


def test_union_holds_every_song_of_each_part_under_its_tag(tiny_dataset, union):
    part = open_db(tiny_dataset, subset="train")
    whole = open_db(union, subset="train")
    assert sorted(t.name for t in whole) == sorted(tagged(t.name, tag) for tag in "ab" for t in part)
    assert len(open_db(union, subset="test")) == 2 * len(open_db(tiny_dataset, subset="test"))
    # the validation split is each part's, renamed; the train split is the rest
    valid = {t.name for t in open_db(tiny_dataset, subset="train", split="valid")}
    assert {t.name for t in open_db(union, subset="train", split="valid")} == {
        tagged(name, tag) for tag in "ab" for name in valid
    }
    # the songs read through the links are the part's samples, and the manifest's active stems follow them
    song = SongDataset(open_db(union, subset="train", split="valid"), ("vocals", "bass"), 16000)[0]
    name = song.name.rsplit(" [", 1)[0]
    original = SongDataset(open_db(tiny_dataset, subset="train", split="valid"), ("vocals", "bass"), 16000)
    assert torch.equal(torch.as_tensor(song.mix), torch.as_tensor(original[original.names.index(name)].mix))
    manifest = json.loads((union / "manifest.json").read_text())
    assert [p["tag"] for p in manifest["parts"]] == ["a", "b"]
    chunks = TrainChunks(open_db(union, subset="train", split="train"), chunk_config(_tiny_config()))
    assert sum(len(pool) for pool in chunks.pools) > 0


def test_union_refuses_what_it_cannot_join(tiny_dataset, union, tmp_path):
    with pytest.raises(DatasetError, match="not empty"):
        build_union(union, [tiny_dataset, tiny_dataset], ["c", "d"])
    with pytest.raises(DatasetError, match="distinct tag"):
        build_union(tmp_path / "same", [tiny_dataset, tiny_dataset])  # both are v<same version>
    (tmp_path / "bare" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="manifest"):
        build_union(tmp_path / "x", [tiny_dataset, tmp_path / "bare"], ["a", "b"])


def _tiny_config(**overrides) -> TrainConfig:
    fields = dict(model="demucs", model_preset="tiny", sample_rate=16000, segment_s=1.0, samples_per_epoch=8)
    fields.update(batch_size=4, valid_max_s=3, threads=1, progress=False, real_clips=False, ema_decay=0.9)
    return TrainConfig(**(fields | overrides))


def test_a_run_starts_from_a_checkpoints_weights(union, tmp_path):
    first = tmp_path / "first"
    assert main(tiny_args(union, first, "demucs", 1)) == 0
    best = first / "best.pt"

    # the trainer of a new run takes the checkpoint's weights, EMA copy included; a fresh one does not
    config = TrainConfig(
        **(json.loads((first / "config.json").read_text())["config"] | {"init_from": str(best)})
    )
    saved = torch.load(best, weights_only=True)["state_dict"]
    trainer = make_trainer(config, CPU, steps_per_epoch=2)
    assert not all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in saved.items())
    assert init_weights(trainer, best) == 2
    for key, value in saved.items():
        assert torch.equal(trainer.model.state_dict()[key], value), key
        assert torch.equal(trainer.ema.shadow.state_dict()[key], value), key
    assert trainer.step == 0  # the schedule starts afresh

    # through the command line: the run records where it started, and trains on from there
    assert main(tiny_args(union, tmp_path / "tuned", "demucs", 1, "--set", f"init_from={best}")) == 0
    tuned = json.loads((tmp_path / "tuned" / "config.json").read_text())["config"]
    assert tuned["init_from"] == str(best)

    # another model (other targets) is refused, naming the file and what differs
    other = TrainConfig(**(config.to_dict() | {"targets": ("vocals",)}))
    with pytest.raises(CheckpointError, match=r"cannot start from .*best\.pt.*sources"):
        init_weights(make_trainer(other, CPU, steps_per_epoch=2), best)
    bad = tiny_args(union, tmp_path / "bad", "demucs", 1, "--targets", "vocals", "--set", f"init_from={best}")
    assert main(bad) == 2


def test_a_raw_level_unet_starts_a_level_normalised_run_but_never_resumes_into_one(tmp_path, capsys):
    """init_from may switch level normalisation on (the same weights; the sixth stage did), and says so; a
    checkpoint saved before the field existed counts as raw-level (None), so resuming it under the new preset
    is refused instead of silently changing the model. level_norm=off builds the raw-level UNet."""
    from mss.checkpoint import load_checkpoint, save_checkpoint, write_checkpoint
    from training.resume import _check_compatible

    raw_config = _tiny_config(model="unet", level_norm=False)
    raw = make_trainer(raw_config, CPU, steps_per_epoch=2)
    assert raw.model.config.level_db is None
    path = save_checkpoint(tmp_path / "raw.pt", raw.model, step=5)
    old = load_checkpoint(path)
    del old["model_config"]["level_db"]  # as written before the field existed
    write_checkpoint(tmp_path / "old.pt", old)

    normalised = make_trainer(_tiny_config(model="unet"), CPU, steps_per_epoch=2)
    assert normalised.model.config.level_db == -16.0
    for start in (path, tmp_path / "old.pt"):
        assert init_weights(normalised, start) == 5
        assert "trained with level_db=None; this run uses -16.0" in capsys.readouterr().out
        for key, value in raw.model.state_dict().items():
            assert torch.equal(normalised.model.state_dict()[key], value), key
    with pytest.raises(CheckpointError, match=r"differing fields \['level_db'\]"):
        _check_compatible(old, normalised.model, tmp_path / "old.pt")  # what --resume checks
    assert _check_compatible(old, raw.model, tmp_path / "old.pt") == []  # the raw-level run resumes it


def test_a_unet_separates_in_its_training_chunks_and_demucs_in_its_presets(tmp_path, capsys):
    """The UNet's chunk length (model config segment_s, what separate() and validation cut songs into) is the
    run's training chunk; Demucs keeps its preset's. A fine-tune may change it from the checkpoint's (the
    same weights), and says so."""
    from mss.checkpoint import save_checkpoint
    from mss.models import model_preset

    unet = make_trainer(_tiny_config(model="unet", segment_s=1.5), CPU, steps_per_epoch=2).model
    assert unet.segment_s == 1.5 != model_preset("unet", "tiny").segment_s
    demucs = make_trainer(_tiny_config(model="demucs", segment_s=1.5), CPU, steps_per_epoch=2).model
    assert demucs.segment_s == model_preset("demucs", "tiny").segment_s == 1.0

    two = make_trainer(_tiny_config(model="unet", segment_s=2.0), CPU, steps_per_epoch=2).model
    path = save_checkpoint(tmp_path / "two.pt", two)
    longer = make_trainer(_tiny_config(model="unet", segment_s=3.0), CPU, steps_per_epoch=2)
    assert init_weights(longer, path) == 0
    assert "trained with segment_s=2.0; this run uses 3.0" in capsys.readouterr().out
    assert longer.model.segment_s == 3.0


def test_a_unet_run_begun_in_other_chunks_resumes_in_them(union, tmp_path, capsys):
    """A UNet run saved before its separation chunk followed the training chunk (its last.pt says 3 s, its config
    builds 1 s) resumes, keeps validating in its own 3 s, and says so; best.pt and last.pt keep it."""
    from mss.checkpoint import load_checkpoint, write_checkpoint

    out = tmp_path / "old"
    assert main(tiny_args(union, out, "unet", 1)) == 0
    for name in ("last.pt", "best.pt"):
        saved = load_checkpoint(out / name)
        saved["model_config"]["segment_s"] = 3.0  # as the preset gave it then
        write_checkpoint(out / name, saved)
    capsys.readouterr()
    assert main(tiny_args(union, out, "unet", 2, "--resume")) == 0
    assert "separates with {'segment_s': 3.0}; the resumed run keeps it" in capsys.readouterr().out
    assert load_checkpoint(out / "last.pt")["model_config"]["segment_s"] == 3.0
    assert load_checkpoint(out / "last.pt")["step"] == 4


def test_a_run_resumes_only_on_the_chunks_it_began_with(union, tmp_path, capsys):
    """``--resume`` without the ``--set`` that shaped the run's chunks (here the repitch), or on another dataset,
    is refused before any data is read, naming the field or the dataset and what to repeat; with them, the run
    goes on. A run saved before a chunk field existed counts as its default (off), so it resumes as it began."""
    from training.resume import check_same_chunks

    out = tmp_path / "repitched"
    chunks = ("--set", "repitch_semitones=2", "--set", "repitch_prob=0.5")
    assert main(tiny_args(union, out, "unet", 1, *chunks)) == 0
    capsys.readouterr()
    assert main(tiny_args(union, out, "unet", 2, "--resume")) != 0
    error = capsys.readouterr().err
    assert "repitch_semitones" in error and "--set repitch_semitones=2.0 --set repitch_prob=0.5)" in error
    assert "config.json holds its settings" in error
    assert main(tiny_args(union, out, "unet", 2, "--resume", *chunks)) == 0
    # another dataset is refused before any data is read (this one does not even exist)
    capsys.readouterr()
    assert main(tiny_args(tmp_path / "nowhere", out, "unet", 3, "--resume", *chunks)) != 0
    error = capsys.readouterr().err
    assert f"trained on the dataset {str(union)!r}" in error and f"--dataset {union}" in error
    check_same_chunks({"segment_s": 4.0}, TrainConfig(), out)  # fields it lacks: the defaults
    check_same_chunks(
        {"repitch_prob": 0.5}, TrainConfig(), out
    )  # no repitch either way: the probability is moot
    with pytest.raises(CheckpointError, match=r"\{'eq_db': 6.0\}"):
        check_same_chunks({"eq_db": 6.0}, TrainConfig(), out)
    with pytest.raises(CheckpointError, match=r"--set remix=False\)"):  # a flag, as parse_value reads it back
        check_same_chunks({"remix": False}, TrainConfig(), out)
    with pytest.raises(CheckpointError, match="repitch_semitones"):  # an old run, a command that turns it on
        check_same_chunks({"segment_s": 4.0}, TrainConfig(repitch_semitones=2.0), out)
