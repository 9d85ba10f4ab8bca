"""Lead vocal line: phrases with rests, chord tones on strong beats, motifs that repeat, vibrato. Its pitch
choice (``line_pitches``) and expression (``add_expression``, with guitar bends) also serve v6's instrumental
leads (``lead.py``)."""

from __future__ import annotations

import numpy as np
import pretty_midi

from .form import Section, SongPlan
from .parts import Part, add_note, bars_of
from .theory import nearest_pitch, scale_pitches

DURATIONS = (1, 2, 2, 2, 3, 4, 4, 6)  # in 16th notes


def _rhythm(rng: np.random.Generator, phrase_steps: int) -> list[tuple[int, int]]:
    """Onsets and lengths (16th steps) of one phrase: a busy start, a held last note, then a rest."""
    start = int(rng.choice([0, 0, 2, 4]))
    sung_until = int(phrase_steps * rng.uniform(0.5, 0.75))
    notes, step = [], start
    while True:
        length = int(rng.choice(DURATIONS))
        if step + length > sung_until:
            break
        notes.append((step, length))
        step += length
    last = int(np.clip(phrase_steps - step - int(rng.choice([3, 4, 6])), 3, 8))
    notes.append((step, last))
    return notes


def line_pitches(
    plan: SongPlan,
    bar0: int,
    rhythm,
    centre: float,
    rng: np.random.Generator,
    low: int,
    high: int,
    template=None,
):
    """A pitch per (step, length) of ``rhythm`` from ``bar0``, in the key's scale within ``low``..``high``:
    chord tones on strong notes, steps between, an arch-shaped contour drawn back toward ``centre``; with a
    ``template``, that tune again with its strong notes moved onto the new chords."""
    scale = scale_pitches(plan.key, low, high)
    pitches: list[int] = []
    current = int(scale[int(np.argmin([abs(p - centre) for p in scale]))])
    for i, (step, length) in enumerate(rhythm):
        chord = plan.chord_at(bar0 + step // 16)
        strong = step % 4 == 0 or length >= 4 or i == len(rhythm) - 1
        if template is not None and i < len(template):
            # Repeated motif: keep the tune, move strong notes to the nearest tone of the new chord.
            pitch = template[i]
            if strong and pitch % 12 not in chord.pcs:
                pitch = min(
                    (nearest_pitch(pc, pitch, low, high) for pc in chord.pcs), key=lambda p: abs(p - pitch)
                )
        else:
            upward = rng.random() < (0.7 if i < len(rhythm) / 2 else 0.3)  # an arch-shaped contour
            if strong:
                target = current + (2 if upward else -2)
                pitch = min(
                    (nearest_pitch(pc, target, low, high) for pc in chord.pcs), key=lambda p: abs(p - target)
                )
            else:
                index = (
                    scale.index(current)
                    if current in scale
                    else int(np.argmin([abs(p - current) for p in scale]))
                )
                move = int(rng.choice([1, 1, 1, 2])) * (1 if upward else -1)
                index = int(np.clip(index + move, 0, len(scale) - 1))
                pitch = scale[index]
            if abs(pitch - centre) > 7:  # drift back toward the middle of the range
                pitch = min(
                    (nearest_pitch(pc, centre, low, high) for pc in chord.pcs), key=lambda p: abs(p - centre)
                )
        pitches.append(int(pitch))
        current = int(pitch)
    return pitches


def add_expression(part: Part, rng: np.random.Generator, bend_chance: float = 0.0) -> None:
    """Keep the line monophonic and add scoops and delayed vibrato as pitch bends (range +-2 semitones);
    with ``bend_chance`` > 0 (a guitar lead), that share of the notes is bent up a whole tone into its pitch
    instead of scooped (no draw is made for it otherwise, so a sung line's bytes do not change)."""
    notes = sorted(part.instrument.notes, key=lambda n: n.start)
    for note, following in zip(notes, notes[1:], strict=False):
        note.end = min(note.end, following.start - 0.01)
    bends = part.instrument.pitch_bends
    rate_hz = float(rng.uniform(4.8, 6.2))
    depth_cents = float(rng.uniform(20, 40))

    def bend(cents: float, time: float) -> None:
        bends.append(pretty_midi.PitchBend(int(np.clip(round(cents / 200 * 8192), -8192, 8191)), float(time)))

    for note in notes:
        if bend_chance and note.end - note.start > 0.15 and rng.random() < bend_chance:
            for k, cents in enumerate((-200, -150, -80, -20)):  # a string bent up to the note
                bend(cents, note.start + 0.025 * k)
            bend(0, note.start + 0.1)
        elif rng.random() < 0.3:  # scoop up into the note
            for k, cents in enumerate((-40, -20, -6)):
                bend(cents, note.start + 0.02 * k)
            bend(0, note.start + 0.06)
        else:
            bend(0, note.start)
        onset = note.start + 0.18
        t = onset
        while t < note.end - 0.03:
            ramp = min(1.0, (t - onset) / 0.3)
            bend(depth_cents * ramp * np.sin(2 * np.pi * rate_hz * (t - onset)), t)
            t += 1 / 32
    bends.sort(key=lambda b: b.time)


def compose_vocals(part: Part, plan: SongPlan, rng: np.random.Generator) -> None:
    centre = float(rng.choice([62, 66, 69])) + float(rng.integers(-2, 3))
    phrase_bars = plan.phrase_bars
    phrase_steps = 16 * phrase_bars
    motifs: dict[tuple[str, int], tuple[list, list]] = {}  # (section name, A/B) -> (rhythm, pitches)
    sections: dict[int, Section] = {}
    for bar, section, pos in bars_of(plan, part):
        sections[section.index] = section
        if pos % phrase_bars:
            continue
        shift = 4 if section.name == "chorus" else (2 if section.name in ("pre", "bridge") else 0)
        low, high = int(centre + shift - 9), int(centre + shift + 9)
        slot = (section.name, (pos // phrase_bars) % 2)
        if slot in motifs and rng.random() < 0.8:
            rhythm, template = motifs[slot]
            pitches = line_pitches(plan, bar, rhythm, centre + shift, rng, low, high, template)
        else:
            rhythm = _rhythm(rng, phrase_steps)
            pitches = line_pitches(plan, bar, rhythm, centre + shift, rng, low, high)
            motifs[slot] = (rhythm, pitches)
        for i, ((step, length), pitch) in enumerate(zip(rhythm, pitches, strict=True)):
            note_bar = bar + step // 16
            if note_bar >= section.end_bar:
                break
            start = plan.time(note_bar, step % 16)
            end = start + length * plan.step_s * 0.97
            arch = 8 * np.sin(np.pi * (i + 0.5) / len(rhythm))
            add_note(
                part, pitch, start, end, 70 + 30 * section.energy + arch, rng, timing_ms=12, velocity_jitter=5
            )
    add_expression(part, rng)
