"""Blind MUSHRA (ITU-R BS.1534-3) listening study for source separation. This is its one public face: the
app (mss_app) imports the names below and nothing else; tests and tools may reach into the subpackages.

    design/     what a study is and how a session is laid out: study file, dataset, secret key,
                session design, questionnaire, trial rules, headphone check
    delivery/   the audio: stimuli rendered once, the bytes a session receives, what the server sent
    sessions/   the session store (steps, each step's audio, submissions), ratings.csv, sessions table
    analysis/   from ratings to results: screening, statistics, excerpt metrics, correlations, figures,
                one pipeline for the app and ``python -m listening_study.analysis``

    study = load_study("study.yaml")                 # or default_study(root, {"unet": ..., "demucs": ...})
    stimuli = prepare_stimuli(study, cache_dir)      # rendered once, cached, loudness-matched WAVs
    store = SessionStore(study_dir, stimuli)         # sessions, ratings.csv and the secret study.key
    session = store.start(consent=True)              # or store.resume(session_id)
    store.step(session)                              # questionnaire, volume, ..., trial, finished
    store.step_audio(session)                        # that step's pages: tokens under neutral labels
    store.serve_audio(session.session_id, token)     # this session's WAV behind a token
    store.submit_page(session_id, trial_id, scores, plays, time_ms, comment, listen_ms)
    result = analyze_study(stimuli, store, out_dir)  # what the experimenter's Results tab shows
"""

from listening_study.analysis.pipeline import RATINGS_SNAPSHOT, AnalysisResult, analyze, analyze_study
from listening_study.analysis.spreadsheet import neutralize_frame
from listening_study.delivery.stimuli import StimulusSet, Trial, prepare_stimuli
from listening_study.design.headphones import check_json
from listening_study.design.questionnaire import QUESTIONS
from listening_study.design.study import StudyConfig, default_study, load_study
from listening_study.errors import SessionError, StimulusError, StudyError, SubmissionError
from listening_study.sessions.audio import AudioPage
from listening_study.sessions.model import STEPS, Session
from listening_study.sessions.ratings import read_ratings
from listening_study.sessions.store import SessionStore
from listening_study.sessions.table import orphaned_sessions

__all__ = [
    "QUESTIONS", "RATINGS_SNAPSHOT", "STEPS", "AnalysisResult", "AudioPage", "Session", "SessionError", "SessionStore", "StimulusError",
    "StimulusSet", "StudyConfig", "StudyError", "SubmissionError", "Trial", "analyze", "analyze_study", "check_json",
    "default_study", "load_study", "neutralize_frame", "orphaned_sessions", "prepare_stimuli", "read_ratings",
]  # fmt: skip
