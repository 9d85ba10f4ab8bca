"""Atomic file writes: the one way this project replaces a file, so a reader never sees half of one; and
``append_line``, the one way it adds a line to a log that several processes write.

Every writer makes a uniquely named temp file in the target's folder (``.<name>.<pid>.<random>.tmp``),
writes it, and ``os.replace``-s it over the target; a failed write removes its temp file. A process killed
mid-write can still leave one behind: ``TEMP_GLOB`` matches them (training cleans its run folder with it).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: glob of the temp files ``atomic_path(<folder>/<name>)`` creates, relative to the folder
TEMP_GLOB: str = ".{name}.*.tmp"


def temp_file(folder: str | os.PathLike, prefix: str, suffix: str) -> Path:
    """A new, empty, uniquely named file in ``folder`` for an atomic write (then ``os.replace``).

    Not tempfile.mkstemp: it creates 0600 files, and os.replace keeps that mode, so results would be
    unreadable to anyone else. Mode 0666 filtered by the process umask gives what a plain open() would
    (0644 under umask 022).
    """
    for _ in range(100):
        tmp = Path(folder) / f"{prefix}{os.getpid()}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {folder}")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside ``path`` to write; on success it replaces ``path``, on failure it is removed.

    ``suffix`` ends the temp name (``.wav.tmp`` keeps a format-sniffing writer happy). The folder is created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file(path.parent, f".{path.name}.", suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def append_line(path: str | os.PathLike, line: str, mode: int = 0o644) -> None:
    """Append ``line`` (ending in a newline) to ``path`` with one ``os.write`` on an ``O_APPEND`` descriptor:
    processes appending to one file interleave whole lines, never parts of them. ``mode`` for a new file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
