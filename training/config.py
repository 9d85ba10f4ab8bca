"""Training configuration: one frozen dataclass, training presets, typed command-line overrides.

Three things are called presets in this project; here a *training* preset (``TRAINING_PRESETS``: cpu | gpu,
``--preset``) is a recipe of TrainConfig values, one of which is the *model* preset (``model_preset``: the
model's size, tiny | small | large in mss.models); the *dataset* preset (mss.data.synth) is not a training
setting: ``--dataset`` names a dataset root.

Everything a run needs besides the dataset root and the output folder lives in :class:`TrainConfig`,
so ``OUT/config.json`` (``asdict(config)``) rebuilds the run exactly.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, fields, replace

from mss import MODEL_SAMPLE_RATE, SOURCES, augmentation_problems, parse_flag

ARCHS: tuple[str, ...] = ("unet", "demucs")
LR_SCHEDULES: tuple[str, ...] = ("cosine", "step", "constant")
AMP_MODES: tuple[str, ...] = ("auto", "off", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Batch size and samples per epoch are per run (split over ranks under torchrun)."""

    model: str = "unet"  # registry name: unet | demucs
    model_preset: str = "small"  # the model's size, an mss.models preset: tiny | small | large
    targets: tuple[str, ...] = SOURCES
    sample_rate: int = MODEL_SAMPLE_RATE
    channels: int = 2
    # a checkpoint (a committed one or a run's best.pt) whose weights start a new run: fine-tuning.
    # Its model must be this run's (arch, preset, targets, rate); optimiser and schedule start afresh.
    init_from: str = ""
    # UNet only: see each chunk at the preset's level (UNetConfig.level_db, -16 dBFS); off = the raw-level UNet
    # of the first five stages (the sixth stage's control). Demucs always normalises.
    level_norm: bool = True
    # model-config fields set over the model preset's, "field=value" each (e.g. context=3,lstm_residual=1 for
    # Demucs: mss.models.parse_model_settings); with init_from, a Demucs may grow into larger values of
    # mss.models.demucs_growth.GROWABLE and starts computing what the smaller model did, and a UNet may move
    # onto another STFT grid (mss.models.unet_regrid.REGRIDDABLE: n_fft, hop_length)
    model_set: tuple[str, ...] = ()
    # data
    segment_s: float = 4.0  # training chunk length
    samples_per_epoch: int = 1000  # chunks per epoch, all ranks together
    batch_size: int = 8  # chunks per optimiser step, all ranks together
    num_workers: int = 0
    remix: bool = True
    # with remix: the share of chunks remixed; the rest coherent (one song and offset)
    remix_prob: float = 1.0
    eq_db: float = 0.0  # random EQ of every source (mss.data.augment.eq_params), gains in +-eq_db; 0 = off
    width_min: float = 1.0  # stereo width of every source scaled by U(width_min, 1) (augment.narrow); 1 = off
    vocals_side_db: float = 0.0  # the vocals' side signal lowered by this many dB, every chunk; 0 = off
    # random repitch of each source with probability repitch_prob: speed (pitch and tempo together) scaled by
    # 2 ** (u / 12), u uniform in +-repitch_semitones (mss.data.augment.repitch); 0 = off
    repitch_semitones: float = 0.0
    repitch_prob: float = 0.2
    # with this probability a chunk's "other" part is the sum of two "other" chunks drawn independently (two
    # songs, but for a 1-in-pool-size chance), each with its own gain, sign and channel order (a recorded
    # "other" holds several instruments at once); 0 = off; needs remix
    other_stack_prob: float = 0.0
    cache_dir: str = ""  # decoded-audio cache (mss.data.cache); "" = $MSS_CACHE_DIR or ~/.cache/mss/decoded
    cache_dtype: str = "int16"  # int16 | float16 | float32: how the cache stores the training audio
    # optimisation
    epochs: int = 20
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # cosine | step | constant
    lr_min_ratio: float = 0.05  # cosine floor, as a fraction of lr
    lr_step_epochs: int = 10  # step schedule: multiply by lr_gamma every this many epochs
    lr_gamma: float = 0.3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 5.0  # max global gradient norm; 0 disables clipping
    ema_decay: float = 0.0  # 0 disables the EMA; else validation and best.pt use the EMA weights
    # curriculum: stage 1 mixes the target with 1 distractor, stage 2 with 2, then full mixes
    curriculum: bool = True
    stage1_epochs: int = 2
    stage2_epochs: int = 2
    # validation on whole songs of musdb's valid split
    valid_songs: int = 0  # 0 = every validation song
    valid_max_s: float = 0.0  # crop each validation song to its first N seconds; 0 = whole song
    valid_every: int = 1  # validate every N epochs (and always after the last one)
    valid_batch_size: int = 4
    real_clips: bool = (
        True  # also score the real MUSDB18 clips at hand (mss.data.real_clips), never selected on
    )
    # runtime
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto | off | bf16 | fp16 (CUDA only). auto: on CUDA bf16 where supported, else fp16; on a CPU bf16
    # when it computes bf16 natively (AVX-512 BF16 or AMX: mss.precision.cpu_has_bf16), else off
    amp: str = "auto"
    progress: bool = True  # tqdm bars on rank 0
    debug: bool = False  # print per-rank first-batch checksums

    def __post_init__(self) -> None:
        problems = []
        if self.model not in ARCHS:
            problems.append(f"model must be one of {', '.join(ARCHS)}, got {self.model!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.amp not in AMP_MODES:
            problems.append(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if not self.targets:
            problems.append("targets must name at least one source")
        for name in ("sample_rate", "channels", "samples_per_epoch", "batch_size", "epochs", "valid_every"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("segment_s", "lr"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.samples_per_epoch < self.batch_size:
            problems.append(
                f"samples_per_epoch ({self.samples_per_epoch}) must be at least batch_size ({self.batch_size})"
            )
        problems += [
            f"model_set item {item!r} must read field=value" for item in self.model_set if "=" not in item
        ]
        problems += augmentation_problems(self)
        if not 0.0 <= self.ema_decay < 1.0:
            problems.append(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["targets"] = list(self.targets)
        return data


#: Training presets: overrides of the dataclass defaults.
TRAINING_PRESETS: dict[str, dict] = {
    # Both architectures the same steps (24 epochs x 100 steps of batch 8 x 2-s chunks): about 45 min
    # (Demucs) to 75 min (UNet) of one CPU core each; the runs train side by side, 1 torch thread each.
    "cpu": dict(
        model_preset="small",
        segment_s=2.0,
        batch_size=8,
        samples_per_epoch=800,
        epochs=24,
        lr=1e-3,
        lr_schedule="cosine",
        warmup_steps=30,
        grad_clip=5.0,
        ema_decay=0.99,
        stage1_epochs=1,
        stage2_epochs=1,
        valid_songs=0,
        valid_max_s=20.0,
        num_workers=0,
        threads=1,
    ),
    # one modern GPU: the large model, long chunks, big batches, mixed precision.
    "gpu": dict(
        model_preset="large",
        sample_rate=44100,
        segment_s=6.0,
        batch_size=32,
        samples_per_epoch=16000,
        epochs=120,
        lr=3e-4,
        lr_schedule="cosine",
        warmup_steps=500,
        grad_clip=5.0,
        ema_decay=0.999,
        stage1_epochs=5,
        stage2_epochs=5,
        valid_max_s=0.0,
        num_workers=8,
        amp="auto",
    ),
}

CLI_KEYS: tuple[str, ...] = tuple(f.name for f in fields(TrainConfig))


def _base_type(annotation) -> type:
    """Resolve a (string) annotation to the type used to parse a command-line value."""
    hints = {
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
        "tuple[str, ...]": tuple,
    }
    if isinstance(annotation, str):
        if annotation not in hints:
            raise TypeError(f"unsupported config annotation {annotation!r}")
        return hints[annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _base_type(next(a for a in typing.get_args(annotation) if a is not type(None)))
    return origin or annotation


def parse_value(key: str, text: str):
    """Parse ``text`` as the type of field ``key`` (bool accepts on/off/true/false/yes/no/1/0)."""
    if key not in CLI_KEYS:
        raise KeyError(unknown_key_message(key))
    kind = _base_type(next(f.type for f in fields(TrainConfig) if f.name == key))
    text = text.strip()
    if kind is bool:
        if (flag := parse_flag(text)) is not None:
            return flag
        raise ValueError(f"{key} expects on/off (true/false), got {text!r}")
    if kind is tuple:
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        if not items:
            raise ValueError(f"{key} expects a comma-separated list, got {text!r}")
        return items
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{key} expects a {kind.__name__}, got {text!r}") from None


def unknown_key_message(key: str) -> str:
    return f"unknown training option {key!r}; valid keys: {', '.join(CLI_KEYS)}"


def make_config(training_preset: str | None = None, overrides: dict[str, str] | None = None) -> TrainConfig:
    """Dataclass defaults, then the named training preset (and its additions for ``overrides["model"]``),
    then the string ``overrides`` parsed by field type."""
    values: dict = {}
    if training_preset is not None:
        if training_preset not in TRAINING_PRESETS:
            raise ValueError(
                f"unknown preset {training_preset!r}; valid presets: {', '.join(TRAINING_PRESETS)}"
            )
        values.update(TRAINING_PRESETS[training_preset])  # the same for both models of a comparison
    for key, text in (overrides or {}).items():
        values[key] = parse_value(key, text)
    return replace(TrainConfig(), **values)


def parse_assignment(text: str) -> tuple[str, str]:
    """``"key=value"`` -> ``(key, value)``; dashes in the key become underscores."""
    if "=" not in text:
        raise ValueError(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if key not in CLI_KEYS:
        raise KeyError(unknown_key_message(key))
    return key, value


def mix_sources_for_epoch(epoch: int, config: TrainConfig) -> int | None:
    """Curriculum: how many sources (target included) are mixed in ``epoch`` (0-based); None = full mix.

    Stage 1 (``stage1_epochs``) mixes the target with one distractor (2), stage 2 (``stage2_epochs``)
    with two (3), then full mixtures. With ``curriculum=False`` every epoch uses full mixtures.
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if not config.curriculum:
        return None
    if epoch < config.stage1_epochs:
        return 2
    if epoch < config.stage1_epochs + config.stage2_epochs:
        return 3
    return None
