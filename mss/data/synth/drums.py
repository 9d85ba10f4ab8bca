"""Drum parts: per-style grooves on a 16th grid, variations, fills and crashes (GM kit, channel 10)."""

from __future__ import annotations

import numpy as np

from .form import SongPlan
from .parts import Part, add_note, bars_of

# GM percussion key numbers.
KICK, SIDE, SNARE, CLAP, CHH, PEDAL, OHH, CRASH, RIDE, TAMB = 36, 37, 38, 39, 42, 44, 46, 49, 51, 54
TOMS = (50, 48, 47, 45, 43, 41)
SHAKER = 70

# Grooves: voice -> 16 steps; x = hit, X = accent, g = ghost, . = rest.
GROOVES: dict[str, dict[str, dict[int, str]]] = {
    "rock": {
        "verse": {KICK: "X.......x.x.....", SNARE: "....X.......X...", CHH: "x.x.x.x.x.x.x.x."},
        "chorus": {KICK: "X.x.....x.x.....", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
        "bridge": {KICK: "X.....x.x.......", SNARE: "....X.......X...", OHH: "x.x.x.x.x.x.x.x."},
    },
    "pop": {
        "verse": {KICK: "X.....x...x.....", SNARE: "....X.......X...", CHH: "xxxxxxxxxxxxxxxx"},
        "chorus": {
            KICK: "X..x..x...x.....",
            SNARE: "....X.......X...",
            CLAP: "....x.......x...",
            CHH: "x.x.x.x.x.x.x.x.",
            TAMB: "....x.......x...",
        },
        "bridge": {KICK: "X.......x.......", SIDE: "....x.......x...", CHH: "x.x.x.x.x.x.x.x."},
    },
    "funk": {
        "verse": {KICK: "X..x......x..x..", SNARE: "....X..g.g..X..g", CHH: "XxxxXxxxXxxxXxxx"},
        "chorus": {
            KICK: "X.x...x...x..x..",
            SNARE: "....X.g..g..X...",
            CHH: "XxxxXxxxXxxxXx.x",
            OHH: "..............x.",
        },
        "bridge": {KICK: "X.........x.....", SNARE: "....X..g....X..g", CHH: "x.x.x.x.x.x.x.x."},
    },
    "ballad": {
        "verse": {KICK: "X.......x.......", SIDE: "........x.......", CHH: "x.x.x.x.x.x.x.x."},
        "chorus": {KICK: "X.......x..x....", SNARE: "........X.......", RIDE: "x.x.x.x.x.x.x.x."},
        "bridge": {KICK: "X...............", SNARE: "........X.......", CHH: "x...x...x...x..."},
    },
    "electronic": {
        "verse": {
            KICK: "X...x...X...x...",
            CLAP: "....x.......x...",
            CHH: "x.x.x.x.x.x.x.x.",
            OHH: "..x...x...x...x.",
        },
        "chorus": {
            KICK: "X...x...X...x...",
            CLAP: "....X.......X...",
            CHH: "xxxxxxxxxxxxxxxx",
            OHH: "..x...x...x...x.",
            SHAKER: "x.x.x.x.x.x.x.x.",
        },
        "bridge": {KICK: "X.......X.......", CLAP: "............x...", CHH: "x.x.x.x.x.x.x.x."},
    },
    "shuffle": {
        "verse": {KICK: "X.......x.....x.", SNARE: "....X.......X...", CHH: "x.x.x.x.x.x.x.x."},
        "chorus": {KICK: "X.....x.x.....x.", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
        "bridge": {KICK: "X.......X.......", SNARE: "....X.......X...", PEDAL: "..x...x...x...x."},
    },
}
VELOCITY = {"X": 112, "x": 92, "g": 40}


def _groove(style: str, section: str) -> dict[int, str]:
    grooves = GROOVES[style]
    if section in ("chorus", "outro"):
        return grooves["chorus"]
    if section in ("bridge", "break"):
        return grooves["bridge"]
    return grooves["verse"]


def _fill(part: Part, plan: SongPlan, bar: int, rng: np.random.Generator, energy: float, beats: int) -> None:
    """A fill over the last ``beats`` beats of ``bar``: 16ths or 8ths down the toms, a crescendo."""
    start_step = 16 - 4 * beats
    rate = 1 if plan.tempo_bpm < 125 and rng.random() < 0.7 else 2
    toms = list(TOMS) if rng.random() < 0.6 else [SNARE, SNARE, 48, 48, 45, 45, 43, 43]
    steps = list(range(start_step, 16, rate))
    for i, step in enumerate(steps):
        voice = toms[min(len(toms) - 1, i * len(toms) // len(steps))]
        vel = 70 + 45 * energy * (i + 1) / len(steps)
        add_note(part, voice, plan.time(bar, step), plan.time(bar, step) + 0.1, vel, rng, timing_ms=4)
        if step % 8 == 0:
            add_note(part, KICK, plan.time(bar, step), plan.time(bar, step) + 0.1, vel, rng, timing_ms=3)


def compose_drums(part: Part, plan: SongPlan, rng: np.random.Generator) -> None:
    style = plan.style.name
    previous_index = None
    for bar, section, pos in bars_of(plan, part):
        groove = _groove(style, section.name)
        last_bar = pos == section.n_bars - 1
        is_break = section.name == "break"
        energy = section.energy
        if pos == 0 and section.name in ("chorus", "bridge", "outro", "verse") and previous_index is not None:
            add_note(
                part, CRASH, plan.time(bar, 0), plan.time(bar, 0) + 0.5, 100 + 20 * energy, rng, timing_ms=3
            )
        previous_index = section.index
        fill_beats = 0
        if last_bar and not is_break:
            fill_beats = int(rng.choice([1, 2, 2, 4])) if section.n_bars >= 4 else int(rng.choice([0, 1]))
        elif pos % 4 == 3 and rng.random() < 0.3:
            fill_beats = 1
        for voice, pattern in groove.items():
            if is_break and voice not in (CHH, KICK, RIDE):
                continue
            if section.name == "intro" and pos == 0 and voice in (KICK, SNARE, CLAP) and rng.random() < 0.5:
                continue  # a softer first bar
            for step, symbol in enumerate(pattern):
                if symbol == "." or step >= 16 - 4 * fill_beats:
                    continue
                if voice == KICK and symbol == "x" and rng.random() < 0.1:
                    continue  # variation: drop a weak kick
                vel = VELOCITY[symbol] * (0.75 + 0.35 * energy)
                if voice in (CHH, OHH, RIDE, SHAKER, TAMB):
                    vel *= 0.85 if step % 4 == 0 else 0.65  # hats: louder on the beat
                if voice == OHH:
                    end = plan.time(bar, step) + 0.2
                else:
                    end = plan.time(bar, step) + 0.1
                add_note(
                    part,
                    voice,
                    plan.time(bar, step),
                    end,
                    vel,
                    rng,
                    timing_ms=5 if voice in (CHH, RIDE) else 3,
                )
            if voice == KICK and rng.random() < 0.15:  # variation: an extra syncopated kick
                step = int(rng.choice([3, 7, 11, 14]))
                if step < 16 - 4 * fill_beats:
                    add_note(
                        part, KICK, plan.time(bar, step), plan.time(bar, step) + 0.1, 80, rng, timing_ms=3
                    )
        if fill_beats:
            _fill(part, plan, bar, rng, energy, fill_beats)
