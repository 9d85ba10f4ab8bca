"""The app's configuration, light to import: app.py reads it before its start-up page is up (the app itself,
``mss_app.launch``, pulls in gradio, torch and musdb: seconds).

AppConfig(...)                              # built from the command line by app.parse_args
with_model_set(config) -> AppConfig         # checkpoints, targets and study id filled in from config.models
resolve_checkpoints(config) -> (present {name: path}, message about missing ones or None)
warn_exposure(config)                       # a warning when serving beyond loopback over plain HTTP
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from mss.checkpoint import checkpoint_set

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: New listening-test sessions one client address may start per hour (per app process): enough for a
#: lab's shared machine, not for a script.
SESSIONS_PER_CLIENT = 10
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
    sessions_per_client: int = SESSIONS_PER_CLIENT  # per hour and client address; 0: no limit


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


def warn_exposure(config: AppConfig) -> None:
    if config.host not in LOOPBACK_HOSTS:
        print(
            f"warning: serving on {config.host} over plain HTTP: the experimenter password and the ratings "
            "cross the network unencrypted. Put the app behind an HTTPS reverse proxy.",
            file=sys.stderr,
        )
