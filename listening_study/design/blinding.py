"""The secret that keeps a study blind: one random key per study folder, never sent anywhere.

    key = StudyKey.load_or_create(path)       # 32 random bytes in a 0600 file, created once (race-safe)
    key.token(*parts) -> str                  # 32 hex chars of HMAC-SHA256(key, "/".join(parts))
    key.seed(*parts) -> int                   # a 128-bit seed for numpy.random.default_rng
    key.code(*parts) -> str                   # "K7Q2-M9XD": a completion code a person can read out

Everything a participant could use to tell conditions apart is derived through this key: the audio
tokens of a session (different for every session, label and page), the trial order and the label
shuffle of a session. Without the key, the public inputs (study file, session id, trial id, the code
of this repository) give nothing; with it, the experimenter can reproduce every session. The key is
kept in the study folder so that sessions resume across restarts and several app processes serving
one study agree.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from listening_study.errors import StudyError

KEY_BYTES = 32
#: Letters of completion codes: no 0/O or 1/I/L to misread.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class StudyKey:
    """See the module docstring. ``repr`` never shows the key."""

    def __init__(self, secret: bytes):
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise StudyError("a study key needs at least 16 random bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "StudyKey(<secret>)"

    @classmethod
    def random(cls) -> StudyKey:
        """A key for this process only (tests, or a study that need not survive a restart)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load_or_create(cls, path: str | Path) -> StudyKey:
        """The key stored at ``path``; created (mode 0600) when missing. Two processes starting at once
        agree: the file is linked into place only if nobody else did it first."""
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mkstemp: mode 0600
            try:
                os.write(fd, secrets.token_bytes(KEY_BYTES))
                os.fsync(fd)
                os.close(fd)
                try:
                    os.link(tmp, path)  # fails if another process linked its key first: use that one
                except FileExistsError:
                    pass
            finally:
                Path(tmp).unlink(missing_ok=True)
        secret = path.read_bytes()
        if len(secret) < 16:
            raise StudyError(
                f"the study key {path} is damaged (fewer than 16 bytes); delete it to make a new one"
            )
        return cls(secret)

    def _digest(self, parts) -> bytes:
        message = "/".join(str(part) for part in parts).encode()
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def token(self, *parts) -> str:
        return self._digest(parts).hex()[:32]

    def seed(self, *parts) -> int:
        return int.from_bytes(self._digest(parts)[:16], "big")

    def code(self, *parts) -> str:
        digest = self._digest(parts)
        letters = "".join(_CODE_ALPHABET[b % len(_CODE_ALPHABET)] for b in digest[:8])
        return f"{letters[:4]}-{letters[4:]}"
