"""Who may see what: the experimenter password, request size limits and response headers.

    generate_password() -> str                       # when none is given: printed once at start
    ClientWindow(limit, window_s)                    # events per client address in a sliding window
    client_key(host) -> str                          # an IPv4 address, or an IPv6 address's /64
    ExperimenterAuth(password, logouts=None)         # login/logout routes, signed cookie, check
    ExperimenterGate(app, auth)                      # ASGI: /experimenter/* only with the cookie
    BodyLimit(app)                                   # ASGI: request bodies bounded (413)

The experimenter's views (results, sessions, spectrogram browser, downloads) name the systems, so
they sit behind a password on every interface, loopback included: a participant shares the machine
(or the network) with them. The cookie is ``<expiry>.<nonce>.<HMAC-SHA256(password, expiry, nonce)>``,
HttpOnly, SameSite=Strict and scoped to /experimenter, so it works across app processes that share the
password and no other site can use it. Logging out revokes it for good, not only in this browser: its
nonce is recorded (in memory, and in the ``logouts`` file that app processes sharing a study folder
share), and a revoked cookie is refused wherever it is shown again. Failed logins are rate limited.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from urllib.parse import parse_qs

import fastapi
from fastapi.responses import HTMLResponse, RedirectResponse

from mss.files import append_line

PREFIX = "/experimenter"
COOKIE = "mss_experimenter"
SESSION_S = 12 * 3600
#: Failed logins allowed per minute from one client address before the login answers that client 429
#: (per client: wrong passwords from anyone else never lock the experimenter out).
MAX_FAILURES_PER_MINUTE = 10
#: Client addresses whose failures are remembered at once (the oldest are forgotten first).
MAX_TRACKED_CLIENTS = 4096
#: Largest request body: the participant API's bodies are a few hundred bytes; the experimenter's
#: Gradio requests a few kilobytes.
BODY_LIMITS = (("/mushra/", 16 * 1024), ("", 1024 * 1024))
_LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Experimenter login</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.svg" type="image/svg+xml"><style>
body {{ font-family: system-ui, sans-serif; background: #fafbfc; }}
form {{ max-width: 360px; margin: 12vh auto; padding: 24px; background: #fff; border: 1px solid #dde; border-radius: 8px; }}
input, button {{ font-size: 16px; padding: 6px 8px; width: 100%; box-sizing: border-box; margin-top: 8px; }}
p.error {{ color: #b02525; font-weight: 600; }}
</style></head><body><form method="post" action="{prefix}/login">
<h2>Experimenter view</h2><p>Results, sessions and the spectrogram browser of the listening study.</p>
<label>Password <input type="password" name="password" autofocus autocomplete="current-password"></label>
<button type="submit">Log in</button>{error}</form></body></html>"""


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def client_key(host: str) -> str:
    """What a per-client limit counts: an IPv4 address as it is, an IPv6 address by its /64 (one client
    commonly holds a whole /64, so counting single addresses would limit nothing)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


class ClientWindow:
    """At most ``limit`` events per client address within ``window_s`` seconds (``limit`` 0: no limit).

    In memory, per process: each app process counts its own clients. At most MAX_TRACKED_CLIENTS
    addresses are remembered (the least recently seen are forgotten first), so a flood of addresses
    cannot exhaust memory.
    """

    def __init__(self, limit: int, window_s: float, clock=time.monotonic):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()  # client -> event times
        self._lock = threading.Lock()

    def full(self, client: str) -> bool:
        if self.limit <= 0:
            return False
        with self._lock:
            events = self._events.get(client)
            if events is None:
                return False
            now = self.clock()
            while events and now - events[0] > self.window_s:
                events.popleft()
            if not events:
                del self._events[client]
                return False
            return len(events) >= self.limit

    def reserve(self, client: str) -> bool:
        """Count an event unless the window is full, in one step (``full`` then ``add`` would let parallel
        requests through); False when full. ``release`` takes a reserved event back."""
        if self.limit <= 0:
            return True
        with self._lock:
            events = self._events.setdefault(client, deque())
            now = self.clock()
            while events and now - events[0] > self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            self._events.move_to_end(client)
            while len(self._events) > MAX_TRACKED_CLIENTS:
                self._events.popitem(last=False)
            return True

    def release(self, client: str) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            events = self._events.get(client)
            if events:
                events.pop()

    def add(self, client: str) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            self._events.setdefault(client, deque()).append(self.clock())
            self._events.move_to_end(client)
            while len(self._events) > MAX_TRACKED_CLIENTS:
                self._events.popitem(last=False)


class ExperimenterAuth:
    """``logouts``: a file where logouts are recorded for every app process sharing it (None: this
    process only)."""

    def __init__(self, password: str, logouts: str | os.PathLike | None = None):
        if not password:
            raise ValueError("the experimenter password must not be empty")
        self._key = password.encode()
        self._failures = ClientWindow(MAX_FAILURES_PER_MINUTE, 60.0)
        self._logouts = Path(logouts) if logouts is not None else None
        self._revoked: set[str] = set()
        self._read_at: tuple[float, int] | None = None  # (mtime, size) of the logouts file last read
        self._lock = threading.Lock()

    def _sign(self, expiry: int, nonce: str) -> str:
        return hmac.new(self._key, f"experimenter/{expiry}/{nonce}".encode(), hashlib.sha256).hexdigest()

    def cookie_value(self) -> str:
        expiry, nonce = int(time.time()) + SESSION_S, secrets.token_hex(16)
        return f"{expiry}.{nonce}.{self._sign(expiry, nonce)}"

    def _parse(self, cookie: str | None) -> tuple[int, str] | None:
        """(expiry, nonce) of a well-signed, unexpired cookie; None for anything else."""
        expiry, nonce, signature = ((cookie or "").split(".") + ["", ""])[:3]
        if not expiry.isdigit() or int(expiry) < time.time() or len(nonce) != 32:
            return None
        if not hmac.compare_digest(signature, self._sign(int(expiry), nonce)):
            return None
        return int(expiry), nonce

    def valid(self, cookie: str | None) -> bool:
        parsed = self._parse(cookie)
        return parsed is not None and parsed[1] not in self._revoked_nonces()

    def revoke(self, cookie: str | None) -> None:
        """Log this cookie out everywhere (a forged or expired one needs nothing)."""
        parsed = self._parse(cookie)
        if parsed is None:
            return
        with self._lock:
            self._revoked.add(parsed[1])
        if self._logouts is not None:
            self._logouts.parent.mkdir(parents=True, exist_ok=True)
            append_line(self._logouts, f"{parsed[0]} {parsed[1]}\n", mode=0o600)

    def _revoked_nonces(self) -> set[str]:
        """Nonces logged out here or, through the logouts file, by another process (re-read on change)."""
        if self._logouts is None:
            return self._revoked
        try:
            stat = self._logouts.stat()
        except FileNotFoundError:
            return self._revoked
        with self._lock:
            if self._read_at != (stat.st_mtime, stat.st_size):
                now = time.time()
                for line in self._logouts.read_text(errors="replace").splitlines():
                    expiry, _, nonce = line.partition(" ")
                    if expiry.isdigit() and int(expiry) >= now:  # expired cookies are refused anyway
                        self._revoked.add(nonce)
                self._read_at = (stat.st_mtime, stat.st_size)
            return set(self._revoked)

    def check_password(self, attempt: str) -> bool:
        return hmac.compare_digest(attempt.encode(), self._key)

    def router(self) -> fastapi.APIRouter:
        router = fastapi.APIRouter()
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}

        def form(error: str = "", status: int = 200) -> HTMLResponse:
            text = f'<p class="error">{html.escape(error)}</p>' if error else ""
            return HTMLResponse(_LOGIN.format(prefix=PREFIX, error=text), status_code=status, headers=headers)

        @router.get(PREFIX + "/login")
        def login_page():
            return form()

        @router.post(PREFIX + "/login")
        async def login(request: fastapi.Request):
            client = client_key(request.client.host if request.client else "")
            if self._failures.full(client):
                return form("Too many wrong passwords: wait a minute.", 429)
            fields = parse_qs((await request.body()).decode("utf-8", "replace"))
            if not self.check_password((fields.get("password") or [""])[0]):
                self._failures.add(client)
                return form("Wrong password.", 401)
            response = RedirectResponse(PREFIX + "/", status_code=303, headers=headers)
            response.set_cookie(COOKIE, self.cookie_value(), max_age=SESSION_S, path=PREFIX, httponly=True,
                                samesite="strict")  # fmt: skip
            return response

        @router.get(PREFIX + "/logout")
        def logout(request: fastapi.Request):
            self.revoke(request.cookies.get(COOKIE))
            response = RedirectResponse(PREFIX + "/login", status_code=303, headers=headers)
            response.delete_cookie(COOKIE, path=PREFIX)
            return response

        return router


def _cookie(scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None


async def _send_json(send, status: int, detail: str, extra_headers=()) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *extra_headers]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ExperimenterGate:
    """Everything under /experimenter (but the login) needs a valid cookie: HTML pages are sent to the
    login, anything else (Gradio's API, files, queue) gets a 401, websockets are closed."""

    PUBLIC = (PREFIX + "/login", PREFIX + "/logout")

    def __init__(self, app, auth: ExperimenterAuth):
        self.app, self.auth = app, auth

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        guarded = scope["type"] in ("http", "websocket") and (path == PREFIX or path.startswith(PREFIX + "/"))
        if not guarded or path in self.PUBLIC or self.auth.valid(_cookie(scope, COOKIE)):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        if scope.get("method") == "GET" and path in (PREFIX, PREFIX + "/"):
            location = (PREFIX + "/login").encode()
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", location), (b"content-length", b"0")]})  # fmt: skip
            return await send({"type": "http.response.body", "body": b""})
        return await _send_json(send, 401, "experimenter password required")


class BodyLimit:
    """Refuse (413) request bodies beyond BODY_LIMITS before the app reads them; the body is read here
    (at most the limit) and handed on, so a client that sends no Content-Length is bounded too."""

    def __init__(self, app, limits=BODY_LIMITS):
        self.app, self.limits = app, limits

    def _limit(self, path: str) -> int:
        return next(limit for prefix, limit in self.limits if path.startswith(prefix))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self._limit(scope.get("path", ""))
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _send_json(send, 400, "malformed Content-Length")
            if int(declared) > limit:
                return await _send_json(send, 413, f"request body too large (at most {limit} bytes)")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _send_json(send, 413, f"request body too large (at most {limit} bytes)")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body, delivered = b"".join(chunks), False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
