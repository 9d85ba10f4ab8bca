"""One song of a dataset, fully determined by (seed, song index): compose, render, check, retry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mss.errors import DatasetError

from .compose import STYLE_NAMES, compose_song
from .mix import SongAudio, SongRejected, render_song
from .names import song_title
from .render import Renderer
from .versions import DEFAULT_VERSION, generator

MAX_ATTEMPTS = 8


@dataclass
class RenderedSong:
    index: int
    title: str
    audio: SongAudio
    info: dict  # the song's manifest entry


def build_song(
    seed: int, index: int, song_s: tuple[float, float], version: int = DEFAULT_VERSION
) -> RenderedSong:
    """Compose and render song ``index`` of the dataset of ``seed`` with generator ``version``
    (``versions.GENERATORS`` says what each one does); deterministic, whatever process runs it.

    Randomness comes from ``SeedSequence(seed, spawn_key=(index, ...))``; a song that breaks an
    invariant (silent stem, clipping, missing piano) is composed again from the next attempt's stream.
    Every song gets a fresh FluidSynth: a synth's history (voice slots, block phase) changes the output
    by a few LSBs, which would make the bytes depend on which process rendered which songs before.
    """
    spec = generator(version)
    title = song_title(index, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 0))))
    style_offset = int(np.random.default_rng(seed).integers(len(STYLE_NAMES)))
    style = STYLE_NAMES[(index + style_offset) % len(STYLE_NAMES)]
    piano = spec.has_piano(index)
    renderer = Renderer()
    problems = []
    try:
        for attempt in range(MAX_ATTEMPTS):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 1, attempt)))
            duration_s = float(np.round(rng.uniform(*song_s), 2))
            song = compose_song(rng, style, duration_s, piano, guitar_led=spec.guitar_led, busy=spec.busy)
            try:
                audio = render_song(song, renderer, rng, spec)
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
