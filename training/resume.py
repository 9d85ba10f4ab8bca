"""Where a run stands between epochs, and last.pt: restored into a Trainer on ``--resume``, saved after
every epoch (training.state writes the file)."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

import torch
from torch import nn

from mss.checkpoint import load_checkpoint
from mss.errors import CheckpointError
from mss.models import config_from_dict
from mss.models.blocks import INFERENCE_ONLY
from mss.models.demucs import Demucs
from mss.models.demucs_growth import GROWABLE, grow_state_dict
from mss.models.unet import UNet
from mss.models.unet_regrid import REGRIDDABLE, regrid_state_dict
from training import state
from training.config import TrainConfig
from training.run_folder import BEST_FILE, CONFIG_FILE, LAST_FILE, read_config, read_dataset
from training.trainer import Trainer
from training.validation import best_criterion, improves


@dataclass
class ResumeState:
    """A run after ``epoch`` finished epochs (0: a new run). With the Trainer (weights, optimiser,
    scheduler, grad scaler, EMA, step) and torch's generators, this is what last.pt holds."""

    epoch: int = 0
    best: tuple[str, float] | None = None  # (criterion, score) of best.pt: training.validation.best_criterion
    best_epoch: int | None = None  # the epoch best.pt holds
    elapsed_s: float = 0.0  # wall-clock seconds of the run so far
    cpu_s: float = 0.0  # process CPU seconds of the run so far

    @classmethod
    def load(cls, out_dir: Path, trainer: Trainer) -> ResumeState:
        """Restore ``out_dir``/last.pt into ``trainer`` and torch's default generators (of the caller:
        training.process.seeded_rng keeps them to the run); returns the run's counters."""
        checkpoint = state.load_last(out_dir)
        check_same_chunks(checkpoint.get("training_config") or {}, trainer.config, out_dir / LAST_FILE)
        changed = _check_compatible(
            checkpoint, trainer.model, out_dir / LAST_FILE, may_change=RESUME_MAY_CHANGE
        )
        if changed:  # a UNet run begun before its chunk followed the training chunk: it goes on as it began
            saved = {key: _saved(checkpoint, trainer.model, key) for key in changed}
            print(f"note: {out_dir / LAST_FILE} separates with {saved}; the resumed run keeps it", flush=True)
            _set_config(trainer, saved)
        _restore_trainer(trainer, checkpoint)
        torch.set_rng_state(checkpoint["rng_torch"])
        if torch.cuda.is_available() and checkpoint.get("rng_cuda"):
            torch.cuda.set_rng_state_all(checkpoint["rng_cuda"])
        return cls(
            epoch=int(checkpoint["epoch"]),
            best=state.best_of(checkpoint),
            elapsed_s=float(checkpoint.get("elapsed_s", 0.0)),
            cpu_s=float(checkpoint.get("cpu_s", 0.0)),
        )

    def check_best_file(self, out_dir: Path) -> None:
        """Take best.pt's epoch as the best one; forget it when it is newer than this state (best.pt of an
        epoch that a kill discarded): then the next validated epoch replaces it."""
        held = state.saved_epoch(out_dir / BEST_FILE)
        if held > self.epoch:
            self.best, self.best_epoch = None, None
        else:
            self.best_epoch = held or None

    def update_best(self, record: dict, targets) -> bool:
        """Whether the epoch of ``record`` beats best.pt's (training.validation's rule); it becomes the best."""
        candidate = best_criterion(record, targets)
        if not improves(candidate, self.best):
            return False
        self.best, self.best_epoch = candidate, int(record["epoch"])
        return True

    def save(self, out_dir: Path, trainer: Trainer, record: dict) -> Path:
        """last.pt after the epoch of ``record`` (its times are the run's so far)."""
        self.epoch, self.elapsed_s, self.cpu_s = int(record["epoch"]), record["elapsed_s"], record["cpu_s"]
        return state.save_last(
            out_dir,
            trainer.model,
            training_config=trainer.config.to_dict(),
            epoch=self.epoch,
            step=trainer.step,
            metrics=record,
            optimizer=trainer.optimizer,
            scheduler=trainer.scheduler,
            scaler=trainer.scaler,
            ema=trainer.ema,
            best=self.best,
            elapsed_s=self.elapsed_s,
            cpu_s=self.cpu_s,
        )


def init_weights(trainer: Trainer, path: str | Path) -> int:
    """Start a new run from the weights of checkpoint ``path`` (``TrainConfig.init_from``): the model and
    its EMA copy take them; optimiser, schedule and step start afresh. Returns the checkpoint's step.
    The model may differ from the checkpoint's in the fields of ``WEIGHT_MAPS`` for its architecture (the
    weights are mapped onto it) and in ``INIT_MAY_CHANGE``; CheckpointError if it differs otherwise (arch,
    size, targets or sample rate)."""
    path = Path(path)
    checkpoint = load_checkpoint(path)
    mappable, mapping, how = WEIGHT_MAPS.get(trainer.model.arch, ((), None, ""))
    changed = _check_compatible(
        checkpoint, trainer.model, path, action="start from", hint="", may_change=INIT_MAY_CHANGE + mappable
    )
    for key in changed:
        note = how if key in mappable else "same weights"
        print(f"note: {path} was trained with {key}={_saved(checkpoint, trainer.model, key)!r}; this run uses "
              f"{getattr(trainer.model.config, key)!r} ({note}, new {key})", flush=True)  # fmt: skip
    weights = checkpoint["state_dict"]
    if mapping is not None and set(changed) & set(mappable):
        try:
            old = config_from_dict(trainer.model.arch, checkpoint["model_config"])
            weights = mapping(weights, old, trainer.model)
        except ValueError as exc:
            raise CheckpointError(f"cannot start from {path}: {exc}") from exc
    trainer.model.load_state_dict(weights)  # float16 weights are cast to the model's
    if trainer.ema is not None:
        trainer.ema.shadow.load_state_dict(trainer.model.state_dict())
    return int(checkpoint.get("step", 0))


#: per architecture, the model-config fields ``init_from`` may change by mapping the checkpoint's weights onto
#: the new model, the mapping ``(state_dict, old config, new model) -> state_dict``, and what it does, for the
#: run's note: Demucs grows (function-preserving), a UNet moves onto another STFT grid (not preserving)
WEIGHT_MAPS = {
    Demucs.arch: (GROWABLE, grow_state_dict, "grown"),
    UNet.arch: (REGRIDDABLE, regrid_state_dict, "moved onto the new STFT grid"),
}


def _restore_trainer(trainer: Trainer, checkpoint: dict) -> None:
    trainer.model.load_state_dict(checkpoint["state_dict"])
    trainer.optimizer.load_state_dict(checkpoint["optimizer"])
    trainer.scheduler.load_state_dict(checkpoint["scheduler"])
    trainer.scaler.load_state_dict(checkpoint["scaler"])
    if trainer.ema is not None and checkpoint.get("ema") is not None:
        trainer.ema.load_state_dict(checkpoint["ema"])
    trainer.step = int(checkpoint["step"])


#: model-config fields a fine-tune may change from the weights it starts from (same weights, same shapes): the
#: UNet's level normalisation (the sixth stage switched it on for weights trained without it) and the chunk
#: length it separates in (a UNet's is its training chunk: ``training.trainer.build_training_model``), and the
#: inference defaults: the shifted separations it averages and its Wiener post-filter (the preset's ``shifts``
#: and ``wiener_iterations``)
INIT_MAY_CHANGE = ("level_db", *INFERENCE_ONLY)
#: model-config fields a resumed run takes from its last.pt when they differ from what the run's config builds
#: today: the separation chunk, the default shifts and Wiener post-filter (inference only), so a run keeps
#: validating and exporting as it began
RESUME_MAY_CHANGE = INFERENCE_ONLY


#: TrainConfig fields that shape the training chunks (their length, augmentation, draws and curriculum). A
#: resumed run must repeat the settings its first epochs ran with: otherwise its later epochs would train on
#: other chunks, and config.json would no longer say what the first ones saw. (The dataset is the command's
#: ``--dataset``, not a field: ``check_resumable`` compares it with the one config.json records.)
CHUNK_FIELDS: tuple[str, ...] = (
    "segment_s",
    "samples_per_epoch",
    "remix",
    "remix_prob",
    "eq_db",
    "width_min",
    "vocals_side_db",
    "repitch_semitones",
    "repitch_prob",
    "other_stack_prob",
    "curriculum",
    "stage1_epochs",
    "stage2_epochs",
    "seed",
    "cache_dtype",
)


def _dataset_key(dataset) -> str:
    """A dataset argument as one comparable string: the embedded default (None, "default", "None") or a path."""
    text = "default" if dataset is None else str(dataset)
    return "default" if text in ("default", "None") else str(Path(text).expanduser().resolve())


def check_resumable(out_dir: Path, config: TrainConfig, dataset) -> None:
    """Before any data is loaded (a cache build can take minutes): CheckpointError where a ``--resume`` gives
    other chunk settings (:func:`check_same_chunks`) or another dataset than ``out_dir``/config.json
    recorded when the run last started. A run without config.json is checked from last.pt alone, later."""
    path = out_dir / CONFIG_FILE
    if not path.is_file():
        return
    check_same_chunks(read_config(out_dir), config, out_dir / LAST_FILE)
    recorded = read_dataset(out_dir)
    if recorded is not None and _dataset_key(recorded) != _dataset_key(dataset):
        raise CheckpointError(
            f"cannot resume {out_dir / LAST_FILE}: its run trained on the dataset {recorded!r} ({path}), this "
            f"command gives {str(dataset)!r}; resume it with --dataset {recorded}"
        )


def check_same_chunks(saved: dict, config: TrainConfig, path: Path) -> None:
    """CheckpointError naming each of ``CHUNK_FIELDS`` whose value in ``config`` differs from the run's saved
    training config ``saved`` (a field it lacks, written before the field existed, counts as its default;
    ``repitch_prob`` only counts where a repitch is on)."""
    defaults = {item.name: item.default for item in fields(TrainConfig)}
    was = {name: saved.get(name, defaults[name]) for name in CHUNK_FIELDS}
    differing = {name: value for name, value in was.items() if value != getattr(config, name)}
    if was["repitch_semitones"] == 0 and config.repitch_semitones == 0:
        differing.pop("repitch_prob", None)  # no repitch either way: its probability changes nothing
    if differing:
        given = ", ".join(f"{name}={getattr(config, name)!r}" for name in differing)
        repeat = " ".join(f"--set {name}={value}" for name, value in differing.items())
        raise CheckpointError(
            f"cannot resume {path}: its run trained on chunks with {differing}, this command gives {given}; "
            f"repeat the run's command ({path.parent / 'config.json'} holds its settings: {repeat})"
        )


def _set_config(trainer: Trainer, changes: dict) -> None:
    """Give the trainer's model (and its EMA copy) a config with ``changes`` applied (same weights)."""
    models = [trainer.model] + ([trainer.ema.shadow] if trainer.ema is not None else [])
    for model in models:
        model.config = replace(model.config, **changes)


def _check_compatible(
    checkpoint: dict,
    model: nn.Module,
    path: Path,
    action: str = "resume from",
    hint: str = (
        "; use another --out, or rebuild the model the run began with (--set model_set=FIELD=VALUE,...: "
        "a model preset may have changed since, as the small Demucs and the small UNet did on 2026-12-07)"
    ),
    may_change: tuple[str, ...] = (),
) -> list[str]:
    """CheckpointError unless ``checkpoint`` holds ``model``'s architecture and config; a field the checkpoint
    lacks (saved before it existed) counts as its default. Returns the fields of ``may_change`` that differ."""
    current = asdict(model.config)
    diff = [key for key in current if _plain(_saved(checkpoint, model, key)) != _plain(current[key])]
    if checkpoint.get("arch") not in (None, model.arch) or set(diff) - set(may_change):
        raise CheckpointError(
            f"cannot {action} {path}: it holds a different model "
            f"(arch {checkpoint.get('arch')!r} for {model.arch!r}, differing fields {diff}){hint}"
        )
    return diff


def _saved(checkpoint: dict, model: nn.Module, key: str):
    """The checkpoint's value of model-config field ``key``; the field's default when it was saved before the
    field existed."""
    saved = checkpoint.get("model_config", {})
    if key in saved:
        return saved[key]
    default = next(f for f in fields(model.config) if f.name == key).default
    return None if default is MISSING else default


def _plain(value):
    return list(value) if isinstance(value, tuple | list) else value
