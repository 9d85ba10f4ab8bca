"""FluidSynth rendering of one pretty_midi instrument to stereo float32 audio at 44.1 kHz."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import pretty_midi

from mss.errors import MissingDependencyError

SAMPLE_RATE = 44100
BLOCK = 64  # FluidSynth's internal block size (FLUID_BUFSIZE)
INSTALL_HINT = "sudo apt-get install -y libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont-small timgm6mb-soundfont"
#: The General MIDI banks a song's parts are drawn from (each part picks one): different samples of
#: every instrument, so timbres vary from song to song and part to part.
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
)


def find_soundfonts() -> list[Path]:
    """$MSS_SOUNDFONT (``:``-separated) if set, else the installed SYSTEM_SOUNDFONTS, else pretty_midi's TimGM6mb."""
    configured = [c for c in os.environ.get("MSS_SOUNDFONT", "").split(os.pathsep) if c]
    candidates = configured or list(SYSTEM_SOUNDFONTS)
    found = [Path(c) for c in candidates if Path(c).is_file()]
    if not found and not configured:
        bundled = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
        found = [bundled] if bundled.is_file() else []
    if not found:
        raise MissingDependencyError(f"no General MIDI SoundFont found; install one with: {INSTALL_HINT}")
    return found


def _import_fluidsynth():
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:  # pyfluidsynth raises ImportError when libfluidsynth is missing
        raise MissingDependencyError(
            f"FluidSynth is needed to generate the embedded dataset but cannot be loaded ({exc}). "
            f"Install it with: {INSTALL_HINT}  (and `pip install pyfluidsynth`)"
        ) from exc
    return fluidsynth


class Renderer:
    """One FluidSynth instance with every bank loaded; its own reverb and chorus are off (we add ours)."""

    def __init__(self, soundfonts: list[Path] | None = None, sample_rate: int = SAMPLE_RATE) -> None:
        fluidsynth = _import_fluidsynth()
        self.sample_rate = sample_rate
        self.soundfonts = list(soundfonts) if soundfonts else find_soundfonts()
        settings = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 256}
        self.synth = fluidsynth.Synth(gain=0.5, samplerate=float(sample_rate), **settings)
        self.sfids = []
        for soundfont in self.soundfonts:
            sfid = self.synth.sfload(str(soundfont))
            if sfid < 0:
                raise MissingDependencyError(
                    f"FluidSynth cannot load the SoundFont {soundfont}; reinstall: {INSTALL_HINT}"
                )
            self.sfids.append(sfid)
        write = fluidsynth._fl.fluid_synth_write_float  # float output: no 16-bit quantisation or dither
        write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        write.argtypes += [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        write.restype = ctypes.c_int
        self._write = write
        self._clock = 0  # samples rendered so far

    def close(self) -> None:
        self.synth.delete()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _samples(self, n: int) -> np.ndarray:
        out = np.zeros((n, 2), dtype=np.float32)  # interleaved (T, C)
        self._clock += n
        if n > 0:
            pointer = out.ctypes.data
            self._write(self.synth.synth, n, pointer, 0, 2, pointer, 1, 2)
        return out

    def render(
        self, instrument: pretty_midi.Instrument, program: int, n_samples: int, channel: int, bank: int = 0
    ) -> np.ndarray:
        """Render ``instrument`` with soundfont number ``bank`` to ``(2, n_samples)`` float32.

        Drums play on MIDI channel 10 with kit ``program`` (the bank's kit 0 when it has no such kit).
        """
        sfid = self.sfids[bank % len(self.sfids)]
        channel = channel % 16
        if instrument.is_drum:
            channel = 9
            if self.synth.program_select(channel, sfid, 128, program) < 0:
                self.synth.program_select(channel, sfid, 128, 0)
        else:
            if channel == 9:
                channel = 15
            self.synth.program_select(channel, sfid, 0, program)
        events: list[tuple[int, int, int, int, int]] = []  # (sample, order, kind, a, b); note-offs first
        for note in instrument.notes:
            events.append((round(note.start * self.sample_rate), 1, 0, note.pitch, note.velocity))
            events.append((round(note.end * self.sample_rate), 0, 1, note.pitch, 0))
        for bend in instrument.pitch_bends:
            events.append((round(bend.time * self.sample_rate), 1, 2, bend.pitch, 0))
        events.sort()
        chunks, position = [], 0
        for sample, _order, kind, a, b in events:
            sample = min(sample, n_samples)
            if sample > position:
                chunks.append(self._samples(sample - position))
                position = sample
            if kind == 0:
                self.synth.noteon(channel, a, b)
            elif kind == 1:
                self.synth.noteoff(channel, a)
            else:
                self.synth.pitch_bend(channel, a)
        chunks.append(self._samples(n_samples - position))
        self.synth.all_sounds_off(channel)
        self.synth.pitch_bend(channel, 0)
        # FluidSynth applies events at its 64-sample block boundaries, counted from its creation: end
        # on a boundary so the next part renders exactly as it would on a fresh synth (determinism).
        self._samples((-self._clock) % BLOCK + BLOCK)
        return np.concatenate(chunks, axis=0).T.copy()  # (2, T)
