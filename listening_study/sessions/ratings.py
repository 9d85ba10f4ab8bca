"""Append-only ratings CSV (long format, one row per condition), safe for many participants at once.

Public API (stable)::

    COLUMNS: tuple[str, ...]                        # the CSV header, in this order
    RatingsStore(csv_path)                          # creates the file with its header, or checks the header
    RatingsStore.submit(session, trial_id, scores: dict[label, float], plays: dict[label, int],
                        time_ms: int, comment: str = "") -> list[dict]          # MUSHRA trial
    RatingsStore.submit_ab(session, trial_id, choice: "A" | "B", confidence: 1 | 2 | 3,
                           plays: dict[label, int], time_ms: int, comment: str = "") -> list[dict]
    RatingsStore.completed(session_id) -> set[str]  # trial ids this session has submitted
    read_ratings(csv_path, *, coerce_scores=False) -> pandas.DataFrame  # typed; RatingsFileError if malformed
    MAX_COMMENT_CHARS = 1000

``rating_time`` is the server's time (ms) from the trial's start to its submission when the session
store measured it (SessionStore.submit), else the page's (and the page's in a legacy file, where that
column always meant the page's time); ``page_time_ms`` is always the page's claim,
``n_fetches`` how often the server sent this condition's file to the session (listening_study.delivery.evidence).

A/B rows: ``rating_score`` is the confidence (1-3) for the preferred condition and 0 for the other.
Every refusal raises :class:`SubmissionError` before anything is written. Each trial's rows go to the
file in one ``os.write`` under a threading lock and an ``fcntl.flock`` (so several processes can share
the file), followed by ``os.fsync``. This store checks only what makes a row valid; the rules of a
trial (every condition rated and heard long enough, one rated 100) are checked before it is called, by
SessionStore.submit (listening_study.design.rules). A comment that a spreadsheet would run as a formula is
stored with a leading apostrophe (listening_study.analysis.spreadsheet).
"""

from __future__ import annotations

import csv
import fcntl
import io
import math
import os
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

import mss
from listening_study.analysis.spreadsheet import neutralize
from listening_study.design.rules import check_scores, labels_exactly
from listening_study.errors import RatingsFileError, SubmissionError

COLUMNS: tuple[str, ...] = (
    "session_test_id", "participant_id", "session_uuid", "trial_id", "song", "target", "excerpt_start_s",
    "excerpt_end_s", "rating_stimulus", "screen_label", "rating_score", "rating_time", "n_plays",
    "rating_comment", "timestamp", "app_version", "mode", "page_time_ms", "n_fetches",
)  # fmt: skip
#: The columns of files written before the server measured the rating time and counted the files it
#: sent: such a file is still read (the new columns empty) and appended to in its own format.
LEGACY_COLUMNS: tuple[str, ...] = COLUMNS[:-2]
NUMERIC_COLUMNS = ("excerpt_start_s", "excerpt_end_s", "rating_score", "rating_time", "n_plays")
#: Columns that may be empty: a legacy file's rows, or rows stored through RatingsStore without the
#: server's measurements.
OPTIONAL_NUMERIC_COLUMNS = ("page_time_ms", "n_fetches")
MODES = ("mushra", "ab")
MAX_COMMENT_CHARS = 1000
_HEADER = ",".join(COLUMNS) + "\n"
_LEGACY_HEADER = ",".join(LEGACY_COLUMNS) + "\n"


def _check_plays(labels: set[str], plays) -> dict[str, int]:
    labels_exactly("play counts", labels, plays)
    for label, count in plays.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise SubmissionError(f"play count of {label} must be a non-negative integer, got {count!r}")
    unplayed = sorted(label for label, count in plays.items() if count == 0)
    if unplayed:
        raise SubmissionError(f"every condition must be played before submitting; not yet played: {unplayed}")
    return dict(plays)


def _check_common(time_ms, comment) -> str:
    if isinstance(time_ms, bool) or not isinstance(time_ms, int) or time_ms < 0:
        raise SubmissionError(f"time_ms must be a non-negative integer, got {time_ms!r}")
    if not isinstance(comment, str):
        raise SubmissionError("the comment must be text")
    if len(comment) > MAX_COMMENT_CHARS:
        raise SubmissionError(
            f"the comment is {len(comment)} characters long; at most {MAX_COMMENT_CHARS} allowed"
        )
    return comment


class RatingsStore:
    """See the module docstring."""

    def __init__(self, csv_path: str | Path):
        self.path = Path(csv_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._done: dict[str, set[str]] = {}  # session_uuid -> trial ids already in the file
        self._offset = 0  # bytes of the file already indexed
        self._columns = COLUMNS  # those of the file's header: a legacy file keeps its own
        with self._locked() as fd:
            if os.fstat(fd).st_size == 0:
                os.write(fd, _HEADER.encode())
                os.fsync(fd)
            self._refresh(fd)

    @contextmanager
    def _locked(self):
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield fd
            finally:
                os.close(fd)  # closing releases the flock

    def _refresh(self, fd: int) -> None:
        """Index rows appended since the last look (by this or another process)."""
        size = os.fstat(fd).st_size
        if size == self._offset:
            return
        data = os.pread(fd, size - self._offset, self._offset).decode("utf-8")
        if self._offset == 0:
            header, _, data = data.partition("\n")
            if header + "\n" == _LEGACY_HEADER:
                self._columns = LEGACY_COLUMNS
            elif header + "\n" != _HEADER:
                raise RatingsFileError(
                    f"{self.path} exists but its header is not the ratings header; it was left untouched. "
                    f"Expected: {_HEADER.strip()!r}; found: {header[:300]!r}. Use another file name."
                )
        session_col, trial_col = COLUMNS.index("session_uuid"), COLUMNS.index("trial_id")
        for row in csv.reader(io.StringIO(data)):
            if len(row) != len(self._columns):
                raise RatingsFileError(
                    f"{self.path}: a row has {len(row)} fields instead of {len(self._columns)}: {row[:5]}"
                )
            self._done.setdefault(row[session_col], set()).add(row[trial_col])
        self._offset = size

    def completed(self, session_id: str) -> set[str]:
        with self._locked() as fd:
            self._refresh(fd)
            return set(self._done.get(session_id, ()))

    def _rows(self, session, trial, values: dict[str, float], plays: dict[str, int], time_ms, comment, mode,
              server_ms: int | None, fetches: dict[str, int] | None):  # fmt: skip
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        return [
            {
                "session_test_id": session.study_id,
                "participant_id": session.participant_id,
                "session_uuid": session.session_id,
                "trial_id": trial.trial_id,
                "song": trial.song,
                "target": trial.target,
                "excerpt_start_s": trial.start_s,
                "excerpt_end_s": trial.end_s,
                "rating_stimulus": trial.labels[label],
                "screen_label": label,
                "rating_score": values[label],
                # a legacy file's rating_time has always been the page's: it keeps that one meaning
                "rating_time": time_ms if server_ms is None or self._columns == LEGACY_COLUMNS else server_ms,
                "n_plays": plays[label],
                "rating_comment": neutralize(comment),
                "timestamp": stamp,
                "app_version": mss.__version__,
                "mode": mode,
                "page_time_ms": time_ms,
                "n_fetches": "" if fetches is None else fetches[label],
            }  # fmt: skip
            for label in sorted(trial.labels)
        ]

    def _trial(self, session, trial_id, mode: str):
        trials = getattr(session, "trials", None)
        if not isinstance(trials, dict) or getattr(session, "mode", None) != mode:
            raise SubmissionError(f"not a {mode} session; start or resume a session first")
        if not isinstance(trial_id, str) or trial_id not in trials:
            raise SubmissionError(f"unknown trial {str(trial_id)[:80]!r} for session {session.session_id}")
        return trials[trial_id]

    def _append(self, session, trial_id: str, rows: list[dict]) -> list[dict]:
        buffer = io.StringIO()
        # a legacy file gets its own columns: the two new ones are left out, the file stays one format
        csv.DictWriter(
            buffer, fieldnames=self._columns, lineterminator="\n", extrasaction="ignore"
        ).writerows(rows)
        data = buffer.getvalue().encode("utf-8")
        with self._locked() as fd:
            self._refresh(fd)
            if trial_id in self._done.get(session.session_id, ()):
                raise SubmissionError(
                    f"trial {trial_id} was already submitted in this session; ratings are final"
                )
            written = os.write(fd, data)  # the whole trial in one write: rows never interleave
            if written != len(data):
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            os.fsync(fd)
            self._done.setdefault(session.session_id, set()).add(trial_id)
            self._offset += len(data)  # exact: under the flock nobody else appended since _refresh
        return rows

    def submit(
        self, session, trial_id: str, scores: dict, plays: dict, time_ms: int, comment: str = "",
        server_ms: int | None = None, fetches: dict[str, int] | None = None,
    ) -> list[dict]:  # fmt: skip
        """Validate and append one MUSHRA trial; returns the rows written. ``server_ms``: the server's
        measure of the trial's duration; ``fetches``: label -> times its file was sent."""
        trial = self._trial(session, trial_id, "mushra")
        labels = set(trial.labels)
        values = check_scores(labels, scores)
        plays = _check_plays(labels, plays)
        comment = _check_common(time_ms, comment)
        return self._append(
            session, trial_id,
            self._rows(session, trial, values, plays, time_ms, comment, "mushra", server_ms, fetches),
        )  # fmt: skip

    def submit_ab(
        self,
        session,
        trial_id: str,
        choice: str,
        confidence: int,
        plays: dict,
        time_ms: int,
        comment: str = "",
        server_ms: int | None = None,
        fetches: dict[str, int] | None = None,
    ) -> list[dict]:
        """Validate and append one A/B preference trial (``choice`` is the preferred screen label)."""
        trial = self._trial(session, trial_id, "ab")
        labels = set(trial.labels)
        if choice not in labels:
            raise SubmissionError(f"choice must be one of {sorted(labels)}, got {str(choice)[:20]!r}")
        if isinstance(confidence, bool) or confidence not in (1, 2, 3):
            raise SubmissionError(f"confidence must be 1, 2 or 3, got {confidence!r}")
        plays = _check_plays(labels, plays)
        comment = _check_common(time_ms, comment)
        values = {label: float(confidence) if label == choice else 0.0 for label in labels}
        return self._append(
            session,
            trial_id,
            self._rows(session, trial, values, plays, time_ms, comment, "ab", server_ms, fetches),
        )


def read_ratings(csv_path: str | Path, *, coerce_scores: bool = False) -> pd.DataFrame:
    """The ratings as a typed DataFrame; RatingsFileError (naming columns/lines) for malformed files.

    The index is the data row number (0-based), so row ``i`` is line ``i + 2`` of the file. With
    ``coerce_scores`` a ``rating_score`` that is not a finite number becomes NaN instead of an error (the
    analysis excludes and reports such rows); every other column must still parse. A trial
    (``session_uuid``, ``trial_id``) must have one mode, and an A/B trial exactly two conditions.
    """
    path = Path(csv_path)
    if not path.is_file():
        problem = "is a folder, not a CSV file" if path.is_dir() else "not found"
        raise RatingsFileError(f"ratings file {path} {problem}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())  # one line: the parser's message may span several
        raise RatingsFileError(f"cannot parse {path} as CSV: {reason}") from exc
    except OSError as exc:
        raise RatingsFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    missing = [c for c in LEGACY_COLUMNS if c not in frame.columns]
    if missing:
        raise RatingsFileError(f"{path} lacks the columns {missing}; expected the header {list(COLUMNS)}")
    for column in OPTIONAL_NUMERIC_COLUMNS:  # absent from a legacy file, empty where nothing was measured
        text = frame[column] if column in frame else pd.Series("", index=frame.index)
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.ne("")
        if bad.any():
            lines = (frame.index[bad] + 2).tolist()[:10]
            raise RatingsFileError(f"{path}: column {column!r} has non-numeric values on lines {lines}")
        frame[column] = values
    for column in NUMERIC_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~values.apply(lambda v: math.isfinite(v) if pd.notna(v) else False)
        if column == "rating_score" and coerce_scores:
            frame[column] = values.where(~bad)  # NaN: left to the analysis to exclude and report
            continue
        if bad.any():
            lines = (frame.index[bad] + 2).tolist()[:10]  # +2: header line and 1-based numbering
            raise RatingsFileError(
                f"{path}: column {column!r} has non-numeric values on lines {lines}, e.g. {frame[column][bad].iloc[0]!r}"
            )
        frame[column] = values
    bad_mode = ~frame["mode"].isin(MODES)
    if bad_mode.any():
        lines = (frame.index[bad_mode] + 2).tolist()[:10]
        raise RatingsFileError(f"{path}: column 'mode' must be one of {MODES}; bad values on lines {lines}")
    _check_trials(frame, path)
    return frame


def _check_trials(frame: pd.DataFrame, path: Path) -> None:
    """One mode per trial; an A/B trial compares exactly two conditions (RatingsFileError otherwise).

    Without this, A/B rows of a MUSHRA trial (five conditions) reach the A/B statistics, which cannot
    make a pair of them.
    """
    trials = frame.groupby(["session_uuid", "trial_id"], sort=False)
    modes = trials["mode"].transform("nunique")
    if (modes > 1).any():
        first = frame[modes > 1].iloc[0]
        lines = (frame.index[modes > 1] + 2).tolist()[:10]
        raise RatingsFileError(
            f"{path}: column 'mode' differs within trial {first['trial_id']!r} of session "
            f"{first['session_uuid']!r} (lines {lines}); all rows of a trial have one mode"
        )
    ab = frame[frame["mode"] == "ab"]
    conditions = ab.groupby(["session_uuid", "trial_id"], sort=False)["rating_stimulus"].transform("nunique")
    bad = conditions != 2
    if bad.any():
        first = ab[bad].iloc[0]
        rows = ab[(ab["session_uuid"] == first["session_uuid"]) & (ab["trial_id"] == first["trial_id"])]
        lines = (rows.index + 2).tolist()[:10]
        raise RatingsFileError(
            f"{path}: column 'mode' is 'ab' for trial {first['trial_id']!r} of session {first['session_uuid']!r} "
            f"(lines {lines}), but it rates {rows['rating_stimulus'].nunique()} conditions "
            f"{sorted(rows['rating_stimulus'].unique())[:6]}; an A/B trial has exactly two (MUSHRA rows marked 'ab'?)"
        )
