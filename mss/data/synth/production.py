"""Generator v4's production: every part through the processing a studio would put it through (pedalboard).

Version 3 processed parts with a few hand-written scipy effects (a crossover EQ, an RMS compressor);
recorded stems differ from that in ways the realism gauge (``mss.data.realism``) measures: they are
compressed harder (lower crest factor), bass is mono and dark with saturation, guitars go through
amplifiers and cabinets, drums are kick-heavy and glued by a bus compressor, vocals carry air above
11 kHz. Here each kind of part gets a chain of Spotify's pedalboard plugins (JUCE's filters,
compressors and waveshapers, fast and well tested), its settings drawn per part:

- ``vocals``: high-pass, compressor, presence peak, an exciter that puts breath and sibilance above
  11 kHz (espeak-ng renders at 22.05 kHz), air shelf, a plate; leads are sometimes double-tracked.
- ``drums``: low shelf, box cut, parallel compression, bus compressor and tape-like saturation.
- ``bass``: DI blended with an amplifier (drive into a cabinet low-pass), compressor, saturation, mono.
- ``other``: electric guitars through amp chains (drive, mid hump, cabinet resonance and roll-off),
  organs and electric pianos crunchy with a rotary-like chorus, the rest EQ'd and compressed.

Then every part is levelled by its BS.1770 integrated loudness (pyloudnorm), and ``master_gain`` is a
mix-bus compressor whose gain, computed on the mixture, is applied to every stem (so the stems still
sum to the mixture). All processing is deterministic: same input and ``rng`` state, same bytes.
Shapes: audio is ``(2, T)`` float32 at ``rate`` throughout.

Version 5 keeps the chains and moves their settings (``Voicing``) to where the realism gauge put
recorded stems: drier, narrower vocals (fewer doubles, a narrow plate); a kick-heavy kit with dark
cymbals (real kits sit 8 dB lower than v4's at 1-8 kHz) and less parallel crush; a bass with more
pick and amp above 1 kHz and little below 40 Hz; "other" with little low end and a 2-4 kHz
presence peak (the guitar band where v4 sat 8 dB under the real stem).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pedalboard as pb
import pyloudnorm

from mss.errors import DatasetError

from . import effects
from .effects import run_board
from .parts import Part

AMP_KINDS = ("guitar_power", "guitar_funk", "guitar_strum", "guitar_arp", "guitar_lead")
CRUNCH_KINDS = ("organ",)
#: Mix-bus compressor: ratio, and how far below the loud passages' level its threshold sits (dB).
BUS_RATIO = (1.5, 3.0)
BUS_DEPTH_DB = (2.0, 6.0)
BUS_ATTACK_S, BUS_RELEASE_S = 0.02, 0.25
BLOCK_S = 0.005


@dataclass(frozen=True)
class Voicing:
    """The ranges the chains draw their settings from (Hz, dB, probabilities). ``guitar_*``:
    electric guitars, through an amplifier (``amp_chain``); ``rest_*``: every other part of "other" (keyboards,
    acoustic guitars, strings, pads, brass, mallets)."""

    double_chance: float = 0.4  # a sung lead double-tracked
    double_db: tuple[float, float] = (-14.0, -9.0)
    plate_wet: tuple[float, float] = (0.03, 0.08)
    plate_width: tuple[float, float] = (0.3, 0.7)
    vocal_send: float = 1.0  # the vocals' send to the song's room, re every part's (``mix.SEND_SCALE_V4``)
    kick_shelf_hz: tuple[float, float] = (70.0, 110.0)
    kick_shelf_db: tuple[float, float] = (3.0, 8.0)
    cymbal_shelf_hz: tuple[float, float] = (4000.0, 7000.0)
    cymbal_shelf_db: tuple[float, float] = (-9.0, -3.0)
    drum_crush: tuple[float, float] = (0.4, 1.0)  # parallel compression's level re the dry kit
    bass_highpass_hz: tuple[float, float] = (35.0, 35.0)
    bass_highpass_poles: int = 1  # 6 dB/octave per pole
    bass_cab_hz: tuple[float, float] = (2000.0, 4000.0)
    bass_lowpass_hz: tuple[float, float] = (5000.0, 9000.0)
    bass_threshold_db: tuple[float, float] = (-24.0, -16.0)
    bass_saturation_db: tuple[float, float] = (2.0, 6.0)
    guitar_highpass_hz: tuple[float, float] = (70.0, 110.0)  # before the amplifier
    rest_highpass_hz: tuple[float, float] = (60.0, 140.0)
    presence_db: tuple[float, float] = (1.0, 6.0)  # the 1.5-4 kHz peak of the rest (all but electric guitars)
    guitar_presence_db: tuple[float, float] = (2.0, 5.0)
    guitar_scoop_db: tuple[float, float] = (-6.0, -2.0)  # the cabinet's 350-600 Hz dip
    guitar_roll_off_hz: tuple[float, float] = (3500.0, 6500.0)
    guitar_roll_off_poles: int = 2  # a cabinet's roll-off: 6 dB/octave per pole
    mud_cut_db: tuple[float, float] = (-6.0, -2.0)  # the rest's 250-500 Hz cut
    #: Settings v4 did not have (None: the filter is left out and nothing is drawn, so v4's bytes stay).
    bass_growl_db: tuple[float, float] | None = None  # a 700-1400 Hz peak: pick attack and amp growl
    rest_lowpass_hz: tuple[float, float] | None = None


#: the voicings by key, a generator version's ``production`` (``versions.GENERATORS``): v4's, and v5's (v5-v7)
VOICINGS: Mapping[int, Voicing] = MappingProxyType(
    {
        4: Voicing(),
        5: Voicing(
            double_chance=0.15,
            double_db=(-18.0, -12.0),
            plate_wet=(0.02, 0.05),
            plate_width=(0.0, 0.3),
            vocal_send=0.5,
            kick_shelf_hz=(55.0, 90.0),
            kick_shelf_db=(6.0, 11.0),
            cymbal_shelf_hz=(1800.0, 3500.0),
            cymbal_shelf_db=(-12.0, -6.0),
            drum_crush=(0.2, 0.6),
            bass_highpass_hz=(40.0, 55.0),
            bass_highpass_poles=2,
            bass_cab_hz=(3000.0, 6000.0),
            bass_lowpass_hz=(7000.0, 12000.0),
            guitar_highpass_hz=(150.0, 300.0),
            rest_highpass_hz=(120.0, 250.0),
            presence_db=(3.0, 8.0),
            guitar_presence_db=(5.0, 10.0),
            guitar_scoop_db=(-9.0, -4.0),
            guitar_roll_off_hz=(4500.0, 6500.0),
            mud_cut_db=(-9.0, -4.0),
            bass_growl_db=(1.0, 3.0),
            rest_lowpass_hz=(5000.0, 9000.0),
            bass_saturation_db=(6.0, 12.0),
            guitar_roll_off_poles=3,
        ),
    }
)


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def add_air(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Exciter: harmonics of the 3-11 kHz band (sibilants, breath) above 10 kHz, ``-34..-28 dB`` re the input."""
    band = run_board(pb.Pedalboard([pb.HighpassFilter(3000.0), pb.HighpassFilter(3000.0)]), audio, rate)
    shaped = run_board(pb.Pedalboard([pb.Gain(30.0), pb.Distortion(12.0)]), band, rate)
    air = run_board(pb.Pedalboard([pb.HighpassFilter(10000.0), pb.HighpassFilter(10000.0)]), shaped, rate)
    level = _rms(air)
    if level <= 0:
        return audio
    target = _rms(audio) * 10 ** (rng.uniform(-34.0, -28.0) / 20)
    return audio + air * np.float32(target / level)


def _vocal(part: Part, audio: np.ndarray, rate: int, rng: np.random.Generator, v: Voicing) -> np.ndarray:
    board = pb.Pedalboard(
        [
            pb.HighpassFilter(float(rng.uniform(80, 130))),
            pb.Compressor(
                float(rng.uniform(-26, -18)), float(rng.uniform(3, 6)), float(rng.uniform(2, 8)), 100.0
            ),
            pb.PeakFilter(float(rng.uniform(2500, 5000)), float(rng.uniform(1, 4)), 0.8),
            pb.LowShelfFilter(250.0, float(rng.uniform(-3, 0))),
        ]
    )
    audio = add_air(run_board(board, audio, rate), rate, rng)
    audio = run_board(pb.Pedalboard([pb.HighShelfFilter(10000.0, float(rng.uniform(1, 4)))]), audio, rate)
    if (
        part.kind == "lead" and rng.random() < v.double_chance
    ):  # double-tracked lead: two detuned takes left and right
        takes = [
            run_board(
                pb.Pedalboard(
                    [pb.Chorus(float(rng.uniform(0.2, 0.8)), 0.15, float(rng.uniform(12, 30)), 0.0, 1.0)]
                ),
                audio,
                rate,
            )
            for _ in range(2)
        ]
        gain = np.float32(10 ** (rng.uniform(*v.double_db) / 20))
        audio = audio + gain * np.stack([takes[0][0], takes[1][1]])
    plate = pb.Reverb(
        room_size=float(rng.uniform(0.3, 0.7)),
        damping=float(rng.uniform(0.3, 0.7)),
        wet_level=float(rng.uniform(*v.plate_wet)),
        dry_level=1.0,
        width=float(rng.uniform(*v.plate_width)),
    )
    return run_board(pb.Pedalboard([plate]), audio, rate)


def _drums(audio: np.ndarray, rate: int, rng: np.random.Generator, v: Voicing) -> np.ndarray:
    shaped = run_board(
        pb.Pedalboard(
            [
                pb.HighpassFilter(30.0),
                pb.LowShelfFilter(float(rng.uniform(*v.kick_shelf_hz)), float(rng.uniform(*v.kick_shelf_db))),
                pb.PeakFilter(float(rng.uniform(300, 600)), float(rng.uniform(-6, -2)), 1.0),
                pb.HighShelfFilter(
                    float(rng.uniform(*v.cymbal_shelf_hz)), float(rng.uniform(*v.cymbal_shelf_db))
                ),
            ]
        ),
        audio,
        rate,
    )
    crushed = run_board(
        pb.Pedalboard([pb.Compressor(-30.0, float(rng.uniform(6, 12)), 1.0, 60.0)]), shaped, rate
    )
    shaped = shaped + crushed * np.float32(
        rng.uniform(*v.drum_crush) * _rms(shaped) / max(_rms(crushed), 1e-9)
    )
    bus = pb.Pedalboard(
        [
            pb.Compressor(
                float(rng.uniform(-20, -12)), float(rng.uniform(2, 4)), float(rng.uniform(10, 30)), 150.0
            ),
            pb.Distortion(float(rng.uniform(1, 5))),
        ]
    )
    return run_board(bus, shaped / np.float32(max(np.abs(shaped).max(), 1e-9)), rate)


def _bass(audio: np.ndarray, rate: int, rng: np.random.Generator, v: Voicing) -> np.ndarray:
    low, high = v.bass_highpass_hz
    highpass = low if low == high else float(rng.uniform(low, high))  # v4 drew nothing here
    board = [
        pb.HighpassFilter(highpass) for _ in range(v.bass_highpass_poles)
    ]  # v5: real bass is thin < 40 Hz
    if v.bass_growl_db is not None:
        board.append(pb.PeakFilter(float(rng.uniform(700, 1400)), float(rng.uniform(*v.bass_growl_db)), 1.0))
    di = run_board(pb.Pedalboard(board), audio.mean(axis=0, keepdims=True), rate)
    di /= np.float32(max(np.abs(di).max(), 1e-9))
    cab = float(rng.uniform(*v.bass_cab_hz))
    amp = run_board(
        pb.Pedalboard(
            [
                pb.Gain(float(rng.uniform(0, 10))),
                pb.Distortion(float(rng.uniform(6, 18))),
                pb.PeakFilter(float(rng.uniform(70, 110)), 3.0, 1.0),
                pb.LowpassFilter(cab),
                pb.LowpassFilter(cab),
            ]
        ),
        di,
        rate,
    )
    blend = float(rng.uniform(0.25, 0.7))
    mixed = (1 - blend) * di + blend * amp * np.float32(_rms(di) / max(_rms(amp), 1e-9))
    chain = pb.Pedalboard(
        [
            pb.Compressor(
                float(rng.uniform(*v.bass_threshold_db)),
                float(rng.uniform(4, 8)),
                float(rng.uniform(5, 20)),
                120.0,
            ),
            pb.Distortion(float(rng.uniform(*v.bass_saturation_db))),
            pb.LowpassFilter(float(rng.uniform(*v.bass_lowpass_hz))),
        ]
    )
    mono = run_board(chain, mixed.astype(np.float32), rate)[0]
    return np.stack([mono, mono])


def amp_chain(rng: np.random.Generator, drive_db: float, v: Voicing) -> pb.Pedalboard:
    """A guitar amplifier and cabinet: mid-hump drive, cabinet thump, mid scoop, presence and roll-off."""
    roll_off = float(rng.uniform(*v.guitar_roll_off_hz))
    return pb.Pedalboard(
        [
            pb.HighpassFilter(float(rng.uniform(*v.guitar_highpass_hz))),
            pb.PeakFilter(float(rng.uniform(650, 900)), 4.0, 0.8),
            pb.Gain(drive_db),
            pb.Distortion(float(rng.uniform(6, 14))),
            pb.HighpassFilter(80.0),
            pb.PeakFilter(float(rng.uniform(100, 140)), float(rng.uniform(1, 4)), 1.0),
            pb.PeakFilter(float(rng.uniform(350, 600)), float(rng.uniform(*v.guitar_scoop_db)), 1.0),
            pb.PeakFilter(float(rng.uniform(2000, 3500)), float(rng.uniform(*v.guitar_presence_db)), 1.2),
            *[pb.LowpassFilter(roll_off) for _ in range(v.guitar_roll_off_poles)],
            pb.Compressor(-20.0, 3.0, 5.0, 100.0),
        ]
    )


def guitar_drive_db(kind: str, rng: np.random.Generator) -> float:
    """Amp drive (dB) into the amplifier for an electric guitar of ``kind`` (acoustic ones are not amplified)."""
    if kind == "guitar_power":
        return float(rng.uniform(18, 32))
    if kind == "guitar_funk":
        return float(rng.uniform(0, 8))
    if kind == "guitar_lead":  # v6: a soloist's overdrive, sustaining
        return float(rng.uniform(20, 32))
    return float(rng.uniform(0, 18))


def _other(part: Part, audio: np.ndarray, rate: int, rng: np.random.Generator, v: Voicing) -> np.ndarray:
    peak = np.float32(max(np.abs(audio).max(), 1e-9))
    if part.kind in AMP_KINDS and part.program >= 26:  # electric guitars (24/25 are acoustic)
        return run_board(amp_chain(rng, guitar_drive_db(part.kind, rng), v), audio / peak, rate)
    chain = [pb.HighpassFilter(float(rng.uniform(*v.rest_highpass_hz)))]
    if part.kind in CRUNCH_KINDS or (part.kind == "piano" and part.program == 4 and rng.random() < 0.5):
        chain += [pb.Gain(float(rng.uniform(0, 12))), pb.Distortion(float(rng.uniform(2, 10)))]
        chain += [
            pb.Chorus(float(rng.choice([0.8, 6.0])), 0.3, 3.0, 0.0, 0.5)
        ]  # a rotary speaker, slow or fast
    chain += [
        pb.PeakFilter(float(rng.uniform(250, 500)), float(rng.uniform(*v.mud_cut_db)), 1.0),
        pb.PeakFilter(float(rng.uniform(1500, 4000)), float(rng.uniform(*v.presence_db)), 0.9),
        pb.Compressor(float(rng.uniform(-24, -14)), float(rng.uniform(2, 4)), 10.0, 150.0),
    ]
    if v.rest_lowpass_hz is not None:
        chain.append(pb.LowpassFilter(float(rng.uniform(*v.rest_lowpass_hz))))
    return run_board(pb.Pedalboard(chain), audio / peak, rate)


def process_part(
    part: Part, audio: np.ndarray, rate: int, rng: np.random.Generator, panned: bool = False, voicing: int = 4
) -> np.ndarray:
    """The part's dry render ``(2, T)`` through its kind's chain with the settings ``VOICINGS[voicing]`` (a
    generator version's ``production``), panned (unless ``panned`` already, as a double-tracked pair is),
    levelled to ``part.level_db`` LUFS."""
    if voicing not in VOICINGS:
        raise DatasetError(f"no production voicing {voicing!r} (voicings {tuple(VOICINGS)})")
    v = VOICINGS[voicing]
    if part.role == "vocals":
        audio = _vocal(part, audio, rate, rng, v)
    elif part.role == "drums":
        audio = _drums(audio, rate, rng, v)
    elif part.role == "bass":
        audio = _bass(audio, rate, rng, v)
    else:
        audio = _other(part, audio, rate, rng, v)
    if part.role in ("vocals", "other") and part.pan and not panned:
        audio = effects.pan(audio, part.pan).astype(np.float32)
    return audio * np.float32(loudness_gain(audio, rate, part.level_db))


def loudness_gain(audio: np.ndarray, rate: int, target_lufs: float) -> float:
    """Gain that brings ``audio``'s BS.1770 integrated loudness (gated: rests do not count) to ``target_lufs``."""
    if audio.shape[-1] < int(0.5 * rate) or not np.any(audio):
        return 1.0
    loudness = pyloudnorm.Meter(rate).integrated_loudness(audio.T.astype(np.float64))
    return 10 ** ((target_lufs - loudness) / 20) if np.isfinite(loudness) else 1.0


def master_gain(mixture: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A mix-bus compressor's gain ``(T,)`` float32, computed on ``mixture (2, T)``; to be applied to every stem.

    Level: RMS of 5-ms blocks; threshold ``BUS_DEPTH_DB`` below the 90th percentile of the loud blocks;
    gain reduction (ratio ``BUS_RATIO``) smoothed with attack/release time constants, then interpolated
    to samples: about 0.7-4 dB off the loud passages (depth 2-6 dB times 1 - 1/ratio), a record's mix bus.
    """
    block = int(BLOCK_S * rate)
    n = mixture.shape[-1] // block
    if n < 2:
        return np.ones(mixture.shape[-1], dtype=np.float32)
    power = np.mean(np.square(mixture[:, : n * block], dtype=np.float64).reshape(2, n, block), axis=(0, 2))
    level = 10 * np.log10(np.maximum(power, 1e-12))
    loud = level[level > level.max() - 30]
    threshold = float(np.percentile(loud, 90)) - float(rng.uniform(*BUS_DEPTH_DB))
    ratio = float(rng.uniform(*BUS_RATIO))
    target = np.minimum(0.0, (threshold - level) * (1 - 1 / ratio))
    attack, release = np.exp(-BLOCK_S / BUS_ATTACK_S), np.exp(-BLOCK_S / BUS_RELEASE_S)
    smoothed = np.empty(n)
    state = 0.0
    for i, value in enumerate(target):  # ~200 blocks per second: a Python loop is fast enough
        coefficient = attack if value < state else release
        state = coefficient * state + (1 - coefficient) * value
        smoothed[i] = state
    centres = (np.arange(n) + 0.5) * block
    gain_db = np.interp(np.arange(mixture.shape[-1]), centres, smoothed)
    return (10 ** (gain_db / 20)).astype(np.float32)
