"""What a run records beside the scores: per-song values merged into ``{subset: {track: value}}`` JSON
(``conditioning.json``, ``song_checks.json``), the song checks, and the pace of the scoring.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mss.data import song_check, track_info
from mss.data.song_check import SongCheck
from mss.errors import MSSError
from mss.files import write_text_atomic


def record_conditioning(out_dir: Path, subset: str, conditions: dict[str, float]) -> None:
    """Merge each scored song's projection condition number into ``out_dir/conditioning.json``
    (``{subset: {track: number}}``; ``null`` for exactly singular), which the tables use to flag
    ISR/SIR/SAR that are rounding noise (``mss.evaluation.tables.ILL_CONDITIONED``)."""
    values = {t: None if np.isinf(c) else float(c) for t, c in conditions.items() if not np.isnan(c)}
    merge_subset_json(out_dir / "conditioning.json", subset, values)


def merge_subset_json(path: Path, subset: str, values: dict) -> None:
    """Merge ``values`` (track -> JSON value) into ``{subset: {track: value}}`` at ``path`` (atomic);
    songs of earlier runs into the same folder are kept. Nothing is written for no values."""
    if not values:
        return
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    record.setdefault(subset, {}).update(values)
    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True))


def check_songs(tracks) -> tuple[dict[str, SongCheck], dict[str, SongCheck]]:
    """The song check (``mss.data.song_check``, measured once per song and kept) of every track: all of
    them, and the ones that fail. A track that cannot be read is left to the scoring, which names it."""
    checks = {}
    for track in tracks:
        try:
            checks[track.name] = song_check(track_info(track))
        except MSSError:
            continue
    return checks, {name: check for name, check in checks.items() if not check.ok}


def record_song_checks(out_dir: Path, subset: str, checks: dict[str, SongCheck]) -> None:
    """Merge the song checks (``mss.data.song_check``: stream lengths, the mixture's residual to the sum
    of its stems, the problems of a refused song) into ``out_dir/song_checks.json``
    (``{subset: {track: check}}``), beside ``conditioning.json``."""
    merge_subset_json(out_dir / "song_checks.json", subset, {t: c.to_dict() for t, c in checks.items()})


def cache_complete(estimates_dir: Path, targets: Sequence[str]) -> bool:
    return (estimates_dir / "complete.json").is_file() and all(
        (estimates_dir / f"{t}.wav").is_file() for t in targets
    )


#: MUSDB18's test set: 50 songs, about 3.5 hours of audio (12,710 s; SiSEC 2018).
MUSDB_TEST_SONGS: int = 50
MUSDB_TEST_SECONDS: float = 12710.0


def musdb_test_estimate(timings: Sequence[dict], jobs: int) -> str | None:
    """One line: how long scoring these methods on the whole MUSDB18 test set would take at this pace
    (scoring time per second of audio measured on this run's songs; separation not included)."""
    scored = [t for t in timings if t.get("method") != "(shared)" and t.get("ok")]
    scored_songs = {t["track"] for t in scored}  # refused and failed songs say nothing about the pace
    songs = {t["track"]: t for t in timings if t.get("method") == "(shared)" and t["track"] in scored_songs}
    if not songs or not scored:
        return None
    seconds = sum(t["seconds"] for t in scored) + sum(t["seconds"] for t in songs.values())
    audio_s = sum(t.get("audio_s", 0.0) for t in songs.values())
    if audio_s <= 0:
        return None
    methods = len({t["method"] for t in scored})
    total_h = seconds / audio_s * MUSDB_TEST_SECONDS / max(1, jobs) / 3600.0
    peak = max(t.get("peak_rss_mb", 0.0) for t in songs.values())
    return (
        f"scoring pace: {seconds / audio_s:.3f} s per second of audio for {methods} method(s); "
        f"the MUSDB18 test set ({MUSDB_TEST_SONGS} songs, {MUSDB_TEST_SECONDS / 3600:.1f} h) would take about "
        f"{total_h:.1f} h at --jobs {jobs} (peak {peak:.0f} MB per scoring process)"
    )
