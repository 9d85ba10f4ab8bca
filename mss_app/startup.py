"""The page served while the app gets ready (first run: the embedded dataset is generated, the study's
stimuli rendered), so a browser opened on the address sees what is being built and how far along it is.

A plain ``http.server`` on the app's own host and port, in a thread; it answers every GET with one small
self-refreshing page (``/progress.json`` for scripts); the app's API, audio and static routes and every
POST get 503 with Retry-After. It names no system and serves no audio. ``close()`` frees the port for the real app (uvicorn), which then answers the same address.
"""

from __future__ import annotations

import html
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Preparing the listening test</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; color: #222; }}
.bar {{ height: 1.2rem; background: #eee; border-radius: .6rem; overflow: hidden; }}
.fill {{ height: 100%; background: #3b7dd8; width: {percent:.0f}%; }}
p.small {{ color: #666; font-size: .9rem; }}
</style></head>
<body>
<h1>Preparing the listening test</h1>
<p>{message}</p>
<div class="bar" role="progressbar" aria-valuenow="{percent:.0f}" aria-valuemin="0" aria-valuemax="100">
<div class="fill"></div></div>
<p>{percent:.0f}% &middot; {elapsed:.0f} s so far{eta}</p>
<p class="small">This happens on the first start only. The page reloads itself and the test opens here
when everything is ready.</p>
</body></html>
"""


class StartupPage:
    """``with StartupPage(host, port) as page: page.update(0.3, "rendering songs (3 of 10)")``."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._state = {"fraction": 0.0, "message": "starting", "started": time.time()}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def update(self, fraction: float, message: str) -> None:
        with self._lock:
            self._state["fraction"] = min(max(float(fraction), 0.0), 1.0)
            self._state["message"] = str(message)

    def snapshot(self) -> dict:
        with self._lock:
            state = dict(self._state)
        elapsed = time.time() - state.pop("started")
        fraction = state["fraction"]
        eta = elapsed * (1 - fraction) / fraction if 0.02 < fraction < 1 else None
        return {**state, "elapsed_s": round(elapsed, 1), "eta_s": None if eta is None else round(eta)}

    def render(self) -> str:
        state = self.snapshot()
        eta = f" &middot; about {state['eta_s']} s to go" if state["eta_s"] is not None else ""
        return PAGE.format(
            message=html.escape(state["message"]),
            percent=100 * state["fraction"],
            elapsed=state["elapsed_s"],
            eta=eta,
        )

    def start(self) -> StartupPage:
        page = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Retry-After", "2")
                self.end_headers()
                self.wfile.write(body)

            def _not_yet(self) -> None:  # the API, audio and static files do not exist yet: 503, retry
                body = json.dumps({"detail": "the app is starting; retry in a few seconds"}).encode()
                self._send(503, body, "application/json")

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?")[0]
                if path == "/progress.json":
                    self._send(200, json.dumps(page.snapshot()).encode(), "application/json")
                elif path.startswith("/mushra/") or "/api/" in path:
                    self._not_yet()
                else:
                    self._send(200, page.render().encode(), "text/html; charset=utf-8")

            def do_POST(self) -> None:  # noqa: N802
                self._not_yet()

            do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

            def log_message(self, *args) -> None:  # quiet: the console shows the app's own progress
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="startup-page", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StartupPage:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
