"""What the app serves: its configuration and the loaded study (stimuli, sessions, ratings).

AppConfig(...)                              # built from the command line by app.parse_args
load_study_context(config, progress=None) -> StudyContext
resolve_checkpoints(config) -> (present {name: path}, message about missing ones or None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mss.errors import MSSError

TRAIN_HINT = (
    "Train them with `python -m training.run --model unet --dataset default --out runs/unet` "
    "(and `--model demucs`), then copy `runs/<model>/best.pt` to `checkpoints/<model>.pt`, "
    "or start the app with `--checkpoint NAME=PATH`."
)


@dataclass(frozen=True)
class AppConfig:
    """Everything the app needs; built from the command line by ``app.parse_args``."""

    host: str = "127.0.0.1"
    port: int = 7860
    dataset: str = "default"
    study_file: Path | None = None
    study_dir: Path = Path("study")
    checkpoints: tuple[tuple[str, Path], ...] = ()  # (name, path); empty = the committed defaults
    eval_dir: Path = Path("eval")
    password: str | None = None  # experimenter password; None: build_app generates one and prints it
    n_songs: int = 4
    targets: tuple[str, ...] = ("vocals", "drums", "bass", "other")
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


def resolve_checkpoints(config: AppConfig) -> tuple[dict[str, Path], str | None]:
    """Checkpoints to compare (name -> path) and, when some are missing, a message saying what to do."""
    from mss.checkpoint import DEFAULT_CHECKPOINTS

    if config.checkpoints:
        found = {name: Path(path) for name, path in config.checkpoints}
    else:
        found = dict(DEFAULT_CHECKPOINTS)
    missing = [f"{name} ({path})" for name, path in found.items() if not Path(path).is_file()]
    present = {name: Path(path) for name, path in found.items() if Path(path).is_file()}
    message = f"Checkpoints not found: {', '.join(missing)}. {TRAIN_HINT}" if missing else None
    return present, message


def load_study_context(config: AppConfig, progress=None) -> StudyContext:
    """Load or build the study, render its stimuli (cached) and open the session and ratings stores."""
    from listening_study.sessions import SessionStore
    from listening_study.stimuli import prepare_stimuli
    from listening_study.study import default_study, load_study

    checkpoints, missing = resolve_checkpoints(config)
    context = StudyContext(checkpoints=checkpoints, dataset=config.dataset, missing_checkpoints=missing)
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
                **dict(config.study_settings),
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
