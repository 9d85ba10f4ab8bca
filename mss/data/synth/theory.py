"""Keys, chords, progressions and voice leading (pitch classes 0-11, MIDI note numbers)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; the major V of harmonic minor is written "V"

ROMAN = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}

# Common pop/rock progressions, one chord per bar.
MAJOR_PROGRESSIONS = (
    "I V vi IV",
    "vi IV I V",
    "I IV V IV",
    "I vi IV V",
    "I IV vi V",
    "IV I V vi",
    "I iii IV V",
    "ii V I vi",
    "I V IV V",
    "I bVII IV I",
    "IV V iii vi",
)
MINOR_PROGRESSIONS = (
    "i VI III VII",
    "i iv VII III",
    "i VII VI VII",
    "i iv v i",
    "i VI iv V",
    "i III VII iv",
    "VI VII i i",
    "i VI VII V",
)


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0-11
    mode: str  # "major" | "minor"

    @property
    def scale(self) -> tuple[int, ...]:
        base = MAJOR_SCALE if self.mode == "major" else MINOR_SCALE
        return tuple((self.tonic + step) % 12 for step in base)

    @property
    def name(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class
    pcs: tuple[int, ...]  # pitch classes, root first
    symbol: str  # roman numeral it came from

    @property
    def fifth(self) -> int:
        return self.pcs[2]

    @property
    def third(self) -> int:
        return self.pcs[1]


def parse_numeral(numeral: str, key: Key, seventh: bool = False) -> Chord:
    """A chord from a roman numeral: case gives the quality (upper major, lower minor), "b" flattens the root."""
    flat = numeral.startswith("b")
    body = numeral[1:] if flat else numeral
    degree = ROMAN[body.lower()]
    # The root is the scale degree of the *major* scale for flattened numerals (bVII in a major key).
    steps = MAJOR_SCALE if flat else (MAJOR_SCALE if key.mode == "major" else MINOR_SCALE)
    root = (key.tonic + steps[degree] - (1 if flat else 0)) % 12
    major = body.isupper()
    diminished = not major and key.mode == "major" and degree == 6
    third = 4 if major else 3
    fifth = 6 if diminished else 7
    intervals = [0, third, fifth]
    if seventh:
        dominant = major and (degree == 4 or flat)
        intervals.append(10 if (dominant or not major) else 11)
    return Chord(root, tuple((root + i) % 12 for i in intervals), numeral)


def progression(text: str, key: Key, seventh: bool = False) -> list[Chord]:
    return [parse_numeral(token, key, seventh) for token in text.split()]


def nearest_pitch(pc: int, target: float, low: int = 0, high: int = 127) -> int:
    """The MIDI pitch of class ``pc`` closest to ``target``, kept inside [low, high]."""
    candidates = [p for p in range(low, high + 1) if p % 12 == pc]
    return min(candidates, key=lambda p: (abs(p - target), p))


def voice_chord(
    chord: Chord, previous: list[int] | None, low: int, high: int, n_voices: int = 4
) -> list[int]:
    """Voicing of ``chord`` in [low, high] with the smallest total movement from ``previous`` (voice leading).

    Candidates are close and open positions built from every inversion; with no previous voicing the
    one whose centre is nearest the middle of the range wins.
    """
    pcs = list(chord.pcs)
    if n_voices > len(pcs):
        pcs = pcs + [chord.root] * (n_voices - len(pcs))  # double the root
    candidates: list[list[int]] = []
    for order in set(itertools.permutations(pcs[:n_voices])):
        for base in range(low, low + 12):
            if base % 12 != order[0]:
                continue
            voicing = [base]
            for pc in order[1:]:
                nxt = voicing[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                voicing.append(nxt)
            if voicing[-1] <= high and voicing[-1] - voicing[0] <= 19:
                candidates.append(voicing)
                if voicing[-1] + 12 <= high:
                    candidates.append([p + 12 for p in voicing])
    if not candidates:  # range too narrow: stack from the bottom regardless
        return sorted(nearest_pitch(pc, (low + high) / 2, low - 12, high + 12) for pc in pcs[:n_voices])
    if previous:
        prev = sorted(previous)

        def cost(voicing: list[int]) -> float:
            moves = [abs(a - b) for a, b in zip(sorted(voicing), prev, strict=False)]
            return sum(moves) + 0.5 * max(moves)

    else:
        centre = (low + high) / 2

        def cost(voicing: list[int]) -> float:
            return abs(sum(voicing) / len(voicing) - centre)

    return sorted(min(sorted(candidates), key=cost))


def scale_pitches(key: Key, low: int, high: int) -> list[int]:
    scale = set(key.scale)
    return [p for p in range(low, high + 1) if p % 12 in scale]
