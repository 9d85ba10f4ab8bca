"""Bass parts: per-style rhythmic patterns on the chord roots, fifths, octaves and approach notes."""

from __future__ import annotations

import numpy as np

from .form import SongPlan
from .parts import Part, add_note, bars_of
from .theory import Chord, nearest_pitch

# (step, degree, length in steps). Degrees: R root, 5 fifth, O octave, 3 third, 6 sixth, b7, A approach.
PATTERNS: dict[str, tuple[tuple[tuple[int, str, int], ...], ...]] = {
    "rock": (
        tuple((s, "R", 2) for s in range(0, 16, 2)),
        (
            (0, "R", 2),
            (2, "R", 2),
            (4, "R", 2),
            (6, "R", 2),
            (8, "R", 2),
            (10, "R", 2),
            (12, "5", 2),
            (14, "A", 2),
        ),
        ((0, "R", 6), (6, "R", 2), (8, "R", 4), (12, "O", 2), (14, "5", 2)),
    ),
    "pop": (
        ((0, "R", 3), (3, "R", 3), (6, "R", 2), (8, "R", 4), (12, "5", 2), (14, "R", 2)),
        ((0, "R", 6), (6, "R", 2), (8, "5", 4), (12, "O", 2), (14, "A", 2)),
        ((0, "R", 4), (4, "R", 2), (6, "R", 2), (8, "R", 4), (12, "5", 4)),
    ),
    "funk": (
        (
            (0, "R", 1),
            (3, "O", 1),
            (4, "R", 1),
            (6, "5", 1),
            (7, "R", 1),
            (10, "O", 1),
            (11, "b7", 1),
            (12, "R", 2),
            (14, "A", 1),
        ),
        (
            (0, "R", 2),
            (2, "R", 1),
            (3, "O", 1),
            (6, "R", 1),
            (8, "5", 2),
            (10, "b7", 1),
            (11, "O", 1),
            (14, "A", 2),
        ),
    ),
    "ballad": (
        ((0, "R", 8), (8, "5", 6), (14, "A", 2)),
        ((0, "R", 12), (12, "3", 4)),
        ((0, "R", 6), (6, "5", 2), (8, "O", 8)),
    ),
    "electronic": (
        ((2, "R", 2), (6, "R", 2), (10, "R", 2), (14, "R", 2)),
        tuple((s, "O" if s % 4 == 2 else "R", 1) for s in range(0, 16)),
        ((0, "R", 3), (3, "R", 3), (6, "R", 2), (8, "R", 3), (11, "R", 3), (14, "O", 2)),
    ),
    "shuffle": (
        (
            (0, "R", 2),
            (2, "3", 2),
            (4, "5", 2),
            (6, "6", 2),
            (8, "b7", 2),
            (10, "6", 2),
            (12, "5", 2),
            (14, "3", 2),
        ),
        ((0, "R", 4), (4, "3", 4), (8, "5", 4), (12, "6", 4)),
    ),
}
INTERVAL = {"R": 0, "5": 7, "O": 12, "6": 9, "b7": 10}
LOW, HIGH = 28, 45  # E1 .. A2


def _pitch(degree: str, root: int, chord: Chord, next_root: int) -> int:
    if degree == "3":
        return root + (chord.third - chord.root) % 12
    if degree == "A":  # approach the next root from a semitone below or a whole tone above
        return next_root - 1 if (next_root - root) % 2 else next_root + 2
    return root + INTERVAL[degree]


def compose_bass(part: Part, plan: SongPlan, rng: np.random.Generator) -> None:
    patterns = PATTERNS[plan.style.name]
    verse_pattern = patterns[int(rng.integers(len(patterns)))]
    chorus_pattern = patterns[int(rng.integers(len(patterns)))]
    staccato = 0.55 if plan.style.name == "funk" else 0.92
    root = nearest_pitch(plan.chord_at(0).root, 36, LOW, HIGH)
    for bar, section, pos in bars_of(plan, part):
        chord = plan.chord_at(bar)
        root = nearest_pitch(chord.root, root, LOW, HIGH)  # smallest leap from the previous root
        next_root = nearest_pitch(plan.chord_at(bar + 1).root, root, LOW, HIGH)
        if section.name in ("intro", "break", "outro") or (
            section.name == "verse" and pos < 2 and rng.random() < 0.3
        ):
            pattern = ((0, "R", 14),)  # sparse: one long note
        elif section.name == "chorus":
            pattern = chorus_pattern
        else:
            pattern = verse_pattern
        for step, degree, length in pattern:
            pitch = _pitch(degree, root, chord, next_root)
            start = plan.time(bar, step)
            end = start + length * plan.step_s * staccato
            vel = (88 if step % 4 == 0 else 76) * (0.8 + 0.3 * section.energy)
            add_note(part, pitch, start, end, vel, rng, timing_ms=4, velocity_jitter=5)
