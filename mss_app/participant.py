"""The participant page: one static HTML page that holds the listening test and nothing else.

No Gradio, no other tab, no link to the experimenter's views: the page loads mushra-audio.js (the audio
engine), mushra-trial.js (the player page) and mushra.js (the session flow), which mounts itself on the element carrying ``data-mushra-api`` and talks only to the API in mss_app/api.py.
A strict Content-Security-Policy (scripts, styles, audio and requests from this server only; no
inline script) keeps anything else out.
"""

from __future__ import annotations

from pathlib import Path

import fastapi
from fastapi.responses import HTMLResponse, Response

#: The app's icon (a neutral waveform), for the participant page, the login and the experimenter's views.
FAVICON = Path(__file__).with_name("favicon.svg")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Listening test</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/mushra/static/mushra.css">
<link rel="stylesheet" href="/mushra/static/mushra-headphones.css">
</head>
<body>
<main class="mushra-app" id="mushra-root" data-mushra-api="/mushra/api">
<noscript>This listening test needs JavaScript.</noscript>
</main>
<script src="/mushra/static/mushra-audio.js"></script>
<script src="/mushra/static/mushra-trial.js"></script>
<script src="/mushra/static/mushra-headphones.js"></script>
<script src="/mushra/static/mushra.js"></script>
</body>
</html>
"""
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def build_participant_router() -> fastapi.APIRouter:
    router = fastapi.APIRouter()

    @router.get("/", response_class=HTMLResponse)
    def page():
        return HTMLResponse(PAGE, headers=HEADERS)

    icon = FAVICON.read_bytes()

    @router.get("/favicon.svg")
    @router.get("/favicon.ico")  # what a browser asks for when a page names no icon
    def favicon():
        return Response(icon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    return router
