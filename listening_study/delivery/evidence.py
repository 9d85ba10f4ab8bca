"""What the server itself knows about a session's listening: which of its audio files it sent, and
how much of each, kept per session in an append-only log.

    FetchLog(sessions_dir)
    FetchLog.record(session_id, page, trial_id, label, n_bytes, size)   # one line, appended
    FetchLog.fetched(session_id, page, trial_id) -> {label: Fetches(count, complete)}
    FetchLog.fetched_page(session_id, page) -> {trial_id: bool}   # any label of it sent whole
    missing_files(fetched, labels) -> list[str]       # labels not yet sent whole, in order

The page reports play counts and listening times, but a script can invent them; the files, however,
only the server serves (every audio URL is a per-session token, listening_study.design.blinding), so it can
refuse a trial whose files this session never received (SessionStore.submit) and store how often each
was sent beside the rating (``n_fetches``). A line is written when the response carrying the whole file is
built, before its body goes out (a submission right after the last fetch must find it), so it records what
was served, not what arrived: a client that hangs up early still counts. And it cannot prove that anybody
listened: a script can fetch every file and throw it away. It raises the bar from "post a form" to
"download the trial".

The log is ``sessions/<session id>.fetches``: one tab-separated line per response (time, page, trial id,
label, bytes sent, file size), appended with one ``os.write`` on an ``O_APPEND`` descriptor, so app
processes sharing the study folder interleave whole lines, never parts of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mss.files import append_line

#: The page's fetches of one trial are a handful; a log longer than this was written by a script.
MAX_LINES_READ = 100_000


@dataclass(frozen=True)
class Fetches:
    count: int  # responses that carried this file
    complete: bool  # at least one of them carried the whole file


class FetchLog:
    def __init__(self, sessions_dir: str | Path):
        self.sessions_dir = Path(sessions_dir)

    def _path(self, session_id: str) -> Path:
        # session_id is checked by the caller (SessionStore resolves the session first)
        return self.sessions_dir / f"{session_id}.fetches"

    def record(self, session_id: str, page: str, trial_id: str, label: str, n_bytes: int, size: int) -> None:
        fields = (f"{time.time():.3f}", page, trial_id, label, str(int(n_bytes)), str(int(size)))
        append_line(self._path(session_id), "\t".join(fields) + "\n")

    def _lines(self, session_id: str, page: str):
        """(trial_id, label, whole) of each response of ``page``; lines cut short by a crash are skipped."""
        try:
            handle = self._path(session_id).open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        with handle:
            for number, line in enumerate(handle):
                if number >= MAX_LINES_READ:
                    break
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 6 and parts[1] == page:
                    whole = parts[4].isdigit() and parts[5].isdigit() and int(parts[4]) >= int(parts[5])
                    yield parts[2], parts[3], whole

    def fetched(self, session_id: str, page: str, trial_id: str) -> dict[str, Fetches]:
        """What this session was sent of one page (``"trial"``, ``"fam<k>"``, ``"volume"``) of a trial."""
        counts: dict[str, int] = {}
        complete: set[str] = set()
        for trial, label, whole in self._lines(session_id, page):
            if trial == trial_id:
                counts[label] = counts.get(label, 0) + 1
                if whole:
                    complete.add(label)
        return {label: Fetches(n, label in complete) for label, n in counts.items()}

    def fetched_page(self, session_id: str, page: str) -> dict[str, bool]:
        """trial id -> whether a file of it was sent whole, over every trial of ``page``."""
        sent: dict[str, bool] = {}
        for trial, _, whole in self._lines(session_id, page):
            sent[trial] = sent.get(trial, False) or whole
        return sent


def missing_files(fetched: dict[str, Fetches], labels) -> list[str]:
    """The labels among ``labels`` whose file was never sent whole, in the order given."""
    return [label for label in labels if not (label in fetched and fetched[label].complete)]
