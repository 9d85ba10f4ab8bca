"""A whole song: plan, arrangement (who plays where), MIDI of every part and its mixing settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bass import compose_bass
from .drums import compose_drums
from .form import STYLES, SongPlan, plan_song
from .harmony import PROGRAMS, STYLE_KINDS, compose_other
from .lead import LEAD_KINDS, LEADS, compose_lead
from .melody import compose_vocals
from .parts import Part, new_part
from .theory import scale_pitches
from .voice import choose_voice, choose_words

STYLE_NAMES = tuple(STYLES)
VOCAL_PROGRAMS = (52, 53, 53, 54, 85)  # Choir Aahs, Voice Oohs, Synth Voice, Lead 6 (voice)
SUNG_LEAD = 0.9  # share of songs whose lead is sung (espeak-ng + PSOLA); the rest keep a GM voice patch
SUNG_BACKING = 0.6  # share of songs with sung backing harmonies in their choruses
BASS_PROGRAMS = {
    "rock": (33, 34),
    "pop": (33, 34, 38),
    "funk": (36, 37, 33),
    "ballad": (32, 33, 35),
    "electronic": (38, 39),
    "shuffle": (32, 33),
}


@dataclass
class Song:
    plan: SongPlan
    parts: list[Part]
    reverb_s: float  # RT60 of the room all parts share


def _sections(plan: SongPlan, rng: np.random.Generator, chance: dict[str, float]) -> frozenset[int]:
    return frozenset(s.index for s in plan.sections if rng.random() < chance.get(s.name, 1.0))


GUITAR_LED = 0.75  # v5: share of songs whose first accompaniment part is a guitar (styles that have one)
LEAD_CHANCE = 0.6  # v6: share of songs with a melodic lead instrument in "other" (``lead.py``)


def compose_song(
    rng: np.random.Generator,
    style: str,
    duration_s: float,
    has_piano: bool,
    guitar_led: bool = False,
    busy: bool = False,
) -> Song:
    """Compose one song of ``duration_s`` seconds in ``style``; piano in "other" iff ``has_piano``. With
    ``guitar_led`` (generator v5), in ``GUITAR_LED`` of the songs the style's guitars come first among the
    other kinds drawn (otherwise their order stays random): in a song without piano the first is the
    accompaniment that plays throughout; with a piano (always first) it is the next part, when there is one.
    With ``busy`` (generator v6), bass and accompaniment draw from busier patterns too (16th notes, fills),
    and ``LEAD_CHANCE`` of the songs get a melodic lead in "other" that solos where nobody sings and answers
    the singer's phrases. Without it no extra draw is made: v3-v5 compose the same songs as before."""
    plan = plan_song(rng, style, duration_s)
    parts: list[Part] = []

    vocals = new_part("vocals", "lead", int(rng.choice(VOCAL_PROGRAMS)))
    vocals.sections = _sections(plan, rng, {"intro": 0.0, "break": 0.0, "outro": 0.2, "bridge": 0.6})
    vocals.level_db, vocals.pan = float(rng.normal(-16, 1.2)), float(rng.uniform(-0.05, 0.05))
    vocals.reverb_send, vocals.highpass_hz, vocals.compress_ratio = float(rng.uniform(0.2, 0.4)), 120.0, 3.0
    vocals.echo = bool(rng.random() < 0.5)
    parts.append(vocals)

    drums = new_part("drums", "kit", int(rng.choice(STYLES[style].drum_kits)), is_drum=True)
    drums.sections = _sections(plan, rng, {"intro": 0.5, "break": 0.6})
    drums.level_db, drums.reverb_send, drums.compress_ratio = (
        float(rng.normal(-17, 1.2)),
        float(rng.uniform(0.05, 0.15)),
        2.5,
    )
    parts.append(drums)

    bass = new_part("bass", "bass", int(rng.choice(BASS_PROGRAMS[style])))
    bass.sections = _sections(plan, rng, {"intro": 0.5, "break": 0.5})
    bass.level_db, bass.reverb_send, bass.highpass_hz, bass.compress_ratio = (
        float(rng.normal(-19, 1.2)),
        0.02,
        30.0,
        4.0,
    )
    parts.append(bass)

    parts += _accompaniment(plan, rng, style, has_piano, guitar_led)
    if busy and rng.random() < LEAD_CHANCE:
        parts.append(_lead(plan, rng, style))

    for part in list(parts):  # the backing vocals part is appended on the way
        if part.role == "vocals":
            compose_vocals(part, plan, rng)
            if rng.random() < SUNG_LEAD:
                _make_sung(part, plan, rng)
                if rng.random() < SUNG_BACKING:
                    backing = _backing_vocals(part, plan, rng)
                    if backing.instrument.notes:
                        parts.append(backing)
        elif part.role == "drums":
            compose_drums(part, plan, rng)
        elif part.role == "bass":
            compose_bass(part, plan, rng, busy)
        elif part.kind in LEAD_KINDS:
            compose_lead(part, plan, rng, vocals.sections, vocals.instrument.notes)
            if not part.instrument.notes:  # no section of its own and no lick drawn: no lead
                parts.remove(part)
        else:
            compose_other(part, plan, rng, busy)
    return Song(plan, parts, reverb_s=float(rng.uniform(0.8, 2.2)))


def _accompaniment(
    plan: SongPlan, rng: np.random.Generator, style: str, has_piano: bool, guitar_led: bool
) -> list[Part]:
    """The "other" parts of a song, not yet composed: piano first iff ``has_piano``, then 0-3 of the style's
    kinds (guitars first in ``GUITAR_LED`` of the songs with ``guitar_led``), with their mix settings."""
    parts = []
    kinds = list(rng.permutation(STYLE_KINDS[style]))
    if guitar_led and rng.random() < GUITAR_LED:
        kinds.sort(key=lambda kind: not kind.startswith("guitar"))  # stable: guitars first, order kept
    n_others = int(rng.choice([0, 1, 1, 2])) if has_piano else int(rng.choice([1, 2, 2, 3]))
    other_kinds = (["piano"] if has_piano else []) + kinds[:n_others]
    pans = list(rng.permutation([-0.55, 0.55, -0.3, 0.3]))
    for k, kind in enumerate(other_kinds):
        part = new_part("other", kind, int(rng.choice(PROGRAMS[kind])))
        if k == 0:  # the main accompaniment plays throughout
            part.sections = frozenset(s.index for s in plan.sections)
            part.pan = float(rng.uniform(-0.2, 0.2))
        else:
            part.sections = _sections(
                plan, rng, {"intro": 0.4, "verse": 0.5, "pre": 0.7, "bridge": 0.7, "break": 0.3, "outro": 0.5}
            )
            part.pan = float(pans[k])
        part.level_db = float(rng.normal(-20 - 1.5 * (len(other_kinds) - 1), 1.2))
        sustained = kind in ("strings", "pad", "organ")
        part.reverb_send = float(rng.uniform(0.2, 0.4) if sustained else rng.uniform(0.1, 0.25))
        part.highpass_hz = float(rng.uniform(90, 160))
        part.shelf_db = (float(rng.uniform(-3, 1)), float(rng.uniform(-2, 3)))
        part.compress_ratio = 2.0 if kind.startswith("guitar") else 1.0
        parts.append(part)
    return parts


def _lead(plan: SongPlan, rng: np.random.Generator, style: str) -> Part:
    """v6's melodic lead in "other" (``lead.LEADS``), not yet composed: its sections and mix settings."""
    kind, program, _low, _high = LEADS[style][int(rng.integers(len(LEADS[style])))]
    lead = new_part("other", kind, program)
    lead.sections = _sections(
        plan,
        rng,
        {"intro": 0.7, "verse": 0.5, "pre": 0.3, "chorus": 0.4, "bridge": 0.6, "break": 0.9, "outro": 0.7},
    )
    lead.level_db, lead.pan = float(rng.normal(-19, 1.2)), float(rng.uniform(-0.25, 0.25))
    lead.reverb_send, lead.highpass_hz = float(rng.uniform(0.15, 0.3)), float(rng.uniform(100, 180))
    lead.compress_ratio = 2.0
    return lead


def _make_sung(part: Part, plan: SongPlan, rng: np.random.Generator) -> None:
    """Give the lead a singer: a female voice at the composed pitch or a male one an octave lower, and a lyric."""
    register = "female" if rng.random() < 0.5 else "male"
    part.voice = choose_voice(rng, register)
    if register == "male":
        for note in part.instrument.notes:
            note.pitch -= 12
    part.words = tuple(choose_words(rng, len(part.instrument.notes)))
    part.compress_ratio = float(rng.uniform(2.5, 5.0))
    part.shelf_db = (float(rng.uniform(-3, 0)), float(rng.uniform(0, 4)))  # less mud, more presence


def _backing_vocals(lead: Part, plan: SongPlan, rng: np.random.Generator) -> Part:
    """A harmony a diatonic third (or sixth below) from the lead in its choruses, another singer, wider and quieter."""
    part = new_part("vocals", "backing", lead.program)
    part.voice = choose_voice(rng, "female" if rng.random() < 0.5 else "male")
    chorus_bars = {
        bar for s in plan.sections if s.name in ("chorus", "outro") for bar in range(s.start_bar, s.end_bar)
    }
    steps = 2 if rng.random() < 0.7 else -5  # a third above, or a sixth below
    scale = scale_pitches(plan.key, 24, 100)
    words = []
    for note, word in zip(lead.instrument.notes, lead.words, strict=True):
        bar = int((note.start + 1e-6) // plan.bar_s)
        if bar not in chorus_bars or note.pitch not in scale:
            continue
        pitch = scale[min(max(scale.index(note.pitch) + steps, 0), len(scale) - 1)]
        part.instrument.notes.append(type(note)(note.velocity, pitch, note.start, note.end))
        words.append(word)
    part.instrument.pitch_bends = list(lead.instrument.pitch_bends)
    part.words = tuple(words)
    part.sections = lead.sections
    part.level_db = lead.level_db - float(rng.uniform(4, 8))
    part.pan = float(rng.choice([-1, 1]) * rng.uniform(0.25, 0.5))
    part.reverb_send = min(0.6, lead.reverb_send + 0.15)
    part.highpass_hz, part.compress_ratio = 150.0, 3.0
    return part
