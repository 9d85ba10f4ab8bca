"""Generator v6's melodic lead in "other": a guitar, synth, sax or flute line that is not the singer.

Recorded "other" stems often carry a melody of their own: a guitar solo in the bridge, a synth hook in the
intro, a sax answering the singer between phrases. A model that has only ever heard the singer carry a tune
learns "melodic line = vocals", and hands a real song's lead guitar to the vocals. The lead solos where
nobody sings (intro, break, outro, some bridges) and plays short answer licks in the singer's rests.
"""

from __future__ import annotations

import numpy as np

from .form import SongPlan
from .melody import add_expression, line_pitches
from .parts import Part, add_note, bars_of

#: (kind, GM program, low, high): the lead instruments each style draws from. ``guitar_lead`` is an
#: electric guitar (v4's players play it clean into an overdriven amplifier, ``production.amp_chain``).
LEADS: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "rock": (("guitar_lead", 29, 57, 84), ("guitar_lead", 30, 57, 84), ("synth_lead", 81, 60, 84)),
    "pop": (("synth_lead", 80, 60, 84), ("guitar_lead", 29, 57, 84), ("horn_lead", 65, 56, 79), ("flute_lead", 73, 67, 91)),
    "funk": (("horn_lead", 65, 56, 79), ("horn_lead", 66, 49, 72), ("synth_lead", 81, 55, 79), ("guitar_lead", 29, 57, 81)),
    "ballad": (("guitar_lead", 29, 57, 81), ("flute_lead", 73, 67, 91), ("horn_lead", 66, 49, 72)),
    "electronic": (("synth_lead", 80, 60, 84), ("synth_lead", 81, 60, 84), ("synth_lead", 87, 55, 79)),
    "shuffle": (("guitar_lead", 29, 52, 79), ("horn_lead", 65, 56, 79), ("horn_lead", 66, 49, 72)),
}
LEAD_KINDS = frozenset(kind for leads in LEADS.values() for kind, *_ in leads)
SOLO_DURATIONS = (1, 1, 2, 2, 2, 3, 4, 6)  # 16th notes: busier than a sung line
LICK_DURATIONS = (1, 1, 2, 2, 3)
LICK_CHANCE = 0.6  # share of the singer's phrases answered by a lick (in sections where the lead plays)


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
    """A short answer in steps ``first``..``steps`` of a phrase: 2-6 quick notes."""
    notes, step = [], first
    while step < steps - 1 and len(notes) < 6:
        length = min(int(rng.choice(LICK_DURATIONS)), steps - step)
        notes.append((step, length))
        step += length
    return notes


def _play(part: Part, plan: SongPlan, bar: int, section_end: int, rhythm, pitches, velocity: float, rng) -> None:
    for (step, length), pitch in zip(rhythm, pitches, strict=True):
        note_bar = bar + step // 16
        if note_bar >= section_end:
            break
        start = plan.time(note_bar, step % 16)
        add_note(part, pitch, start, start + length * plan.step_s * 0.92, velocity, rng, timing_ms=6, velocity_jitter=6)


def compose_lead(part: Part, plan: SongPlan, rng: np.random.Generator, low: int, high: int, vocal_sections: frozenset[int]) -> None:
    """Fill ``part`` (a lead of register ``low``..``high``): solo phrases in its sections without vocals,
    answer licks in the last quarter of the singer's phrases elsewhere; then vibrato, scoops and bends."""
    phrase_bars = 2 if plan.bar_s < 2.8 else 1
    steps = 16 * phrase_bars
    centre = (low + high) / 2
    for bar, section, pos in bars_of(plan, part):
        if pos % phrase_bars:
            continue
        velocity = 72 + 30 * section.energy
        if section.index in vocal_sections:
            if rng.random() >= LICK_CHANCE:
                continue
            rhythm = _lick_rhythm(rng, int(steps * rng.uniform(0.72, 0.8)), steps)
            velocity -= 8
        else:
            rhythm = _solo_rhythm(rng, steps)
        pitches = line_pitches(plan, bar, rhythm, centre, rng, low, high)
        _play(part, plan, bar, section.end_bar, rhythm, pitches, velocity, rng)
    add_expression(part, rng, bend_chance=0.25 if part.kind == "guitar_lead" else 0.0)
