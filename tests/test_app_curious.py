"""The app in headless Chromium, played by a curious participant looking for the conditions behind the letters:
file names, sizes, headers, hashes of public files and the page's own state tell nothing (an app of its own,
``running_app`` in conftest)."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import httpx
import pytest
from app_browser import (
    ANSWERS,
    current_trial,
    start_session,
)
from helpers import step_audio_urls

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


HASHES = (hashlib.md5, hashlib.sha1, hashlib.sha256)


def _public_guesses(public: list[str], conditions) -> dict[str, str]:
    """Every hex digest of '/'-, ':'- or ''-joined public inputs ending in a condition name -> the name."""
    guesses = {}
    for condition in conditions:
        for size in range(0, 4):
            for parts in itertools.permutations(public, size):
                for separator in ("/", ":", ""):
                    text = separator.join([*parts, condition]).encode()
                    for digest in HASHES:
                        guesses[digest(text).hexdigest()] = condition
    return guesses


def test_curious_participant_learns_nothing(running_app, browser, shots):
    from listening_study.design.study import study_hash

    url, context = running_app
    study = context.study
    secret_names = [*study.system_names, *study.anchors]  # what must never reach a participant
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    bodies = []
    page.on("response", lambda r: bodies.append(r) if "/mushra/api/" in r.url else None)
    start_session(page, url, context)
    session_id, trial_id, labels = current_trial(page)
    session = page.evaluate("window.mushra.app.session")
    trial = session["trial"]
    urls = {"REF": trial["reference_url"], **{c["label"]: c["url"] for c in trial["conditions"]}}
    tokens = {label: link.rsplit("/", 1)[1] for label, link in urls.items()}

    # 1. Ids recomputed from every public input (study hash and id, session id, trial id, page, label).
    public = [study_hash(study), study.study_id, session_id, trial_id, "trial", *labels, "REF"]
    guesses = _public_guesses(public[:5], study.conditions)
    for token in tokens.values():
        assert not any(guess.startswith(token) or token.startswith(guess[:16]) for guess in guesses)
    server_ids = {path.stem for path in Path(context.stimuli.root).rglob("*.wav")}
    assert not set(tokens.values()) & server_ids  # the page never sees a stimulus id
    with httpx.Client(base_url=url, timeout=30) as client:
        for guess in list(guesses)[:200]:  # guessed tokens of this session: none is served
            assert client.get(f"/mushra/audio/{session_id}/{guess[:32]}").status_code == 404
        # Another session: other tokens for the same trials and labels.
        other = client.post("/mushra/api/start", json={"consent": True}).json()
        other_id = other["session_id"]
        other = client.post(
            "/mushra/api/questionnaire", json={"session_id": other_id, "answers": ANSWERS}
        ).json()
        for link in step_audio_urls(other):
            assert client.get(link).status_code == 200
        other = client.post("/mushra/api/step", json={"session_id": other_id, "step": "volume"}).json()
        for sound in other["headphones"]["trials"]:
            assert client.get(sound["url"]).status_code == 200
        right = [t.quiet for t in context.sessions.headphone_design(context.sessions.resume(other_id))]
        other = client.post("/mushra/api/headphones", json={"session_id": other_id, "answers": right}).json()
        for step in ("familiarization", "instructions"):
            for link in step_audio_urls(other):
                assert client.get(link).status_code == 200
            other = client.post("/mushra/api/step", json={"session_id": other_id, "step": step}).json()
        other_links = [other["trial"]["reference_url"], *(c["url"] for c in other["trial"]["conditions"])]
        assert other["step"] == "trial" and other_id != session_id
        assert not {link.rsplit("/", 1)[1] for link in other_links} & set(tokens.values())
        # A token of one session does not open anything in another.
        assert client.get(f"/mushra/audio/{other_id}/{tokens['A']}").status_code == 404

    # 2. Headers and bytes: every file of the trial looks the same from outside; the hidden reference is
    # not the open reference byte for byte.
    responses = {label: page.request.get(url + link) for label, link in urls.items()}
    contents = {label: response.body() for label, response in responses.items()}
    header_sets = set()
    for response in responses.values():
        headers = {k.lower(): v for k, v in response.headers.items()}
        assert response.status == 200 and "etag" not in headers and "last-modified" not in headers
        assert headers["cache-control"] == "no-store"
        header_sets.add(tuple(sorted((k, v) for k, v in headers.items() if k != "date")))
    assert len(header_sets) == 1  # identical headers, Content-Length included
    assert len({len(body) for body in contents.values()}) == 1
    assert (
        len({body[:44] for body in contents.values()}) == 1 and contents["A"][:4] == b"RIFF"
    )  # one WAV header
    # The browser decodes to exactly this session's copy of the WAV the analysis reads (within 1 LSB of it).
    import hashlib as _hashlib

    import numpy as np
    import soundfile as sf

    from listening_study.delivery.wav import session_pcm

    stimulus_of = context.sessions.resume(session_id).trials[trial_id].stimuli
    for label in ("A", "REF"):
        digest = page.evaluate(
            """async (link) => {
                const bytes = await (await fetch(link)).arrayBuffer();
                const decoded = await new OfflineAudioContext(2, 44100, 44100).decodeAudioData(bytes);
                const pcm = new Int16Array(decoded.length * 2);
                for (let c = 0; c < 2; c++) {
                    const data = decoded.getChannelData(c);
                    // Chromium's 16-bit to float: positive samples / 32767, negative / 32768 (WAV alike)
                    for (let i = 0; i < data.length; i++) {
                        pcm[c * data.length + i] = Math.round(data[i] * (data[i] > 0 ? 32767 : 32768));
                    }
                }
                const hash = await crypto.subtle.digest("SHA-256", pcm.buffer);
                return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
            }""",
            urls[label],
        )
        stimulus = (
            context.sessions.resume(session_id).trials[trial_id].reference
            if label == "REF"
            else stimulus_of[label]
        )
        wav, _ = sf.read(context.stimuli.path(stimulus), dtype="int16")
        seed = context.sessions.delivery_seed(session_id, "trial", trial_id, label)
        expected = session_pcm(np.ascontiguousarray(wav.T), seed)
        assert digest == _hashlib.sha256(np.ascontiguousarray(expected).tobytes()).hexdigest(), label
    assert len(set(contents.values())) == len(contents)  # no two files alike, hidden reference included
    truth = context.sessions.resume(session_id).trials[trial_id].labels
    hidden = next(label for label, condition in truth.items() if condition == "reference")
    assert contents[hidden] != contents["REF"]

    # 3. Nothing the participant's page or API says names a condition (text, attributes, URLs, JSON).
    page_text = page.content() + "".join(
        page.request.get(f"{url}/mushra/static/{name}").text()
        for name in ("mushra.js", "mushra-trial.js", "mushra-audio.js")
    )
    api_text = " ".join(r.text() for r in bodies if r.ok)
    for name in secret_names:
        assert name not in page_text.lower() and name not in api_text, name
    for server_id in server_ids:
        assert server_id not in api_text

    # 4. The experimenter's views without the password: the login, 401 or 404, never their content.
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        assert client.get("/experimenter/").headers["location"] == "/experimenter/login"
        for path in ("/experimenter/config", "/experimenter/gradio_api/info", "/experimenter/theme.css",
                     f"/experimenter/gradio_api/file={context.ratings_csv}"):  # fmt: skip
            assert client.get(path).status_code == 401, path
        assert client.post("/experimenter/gradio_api/queue/join", json={}).status_code == 401
        for path in ("/config", "/gradio_api/info", "/docs", "/openapi.json", "/results",
                     f"/gradio_api/file={next(Path(context.stimuli.root).rglob('trial.json'))}"):  # fmt: skip
            assert client.get(path).status_code == 404, path
        forged = {"mss_experimenter": "9999999999.0000"}
        assert client.get("/experimenter/config", cookies=forged).status_code == 401
        # Hostile bodies: bounded, and refused with a sentence naming the field.
        huge = client.post("/mushra/api/submit", content=b"{" + b" " * 40_000 + b"}",
                           headers={"content-type": "application/json"})  # fmt: skip
        assert huge.status_code == 413 and "too large" in huge.json()["detail"]
        bad = client.post("/mushra/api/submit", json={"session_id": session_id, "trial_id": trial_id,
                          "scores": dict.fromkeys(labels, True), "plays": dict.fromkeys(labels, 1),
                          "listen_ms": dict.fromkeys(labels, 5000)})  # fmt: skip
        assert bad.status_code == 400 and "rating of A must be a finite number" in bad.json()["detail"]
        malformed = client.post("/mushra/api/submit", json={"session_id": session_id})
        assert malformed.status_code == 422 and "trial_id" in malformed.json()["detail"]
    page.close()
