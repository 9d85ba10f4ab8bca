"""The loaded study the app serves: stimuli, sessions, ratings (or the reason there is none).

load_study_context(config, progress=None) -> StudyContext
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from listening_study import SessionStore, default_study, load_study, orphaned_sessions, prepare_stimuli
from mss.errors import MSSError
from mss_app.config import AppConfig, resolve_checkpoints, with_model_set


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
        if moved := stimuli.moved_anchors():  # for the experimenter and the start-up log
            context.notes.append(moved)
            if progress is not None:
                progress(1.0, moved)
        context.sessions = SessionStore(folder, stimuli)
        context.ratings_csv = context.sessions.ratings.path
        orphans = orphaned_sessions(context.sessions)
        if orphans:  # the study changed under running sessions: they cannot go on, say so
            skipped(
                f"{len(orphans)} unfinished session(s) in {folder} refer to stimuli of an earlier version of "
                "this study (its songs, conditions or checkpoints changed, or, for a study begun before "
                "2026-12-07, its anchors: fit_anchors: false in a study file, or app.py --fixed-anchors for the "
                "default study, keeps them) and cannot continue; their ratings "
                "so far stay in ratings.csv. Give a changed study its own study_id or --study-dir."
            )
    except MSSError as exc:
        context.error = f"The listening study is not available: {exc}"
    return context
