"""Spoken words from Festival's HTS voice (generator v7's singers), ready for ``voice``'s TD-PSOLA.

espeak-ng is a formant synthesizer: its vowels are a pulse train through a few resonators, a buzz no recorded
voice has. Festival's ``cmu_us_slt_arctic_hts`` is a statistical parametric voice trained on a recorded
American English speaker (CMU ARCTIC "slt"): mixed excitation (voiced and noise bands) through a spectral
envelope learned from her recordings, at 32 kHz. It is one female speaker, so each song's singer gets its
own vocal tract length: the speech is resampled so that its formants move by a factor (below 1: a longer
tract, a male-sounding voice), read from the espeak-ng voice the song composed: no random draw is added,
so v7 composes v5's songs. TD-PSOLA then puts the sung pitch on it, keeping those formants. Output: mono
float32 at ``voice.SPEECH_RATE`` (22.05 kHz), before ``voice`` trims its silence.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pedalboard as pb
import soundfile as sf
from scipy import signal

from mss.errors import DatasetError, MissingDependencyError, require_program

from .effects import run_board

HTS_VOICE = "cmu_us_slt_arctic_hts"
HTS_RATE = 32000
INSTALL_HINT = "sudo apt-get install -y festival festvox-us-slt-hts"
FESTIVAL_TIMEOUT_S = 120


@dataclass(frozen=True)
class VoiceEq:
    """An EQ on the HTS speech: a low shelf and a presence peak (Hz, dB)."""

    low_shelf_hz: float = 250.0
    low_shelf_db: float = -10.0
    presence_hz: float = 3600.0
    presence_db: float = 16.0
    presence_q: float = 1.0


#: The HTS voice is dark beside espeak-ng's: over 20 words, its long-term spectrum (octave bands, relative to the
#: total) lay 6-16 dB under espeak-ng's at 2-4 kHz and 8 dB over it at 125 Hz. This EQ on the speech brings
#: every octave from 125 Hz to 8 kHz within 2 dB of espeak-ng's, the balance v5's vocal chain was tuned on with
#: the realism gauge (docs/data.md, generator v7).
VOICE_EQ = VoiceEq()


@dataclass(frozen=True)
class FormantRange:
    """Formant factors by the composed voice's register, spread over its espeak-ng pitch setting (35-70): the
    recorded speaker's tract for female singers, about 20% longer for male ones."""

    female: tuple[float, float] = (0.94, 1.06)
    male: tuple[float, float] = (0.78, 0.86)


FORMANT_RANGE = FormantRange()


def require_festival() -> str:
    return require_program(
        "festival", f"festival is needed for generator v7's vocals; install it: {INSTALL_HINT}"
    )


def formant_factor(register: str, pitch: int) -> float:
    """How far the speech's formants move for a singer of ``register`` drawn with espeak-ng ``pitch`` (35-70)."""
    low, high = getattr(FORMANT_RANGE, register)
    return low + (high - low) * float(np.clip((pitch - 35) / 35, 0.0, 1.0))


def _script(words: list[str], folder: Path) -> str:
    lines = [f"(voice_{HTS_VOICE})"]
    for i, word in enumerate(words):
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{word}")) "{folder / f"{i}.wav"}" \'riff)')
    return "\n".join(lines) + "\n"


def speak_words(words: list[str], formants: float, out_rate: int) -> dict[str, np.ndarray]:
    """Each of ``words`` (letters and apostrophes) spoken once by the HTS voice in one Festival process ->
    word: (T,) float32 at ``out_rate``, its formants moved by ``formants``, ``VOICE_EQ`` applied; silence kept
    (``voice`` trims it). The voice speaks at its own pace (its HTS engine ignores Festival's
    ``Duration_Stretch``); TD-PSOLA stretches the vowels to the notes."""
    unique = list(dict.fromkeys(words))
    bad = [w for w in unique if not w or not all(c.isalpha() or c == "'" for c in w)]
    if bad:
        raise DatasetError(f"the HTS voice speaks words of letters only, not {bad[:3]}")
    if not unique:
        return {}
    festival = require_festival()
    with tempfile.TemporaryDirectory(prefix="mss-hts-") as tmp:
        folder = Path(tmp)
        script = folder / "words.scm"
        script.write_text(_script(unique, folder))
        try:
            result = subprocess.run(
                [festival, "--batch", str(script)],
                capture_output=True,
                check=False,
                timeout=FESTIVAL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise MissingDependencyError(
                f"festival did not speak {len(unique)} words in {FESTIVAL_TIMEOUT_S} s ({HTS_VOICE})"
            ) from exc
        missing = [w for i, w in enumerate(unique) if not (folder / f"{i}.wav").is_file()]
        if result.returncode != 0 or missing:
            raise MissingDependencyError(
                f"festival's {HTS_VOICE} voice failed (exit {result.returncode}; not spoken: {missing[:3]}); "
                f"is it installed? {INSTALL_HINT}. festival said: {result.stderr.decode(errors='replace')[-300:]}"
            )
        spoken = {}
        for i, word in enumerate(unique):
            audio, rate = sf.read(folder / f"{i}.wav", dtype="float32")
            if rate != HTS_RATE:
                raise DatasetError(f"festival wrote {rate} Hz audio for {word!r}, expected {HTS_RATE}")
            spoken[word] = _brighten(_retract(audio, formants, out_rate), out_rate)
    return spoken


def _brighten(audio: np.ndarray, rate: int) -> np.ndarray:
    """``VOICE_EQ`` on mono speech (T,) -> (T,) float32."""
    eq = VOICE_EQ
    board = pb.Pedalboard(
        [
            pb.LowShelfFilter(eq.low_shelf_hz, eq.low_shelf_db, 0.7),
            pb.PeakFilter(eq.presence_hz, eq.presence_db, eq.presence_q),
        ]
    )
    return run_board(board, audio[None], rate)[0]


def _retract(audio: np.ndarray, formants: float, out_rate: int) -> np.ndarray:
    """Read 32-kHz speech as if recorded at 32 kHz x ``formants`` and resample it to ``out_rate``: every
    frequency (formants and pitch) moves by ``formants``, durations by its inverse."""
    ratio = Fraction(out_rate, int(round(HTS_RATE * formants))).limit_denominator(2000)
    return signal.resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator).astype(
        np.float32
    )
