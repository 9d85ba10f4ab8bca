"""Ratings with known answers for the analysis tests: 12 listeners rating two systems, the hidden reference
and two anchors on 3 songs x 2 targets around known means (MEANS), one careless listener (BAD: the reference
at 50), and 12 A/B decisions, 10 for X: ``known_ratings(folder)`` writes them (the ``known_csv`` fixture of
conftest, once per module)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from listening_study.sessions.ratings import COLUMNS

MEANS = {"X": 70.0, "Y": 40.0, "reference": 98.0, "anchor35": 15.0, "mixture": 25.0}
SONGS, TARGETS = ("song_a", "song_b", "song_c"), ("vocals", "drums")


def rating_rows(
    participant: str, rng: np.random.Generator, reference_score: float | None = None, mode="mushra"
):
    session = hashlib.sha1(participant.encode()).hexdigest()[:32]
    rows = []
    for song in SONGS:
        for target in TARGETS:
            for label, (condition, mean) in zip("ABCDE", MEANS.items(), strict=True):
                if condition == "reference" and reference_score is not None:
                    score = reference_score
                else:
                    score = float(
                        np.clip(round(mean + rng.normal(0, 2 if condition == "reference" else 6)), 0, 100)
                    )
                rows.append({
                    "session_test_id": "known", "participant_id": participant, "session_uuid": session,
                    "trial_id": f"{song}-{target}", "song": song, "target": target, "excerpt_start_s": 2.0,
                    "excerpt_end_s": 10.0, "rating_stimulus": condition, "screen_label": label,
                    "rating_score": score, "rating_time": 30000, "n_plays": 2, "rating_comment": "",
                    "timestamp": "2026-01-01T00:00:00.000+00:00", "app_version": "0.1.0", "mode": mode,
                })  # fmt: skip
    return rows


def known_ratings(folder: Path) -> tuple[Path, pd.DataFrame]:
    """The known ratings written to ``folder/ratings.csv``: (that path, the rows as a frame)."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(12):
        rows += rating_rows(f"P{i:02d}", rng)
    rows += rating_rows("BAD", rng, reference_score=50.0)
    # A/B rows: 10 decisions for X over Y (confidence 2), 2 for Y (confidence 1)
    for i in range(12):
        prefers_x = i < 10
        for label, condition in (("A", "X"), ("B", "Y")):
            won = (condition == "X") == prefers_x
            rows.append({**rows[0], "session_uuid": f"{i:032x}", "participant_id": f"P{i:02d}", "trial_id": "ab0-t",
                         "rating_stimulus": condition, "screen_label": label,
                         "rating_score": (2.0 if prefers_x else 1.0) if won else 0.0, "mode": "ab"})  # fmt: skip
    path = folder / "ratings.csv"
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.to_csv(path, index=False)
    return path, frame
