"""Load test: 100 simulated participants at once, across two app processes serving one study folder.

Two ``python app.py`` processes (as an experimenter would start them behind a load balancer) share the
study folder: stimuli, sessions, ratings.csv and the study key. Each participant goes through the whole
session over the HTTP API the page uses (consent, questionnaire, volume, familiarization, instructions,
every graded trial with one stimulus downloaded) and alternates between the two processes on every
request, so each step is read back by the other process. Afterwards every (session, trial, label) row
is in the ratings CSV exactly once, with the scores that were sent. Loopback only, bounded threads, a
timeout on every request. The figures (participants, processes, rows, seconds) are printed (pytest -s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from helpers import REPO_ROOT, load_app_module, make_tiny_checkpoints, step_audio_urls

from mss_app.context import load_study_context

pytestmark = pytest.mark.timeout(300)

PARTICIPANTS = 100
PROCESSES = 2
WORKERS = 20
REQUEST_TIMEOUT_S = 30.0
PASSWORD = "load-test-password"
ANSWERS = {"age": "35-44", "experience": "experienced", "headphones": "open"}


def _study_file(folder: Path, dataset: Path, checkpoints: dict[str, Path]) -> Path:
    from mss.data import open_db

    song = sorted(track.name for track in open_db(dataset, subset="test").tracks)[0]
    path = folder / "study.yaml"
    path.write_text(
        f"study_id: load\ndataset: {dataset}\nexcerpt_s: 3\ntargets: [vocals, drums]\nsongs: [{song!r}]\n"
        f"systems: {{unet: {checkpoints['unet']}, demucs: {checkpoints['demucs']}}}\n"
        "familiarization_excerpts: 1\nmin_listen_s: 0\n"
        "headphone_check: false\n"  # 100 x 6 sounds of 0.7 MB: tested in test_study_sessions and test_app instead
    )
    return path


def _wait_until_up(url: str, process: subprocess.Popen, deadline_s: float = 180.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"app process exited with {process.returncode}: {process.stderr.read()[-2000:]}"
            )
        try:
            if httpx.get(url + "/mushra/api/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the app at {url} did not come up in {deadline_s:g} s")


@pytest.fixture(scope="module")
def two_apps(tiny_dataset, tmp_path_factory):
    """Two app.py processes on one study folder; the stimuli are rendered once, here, before."""
    app_module = load_app_module()
    folder = tmp_path_factory.mktemp("app-load")
    study_file = _study_file(folder, tiny_dataset, make_tiny_checkpoints(folder))
    config = app_module.AppConfig(study_file=study_file, study_dir=folder / "study")
    context = load_study_context(config)  # renders the stimuli and creates the study key
    assert context.error is None, context.error
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    processes, urls = [], []
    try:
        for _ in range(PROCESSES):
            port = app_module.free_port()
            command = [
                sys.executable,
                str(REPO_ROOT / "app.py"),
                "--study",
                str(study_file),
                "--study-dir",
                str(folder / "study"),
                "--port",
                str(port),
                "--password",
                PASSWORD,
                "--sessions-per-client",
                "0",
            ]  # fmt: skip  (every participant comes from loopback)
            processes.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.PIPE, text=True))  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            _wait_until_up(url, process)
        yield urls, context
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def participant(urls: list[str], number: int) -> dict:
    """One participant's whole session, alternating between the app processes on every request."""
    clients = [httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) for url in urls]
    turn = iter(range(number, number + 1000))

    def post(path: str, body: dict) -> dict:
        response = clients[next(turn) % len(clients)].post(path, json=body)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    try:
        session = post("/mushra/api/start", {"participant_id": f"L{number:03d}", "consent": True})
        session_id = session["session_id"]
        session = post("/mushra/api/questionnaire", {"session_id": session_id, "answers": ANSWERS})
        for step in ("volume", "familiarization", "instructions"):
            assert session["step"] == step
            for url in step_audio_urls(session):  # the page loads the step's audio first
                assert clients[next(turn) % len(clients)].get(url).status_code == 200
            session = post("/mushra/api/step", {"session_id": session_id, "step": step})
        submitted = {}
        while session["step"] == "trial":
            trial = session["trial"]
            labels = [c["label"] for c in trial["conditions"]]
            # every file of the trial, from either process: the server refuses a trial whose files it
            # never sent to the session
            for url in [trial["reference_url"], *(c["url"] for c in trial["conditions"])]:
                audio = clients[next(turn) % len(clients)].get(url)
                assert audio.status_code == 200 and audio.content[:4] == b"RIFF"  # WAV delivery
            scores = {label: (number * 7 + 13 * i) % 100 for i, label in enumerate(labels)}
            scores[labels[number % len(labels)]] = 100  # the rules want one version at 100
            payload = {
                "session_id": session_id, "trial_id": trial["trial_id"], "scores": scores,
                "plays": dict.fromkeys(labels, 1), "listen_ms": dict.fromkeys(labels, 3000),
                "time_ms": 1000 + number, "comment": f"participant {number}",
            }  # fmt: skip
            session = post("/mushra/api/submit", payload)
            submitted[trial["trial_id"]] = scores
        assert session["step"] == "finished" and session["n_done"] == session["n_trials"] == len(submitted)
        assert session["completion_code"]
        # A replayed submission is refused with the backend's message, and writes nothing.
        replay = clients[number % len(clients)].post("/mushra/api/submit", json=payload)
        assert replay.status_code == 400 and "already submitted" in replay.json()["detail"]
    finally:
        for client in clients:
            client.close()
    return {"session_id": session_id, "submitted": submitted}


def test_hundred_participants_across_two_processes(two_apps):
    urls, context = two_apps
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(lambda n: participant(urls, n), range(PARTICIPANTS), timeout=240))
    seconds = time.monotonic() - started

    ratings = pd.read_csv(context.ratings_csv)
    n_trials = len(context.stimuli.trials)
    n_conditions = len(context.study.conditions)
    expected_rows = PARTICIPANTS * n_trials * n_conditions
    print(f"\nload test: {PARTICIPANTS} participants, {PROCESSES} app processes, {len(ratings)} rows "
          f"(expected {expected_rows}), {seconds:.1f} s")  # fmt: skip
    assert len(ratings) == expected_rows
    assert not ratings.duplicated(["session_uuid", "trial_id", "screen_label"]).any()
    assert ratings["session_uuid"].nunique() == PARTICIPANTS
    for result in results:
        rows = ratings[ratings["session_uuid"] == result["session_id"]]
        assert set(rows["trial_id"]) == set(result["submitted"])
        for trial_id, scores in result["submitted"].items():
            trial_rows = rows[rows["trial_id"] == trial_id]
            assert dict(zip(trial_rows["screen_label"], trial_rows["rating_score"], strict=True)) == scores
            assert sorted(trial_rows["rating_stimulus"]) == sorted(context.study.conditions)
    table = context.sessions.sessions_table()
    assert (table["step"] == "finished").sum() == PARTICIPANTS and set(table["headphones"]) == {"open"}


def test_ab_preference_round_trip(two_apps):
    urls, context = two_apps
    with httpx.Client(base_url=urls[1], timeout=REQUEST_TIMEOUT_S) as client:
        session = client.post(
            "/mushra/api/start", json={"participant_id": "AB1", "mode": "ab", "consent": True}
        )
        sid = session.json()["session_id"]
        session = client.post(
            "/mushra/api/questionnaire", json={"session_id": sid, "answers": ANSWERS}
        ).json()
        assert session["step"] == "volume"
        for step in ("volume", "instructions"):  # no familiarization in A/B mode
            for url in step_audio_urls(session):
                assert client.get(url).status_code == 200
            session = client.post("/mushra/api/step", json={"session_id": sid, "step": step}).json()
        trial = session["trial"]
        assert session["mode"] == "ab" and [c["label"] for c in trial["conditions"]] == ["A", "B"]
        payload = {
            "session_id": sid, "trial_id": trial["trial_id"], "plays": {"A": 2, "B": 1}, "time_ms": 900,
            "listen_ms": {"A": 2000, "B": 2000}, "comment": "", "scores": {"choice": "B", "confidence": 3},
        }  # fmt: skip
        unheard = client.post("/mushra/api/submit", json=payload)  # no file of the trial fetched yet
        assert unheard.status_code == 400 and "not loaded: the reference, A, B" in unheard.json()["detail"]
        for url in [trial["reference_url"], *(c["url"] for c in trial["conditions"])]:
            assert client.get(url).status_code == 200
        bad = client.post("/mushra/api/submit", json={**payload, "scores": {"choice": "B", "confidence": 7}})
        assert bad.status_code == 400 and "confidence" in bad.json()["detail"]
        assert client.post("/mushra/api/submit", json=payload).status_code == 200
    ratings = pd.read_csv(context.ratings_csv)
    rows = ratings[(ratings["session_uuid"] == sid) & (ratings["trial_id"] == trial["trial_id"])]
    assert set(rows["mode"]) == {"ab"}
    assert dict(zip(rows["screen_label"], rows["rating_score"], strict=True)) == {"A": 0.0, "B": 3.0}
    assert sorted(rows["rating_stimulus"]) == sorted(context.study.ab_pairs[0])
