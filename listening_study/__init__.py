"""Blind MUSHRA (ITU-R BS.1534-3) listening study for source separation: study files, stimuli,
sessions, ratings and analysis. The app imports only the names below (and ``listening_study.analyze``).

    study = load_study("study.yaml")                 # or default_study(root, {"unet": ..., "demucs": ...})
    stimuli = prepare_stimuli(study, cache_dir)      # rendered once, cached, loudness-matched WAVs
    store = SessionStore(study_dir, stimuli)         # sessions + ratings.csv under study_dir
    session = store.start()                          # or store.resume(session_id)
    trial = store.next_trial(session)                # labels A, B, ... -> opaque stimulus ids
    stimuli.path(stimulus_id)                        # the only way from an id to a file
    store.submit(session.session_id, trial.trial_id, scores, plays, time_ms, comment)
    analyze(store.ratings.path, sdr_dir=None, out_dir=None)   # from listening_study.analyze
"""

from listening_study.errors import RatingsFileError, SessionError, StimulusError, StudyError, SubmissionError
from listening_study.ratings import COLUMNS, RatingsStore, read_ratings
from listening_study.sessions import Session, SessionStore, SessionTrial
from listening_study.stimuli import StimulusSet, Trial, prepare_stimuli
from listening_study.study import (
    ExcerptSpec,
    StudyConfig,
    SystemSpec,
    default_study,
    load_study,
    validate_study,
)

__all__ = [
    "COLUMNS", "ExcerptSpec", "RatingsFileError", "RatingsStore", "Session", "SessionError", "SessionStore",
    "SessionTrial", "StimulusError", "StimulusSet", "StudyConfig", "StudyError", "SubmissionError", "SystemSpec",
    "Trial", "default_study", "load_study", "prepare_stimuli", "read_ratings", "validate_study",
]  # fmt: skip
