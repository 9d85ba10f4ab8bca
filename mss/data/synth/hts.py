"""Spoken words from Festival's HTS voice (generator v7's singers), ready for ``voice``'s TD-PSOLA.

espeak-ng is a formant synthesizer: its vowels are a pulse train through a few resonators, a buzz no recorded
voice has. Festival's ``cmu_us_slt_arctic_hts`` is a statistical parametric voice trained on a recorded
American English speaker (CMU ARCTIC "slt"): mixed excitation (voiced and noise bands) through a spectral
envelope learned from her recordings, at 32 kHz. It is one female speaker, so each song's singer gets its
own vocal tract length: the speech is resampled so that its formants move by a factor (below 1: a longer
tract, a male-sounding voice), drawn from the espeak-ng voice the song composed, so v7 composes exactly the
songs of v5 and draws the same random numbers. TD-PSOLA then puts the sung pitch on it, keeping those
formants. Output: mono float32 at ``voice.SPEECH_RATE`` (22.05 kHz), like ``voice.speak``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pedalboard as pb
import soundfile as sf
from scipy import signal

from mss.errors import MissingDependencyError

HTS_VOICE = "cmu_us_slt_arctic_hts"
HTS_RATE = 32000
INSTALL_HINT = "sudo apt-get install -y festival festvox-us-slt-hts"
#: Formant factors by the composed voice's register, spread over its espeak-ng pitch setting (35-70): the
#: recorded speaker's tract for female singers (x0.94-1.06), about 20% longer for male ones (x0.78-0.86).
FORMANT_RANGE = {"female": (0.94, 1.06), "male": (0.78, 0.86)}
#: The HTS voice is dark beside espeak-ng's: over 20 words, its long-term spectrum (octave bands, relative to the
#: total) lay 6-15 dB under espeak-ng's at 2-4 kHz and 8 dB over it at 125 Hz. This EQ on the speech (a low
#: shelf, a presence peak) brings every octave from 125 Hz to 8 kHz within 2 dB of espeak-ng's, the balance
#: v5's vocal chain was tuned on with the realism gauge (the measurement: docs/data.md, generator v7).
VOICE_EQ = {
    "low_shelf_hz": 250.0,
    "low_shelf_db": -10.0,
    "presence_hz": 3600.0,
    "presence_db": 16.0,
    "presence_q": 1.0,
}


def require_festival() -> str:
    path = shutil.which("festival")
    if path is None:
        raise MissingDependencyError(
            f"festival is needed for generator v7's vocals; install it: {INSTALL_HINT}"
        )
    return path


def formant_factor(register: str, pitch: int) -> float:
    """How far the speech's formants move for a singer of ``register`` drawn with espeak-ng ``pitch`` (35-70)."""
    low, high = FORMANT_RANGE[register]
    return low + (high - low) * float(np.clip((pitch - 35) / 35, 0.0, 1.0))


def _script(words: list[str], folder: Path) -> str:
    lines = [f"(voice_{HTS_VOICE})"]
    for i, word in enumerate(words):
        text = word.replace("\\", "").replace('"', "")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{folder / f"{i}.wav"}" \'riff)')
    return "\n".join(lines) + "\n"


def speak_words(words: list[str], formants: float, out_rate: int) -> dict[str, np.ndarray]:
    """Each of ``words`` spoken once by the HTS voice in one Festival process -> word: (T,) float32 at
    ``out_rate``, its formants moved by ``formants``, silence trimmed. The voice speaks at its own pace
    (its HTS engine ignores Festival's ``Duration_Stretch``); TD-PSOLA stretches the vowels to the notes."""
    festival = require_festival()
    unique = list(dict.fromkeys(words))
    with tempfile.TemporaryDirectory(prefix="mss-hts-") as tmp:
        folder = Path(tmp)
        script = folder / "words.scm"
        script.write_text(_script(unique, folder))
        result = subprocess.run(
            [festival, "--batch", str(script)], capture_output=True, check=False, timeout=120
        )
        spoken = {}
        for i, word in enumerate(unique):
            path = folder / f"{i}.wav"
            if result.returncode != 0 or not path.is_file():
                raise MissingDependencyError(
                    f"festival's {HTS_VOICE} voice did not speak {word!r} (install it: {INSTALL_HINT}): "
                    f"{result.stderr.decode(errors='replace')[-300:]}"
                )
            audio, rate = sf.read(path, dtype="float32")
            if rate != HTS_RATE:
                raise MissingDependencyError(
                    f"festival wrote {rate} Hz audio for {word!r}, expected {HTS_RATE}"
                )
            spoken[word] = _trim(_brighten(_retract(audio, formants, out_rate), out_rate))
    return spoken


def _brighten(audio: np.ndarray, rate: int) -> np.ndarray:
    """``VOICE_EQ`` on mono speech (T,) -> (T,) float32."""
    board = pb.Pedalboard(
        [
            pb.LowShelfFilter(VOICE_EQ["low_shelf_hz"], VOICE_EQ["low_shelf_db"], 0.7),
            pb.PeakFilter(VOICE_EQ["presence_hz"], VOICE_EQ["presence_db"], VOICE_EQ["presence_q"]),
        ]
    )
    return np.asarray(
        board(np.ascontiguousarray(audio[None], dtype=np.float32), float(rate))[0], dtype=np.float32
    )


def _retract(audio: np.ndarray, formants: float, out_rate: int) -> np.ndarray:
    """Read 32-kHz speech as if recorded at 32 kHz x ``formants`` and resample it to ``out_rate``: every
    frequency (formants and pitch) moves by ``formants``, durations by its inverse."""
    ratio = Fraction(out_rate, int(round(HTS_RATE * formants))).limit_denominator(2000)
    return signal.resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator).astype(
        np.float32
    )


def _trim(audio: np.ndarray) -> np.ndarray:
    """``audio`` without its leading and trailing silence (under 1% of its peak)."""
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max()) if audio.size else np.array([])
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio
