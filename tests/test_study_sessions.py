"""listening_study: sessions (randomised, reproducible, resumable; the headphone check) and the ratings store
(concurrent and refused submissions, A/B mode, file errors and formats, two processes on one file)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
import uuid

import pandas as pd
import pytest
from study_helpers import (
    ANSWERS,
    complete,
    fast_clock,
    fetch_trial,
    pass_headphone_check,
    ready,
)

from listening_study.design.session_design import SessionTrial, design_session
from listening_study.errors import RatingsFileError, SessionError, StimulusError, SubmissionError
from listening_study.sessions.model import Session
from listening_study.sessions.ratings import COLUMNS, LEGACY_COLUMNS, RatingsStore, read_ratings
from listening_study.sessions.store import SessionStore
from listening_study.sessions.table import orphaned_sessions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sessions_randomized_reproducible_and_resumable(rendered, tmp_path):
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    sessions = [store.start(consent=True) for _ in range(12)]
    mappings = {tuple(s.trials["t00-vocals"].labels.values()) for s in sessions}
    orders = {s.trial_order for s in sessions}
    assert len(mappings) > 4 and len(orders) == 2  # differs between participants
    for session in sessions[:3]:
        seed = store.key.seed("design", session.session_id)
        designed = design_session(seed, stimuli.trials, n_familiarization=2)
        assert designed == (
            session.trial_order,
            session.trials,
            session.familiarization,
            session.volume_trial,
        )
        assert store.resume(session.session_id) == session
        assert session.participant_id.startswith("P-")
        for trial in session.trials.values():
            assert trial.screen_labels == ["A", "B", "C", "D", "E", "F"]
            assert {trial.stimuli[label] for label in trial.labels} == set(
                stimuli.trial(trial.trial_id).conditions.values()
            )
    # a "reload": a new store on the same folder resumes exactly at the step, then after the submitted trial
    session = store.start("listener_07", consent=True)
    assert store.step(session) == "questionnaire"
    with pytest.raises(SessionError, match="Please answer"):
        store.answer_questionnaire(session.session_id, {"age": "25-34"})
    store.answer_questionnaire(session.session_id, ANSWERS)
    assert (
        SessionStore(tmp_path / "study", stimuli, clock=fast_clock()).step(store.resume(session.session_id))
        == "volume"
    )
    with pytest.raises(SessionError, match="at the volume step"):
        store.complete_step(session.session_id, "instructions")
    session = ready(store, session)
    first = store.next_trial(session)
    rules = {"listen_ms": dict.fromkeys(first.labels, 2500), "scores": dict.fromkeys(first.labels, 100.0)}
    fetch_trial(store, session.session_id)
    store.submit(session.session_id, first.trial_id, rules["scores"], dict.fromkeys(first.labels, 1), 1000,
                 listen_ms=rules["listen_ms"])  # fmt: skip
    reloaded = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    resumed = reloaded.resume(session.session_id)
    assert resumed.participant_id == "listener_07" and resumed.questionnaire == ANSWERS
    assert reloaded.progress(resumed) == (1, 2) and reloaded.step(resumed) == "trial"
    assert reloaded.next_trial(resumed).trial_id == session.trial_order[1]
    assert reloaded.completion_code(resumed) is None
    second = fetch_trial(reloaded, session.session_id)
    reloaded.submit(session.session_id, second.trial_id, rules["scores"], dict.fromkeys(first.labels, 1), 1000,
                    listen_ms=rules["listen_ms"])  # fmt: skip
    assert reloaded.step(resumed) == "finished"
    code = reloaded.completion_code(resumed)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code) and code == store.completion_code(resumed)
    table = reloaded.sessions_table().set_index("session_id").loc[session.session_id]
    assert (table["step"], table["completion_code"], table["age"]) == ("finished", code, "25-34")
    with pytest.raises(SessionError, match="agree to take part"):
        store.start("P1")
    for bad in ["../x", "a b", "x" * 40, "ä"]:
        with pytest.raises(SessionError, match="participant code"):
            store.start(bad, consent=True)
    for bad in ["../../etc/passwd", uuid.uuid4().hex]:
        with pytest.raises(SessionError):
            store.resume(bad)


def test_headphone_check_is_one_attempt_after_the_volume(rendered, tmp_path):
    """The check comes after the volume page; its sounds must have been sent before it is scored; a
    malformed answer is refused and stores nothing; one attempt only; a failure is stored and the session
    goes on; the sessions table shows the results and the codes shared by several sessions."""
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    passing, failing = store.start("P07", consent=True), store.start("P07", consent=True)
    for session in (passing, failing):
        store.answer_questionnaire(session.session_id, ANSWERS)
        complete(store, session.session_id, "volume")
        assert store.step(store.resume(session.session_id)) == "headphones"
    design = store.headphone_design(store.resume(passing.session_id))
    assert design == store.headphone_design(store.resume(passing.session_id))  # from the key: stable
    with pytest.raises(SubmissionError, match=r"not loaded: sound 1, 2, 3, 4, 5, 6\)"):
        store.answer_headphones(passing.session_id, [t.quiet for t in design])
    with pytest.raises(SessionError, match="at the headphones step"):
        complete(store, passing.session_id, "familiarization")
    for bad in ([True] * 6, [0] * 5, ["1"] * 6, [3] * 6):
        with pytest.raises(SubmissionError):
            store.answer_headphones(passing.session_id, bad)
    assert store.resume(passing.session_id).headphones == {}
    session = pass_headphone_check(store, passing.session_id)
    assert session.headphones == {
        "n_correct": 6,
        "n_trials": 6,
        "passed": True,
        "answers": [t.quiet for t in design],
    }
    assert store.step(session) == "familiarization"
    first = session.familiarization[0]
    store.serve_audio(passing.session_id, store.audio_token(session, "fam0", first.trial_id, "REF"))
    with pytest.raises(SubmissionError, match="not loaded the versions of excerpt 1(, excerpt 2)? yet"):
        store.complete_step(passing.session_id, "familiarization")  # the reference alone is not enough
    with pytest.raises(SessionError, match="not the headphone check"):
        store.answer_headphones(passing.session_id, [t.quiet for t in design])  # one attempt
    session = pass_headphone_check(store, failing.session_id, right=False)
    assert session.headphones["passed"] is False and session.headphones["n_correct"] == 0
    # a failed check ends the session there, with thanks and a code of its own: no trials rated for nothing
    assert store.step(session) == "screened_out" and store.screened_out(session)
    code = store.completion_code(session)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code) and code != store.key.code(
        "completion", failing.session_id
    )
    with pytest.raises(SubmissionError, match="screened_out step"):
        store.submit(failing.session_id, session.trial_order[0], {}, {}, 0)
    with pytest.raises(SessionError, match="screened_out step"):
        store.complete_step(failing.session_id, "familiarization")
    table = store.sessions_table().set_index("session_id")
    assert table.loc[passing.session_id, "headphone_check"] == "6/6 passed"
    assert table.loc[failing.session_id, "headphone_check"] == "0/6 failed"
    assert tuple(table.loc[failing.session_id, ["step", "completion_code"]]) == ("screened_out", code)
    # a session begun before that rule (no field in its file) goes on, as it was told when it started
    path = store.sessions_dir / f"{failing.session_id}.json"
    data = json.loads(path.read_text())
    del data["ends_on_failed_check"]
    path.write_text(json.dumps(data))
    assert store.step(store.resume(failing.session_id)) == "familiarization"
    assert (table["code_sessions"] == 2).all()
    # once answered, the check's sounds are no longer sent
    with pytest.raises(StimulusError):
        store.serve_audio(session.session_id, store.audio_token(session, "headphones", "0", "HP"))
    # during the check a sound is sent at most twice (the page plays it once; a reload gets it again),
    # each time a WAV of the same length with its own dither
    third = store.start(consent=True)
    store.answer_questionnaire(third.session_id, ANSWERS)
    with pytest.raises(SubmissionError, match="not loaded the example yet"):
        store.complete_step(third.session_id, "volume")  # the volume page's example was never sent
    complete(store, third.session_id, "volume")
    token = store.audio_token(third, "headphones", "0", "HP")
    first, again = store.serve_audio(third.session_id, token), store.serve_audio(third.session_id, token)
    assert first[:4] == b"RIFF" and len(first) == len(again) and first != again
    with pytest.raises(StimulusError):
        store.serve_audio(third.session_id, token)
    # a session begun before the study had the check never meets it (the field is fixed at the start)
    path = store.sessions_dir / f"{third.session_id}.json"
    data = json.loads(path.read_text())
    del data["headphone_check"]
    path.write_text(json.dumps(data))
    assert store.step(store.resume(third.session_id)) == "familiarization"
    assert orphaned_sessions(store) == []
    # a session whose stimuli the study no longer has (it changed under it) is named for the experimenter
    data["trials"][next(iter(data["trials"]))]["reference"] = "0" * 16
    path.write_text(json.dumps(data))
    assert orphaned_sessions(store) == [third.session_id]


def test_concurrent_submissions_are_all_kept(rendered, tmp_path):
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    sessions = [ready(store, store.start(f"p{i:02d}", consent=True)) for i in range(50)]
    for session in sessions:
        fetch_trial(store, session.session_id)
    barrier = threading.Barrier(50)
    errors = []

    def submit(session):
        trial = session.trials[session.trial_order[0]]
        scores = {label: float(i * 20) for i, label in enumerate(trial.screen_labels)}  # 0 ... 100
        barrier.wait()
        try:
            store.submit(
                session.session_id,
                trial.trial_id,
                scores,
                dict.fromkeys(trial.labels, 2),
                4321,
                'ok, "fine"\nthanks',
                listen_ms=dict.fromkeys(trial.labels, 3000),
            )
        except Exception as exc:  # collected: a failing thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    frame = pd.read_csv(store.ratings.path)
    assert tuple(frame.columns) == COLUMNS and len(frame) == 50 * 6
    assert frame.groupby(["session_uuid", "screen_label"]).size().eq(1).all()
    assert set(frame["session_uuid"]) == {s.session_id for s in sessions}
    assert (frame["rating_comment"] == 'ok, "fine"\nthanks').all()
    # the server's measurements: its own trial time (60 s per reading of the fast clock), not the page's
    # 4321 ms, which is kept beside it; every file sent once
    assert (frame["page_time_ms"] == 4321).all() and (frame["rating_time"] % 60_000 == 0).all()
    assert (frame["rating_time"] >= 60_000).all() and (frame["n_fetches"] == 1).all()
    # each session's rows are contiguous: the trials did not interleave
    assert (frame["session_uuid"] != frame["session_uuid"].shift()).sum() == 50
    # the true condition names are recorded under their screen labels
    session = sessions[0]
    rows = frame[frame["session_uuid"] == session.session_id].set_index("screen_label")
    for label, condition in session.trials[session.trial_order[0]].labels.items():
        assert rows.loc[label, "rating_stimulus"] == condition
    assert read_ratings(store.ratings.path)["rating_score"].dtype.kind == "f"


def test_refused_submissions_write_nothing(rendered, tmp_path):
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    session = store.start(consent=True)
    trial = store.next_trial(session)
    labels = trial.screen_labels
    scores, plays = {**dict.fromkeys(labels, 60.0), "A": 100.0}, dict.fromkeys(labels, 1)
    listen = dict.fromkeys(labels, 2000)
    before = store.ratings.path.read_bytes()
    with pytest.raises(SubmissionError, match="at the questionnaire step"):
        store.submit(session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen)
    session = ready(store, session)
    # A script that sends a perfect form without ever loading the trial's files is refused, and so is one
    # that loaded all but one of them (the server sent them, so it knows).
    with pytest.raises(SubmissionError, match=r"not loaded: the reference, A, B, C, D, E, F\)"):
        store.submit(session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen)
    for label in ["REF", *[x for x in labels if x != "C"]]:
        store.serve_audio(session.session_id, store.audio_token(session, "trial", trial.trial_id, label))
    store.serve_audio(
        session.session_id, store.audio_token(session, "fam0", session.familiarization[0].trial_id, "C")
    )
    with pytest.raises(SubmissionError, match=r"not loaded: C\)\. Reload the page"):  # C of another page: no
        store.submit(session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen)
    assert store.ratings.path.read_bytes() == before
    fetch_trial(store, session.session_id)
    cases = [
        (
            dict(scores={**scores, "B": None}),
            r"Please rate every version: move its slider \(not yet rated: B\)",
        ),
        (dict(scores={**scores, "B": True}), "must be a finite number"),
        (dict(scores={**scores, "A": 70.0}), "Please rate at least one version 100"),
        (dict(listen_ms={**listen, "C": 1200}), r"at least 2 s. Too short so far: C \(1.2 s\)"),
        (dict(listen_ms=None), "listening times must be given"),
        (dict(trial_id=session.trial_order[1]), "not the trial in progress"),
        (dict(session_id=uuid.uuid4().hex), "unknown session"),
        (dict(session_id="../../x"), "malformed session id"),
        (dict(trial_id="t99-vocals"), "unknown trial"),
        (dict(scores={k: v for k, v in scores.items() if k != "A"}), r"missing \['A'\]"),
        (dict(scores={**scores, "Z": 1.0}), r"extra \['Z'\]"),
        (dict(scores={**scores, "B": 100.5}), "within 0-100"),
        (dict(scores={**scores, "B": 50.5}), "whole numbers"),
        (dict(scores={**scores, "B": 1e-320}), "whole numbers"),
        (dict(scores={**scores, "B": -1}), "within 0-100"),
        (dict(scores={**scores, "C": math.nan}), "finite number"),
        (dict(scores={**scores, "C": math.inf}), "finite number"),
        (dict(scores={**scores, "C": "50"}), "finite number"),
        (dict(scores={**scores, "C": "70"}), "finite number"),
        (dict(plays={**plays, "D": 0}), r"not yet played: \['D'\]"),
        (dict(plays={k: v for k, v in plays.items() if k != "E"}), "play counts"),
        (dict(comment="x" * 1001), "at most 1000"),
        (dict(time_ms=-5), "time_ms"),
    ]
    for change, message in cases:
        defaults = dict(session_id=session.session_id, trial_id=trial.trial_id, scores=scores, plays=plays,
                        time_ms=1000, comment="", listen_ms=listen)  # fmt: skip
        arguments = {**defaults, **change}
        with pytest.raises(SubmissionError, match=message):
            store.submit(**arguments)
        assert store.ratings.path.read_bytes() == before, change
    # The page may lie about its listening times: the server's own clock still refuses a trial submitted
    # sooner than its 6 conditions x 2 s can have been heard (a store on the real clock, same session).
    with pytest.raises(SubmissionError, match=r"submitted 0\.\d s after it opened; .* at least 12 s"):
        SessionStore(tmp_path / "study", stimuli, clock=lambda: session.step_started + 0.5).submit(
            session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen
        )
    assert store.ratings.path.read_bytes() == before
    session = store.resume(session.session_id)
    rows = store.submit(session.session_id, trial.trial_id, scores, plays, 1000, "=HYPERLINK(evil)", listen)
    assert len(rows) == 6 and {r["mode"] for r in rows} == {"mushra"}
    assert {r["rating_comment"] for r in rows} == {"'=HYPERLINK(evil)"}  # a spreadsheet shows it as text
    after = store.ratings.path.read_bytes()
    with pytest.raises(SubmissionError, match="already submitted"):
        store.submit(session.session_id, trial.trial_id, scores, plays, 1000, listen_ms=listen)
    # another process's store (a fresh object on the same file) also sees the submission
    with pytest.raises(SubmissionError, match="already submitted"):
        RatingsStore(store.ratings.path).submit(session, trial.trial_id, scores, plays, 1000)
    assert store.ratings.path.read_bytes() == after


def test_ab_mode(rendered, tmp_path):
    _, stimuli = rendered
    store = SessionStore(tmp_path / "study", stimuli, clock=fast_clock())
    session = ready(store, store.start(mode="ab", consent=True))
    fetch_trial(store, session.session_id)
    assert len(session.trial_order) == 2 and all(t.startswith("ab0-") for t in session.trial_order)
    assert session.familiarization == ()  # the familiarization is MUSHRA's
    trial = store.next_trial(session)
    assert sorted(trial.labels.values()) == ["demucs", "unet"] and trial.screen_labels == ["A", "B"]
    listen = {"A": 2000, "B": 2500}
    with pytest.raises(SubmissionError, match="confidence"):
        store.submit_ab(session.session_id, trial.trial_id, "A", 4, {"A": 1, "B": 1}, 500, listen_ms=listen)
    with pytest.raises(SubmissionError, match="Too short so far: B"):
        store.submit_ab(
            session.session_id, trial.trial_id, "A", 2, {"A": 1, "B": 1}, 500, listen_ms={"A": 2000, "B": 10}
        )
    with pytest.raises(SubmissionError, match="not a mushra session"):
        store.submit(session.session_id, trial.trial_id, {"A": 1.0, "B": 2.0}, {"A": 1, "B": 1}, 500)
    rows = store.submit_ab(
        session.session_id, trial.trial_id, "B", 3, {"A": 1, "B": 2}, 500, listen_ms=listen
    )
    scores = {r["screen_label"]: r["rating_score"] for r in rows}
    assert scores == {"A": 0.0, "B": 3.0} and {r["mode"] for r in rows} == {"ab"}


def test_ratings_file_errors(tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,score\nalice,3\n")
    with pytest.raises(RatingsFileError, match="header is not the ratings header"):
        RatingsStore(wrong)
    assert wrong.read_text() == "name,score\nalice,3\n"  # not overwritten
    broken = tmp_path / "broken.csv"
    store = RatingsStore(broken)
    assert broken.read_text() == ",".join(COLUMNS) + "\n"
    RatingsStore(broken)  # an existing file with the right header is accepted, header written once
    assert broken.read_text().count("session_test_id") == 1
    with open(broken, "a") as handle:
        handle.write("just,three,fields\n")
    with pytest.raises(RatingsFileError, match="3 fields instead of 19"):
        store.completed("x")
    with pytest.raises(RatingsFileError):
        read_ratings(broken)
    assert broken.read_text().endswith("just,three,fields\n")


def test_ratings_file_of_an_earlier_version_stays_in_its_format(tmp_path):
    """A study running before the server counted its fetches keeps one format: rows appended to its file
    leave out the two new columns (and keep the page's time as rating_time, what the column meant there),
    and reading it gives them empty."""
    legacy = tmp_path / "ratings.csv"
    legacy.write_text(",".join(LEGACY_COLUMNS) + "\n")
    store = RatingsStore(legacy)
    labels = {"A": "x", "B": "reference"}
    trial = SessionTrial(
        "t00-vocals", "song", "vocals", 1.0, 4.0, "0" * 16, labels, {k: "0" * 16 for k in labels}
    )
    session = Session("ab" * 16, "P1", "s", "mushra", "", ("t00-vocals",), {"t00-vocals": trial})
    store.submit(session, "t00-vocals", {"A": 20.0, "B": 100.0}, {"A": 1, "B": 1}, 1500, server_ms=9300,
                 fetches={"A": 1, "B": 2})  # fmt: skip
    lines = legacy.read_text().splitlines()
    assert len(lines) == 3 and all(line.count(",") == len(LEGACY_COLUMNS) - 1 for line in lines)
    frame = read_ratings(legacy)  # rating_time keeps its meaning there: the page's time
    assert frame["rating_time"].tolist() == [1500, 1500] and frame["n_fetches"].isna().all()
    assert frame["page_time_ms"].isna().all()
    current = tmp_path / "current.csv"
    RatingsStore(current).submit(session, "t00-vocals", {"A": 20.0, "B": 100.0}, {"A": 1, "B": 1}, 1500,
                                 server_ms=9300, fetches={"A": 1, "B": 2})  # fmt: skip
    frame = read_ratings(current)
    assert frame["n_fetches"].tolist() == [1, 2] and frame["page_time_ms"].tolist() == [1500, 1500]
    assert frame["rating_time"].tolist() == [9300, 9300]


def test_two_processes_share_the_ratings_file(tmp_path):
    """fcntl.flock keeps rows of separate processes (each with its own store and lock) whole and unique."""
    script = """
import sys
from listening_study.sessions.ratings import RatingsStore
from listening_study.design.session_design import SessionTrial
from listening_study.sessions.model import Session
store = RatingsStore(sys.argv[1])
labels = {"A": "x", "B": "y", "C": "reference"}
for i in range(15):
    trial = SessionTrial("t00-vocals", "song", "vocals", 1.0, 4.0, "0" * 16, labels, {k: "0" * 16 for k in labels})
    session = Session(f"{sys.argv[2]}{i:031x}", "p" + sys.argv[2], "s", "mushra", "", ("t00-vocals",), {"t00-vocals": trial})
    store.submit(session, "t00-vocals", {"A": 1.0, "B": 2.0, "C": 3.0}, {"A": 1, "B": 1, "C": 1}, 10, "x" * 500)
"""
    csv_path = tmp_path / "ratings.csv"
    processes = [subprocess.Popen([sys.executable, "-c", script, str(csv_path), tag]) for tag in "ab"]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    frame = read_ratings(csv_path)
    assert len(frame) == 2 * 15 * 3 and frame.groupby(["session_uuid", "screen_label"]).size().eq(1).all()
    assert (frame["session_uuid"] != frame["session_uuid"].shift()).sum() == 30  # no interleaving
