"""Load test: 50 simulated participants at once through the app's HTTP API (the browser's code path).

Each participant starts a session, downloads one stimulus of every trial through the whitelisted audio
route and submits every trial; afterwards every (session, trial, label) row is in the ratings CSV exactly
once and the file parses with pandas. Loopback only, bounded threads, a timeout on every request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from helpers import load_app_module, make_tiny_checkpoints

pytestmark = pytest.mark.timeout(240)

REPO_ROOT = Path(__file__).resolve().parents[1]
PARTICIPANTS = 50
WORKERS = 25
REQUEST_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def running_app(tiny_dataset, tmp_path_factory):
    app_module = load_app_module()
    folder = tmp_path_factory.mktemp("app-load")
    checkpoints = list(make_tiny_checkpoints(folder).items())
    config = app_module.AppConfig(
        dataset=str(tiny_dataset), study_dir=folder / "study", checkpoints=tuple(checkpoints),
        n_songs=1, targets=("vocals", "drums"),
    )  # fmt: skip
    context = app_module.load_study_context(config)
    assert context.error is None, context.error
    with app_module.BackgroundServer(app_module.build_app(config, context)) as url:
        yield url, context


def participant(url: str, number: int) -> dict:
    """One participant: start, fetch audio, submit every trial; returns what was submitted."""
    submitted = {}
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        response = client.post("/mushra/api/start", json={"participant_id": f"L{number:03d}"})
        response.raise_for_status()
        session = response.json()
        session = client.post("/mushra/api/training_done", json={"session_id": session["session_id"]}).json()
        while session["trial"] is not None:
            trial = session["trial"]
            labels = [c["label"] for c in trial["conditions"]]
            audio = client.get(trial["conditions"][number % len(labels)]["url"])
            assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
            scores = {label: (number * 7 + 13 * i) % 101 for i, label in enumerate(labels)}
            payload = {
                "session_id": session["session_id"], "trial_id": trial["trial_id"], "scores": scores,
                "plays": {label: 1 + i for i, label in enumerate(labels)}, "time_ms": 1000 + number,
                "comment": f"participant {number}",
            }  # fmt: skip
            response = client.post("/mushra/api/submit", json=payload)
            assert response.status_code == 200, response.text
            submitted[trial["trial_id"]] = scores
            session = response.json()
        assert session["n_done"] == session["n_trials"] == len(submitted)
        # A replayed submission is refused with the backend's message, and writes nothing.
        replay = client.post("/mushra/api/submit", json=payload)
        assert replay.status_code == 400 and "already submitted" in replay.json()["detail"]
    return {"session_id": session["session_id"], "submitted": submitted}


def test_fifty_concurrent_participants(running_app):
    url, context = running_app
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(lambda n: participant(url, n), range(PARTICIPANTS), timeout=180))

    ratings = pd.read_csv(context.ratings_csv)
    n_trials = len(context.stimuli.trials)
    n_conditions = len(context.study.conditions)
    assert len(ratings) == PARTICIPANTS * n_trials * n_conditions
    assert not ratings.duplicated(["session_uuid", "trial_id", "screen_label"]).any()
    for result in results:
        rows = ratings[ratings["session_uuid"] == result["session_id"]]
        assert set(rows["trial_id"]) == set(result["submitted"])
        for trial_id, scores in result["submitted"].items():
            trial_rows = rows[rows["trial_id"] == trial_id]
            assert dict(zip(trial_rows["screen_label"], trial_rows["rating_score"], strict=True)) == scores
            assert sorted(trial_rows["rating_stimulus"]) == sorted(context.study.conditions)


def test_bad_requests_are_refused(running_app):
    url, context = running_app
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        for bad in ("..%2F..%2Fetc%2Fpasswd", "0123456789abcdef", "ratings.csv"):
            assert client.get(f"/mushra/audio/{bad}").status_code == 404
        assert client.get("/mushra/static/..%2F..%2Fapp.py").status_code == 404
        # Gradio's own file route must not expose the stimulus cache (trial.json names the conditions).
        manifest = next(Path(context.stimuli.root).glob("*/trial.json"))
        assert client.get(f"/gradio_api/file={manifest}").status_code in (403, 404)
        assert client.get(f"/gradio_api/file={context.ratings_csv}").status_code in (403, 404)
        session = client.post("/mushra/api/start", json={"participant_id": "Q1"}).json()
        trial = client.post("/mushra/api/training_done", json={"session_id": session["session_id"]}).json()[
            "trial"
        ]
        labels = [c["label"] for c in trial["conditions"]]
        base = {"session_id": session["session_id"], "trial_id": trial["trial_id"], "time_ms": 5,
                "plays": dict.fromkeys(labels, 1)}  # fmt: skip
        cases = [
            ({**base, "scores": dict.fromkeys(labels, 101)}, "0-100"),
            ({**base, "scores": dict.fromkeys(labels, 50), "trial_id": "t99-nope"}, "unknown trial"),
            (
                {**base, "scores": dict.fromkeys(labels, 50), "plays": {**base["plays"], labels[0]: 0}},
                "not yet played",
            ),
            ({**base, "scores": dict.fromkeys(labels, 50), "session_id": "../../x"}, "session"),
        ]
        before = pd.read_csv(context.ratings_csv).shape[0]
        for payload, message in cases:
            response = client.post("/mushra/api/submit", json=payload)
            assert response.status_code == 400 and message in response.json()["detail"], response.text
        assert pd.read_csv(context.ratings_csv).shape[0] == before
        bad_participant = client.post("/mushra/api/start", json={"participant_id": "Jane Doe <x@y.z>"})
        assert bad_participant.status_code == 400


def test_ab_preference_round_trip(running_app):
    url, context = running_app
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        session = client.post("/mushra/api/start", json={"participant_id": "AB1", "mode": "ab"}).json()
        assert session["mode"] == "ab" and session["training"] is None
        trial = session["trial"]
        assert [c["label"] for c in trial["conditions"]] == ["A", "B"]
        payload = {
            "session_id": session["session_id"], "trial_id": trial["trial_id"], "plays": {"A": 2, "B": 1},
            "time_ms": 900, "comment": "", "scores": {"choice": "B", "confidence": 3},
        }  # fmt: skip
        bad = client.post("/mushra/api/submit", json={**payload, "scores": {"choice": "B", "confidence": 7}})
        assert bad.status_code == 400 and "confidence" in bad.json()["detail"]
        assert client.post("/mushra/api/submit", json=payload).status_code == 200
    ratings = pd.read_csv(context.ratings_csv)
    rows = ratings[
        (ratings["session_uuid"] == session["session_id"]) & (ratings["trial_id"] == trial["trial_id"])
    ]
    assert set(rows["mode"]) == {"ab"}
    assert dict(zip(rows["screen_label"], rows["rating_score"], strict=True)) == {"A": 0.0, "B": 3.0}
    assert sorted(rows["rating_stimulus"]) == sorted(context.study.ab_pairs[0])
