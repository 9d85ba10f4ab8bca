"""What the app serves: its configuration and the loaded study (stimuli, sessions, ratings).

AppConfig(...)                              # built from the command line by app.parse_args
with_model_set(config) -> AppConfig         # checkpoints, targets and study id filled in from config.models
load_study_context(config, progress=None) -> StudyContext
resolve_checkpoints(config) -> (present {name: path}, message about missing ones or None)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from listening_study.sessions import SessionStore
from listening_study.stimuli import prepare_stimuli
from listening_study.study import default_study, load_study
from mss.checkpoint import checkpoint_set
from mss.errors import MSSError

#: Study id of the default study of each checkpoint set (mss.checkpoint.CHECKPOINT_SETS): each set's
#: sessions and ratings live in their own folder, STUDY_DIR/<study id>. The 4-stem study keeps its id.
STUDY_IDS = {"stems": "mss-default", "piano": "mss-piano"}


def _train_hint(targets_option: str = "", suffix: str = "") -> str:
    return (
        f"Train them with `python -m training.run --model unet --dataset default{targets_option} "
        f"--out runs/unet{suffix}` (and `--model demucs`), then copy `runs/<model>{suffix}/best.pt` to "
        f"`checkpoints/<model>{suffix}.pt`, or start the app with `--checkpoint NAME=PATH`."
    )


TRAIN_HINT = _train_hint()


def train_hint(models: str = "stems") -> str:
    """What to do when the committed checkpoints of set ``models`` are missing."""
    if models == "stems":
        return TRAIN_HINT
    _, targets = checkpoint_set(models)
    return _train_hint(f" --targets {','.join(targets)}", f"-{models}")


@dataclass(frozen=True)
class AppConfig:
    """Everything the app needs; built from the command line by ``app.parse_args``."""

    host: str = "127.0.0.1"
    port: int = 7860
    dataset: str = "default"
    study_file: Path | None = None
    study_dir: Path = Path("study")
    checkpoints: tuple[tuple[str, Path], ...] = ()  # (name, path); empty = the committed ones of `models`
    eval_dir: Path = Path("eval")
    password: str | None = None  # experimenter password; None: build_app generates one and prints it
    n_songs: int = 4
    targets: tuple[str, ...] = ()  # the default study's targets; empty = those of `models`
    # Checkpoint set (mss.checkpoint.CHECKPOINT_SETS: "stems" or "piano") behind empty `checkpoints`,
    # `targets` and `study_id`; see with_model_set.
    models: str = "stems"
    study_id: str = ""  # the default study's id; empty = STUDY_IDS[models]
    # Settings of the default study (no --study file), e.g. (("min_listen_s", 1.0),): see StudyConfig.
    study_settings: tuple[tuple[str, object], ...] = ()


@dataclass
class StudyContext:
    """The loaded study and its stores, or the reason there is none (shown to the experimenter only)."""

    study: object | None = None
    stimuli: object | None = None
    sessions: object | None = None
    ratings_csv: Path | None = None
    error: str | None = None
    checkpoints: dict[str, Path] = field(default_factory=dict)  # systems shown in the spectrogram browser
    dataset: str = "default"
    missing_checkpoints: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. songs the default study skipped, and why


def with_model_set(config: AppConfig) -> AppConfig:
    """``config`` with empty ``checkpoints``, ``targets`` and ``study_id`` taken from its checkpoint set
    ``config.models``; what is given stays (a ``--checkpoint NAME=PATH`` wins over the set)."""
    paths, targets = checkpoint_set(config.models)
    return replace(
        config,
        checkpoints=config.checkpoints or tuple(paths.items()),
        targets=config.targets or targets,
        study_id=config.study_id or STUDY_IDS.get(config.models, f"mss-{config.models}"),
    )


def resolve_checkpoints(config: AppConfig) -> tuple[dict[str, Path], str | None]:
    """Checkpoints to compare (name -> path) and, when some are missing, a message saying what to do."""
    found = {name: Path(path) for name, path in with_model_set(config).checkpoints}
    missing = [f"{name} ({path})" for name, path in found.items() if not Path(path).is_file()]
    present = {name: Path(path) for name, path in found.items() if Path(path).is_file()}
    message = f"Checkpoints not found: {', '.join(missing)}. {train_hint(config.models)}" if missing else None
    return present, message


def load_study_context(config: AppConfig, progress=None) -> StudyContext:
    """Load or build the study, render its stimuli (cached) and open the session and ratings stores."""
    config = with_model_set(config)
    checkpoints, missing = resolve_checkpoints(config)
    context = StudyContext(checkpoints=checkpoints, dataset=config.dataset, missing_checkpoints=missing)

    def skipped(note: str) -> None:  # shown to the experimenter and in the app's start-up log
        context.notes.append(note)
        if progress is not None:
            progress(0.0, note)

    try:
        if config.study_file is not None:
            study = load_study(config.study_file)
            # A study file names its own dataset and systems: the spectrogram browser shows the same ones.
            context.dataset = study.dataset
            context.checkpoints = {system.name: system.checkpoint for system in study.systems}
            context.missing_checkpoints = None
        elif missing:
            context.error = missing
            return context
        else:
            study = default_study(
                config.dataset, checkpoints, n_songs=config.n_songs, targets=config.targets,
                study_id=config.study_id, on_skip=skipped, **dict(config.study_settings),
            )  # fmt: skip
        folder = Path(config.study_dir) / study.study_id
        folder.mkdir(parents=True, exist_ok=True)
        stimuli = prepare_stimuli(study, Path(config.study_dir) / "stimuli", progress=progress)
        context.study, context.stimuli = study, stimuli
        context.sessions = SessionStore(folder, stimuli)
        context.ratings_csv = context.sessions.ratings.path
    except MSSError as exc:
        context.error = f"The listening study is not available: {exc}"
    return context
