"""One song of a dataset, fully determined by (seed, song index): compose, render, check, retry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mss.errors import DatasetError

from .compose import STYLE_NAMES, compose_song
from .mix import SongAudio, SongRejected, render_song
from .names import song_title
from .render import Renderer

MAX_ATTEMPTS = 8
#: Generator versions this code renders (2: stems get a -90..-80 dBFS noise floor; 3: several SoundFonts,
#: recorded drum kits, sung vocals with lyrics, a bus limiter; 4: production that sounds recorded,
#: ``production.py``; 5: v4 voiced like the realism gauge's recorded stems, guitar-led accompaniment and
#: piano in 4 songs of 10; 6: v5 with busier bass and accompaniment parts and a melodic lead in "other" in
#: most songs, ``lead.py``; 7: v5's songs sung by Festival's HTS voice instead of espeak-ng, ``hts.py``).
#: Bumping the default rebuilds the embedded dataset (its manifest records it).
VERSIONS = (3, 4, 5, 6, 7)
DEFAULT_VERSION = 3


def check_version(version: int) -> None:
    """DatasetError unless this code renders generator ``version``."""
    if version not in VERSIONS:
        raise DatasetError(f"unknown generator version {version}; this code renders versions {VERSIONS}")


@dataclass
class RenderedSong:
    index: int
    title: str
    audio: SongAudio
    info: dict  # the song's manifest entry


def composition(version: int) -> tuple[bool, bool]:
    """What decides the songs generator ``version`` composes for a seed, ``(guitar_led, busy)`` (and piano in
    4 songs of 10 when guitar-led, ``has_piano``): versions with the same one compose the same songs (3 and 4),
    unless a song's render is rejected and composed again from the next attempt's stream; 5 and 7 too)."""
    return version >= 5, version == 6


def has_piano(index: int, version: int = DEFAULT_VERSION) -> bool:
    """Piano in 7 songs out of 10 (version 5: 4 in 10), at fixed positions so even a tiny dataset has piano
    songs. Real accompaniment ("other") is led by guitars more often than by a piano."""
    if version >= 5:
        return index % 10 in (0, 3, 6, 8)
    return index % 10 not in (2, 5, 8)


def build_song(
    seed: int, index: int, song_s: tuple[float, float], version: int = DEFAULT_VERSION
) -> RenderedSong:
    """Compose and render song ``index`` of the dataset of ``seed`` with generator ``version`` (VERSIONS);
    deterministic, whatever process runs it. Versions 3 and 4 compose the same songs (same parts, notes
    and arrangement for a seed); 4 renders and mixes them differently. Version 5 composes its own
    (fewer piano songs, guitar-led accompaniment) and renders them like 4 with its own voicing; version 6
    composes its own again (v5's, busier, often with a lead in "other") and renders them exactly like 5.
    Version 7 composes v5's songs and renders them like 5 but for the singers (Festival's HTS voice).

    Randomness comes from ``SeedSequence(seed, spawn_key=(index, ...))``; a song that breaks an
    invariant (silent stem, clipping, missing piano) is composed again from the next attempt's stream.
    Every song gets a fresh FluidSynth: a synth's history (voice slots, block phase) changes the output
    by a few LSBs, which would make the bytes depend on which process rendered which songs before.
    """
    check_version(version)
    title = song_title(index, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 0))))
    style_offset = int(np.random.default_rng(seed).integers(len(STYLE_NAMES)))
    style = STYLE_NAMES[(index + style_offset) % len(STYLE_NAMES)]
    piano = has_piano(index, version)
    renderer = Renderer()
    problems = []
    try:
        for attempt in range(MAX_ATTEMPTS):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 1, attempt)))
            duration_s = float(np.round(rng.uniform(*song_s), 2))
            guitar_led, busy = composition(version)
            song = compose_song(rng, style, duration_s, piano, guitar_led=guitar_led, busy=busy)
            try:
                audio = render_song(song, renderer, rng, version)
                if piano and "piano" not in audio.active_stems:
                    raise SongRejected("the piano part is silent")
            except SongRejected as exc:
                problems.append(str(exc))
                continue
            instruments: dict[str, list[str]] = {}
            for part in song.parts:
                instruments.setdefault(part.role, []).append(part.gm_name)
            info = {
                "instruments": instruments,
                "active_stems": audio.active_stems,
                "duration_s": duration_s,
                "tempo_bpm": song.plan.tempo_bpm,
                "key": song.plan.key.name,
                "style": style,
                "sections": [
                    s.name for s in song.plan.sections if s.end_bar > 0 and s.start_bar < song.plan.n_bars
                ],
                "has_piano": piano,
                "sources": audio.sources,
                "attempts": attempt + 1,
            }
            return RenderedSong(index, title, audio, info)
    finally:
        renderer.close()
    raise DatasetError(f"song {index} of seed {seed} failed {MAX_ATTEMPTS} times: {problems}")
