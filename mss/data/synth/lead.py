"""Generator v6's melodic lead in "other": a guitar, synth, sax or flute line that is not the singer.

Recorded "other" stems often carry a melody of their own: a guitar solo in the bridge, a synth hook in the
intro, a sax answering the singer between phrases. A model that has only ever heard the singer carry a tune
learns "melodic line = vocals", and hands a real song's lead guitar to the vocals. The lead solos where
nobody sings (intro, break, outro, some bridges) and plays short answer licks in the singer's rests.
"""

from __future__ import annotations

import numpy as np
import pretty_midi

from .form import SongPlan
from .melody import add_expression, line_pitches
from .parts import Part, add_note, bars_of

#: (kind, GM program, low, high): the lead instruments each style draws from. ``guitar_lead`` is an
#: electric guitar (v4's players play it clean into an overdriven amplifier, ``production.amp_chain``, so
#: rock's two guitar entries sound alike: they make a guitar lead twice as likely as a synth one).
LEADS: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "rock": (("guitar_lead", 29, 57, 84), ("guitar_lead", 30, 57, 84), ("synth_lead", 81, 60, 84)),
    "pop": (
        ("synth_lead", 80, 60, 84),
        ("guitar_lead", 29, 57, 84),
        ("horn_lead", 65, 56, 79),
        ("flute_lead", 73, 67, 91),
    ),
    "funk": (
        ("horn_lead", 65, 56, 79),
        ("horn_lead", 66, 49, 72),
        ("synth_lead", 81, 55, 79),
        ("guitar_lead", 29, 57, 81),
    ),
    "ballad": (("guitar_lead", 29, 57, 81), ("flute_lead", 73, 67, 91), ("horn_lead", 66, 49, 72)),
    "electronic": (("synth_lead", 80, 60, 84), ("synth_lead", 81, 60, 84), ("synth_lead", 87, 55, 79)),
    "shuffle": (("guitar_lead", 29, 52, 79), ("horn_lead", 65, 56, 79), ("horn_lead", 66, 49, 72)),
}
LEAD_KINDS = frozenset(kind for leads in LEADS.values() for kind, *_ in leads)
SOLO_DURATIONS = (1, 1, 2, 2, 2, 3, 4, 6)  # 16th notes: busier than a sung line
LICK_DURATIONS = (1, 1, 2, 2, 3)
LICK_CHANCE = 0.6  # share of the singer's phrases answered by a lick (in sections where the lead plays)
LICK_GAP_STEPS = 1  # a lick starts this many 16ths after the singer's last note of the phrase ends
MIN_LICK_STEPS = 3  # ... and only if at least this many 16ths of the phrase are left


def _solo_rhythm(rng: np.random.Generator, steps: int) -> list[tuple[int, int]]:
    """Onsets and lengths (16th steps) of a solo phrase of ``steps``: runs of notes, a held note, a breath."""
    notes, step = [], int(rng.choice([0, 0, 1, 2]))
    end = steps - int(rng.choice([2, 3, 4]))
    while step < end:
        length = min(int(rng.choice(SOLO_DURATIONS)), end - step)
        notes.append((step, length))
        step += length + (1 if rng.random() < 0.1 else 0)
    return notes


def _lick_rhythm(rng: np.random.Generator, first: int, steps: int) -> list[tuple[int, int]]:
    """A short answer in steps ``first``..``steps`` of a phrase: up to 6 quick notes."""
    notes, step = [], first
    while step < steps - 1 and len(notes) < 6:
        length = min(int(rng.choice(LICK_DURATIONS)), steps - step)
        notes.append((step, length))
        step += length
    return notes


def register(style: str, kind: str, program: int) -> tuple[int, int]:
    """The (low, high) MIDI range of lead ``kind`` on GM ``program`` in ``style`` (``LEADS``)."""
    for lead_kind, lead_program, low, high in LEADS[style]:
        if (lead_kind, lead_program) == (kind, program):
            return low, high
    raise ValueError(f"no {kind} on program {program} among the {style} leads")


def _lick_start(plan: SongPlan, bar: int, steps: int, vocal_notes: list[pretty_midi.Note]) -> int | None:
    """First 16th step (of the phrase starting at ``bar``) after the singer's last note in it has ended, plus
    ``LICK_GAP_STEPS``; None when fewer than ``MIN_LICK_STEPS`` steps are left (or the phrase is not sung)."""
    start, end = plan.time(bar, 0), plan.time(bar, steps)
    offs = [note.end for note in vocal_notes if start <= note.start < end]
    if not offs:
        return None
    first = int(np.ceil((max(offs) - start) / plan.step_s - 1e-6)) + LICK_GAP_STEPS
    return first if steps - first >= MIN_LICK_STEPS else None


def _play(
    part: Part,
    plan: SongPlan,
    bar: int,
    section_end: int,
    rhythm,
    pitches,
    velocity: float,
    rng: np.random.Generator,
) -> None:
    """Add the phrase (``rhythm``: (step, length) from ``bar``; ``pitches``), cut at the section's end."""
    for (step, length), pitch in zip(rhythm, pitches, strict=True):
        note_bar = bar + step // 16
        if note_bar >= section_end:
            break
        start = plan.time(note_bar, step % 16)
        add_note(
            part,
            pitch,
            start,
            start + length * plan.step_s * 0.92,
            velocity,
            rng,
            timing_ms=6,
            velocity_jitter=6,
        )


def compose_lead(
    part: Part,
    plan: SongPlan,
    rng: np.random.Generator,
    vocal_sections: frozenset[int],
    vocal_notes: list[pretty_midi.Note],
) -> None:
    """Fill ``part`` (a lead of ``LEADS``): solo phrases in its sections without vocals (``vocal_sections``),
    elsewhere answer licks in the singer's rests, after the last of ``vocal_notes`` in the phrase has ended
    (phrases of ``SongPlan.phrase_bars``, as the singer's); then vibrato, scoops and, on a guitar, bends."""
    low, high = register(plan.style.name, part.kind, part.program)
    phrase_bars = plan.phrase_bars
    steps = 16 * phrase_bars
    centre = (low + high) / 2
    for bar, section, pos in bars_of(plan, part):
        if pos % phrase_bars:
            continue
        velocity = 72 + 30 * section.energy
        if section.index in vocal_sections:
            first = _lick_start(plan, bar, steps, vocal_notes)
            if first is None or rng.random() >= LICK_CHANCE:
                continue
            rhythm = _lick_rhythm(rng, first, steps)
            velocity -= 8
        else:
            rhythm = _solo_rhythm(rng, steps)
        pitches = line_pitches(plan, bar, rhythm, centre, rng, low, high)
        _play(part, plan, bar, section.end_bar, rhythm, pitches, velocity, rng)
    add_expression(part, rng, bend_chance=0.25 if part.kind == "guitar_lead" else 0.0)
