"""A part: one instrument of a song (MIDI notes via pretty_midi) plus its mixing settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pretty_midi

from .form import Section, SongPlan
from .voice import Voice


@dataclass
class Part:
    role: str  # MUSDB stem: vocals | drums | bass | other
    kind: str  # what it is inside the stem: "lead", "kit", "bass", "piano", "guitar", "pad"...
    program: int  # GM program (drum kit preset for drums)
    instrument: pretty_midi.Instrument
    pan: float = 0.0  # -1 (left) .. 1 (right)
    level_db: float = -20.0  # target RMS (dBFS) of the part where it plays, before the song is scaled
    reverb_send: float = 0.15
    highpass_hz: float = 0.0
    shelf_db: tuple[float, float] = (0.0, 0.0)  # low and high shelf gains
    compress_ratio: float = 1.0
    echo: bool = False
    sections: frozenset[int] = field(default_factory=frozenset)  # form indices of the sections it plays in
    voice: Voice | None = None  # sung by espeak-ng + PSOLA (voice.py) instead of a GM patch
    words: tuple[str, ...] = ()  # the lyric, one word per note (cycled)

    @property
    def gm_name(self) -> str:
        if self.voice is not None:
            return f"Sung ({self.voice.name})"
        if self.instrument.is_drum:
            return f"Drum kit {self.program}"
        return pretty_midi.program_to_instrument_name(self.program)


def new_part(role: str, kind: str, program: int, is_drum: bool = False) -> Part:
    name = f"{role}:{kind}"
    return Part(
        role,
        kind,
        program,
        pretty_midi.Instrument(program=0 if is_drum else program, is_drum=is_drum, name=name),
    )


def add_note(
    part: Part,
    pitch: int,
    start_s: float,
    end_s: float,
    velocity: float,
    rng: np.random.Generator,
    timing_ms: float = 8.0,
    velocity_jitter: float = 6.0,
) -> None:
    """Add a humanized note: Gaussian timing (ms) and velocity jitter, clamped to MIDI ranges."""
    shift = float(rng.normal(0.0, timing_ms / 1000.0))
    start = max(0.0, start_s + shift)
    end = max(start + 0.03, end_s + shift * 0.5)
    vel = int(np.clip(round(velocity + rng.normal(0.0, velocity_jitter)), 1, 127))
    part.instrument.notes.append(pretty_midi.Note(velocity=vel, pitch=int(pitch), start=start, end=end))


def playing_sections(plan: SongPlan, part: Part) -> list[Section]:
    return [s for s in plan.sections if s.index in part.sections]


def bars_of(plan: SongPlan, part: Part):
    """(bar, section, position in section) for every bar where the part plays, inside the composed range."""
    for section in playing_sections(plan, part):
        for bar in range(max(section.start_bar, 0), min(section.end_bar, plan.n_bars)):
            yield bar, section, bar - section.start_bar
