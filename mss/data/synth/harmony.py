"""Accompaniment parts of the "other" stem: piano, guitars, strings, pads, organ, brass, arps, mallets."""

from __future__ import annotations

import numpy as np

from .form import SongPlan
from .parts import Part, add_note, bars_of
from .theory import Chord, nearest_pitch, voice_chord

# GM programs per kind of accompaniment part.
PROGRAMS: dict[str, tuple[int, ...]] = {
    "piano": (0, 0, 0, 1, 2, 4),
    "guitar_strum": (24, 25, 25, 26, 27),
    "guitar_power": (29, 30),
    "guitar_funk": (27, 28),
    "guitar_arp": (24, 25, 27),
    "strings": (48, 48, 49, 50),
    "pad": (88, 89, 90, 91, 95),
    "organ": (16, 17, 18),
    "brass": (61, 62),
    "synth_arp": (80, 81),
    "mallet": (11, 12),
}
STYLE_KINDS: dict[str, tuple[str, ...]] = {
    "rock": ("guitar_power", "guitar_strum", "organ", "strings"),
    "pop": ("guitar_strum", "pad", "strings", "synth_arp", "mallet"),
    "funk": ("guitar_funk", "organ", "brass", "pad"),
    "ballad": ("strings", "pad", "guitar_arp", "mallet"),
    "electronic": ("pad", "synth_arp", "strings", "brass"),
    "shuffle": ("organ", "guitar_strum", "brass", "guitar_power"),
}
STRUMS = ("D.D.UDU.D.D.UDU.", "D..D..D.D.U.D.U.", "D.U.D.U.D.U.D.U.", "D...D.U...U.D.U.")
#: Generator v6 (``busy``): 16th-note strums, drawn instead of ``STRUMS`` in PULSE_CHANCE of the parts (real "other" stems are busier: the
#: realism gauge's onset rate was 6.5 per second in the real clip against 2.6 in v5's).
BUSY_STRUMS = ("DUDUD.UDU.DUDUDU", "D.DUD.DUD.DUD.DU", "DUDUDUDUDUDUDUDU")
GALLOP = ((0, 1), (1, 1), (2, 2), (4, 1), (5, 1), (6, 2), (8, 1), (9, 1), (10, 2), (12, 1), (13, 1), (14, 2))
PULSE_CHANCE = 0.5  # v6: share of block-chord pianos, strummed and power-chord guitars playing a busier pulse
# (no 16th strums or gallops in a swung style: ``form.Style.swung``)


def _energy_velocity(base: float, energy: float) -> float:
    return base * (0.7 + 0.45 * energy)


def _voicings(plan: SongPlan, part: Part, low: int, high: int, n_voices: int) -> dict[int, list[int]]:
    """Voice-led voicings, one per bar the part plays."""
    out: dict[int, list[int]] = {}
    previous = None
    for bar, _section, _pos in bars_of(plan, part):
        previous = voice_chord(plan.chord_at(bar), previous, low, high, n_voices)
        out[bar] = previous
    return out


def _guitar_shape(chord: Chord, previous_root: int) -> list[int]:
    """A six-string barre shape (root, fifth, octave, third, fifth, octave) on a root in E2..E3."""
    root = nearest_pitch(chord.root, previous_root, 40, 52)
    third = (chord.third - chord.root) % 12
    shape = [root, root + 7, root + 12, root + 12 + third, root + 19, root + 24]
    return [p for p in shape if p <= 79]


def _piano(part: Part, plan: SongPlan, rng: np.random.Generator, busy: bool) -> None:
    style = plan.style.name
    feel = {"ballad": "arpeggio", "funk": "comp", "electronic": "offbeat"}.get(style, "block")
    if feel == "block" and rng.random() < 0.25:
        feel = "arpeggio"
    pulse = busy and feel == "block" and rng.random() < PULSE_CHANCE  # v6: eighths, pushed in verses
    voicings = _voicings(plan, part, 55, 76, 3 if feel == "comp" else 4)
    bass_note = 40
    for bar, section, _pos in bars_of(plan, part):
        chord = plan.chord_at(bar)
        voicing = voicings[bar]
        bass_note = nearest_pitch(chord.root, bass_note, 33, 50)
        vel = _energy_velocity(80, section.energy)
        bar_end = plan.time(bar + 1, 0)
        if feel != "comp":  # left hand: root and octave
            for pitch in (bass_note, bass_note + 12):
                add_note(part, pitch, plan.time(bar, 0), bar_end, vel * 0.85, rng, timing_ms=6)
        if feel == "arpeggio":
            order = voicing + voicing[-2:0:-1]
            for k, step in enumerate(range(0, 16, 2)):
                add_note(part, order[k % len(order)], plan.time(bar, step), bar_end, vel * 0.75, rng)
            continue
        if feel == "comp":
            onsets = ((0, 1), (3, 1), (6, 2), (10, 1), (12, 1), (14, 2))
        elif feel == "offbeat":
            onsets = tuple((s, 1) for s in (2, 6, 10, 14))
        elif pulse:
            onsets = (
                tuple((s, 2) for s in range(0, 16, 2))
                if section.name == "chorus"
                else ((0, 3), (3, 3), (6, 2), (8, 3), (11, 3), (14, 2))
            )
        elif section.name == "chorus":
            onsets = ((0, 3), (3, 3), (6, 2), (8, 3), (11, 3), (14, 2))
        else:
            onsets = ((0, 4), (4, 4), (8, 4), (12, 4))
        for step, length in onsets:
            start = plan.time(bar, step)
            accent = 1.0 if step % 4 == 0 else 0.85
            for pitch in voicing:
                add_note(
                    part,
                    pitch,
                    start,
                    start + length * plan.step_s * 0.9,
                    vel * accent,
                    rng,
                    timing_ms=4,
                    velocity_jitter=4,
                )


def _guitar_strum(part: Part, plan: SongPlan, rng: np.random.Generator, busy: bool) -> None:
    strums = BUSY_STRUMS if busy and not plan.style.swung and rng.random() < PULSE_CHANCE else STRUMS
    pattern = strums[int(rng.integers(len(strums)))]
    root = 45
    for bar, section, _pos in bars_of(plan, part):
        shape = _guitar_shape(plan.chord_at(bar), root)
        root = shape[0]
        vel = _energy_velocity(82, section.energy)
        strokes = (
            [(s, c) for s, c in enumerate(pattern) if c != "."]
            if section.name != "intro"
            else [(0, "D"), (8, "D")]
        )
        for k, (step, stroke) in enumerate(strokes):
            start = plan.time(bar, step)
            end = plan.time(bar, strokes[k + 1][0]) if k + 1 < len(strokes) else plan.time(bar + 1, 0)
            strings = shape if stroke == "D" else shape[::-1][:4]
            strum_s = float(rng.uniform(0.008, 0.016))
            for i, pitch in enumerate(strings):
                add_note(
                    part,
                    pitch,
                    start + i * strum_s,
                    end,
                    vel * (1.0 if stroke == "D" else 0.75),
                    rng,
                    timing_ms=4,
                )


def _guitar_power(part: Part, plan: SongPlan, rng: np.random.Generator, busy: bool) -> None:
    gallop = busy and not plan.style.swung and rng.random() < PULSE_CHANCE  # v6: palm-muted gallops in verses
    root = 45
    for bar, section, _pos in bars_of(plan, part):
        root = nearest_pitch(plan.chord_at(bar).root, root, 40, 52)
        chord = (root, root + 7, root + 12)
        vel = _energy_velocity(88, section.energy)
        if section.name in ("chorus", "outro"):
            onsets = ((0, 6), (6, 2), (8, 6), (14, 2))
            gate = 0.95
        else:  # palm-muted eighths (or gallops)
            onsets = GALLOP if gallop else tuple((s, 2) for s in range(0, 16, 2))
            gate = 0.45
        for step, length in onsets:
            start = plan.time(bar, step)
            for i, pitch in enumerate(chord):
                add_note(
                    part, pitch, start + 0.005 * i, start + length * plan.step_s * gate, vel, rng, timing_ms=4
                )


def _guitar_funk(part: Part, plan: SongPlan, rng: np.random.Generator) -> None:
    voicings = _voicings(plan, part, 60, 77, 3)
    pattern = "x.xx.x.xx.x.x.xx" if rng.random() < 0.5 else "X..xX.x..xX.x.x."
    for bar, section, _pos in bars_of(plan, part):
        vel = _energy_velocity(78, section.energy)
        for step, symbol in enumerate(pattern):
            if symbol == ".":
                continue
            start = plan.time(bar, step)
            accent = 1.15 if symbol == "X" or step % 4 == 0 else 0.85
            for i, pitch in enumerate(voicings[bar]):
                add_note(
                    part, pitch, start + 0.004 * i, start + 0.5 * plan.step_s, vel * accent, rng, timing_ms=3
                )


def _picked(
    part: Part, plan: SongPlan, rng: np.random.Generator, low: int, high: int, step_size: int
) -> None:
    """Broken chords (fingerpicked guitar, mallets): notes of a voicing in a rocking order."""
    voicings = _voicings(plan, part, low, high, 4)
    order = (0, 2, 1, 3, 2, 1, 3, 2) if rng.random() < 0.5 else (0, 1, 2, 3, 2, 1, 2, 3)
    for bar, section, _pos in bars_of(plan, part):
        vel = _energy_velocity(74, section.energy)
        for k, step in enumerate(range(0, 16, step_size)):
            start = plan.time(bar, step)
            add_note(
                part,
                voicings[bar][order[k % len(order)]],
                start,
                start + 3 * step_size * plan.step_s,
                vel,
                rng,
            )


def _sustained(
    part: Part, plan: SongPlan, rng: np.random.Generator, low: int, high: int, halves: bool
) -> None:
    """Held chords (strings, pads, organ), legato from bar to bar."""
    voicings = _voicings(plan, part, low, high, 4)
    for bar, section, _pos in bars_of(plan, part):
        vel = _energy_velocity(72, section.energy)
        starts = (0, 8) if halves else (0,)
        for step in starts:
            start = plan.time(bar, step)
            end = start + (8 if halves else 16) * plan.step_s + 0.04
            for pitch in voicings[bar]:
                add_note(part, pitch, start, end, vel, rng, timing_ms=10, velocity_jitter=3)


def _organ(part: Part, plan: SongPlan, rng: np.random.Generator) -> None:
    if plan.style.name in ("shuffle", "funk") and rng.random() < 0.6:  # off-beat stabs
        voicings = _voicings(plan, part, 55, 74, 3)
        for bar, section, _pos in bars_of(plan, part):
            vel = _energy_velocity(78, section.energy)
            for step in (4, 12) if plan.style.name == "shuffle" else (2, 6, 10, 14):
                start = plan.time(bar, step)
                for pitch in voicings[bar]:
                    add_note(part, pitch, start, start + 2 * plan.step_s, vel, rng, timing_ms=4)
    else:
        _sustained(part, plan, rng, 52, 74, halves=plan.style.name == "rock")


def _brass(part: Part, plan: SongPlan, rng: np.random.Generator) -> None:
    voicings = _voicings(plan, part, 55, 76, 3)
    figures = (((0, 2), (6, 2), (10, 4)), ((12, 2), (14, 2)), ((0, 6), (8, 2), (11, 3)))
    figure = figures[int(rng.integers(len(figures)))]
    for bar, section, pos in bars_of(plan, part):
        vel = _energy_velocity(88, section.energy)
        shots = figure if pos % 2 == 0 else figures[1]
        for step, length in shots:
            start = plan.time(bar, step)
            for pitch in voicings[bar]:
                add_note(part, pitch, start, start + length * plan.step_s * 0.85, vel, rng, timing_ms=5)


def _synth_arp(part: Part, plan: SongPlan, rng: np.random.Generator) -> None:
    voicings = _voicings(plan, part, 60, 74, 3)
    up_down = rng.random() < 0.5
    for bar, section, _pos in bars_of(plan, part):
        notes = voicings[bar] + [p + 12 for p in voicings[bar]]
        if up_down:
            notes = notes + notes[-2:0:-1]
        vel = _energy_velocity(74, section.energy)
        for step in range(16):
            start = plan.time(bar, step)
            accent = 1.15 if step % 4 == 0 else 0.9
            add_note(
                part,
                notes[step % len(notes)],
                start,
                start + 0.6 * plan.step_s,
                vel * accent,
                rng,
                timing_ms=2,
                velocity_jitter=3,
            )


def compose_other(part: Part, plan: SongPlan, rng: np.random.Generator, busy: bool = False) -> None:
    """Fill an accompaniment ``part`` of its kind; ``busy`` (generator v6) lets pianos, strummed and
    power-chord guitars draw busier patterns (without it, no extra draw: v3-v5 compose what they did)."""
    kind = part.kind
    if kind == "piano":
        _piano(part, plan, rng, busy)
    elif kind == "guitar_strum":
        _guitar_strum(part, plan, rng, busy)
    elif kind == "guitar_power":
        _guitar_power(part, plan, rng, busy)
    elif kind == "guitar_funk":
        _guitar_funk(part, plan, rng)
    elif kind == "guitar_arp":
        _picked(part, plan, rng, 52, 72, 2)
    elif kind == "mallet":
        _picked(part, plan, rng, 64, 84, 2)
    elif kind in ("strings", "pad"):
        _sustained(
            part, plan, rng, 50 if kind == "strings" else 48, 76 if kind == "strings" else 72, halves=False
        )
    elif kind == "organ":
        _organ(part, plan, rng)
    elif kind == "brass":
        _brass(part, plan, rng)
    elif kind == "synth_arp":
        _synth_arp(part, plan, rng)
    else:
        raise ValueError(f"unknown accompaniment kind {kind!r}")
