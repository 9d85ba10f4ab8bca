"""Sung vocals: espeak-ng speaks a word per note, TD-PSOLA re-pitches it along the melody.

A General MIDI "Choir Aahs" has no consonants, no breath and no formant movement; real lead vocals have
all three. Here each note of a vocal part gets one sung word: espeak-ng (a formant speech synthesizer,
so real phoneme transitions: plosives, fricatives, nasals, diphthongs) speaks it once, and
time-domain pitch-synchronous overlap-add (TD-PSOLA) moves its voiced nucleus onto the note's pitch
contour (the part's pitch bends: scoops and delayed vibrato, plus a slow drift) and stretches the
vowel over the note's length, keeping the spectral envelope (the formants) of the speech. Consonants
are copied as spoken, the onset placed just ahead of the beat as singers do; breaths fill the gaps
before phrases. Everything is mono float32 at 22.05 kHz (espeak-ng's rate), resampled to 44.1 kHz.
Generator v7 has Festival's HTS voice speak the words instead (``hts.py``; ``speech="hts"``).
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass

import numpy as np
import pretty_midi
import soundfile as sf
from scipy import signal

from mss.errors import MissingDependencyError, require_program

from . import hts

SPEECH_RATE = 22050  # espeak-ng's output rate
INSTALL_HINT = "sudo apt-get install -y espeak-ng"
SPEECH_ENGINES = ("espeak", "hts")
#: espeak-ng voice variants (``en-us+<variant>``), by register.
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "belinda", "linda", "anika", "Annie", "Alicia")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m6", "m7", "max", "david", "Andy", "Mike")
#: One-syllable lyrics: a small vocabulary per song, so words come back as they do in real lyrics.
WORDS = (
    "love night fire heart rain stay go down light time home day way know feel dream run fall high sky "
    "true you me we all now say tell hold cold gold road soul mind find line shine more door young song "
    "long strong sun moon star blue free tears hand face road back dance break take make wake town sea "
    "oh yeah hey ooh baby why cry try fly lie side ride wide call stand alone again tonight forever"
).split()


@dataclass(frozen=True)
class Voice:
    """Who sings: an espeak-ng voice, its speaking rate (words/min) and pitch (0-99), and breathiness."""

    name: str  # e.g. "en-us+f3"
    speed: int = 140
    pitch: int = 50
    breath_db: float = -24.0  # breath level relative to the sung phrase's RMS


def require_espeak() -> str:
    return require_program(
        "espeak-ng", f"espeak-ng is needed for the generated vocals; install it: {INSTALL_HINT}"
    )


def speak(word: str, voice: Voice) -> np.ndarray:
    """espeak-ng's rendering of ``word`` -> (T,) float32 at SPEECH_RATE, silence trimmed."""
    command = [require_espeak(), "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "--stdout"]
    result = subprocess.run(command + [word], capture_output=True, check=False, timeout=30)
    if result.returncode != 0 or not result.stdout:
        raise MissingDependencyError(
            f"espeak-ng failed on {word!r} with voice {voice.name}: {result.stderr.decode(errors='replace')}"
        )
    audio, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    if rate != SPEECH_RATE:
        raise MissingDependencyError(f"espeak-ng wrote {rate} Hz audio, expected {SPEECH_RATE}")
    return trim_silence(audio)


def trim_silence(audio: np.ndarray) -> np.ndarray:
    """``audio (T,)`` without its leading and trailing silence (under 1% of its peak)."""
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max()) if audio.size else np.array([])
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


@dataclass
class Syllable:
    """A spoken word, analysed: samples, pitch marks and periods of its voiced nucleus."""

    audio: np.ndarray  # (T,) float32
    voiced_start: int  # first and last sample of the voiced nucleus
    voiced_end: int
    marks: np.ndarray  # (M,) pitch marks (sample indices) inside the nucleus
    periods: np.ndarray  # (M,) local period in samples at each mark


def warm_up() -> None:
    """Compile librosa's numba kernels that ``analyse`` runs (pitch, RMS, zero crossings) in this process.

    Numba caches them on disk, and processes that compile the same kernels at the same moment can leave that
    cache inconsistent (later processes then crash loading it). A pool's parent calls this before it starts
    its workers, so the cache is written once and the workers only read it.
    """
    t = np.arange(SPEECH_RATE // 5, dtype=np.float32) / SPEECH_RATE
    analyse((0.5 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32))


def analyse(audio: np.ndarray) -> Syllable:
    """Find the voiced nucleus (loud, low zero-crossing rate) and pitch-synchronous marks inside it."""
    import librosa

    hop, frame = 64, 1024
    padded = np.pad(audio, (0, max(0, frame - audio.size)))
    f0 = librosa.yin(padded, fmin=60, fmax=500, sr=SPEECH_RATE, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=padded, frame_length=512, hop_length=hop)[0]
    zcr = librosa.feature.zero_crossing_rate(padded, frame_length=512, hop_length=hop)[0]
    n = min(f0.size, rms.size, zcr.size)
    voiced = (rms[:n] > 0.12 * rms.max()) & (zcr[:n] < 0.18)
    if not voiced.any():
        voiced[np.argmax(rms[:n])] = True
    frames = np.flatnonzero(voiced)
    start = int(min(frames[0] * hop, audio.size - 1))
    end = int(min(frames[-1] * hop + hop, audio.size - 1))
    marks, periods = [], []
    position = start
    while position < end:
        period = float(SPEECH_RATE / f0[min(position // hop, n - 1)])
        half = max(1, int(period / 4))
        window = audio[max(0, position - half) : position + half + 1]
        position = max(0, position - half) + int(np.argmax(window)) if window.size else position
        if marks and position <= marks[-1] + period / 2:
            position = int(marks[-1] + period)
        if position >= end:
            break
        marks.append(position)
        periods.append(period)
        position = int(position + period)
    if not marks:
        marks, periods = [start], [SPEECH_RATE / 150.0]
    return Syllable(audio, start, end, np.asarray(marks), np.asarray(periods))


def _grain(audio: np.ndarray, centre: int, half: int) -> np.ndarray:
    """A Hann-windowed grain of 2*half+1 samples centred on ``centre`` (zero outside the audio)."""
    out = np.zeros(2 * half + 1, dtype=np.float32)
    lo, hi = centre - half, centre + half + 1
    src_lo, src_hi = max(lo, 0), min(hi, audio.size)
    if src_hi > src_lo:
        out[src_lo - lo : src_hi - lo] = audio[src_lo:src_hi]
    return out * np.hanning(2 * half + 3)[1:-1].astype(np.float32)


def sing(syllable: Syllable, f0_hz: np.ndarray, length: int) -> np.ndarray:
    """The syllable's nucleus re-pitched to ``f0_hz`` (per output sample) and stretched to ``length`` samples.

    The first and last 20 % of the nucleus (consonant-vowel transitions) keep their spoken speed when
    they fit; the middle (the vowel) absorbs the stretch. -> (length,) float32.
    """
    out = np.zeros(length + 4 * SPEECH_RATE // 50, dtype=np.float32)
    a0, a1 = syllable.voiced_start, syllable.voiced_end
    span = max(1, a1 - a0)
    edge = int(0.2 * span)
    edge_out = min(edge, length // 3)
    marks, periods = syllable.marks, syllable.periods

    def analysis_position(t: int) -> float:
        if t < edge_out:
            return a0 + t * edge / max(edge_out, 1)
        if t > length - edge_out:
            return a1 - (length - t) * edge / max(edge_out, 1)
        middle_out = max(1, length - 2 * edge_out)
        return a0 + edge + (t - edge_out) * (span - 2 * edge) / middle_out

    t = 0
    while t < length:
        target = float(SPEECH_RATE / f0_hz[min(t, f0_hz.size - 1)])
        # Blend the grains of the two marks around the analysis position: jumping from one mark to the
        # next would click wherever the marks are not exactly a period apart.
        position = analysis_position(t)
        k = int(np.clip(np.searchsorted(marks, position) - 1, 0, marks.size - 1))
        k1 = min(k + 1, marks.size - 1)
        weight = 0.0 if k1 == k else float(np.clip((position - marks[k]) / (marks[k1] - marks[k]), 0, 1))
        half = int(round((1 - weight) * periods[k] + weight * periods[k1]))
        grain = _grain(syllable.audio, int(marks[k]), half) * np.float32(1 - weight)
        if weight > 0:
            grain += _grain(syllable.audio, int(marks[k1]), half) * np.float32(weight)
        # Grains scaled by the period ratio: notes above the speech's pitch come out a few dB softer (the
        # part is normalised to its level afterwards; generator version 3's audio depends on this).
        grain *= np.float32(min(2.0, target / half))
        lo = t - half + 2 * SPEECH_RATE // 50
        out[lo : lo + grain.size] += grain
        t += max(1, int(round(target)))
    return out[2 * SPEECH_RATE // 50 : 2 * SPEECH_RATE // 50 + length]


def _crossfade_add(out: np.ndarray, piece: np.ndarray, at: int, fade: int) -> None:
    """Add ``piece`` into ``out`` at sample ``at`` with raised-cosine edges of ``fade`` samples (clipped)."""
    if at >= out.size or piece.size == 0:
        return
    piece = piece.copy()
    fade = min(fade, piece.size // 2)
    if fade > 0:
        ramp = np.sin(np.linspace(0, np.pi / 2, fade, dtype=np.float32)) ** 2
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
    lo = max(at, 0)
    piece = piece[lo - at :]
    hi = min(out.size, lo + piece.size)
    out[lo:hi] += piece[: hi - lo]


def pitch_contour(
    instrument: pretty_midi.Instrument, n: int, rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Per-sample f0 (Hz) of a monophonic part: note pitches, its pitch bends (+-2 semitones), a slow drift."""
    semis = np.zeros(n, dtype=np.float64)
    for note in instrument.notes:
        semis[int(note.start * rate) : int(note.end * rate) + 1] = note.pitch
    bends = sorted(instrument.pitch_bends, key=lambda b: b.time)
    if bends:
        times = np.array([int(b.time * rate) for b in bends])
        values = np.array([b.pitch / 8192 * 2 for b in bends])
        index = np.searchsorted(times, np.arange(n), side="right") - 1
        semis += np.where(index >= 0, values[np.maximum(index, 0)], 0.0)
    drift = signal.sosfiltfilt(
        signal.butter(1, 1.5, fs=100, output="sos"), rng.standard_normal(n // (rate // 100) + 2)
    )
    drift = np.interp(np.arange(n) / (rate / 100), np.arange(drift.size), drift)
    semis += 0.08 * drift / max(np.std(drift), 1e-9)  # about 8 cents of slow pitch wander
    return 440.0 * 2 ** ((semis - 69) / 12)


def breath(length: int, rng: np.random.Generator) -> np.ndarray:
    """An inhale: band-passed noise (400 Hz - 6 kHz, a soft formant) under a rise-and-fall envelope."""
    noise = rng.standard_normal(length)
    noise = signal.sosfilt(
        signal.butter(2, (400, 6000), btype="bandpass", fs=SPEECH_RATE, output="sos"), noise
    )
    formant = signal.sosfilt(
        signal.butter(
            2, (1200 * rng.uniform(0.8, 1.3), 2600), btype="bandpass", fs=SPEECH_RATE, output="sos"
        ),
        noise,
    )
    envelope = np.sin(np.linspace(0, np.pi, length)) ** 1.5
    return ((noise + 1.5 * formant) * envelope).astype(np.float32)


def render_vocal(
    instrument: pretty_midi.Instrument,
    voice: Voice,
    words: list[str],
    n_samples: int,
    out_rate: int,
    rng: np.random.Generator,
    speech: str = "espeak",
) -> np.ndarray:
    """Sing every note of a monophonic ``instrument``, one word of ``words`` (cycled) per note, spoken by
    ``speech`` (SPEECH_ENGINES: "espeak" for espeak-ng, "hts" for Festival's HTS voice, ``hts.py``).

    Returns ``(2, n_samples)`` float32 at ``out_rate`` (a multiple of 22.05 kHz), mono in both channels.
    """
    n_speech = int(np.ceil(n_samples * SPEECH_RATE / out_rate)) + 1
    out = np.zeros(n_speech, dtype=np.float32)
    contour = pitch_contour(instrument, n_speech, SPEECH_RATE, rng)
    syllables = {word: analyse(audio) for word, audio in spoken_words(words, voice, speech).items()}
    notes = sorted(instrument.notes, key=lambda n: n.start)
    previous_end = -10.0
    phrase_rms = []
    breaths = []
    for i, note in enumerate(notes):
        syllable = syllables[words[i % len(words)]]
        start, end = int(note.start * SPEECH_RATE), int(note.end * SPEECH_RATE)
        if end - start < 200 or start >= n_speech:
            continue
        onset = syllable.audio[: syllable.voiced_start]
        coda = syllable.audio[syllable.voiced_end :]
        coda_len = min(coda.size, (end - start) // 3)
        body_len = max(64, end - start - coda_len)
        body = sing(syllable, contour[start : start + body_len], body_len)
        fade = SPEECH_RATE // 200
        lead_in = min(onset.size, int(0.12 * SPEECH_RATE), max(0, start - int(previous_end * SPEECH_RATE)))
        _crossfade_add(out, onset[onset.size - lead_in :], start - lead_in, fade)
        _crossfade_add(out, body, start, fade)
        _crossfade_add(out, coda[:coda_len], start + body_len, fade)
        if note.start - previous_end > 0.45:  # a new phrase: breathe in before it
            length = int(rng.uniform(0.22, 0.4) * SPEECH_RATE)
            breaths.append((start - lead_in - length - int(0.04 * SPEECH_RATE), length))
        phrase_rms.append(float(np.sqrt(np.mean(body**2))))
        previous_end = note.end
    level = float(np.median(phrase_rms)) if phrase_rms else 0.0
    for at, length in breaths:
        if at > 0:
            piece = breath(length, rng)
            piece *= np.float32(level * 10 ** (voice.breath_db / 20) / max(np.sqrt(np.mean(piece**2)), 1e-9))
            _crossfade_add(out, piece, at, 0)
    factor = out_rate // SPEECH_RATE
    up = signal.resample_poly(out, factor, 1).astype(np.float32)[:n_samples]
    up = np.pad(up, (0, n_samples - up.size))
    return np.stack([up, up])


def voice_register(voice: Voice) -> str:
    """The register ``choose_voice`` drew ``voice`` for: "female" or "male"."""
    return "female" if voice.name.split("+")[-1] in FEMALE_VARIANTS else "male"


def hts_formants(voice: Voice) -> float:
    """How far the HTS voice's formants move to sing as ``voice`` (its register and espeak-ng pitch)."""
    return hts.formant_factor(voice_register(voice), voice.pitch)


def spoken_words(words: list[str], voice: Voice, speech: str) -> dict[str, np.ndarray]:
    """Every distinct word of ``words`` spoken once by ``voice`` -> word: (T,) float32 at SPEECH_RATE."""
    if speech not in SPEECH_ENGINES:
        raise ValueError(f"unknown speech engine {speech!r}; expected one of {SPEECH_ENGINES}")
    unique = list(dict.fromkeys(words))
    if speech == "hts":
        return {
            w: trim_silence(a) for w, a in hts.speak_words(unique, hts_formants(voice), SPEECH_RATE).items()
        }
    return {word: speak(word, voice) for word in unique}


def choose_voice(rng: np.random.Generator, register: str) -> Voice:
    variants = FEMALE_VARIANTS if register == "female" else MALE_VARIANTS
    return Voice(
        name=f"en-us+{rng.choice(variants)}",
        speed=int(rng.integers(110, 170)),
        pitch=int(rng.integers(35, 70)),
        breath_db=float(rng.uniform(-28, -18)),
    )


def choose_words(rng: np.random.Generator, n: int) -> list[str]:
    """A song's lyric: ``n`` words drawn from a vocabulary of 12-24, so lines repeat words."""
    vocabulary = list(rng.choice(WORDS, size=int(rng.integers(12, 25)), replace=False))
    return [str(w) for w in rng.choice(vocabulary, size=n)]
