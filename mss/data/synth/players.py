"""Who plays a part: FluidSynth banks, recorded drum kits, singers (espeak-ng; v7: Festival's HTS voice);
and v4's session players.

``render_part`` is how every generator version turns a part into dry audio ``(2, T)``. Version 4 adds a
``Band`` drawn per song: its drummer plays a recorded multi-velocity kit (Hydrogen's kits or the two
AVLinux kits Debian ships as SoundFonts, ``avldrums.lv2-soundfont``), and its electric guitarists play
clean or palm-muted (short notes on GM 28 "muted guitar") into an amplifier (``production``) instead of
GM's pre-distorted patches, rhythm parts often double-tracked: a second take with its own timing and
velocities on another bank, the two takes panned apart, as rock records are made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi

from .hts import HTS_VOICE
from .kits import Sampler, find_kits
from .parts import Part
from .render import Renderer
from .voice import hts_formants, render_vocal

#: Debian's avldrums.lv2-soundfont: two acoustic kits recorded at many velocities, GM key map, preset 0:0.
AVL_KITS = ("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2", "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2")
#: The GM keys both AVL kits play (measured: each key struck alone on a fresh voice, heard above 4 LSB);
#: the rest (35 and the Latin percussion above 61: shaker, cabasa, claves...) are silent in them.
AVL_KEYS = frozenset(range(36, 62))
RECORDED_KIT_V4 = 0.9  # share of v4 songs on a recorded kit (Hydrogen or AVL) rather than a GM bank's
DOUBLED_KINDS = ("guitar_power", "guitar_strum")
DOUBLE_CHANCE = 0.7
PALM_MUTE_S = 0.2  # power-chord notes shorter than this are palm-muted
CLEAN_PROGRAM, MUTED_PROGRAM = 27, 28


def render_part(
    part: Part,
    renderer: Renderer,
    sampler: Sampler | None,
    n_samples: int,
    channel: int,
    rng: np.random.Generator,
    speech: str = "espeak",
) -> tuple[np.ndarray, str]:
    """A part's dry audio (2, T) and the name of what played it (every version); a sung part's words
    spoken by ``speech`` (``voice.SPEECH_ENGINES``)."""
    bank = int(rng.integers(len(renderer.sfids)))
    bank_name = renderer.soundfonts[bank].name
    if part.voice is not None:
        audio = render_vocal(
            part.instrument, part.voice, list(part.words), n_samples, renderer.sample_rate, rng, speech
        )
        if speech == "hts":
            return audio, f"festival {HTS_VOICE} (formants x{hts_formants(part.voice):.2f})"
        return audio, f"espeak-ng {part.voice.name}"
    if part.instrument.is_drum and sampler is not None:
        audio, missing = sampler.render(part.instrument.notes, n_samples)
        if missing:  # keys the kit lacks (shaker, tambourine...) come from a SoundFont
            audio += gm_kit(part, missing, renderer, n_samples, channel, bank)
        return audio, f"{sampler.kit.name} + {bank_name}" if missing else sampler.kit.name
    return renderer.render(part.instrument, part.program, n_samples, channel, bank), bank_name


def gm_kit(
    part: Part, notes: list[pretty_midi.Note], renderer: Renderer, n_samples: int, channel: int, bank: int
) -> np.ndarray:
    """``notes`` of a drum part on SoundFont ``bank``'s GM kit (keys a recorded kit lacks) -> (2, T)."""
    rest = pretty_midi.Instrument(program=0, is_drum=True, name=part.instrument.name)
    rest.notes = notes
    return renderer.render(rest, part.program, n_samples, channel, bank)


def find_avl_kits() -> list[Path]:
    return [Path(p) for p in AVL_KITS if Path(p).is_file()]


def is_electric_guitar(part: Part) -> bool:
    return part.kind.startswith("guitar") and part.program >= 26


class Band:
    """The session players of one v4 song: its drum kit and how guitars are played; ``close()`` when done."""

    def __init__(self, renderer: Renderer, rng: np.random.Generator, speech: str = "espeak") -> None:
        self.renderer = renderer
        self.speech = speech  # who speaks the sung words (voice.SPEECH_ENGINES)
        self.sampler: Sampler | None = None
        self.kit_renderer: Renderer | None = None
        hydrogen, avl = find_kits(), find_avl_kits()
        choices = [("hydrogen", i) for i in range(len(hydrogen))] + [("avl", i) for i in range(len(avl))]
        if choices and rng.random() < RECORDED_KIT_V4:
            source, index = choices[int(rng.integers(len(choices)))]
            if source == "hydrogen":
                self.sampler = Sampler(hydrogen[index], renderer.sample_rate)
            else:
                self.kit_renderer = Renderer([avl[index]], renderer.sample_rate)

    def close(self) -> None:
        if self.kit_renderer is not None:
            self.kit_renderer.close()

    def play(
        self, part: Part, n_samples: int, channel: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, str, bool]:
        """Dry audio (2, T), what played it, and whether it is a double-tracked pair (takes panned apart)."""
        if part.instrument.is_drum and self.kit_renderer is not None:
            return self._avl_kit(part, n_samples, channel, rng)
        if not is_electric_guitar(part):
            audio, source = render_part(
                part, self.renderer, self.sampler, n_samples, channel, rng, self.speech
            )
            return audio, source, False
        take, source = self._guitar_take(part, part.instrument.notes, n_samples, channel, rng)
        if part.kind not in DOUBLED_KINDS or rng.random() >= DOUBLE_CHANCE:
            return take, source, False
        notes = [
            pretty_midi.Note(
                int(np.clip(n.velocity + rng.normal(0, 6), 1, 127)),
                n.pitch,
                max(0.0, n.start + shift),
                n.end + shift,
            )
            for n in part.instrument.notes
            for shift in [float(rng.normal(0, 0.008))]
        ]
        second, second_source = self._guitar_take(part, notes, n_samples, channel, rng)
        spread = float(rng.uniform(0.6, 1.0))  # how far apart the takes are panned
        left, right = take.mean(axis=0), second.mean(axis=0)
        pair = np.stack([left + (1 - spread) * right, right + (1 - spread) * left]).astype(np.float32)
        return pair, f"{source} x2 ({second_source})", True

    def _avl_kit(
        self, part: Part, n_samples: int, channel: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, str, bool]:
        """The drum part on the AVL kit; keys the kit does not play (shaker, cabasa...) from a GM bank's kit."""
        # The AVL kits are melodic presets (bank 0, preset 0) keyed like GM percussion: a melodic channel.
        kit = pretty_midi.Instrument(program=0, is_drum=False, name=part.instrument.name)
        kit.notes = [n for n in part.instrument.notes if n.pitch in AVL_KEYS]
        audio = self.kit_renderer.render(kit, 0, n_samples, channel)
        source = self.kit_renderer.soundfonts[0].stem
        missing = [n for n in part.instrument.notes if n.pitch not in AVL_KEYS]
        if missing:
            bank = int(rng.integers(len(self.renderer.sfids)))
            audio += gm_kit(part, missing, self.renderer, n_samples, channel, bank)
            source += f" + {self.renderer.soundfonts[bank].name}"
        return audio, source, False

    def _guitar_take(
        self,
        part: Part,
        notes: list[pretty_midi.Note],
        n_samples: int,
        channel: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, str]:
        """One take of an electric guitar part, clean into the amp; power-chord stabs palm-muted. The part's
        pitch bends go with both (only v6's lead has any, and it plays no muted notes)."""
        bank = int(rng.integers(len(self.renderer.sfids)))
        is_muted = [part.kind == "guitar_power" and n.end - n.start < PALM_MUTE_S for n in notes]
        muted = [n for n, m in zip(notes, is_muted, strict=True) if m]
        open_ = [n for n, m in zip(notes, is_muted, strict=True) if not m]
        audio = np.zeros((2, n_samples), dtype=np.float32)
        for group, program in ((open_, CLEAN_PROGRAM), (muted, MUTED_PROGRAM)):
            if group:
                instrument = pretty_midi.Instrument(program=program, name=part.instrument.name)
                instrument.notes = group
                instrument.pitch_bends = list(part.instrument.pitch_bends)
                audio += self.renderer.render(instrument, program, n_samples, channel, bank)
        return audio, self.renderer.soundfonts[bank].name
