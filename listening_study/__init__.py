"""Blind MUSHRA (ITU-R BS.1534-3) listening study for source separation: study files, stimuli,
sessions, ratings and analysis. The app imports only the names below (and ``listening_study.analyze``).

    study = load_study("study.yaml")                 # or default_study(root, {"unet": ..., "demucs": ...})
    stimuli = prepare_stimuli(study, cache_dir)      # rendered once, cached, loudness-matched WAVs
    store = SessionStore(study_dir, stimuli)         # sessions, ratings.csv and the secret study.key
    session = store.start(consent=True)              # or store.resume(session_id)
    store.step(session)                              # questionnaire, volume, ..., trial, finished
    trial = store.next_trial(session)                # labels A, B, ... (true names stay on the server)
    store.audio_token(session, "trial", trial.trial_id, "A")   # what the page gets; audio_path() resolves it
    store.submit(session.session_id, trial.trial_id, scores, plays, time_ms, comment, listen_ms)
    sdr_table = study_excerpt_sdr(stimuli)           # SDR of every rated excerpt and condition (cached)
    analyze(store.ratings.path, out_dir=None, excerpt_sdr=sdr_table)   # from listening_study.analyze
"""

from listening_study.blinding import StudyKey
from listening_study.errors import RatingsFileError, SessionError, StimulusError, StudyError, SubmissionError
from listening_study.excerpt_sdr import study_excerpt_sdr
from listening_study.questionnaire import QUESTIONS
from listening_study.ratings import COLUMNS, RatingsStore, read_ratings
from listening_study.rules import TrialRules
from listening_study.sessions import STEPS, Session, SessionStore, SessionTrial
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
    "COLUMNS", "ExcerptSpec", "QUESTIONS", "STEPS", "StudyKey", "TrialRules", "RatingsFileError", "RatingsStore", "Session", "SessionError", "SessionStore",
    "SessionTrial", "StimulusError", "StimulusSet", "StudyConfig", "StudyError", "SubmissionError", "SystemSpec",
    "Trial", "default_study", "load_study", "prepare_stimuli", "read_ratings", "study_excerpt_sdr", "validate_study",
]  # fmt: skip
