"""The page app.py serves while it prepares (first run: dataset generation, stimuli)."""

from __future__ import annotations

import re
import socket

import httpx

from mss_app.startup import StartupPage, free_port


def _without_clock(page: str) -> str:
    """The page minus its elapsed and remaining times."""
    return re.sub(r"\d+ s so far( &middot; about \d+ s to go)?", "", page)


def test_startup_page_shows_progress_and_frees_the_port():
    port = free_port()
    page = StartupPage("127.0.0.1", port).start()
    try:
        page.update(0.25, "Generating the embedded music dataset: song 18 of 72 <script>")
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        text = response.text
        assert "song 18 of 72 &lt;script&gt;" in text and "<script>" not in text  # escaped
        assert "25%" in text and 'http-equiv="refresh"' in text
        state = httpx.get(f"http://127.0.0.1:{port}/progress.json", timeout=5).json()
        assert state["fraction"] == 0.25 and state["message"].startswith("Generating")
        # every path serves the same page (the clock in it may have moved on a busy machine)
        other = httpx.get(f"http://127.0.0.1:{port}/experimenter", timeout=5).text
        assert _without_clock(other) == _without_clock(text)
        for path in ("/mushra/api/info", "/mushra/audio/x/y", "/experimenter/api/results"):
            assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code == 503
        refused = httpx.post(f"http://127.0.0.1:{port}/mushra/api/start", json={"consent": True}, timeout=5)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
        page.update(7.0, "done")
        assert httpx.get(f"http://127.0.0.1:{port}/progress.json", timeout=5).json()["fraction"] == 1.0
    finally:
        page.close()
    with socket.socket() as sock:  # the app itself can bind the same address now
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


class _Page:
    """A StartupPage stand-in: serve() only updates and closes it."""

    def update(self, fraction, message):
        pass

    def close(self):
        pass


def test_serve_says_at_start_when_participants_have_no_contact(monkeypatch, capsys):
    """Without a contact the consent page can only say "ask the person who invited you": the experimenter is
    told so at start; with one, no note."""
    from types import SimpleNamespace

    from mss_app import launch
    from mss_app.config import AppConfig
    from mss_app.context import StudyContext

    for contact, noted in (("", True), ("jane.doe@example.org", False)):
        context = StudyContext(study=SimpleNamespace(contact=contact))
        monkeypatch.setattr(launch, "_prepare", lambda config, page, context=context: context)
        monkeypatch.setattr(launch, "build_app", lambda config, context: None)
        monkeypatch.setattr(launch.uvicorn, "run", lambda app, **kwargs: None)
        launch.serve(AppConfig(password="secret"), _Page())
        err = capsys.readouterr().err
        assert (launch.NO_CONTACT_NOTE in err) is noted and "participants: http://" in err
