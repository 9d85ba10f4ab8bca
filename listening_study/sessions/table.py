"""The experimenter's table of a study's sessions, and the participant codes typed in more than one.

    sessions_table(store) -> DataFrame      # one row per session (SESSION_COLUMNS)
    shared_codes(table) -> DataFrame        # participant_id, n_sessions, sessions: codes of several sessions
    headphone_results(sessions_dir) -> {session id: {n_correct, n_trials, passed, answers}}  # for the analysis
    orphaned_sessions(store) -> list[str]   # unfinished sessions whose stimuli the study no longer has

A participant code is what a participant types (or is given): two people can type the same one, and
one person can start several sessions. The unit of the study is therefore the session (its own design,
its own ratings, its own post-screening: listening_study.analysis.stats.screen_sessions); ``code_sessions`` says
how many sessions share a row's code, so the experimenter sees them at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from listening_study.design.questionnaire import QUESTIONS
from listening_study.errors import SessionError

SESSION_COLUMNS = ["session_id", "participant_id", "code_sessions", "mode", "created", "consent",
                   *[q.key for q in QUESTIONS], "headphone_check", "step", "trials_done", "trials",
                   "completion_code"]  # fmt: skip


def _headphone_summary(result: dict) -> str:
    if not result:
        return ""
    return f"{result['n_correct']}/{result['n_trials']} {'passed' if result['passed'] else 'failed'}"


def sessions_table(store) -> pd.DataFrame:
    """Every session of the study: who, when, questionnaire, headphone check, progress, completion code.
    ``store``: a listening_study.sessions.store.SessionStore (not imported: that module uses this one)."""
    rows = []
    for path in sorted(store.sessions_dir.glob("*.json")):
        try:
            session = store.resume(path.stem)
        except SessionError:
            continue
        done, total = store.progress(session)
        rows.append({
            "session_id": session.session_id, "participant_id": session.participant_id,
            "mode": session.mode, "created": session.created, "consent": session.consent,
            **{q.key: session.questionnaire.get(q.key, "") for q in QUESTIONS},
            "headphone_check": _headphone_summary(session.headphones),
            "step": store.step(session), "trials_done": done, "trials": total,
            "completion_code": store.completion_code(session) or "",
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=[c for c in SESSION_COLUMNS if c != "code_sessions"])
    table.insert(2, "code_sessions", table.groupby("participant_id")["session_id"].transform("size"))
    return table.sort_values("created", ignore_index=True)


def shared_codes(table: pd.DataFrame) -> pd.DataFrame:
    """Participant codes used by more than one session (of a sessions or a ratings table)."""
    column = "session_id" if "session_id" in table else "session_uuid"
    groups = table.groupby("participant_id", sort=True)[column].agg(lambda ids: sorted(set(ids)))
    rows = [{"participant_id": code, "n_sessions": len(ids), "sessions": " ".join(i[:8] for i in ids)}
            for code, ids in groups.items() if len(ids) > 1]  # fmt: skip
    return pd.DataFrame(rows, columns=["participant_id", "n_sessions", "sessions"])


def headphone_results(sessions_dir: str | Path) -> dict[str, dict]:
    """Session id -> headphone-check result (n_correct, n_trials, passed, answers) of every session file
    in ``sessions_dir`` that has one (for listening_study.analysis.pipeline); unreadable files are skipped."""
    results = {}
    for path in sorted(Path(sessions_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("headphones"), dict) and data["headphones"]:
            results[str(data.get("session_id", path.stem))] = data["headphones"]
    return results


def orphaned_sessions(store) -> list[str]:
    """Unfinished sessions that refer to stimuli the current stimulus set lacks: the study's songs,
    conditions or checkpoints changed under them (a new content hash renders new stimuli), so they can no
    longer be played. Their ratings so far stay in the ratings file."""
    known, orphans = store.stimuli.stimulus_ids, []
    for path in sorted(store.sessions_dir.glob("*.json")):
        try:
            session = store.resume(path.stem)
        except SessionError:
            continue
        used = {i for t in session.trials.values() for i in (t.reference, *t.stimuli.values())}
        if used - known and store.next_trial(session) is not None:
            orphans.append(session.session_id)
    return orphans
