"""Pure signal functions of the stimuli: excerpt choice, low-pass anchors, loudness matching.

select_excerpt(target (C, T), sample_rate, excerpt_s, hop_s=0.25) -> (start_s, end_s)
lowpass(audio (C, T), sample_rate, cutoff_hz, order=16) -> (C, T)
anchor_cutoffs(reference (C, T), sample_rate, anchors) -> {anchor: cutoff_hz}   # heard, not transparent
loudness_match(stimuli: dict[str, (C, T)], sample_rate, target_lufs, peak_dbfs=-1.0)
    -> (dict[str, (C, T)], LoudnessReport)
dithered_pcm16(audio (C, T), rng) -> int16 (C, T)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyloudnorm
import scipy.signal

from listening_study.design.anchors import (
    ANCHOR_AUDIBLE_DB,
    ANCHOR_FLOOR_HZ,
    STANDARD_CUTOFFS_HZ,
    standard_cutoffs,
)
from listening_study.errors import StimulusError

#: Below this integrated loudness a stimulus counts as silent and is never amplified (BS.1770 gate is -70 LUFS).
SILENT_LUFS: float = -70.0


def select_excerpt(
    target: np.ndarray, sample_rate: int, excerpt_s: float, hop_s: float = 0.25
) -> tuple[float, float]:
    """The ``excerpt_s`` window (on a ``hop_s`` grid) where the target's RMS is highest.

    target: (C, T). A song shorter than the window gives the whole song.
    """
    power = np.mean(np.asarray(target, dtype=np.float64) ** 2, axis=0)  # (T,)
    total = power.shape[0]
    length = int(round(excerpt_s * sample_rate))
    if total <= length:
        return 0.0, total / sample_rate
    if not np.any(power > 0):
        raise StimulusError("the target is silent over the whole song: no excerpt where it is active")
    cumulative = np.concatenate([[0.0], np.cumsum(power)])  # (T + 1,)
    hop = max(1, int(round(hop_s * sample_rate)))
    starts = np.arange(0, total - length + 1, hop)  # (K,)
    energy = cumulative[starts + length] - cumulative[starts]  # (K,)
    best = int(starts[int(np.argmax(energy))])
    return best / sample_rate, (best + length) / sample_rate


def lowpass(audio: np.ndarray, sample_rate: int, cutoff_hz: float, order: int = 16) -> np.ndarray:
    """Zero-phase Butterworth low-pass (applied forwards and backwards, so 2 x ``order`` slope).

    The BS.1534-3 anchors are the reference low-passed at 3.5 kHz (low) and 7 kHz (mid); order 16
    run twice leaves < -35 dB at 4 kHz and < -95 dB at 5 kHz for the 3.5 kHz anchor.
    """
    sos = scipy.signal.butter(order, cutoff_hz, btype="low", fs=sample_rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, np.asarray(audio, dtype=np.float64), axis=-1).astype(np.float32)


def removed_db(reference: np.ndarray, sample_rate: int, cutoff_hz: float) -> float:
    """The energy a ``cutoff_hz`` low-pass takes away from ``reference (C, T)``, in dB re its total
    (-inf for a signal it leaves as it is; NaN for silence)."""
    return taken_away_db(reference, lowpass(reference, sample_rate, cutoff_hz))


def taken_away_db(reference: np.ndarray, filtered: np.ndarray) -> float:
    """The energy of ``reference - filtered`` in dB re the reference's (both (C, T)); see ``removed_db``."""
    reference = np.asarray(reference, dtype=np.float64)
    total = float(np.sum(reference**2))
    if total == 0.0:
        return float("nan")
    removed = float(np.sum((reference - filtered) ** 2))
    return 10.0 * np.log10(removed / total) if removed > 0.0 else float("-inf")


def recorded_anchors(path: Path) -> tuple[dict[str, float], dict[str, float]]:
    """A rendered trial's low-pass anchors from its ``trial.json`` at ``path``: (cutoff Hz, dB each takes away).
    A trial rendered before they were recorded lacks them: the standard's cutoffs for its anchors, nothing
    measured. OSError or ValueError (JSON) for a file that cannot be read; KeyError and the like for a record
    that is not a trial's."""
    trial_json = json.loads(Path(path).read_text())
    if "anchor_hz" in trial_json:
        cutoffs = trial_json["anchor_hz"]
    else:
        cutoffs = standard_cutoffs(trial_json["trial"]["conditions"])
    removed = trial_json.get("anchor_removed_db", {})
    return {a: float(hz) for a, hz in cutoffs.items()}, {a: float(db) for a, db in removed.items()}


def audible_cutoff(
    reference: np.ndarray, sample_rate: int, start_hz: float, audible_db: float = ANCHOR_AUDIBLE_DB,
    floor_hz: float = ANCHOR_FLOOR_HZ,
) -> float:  # fmt: skip
    """The highest of ``start_hz``, ``start_hz / 2``, ``start_hz / 4``... (octaves down, not below
    ``floor_hz``) whose low-pass takes away at least the share ``audible_db`` (dB re the total) of the
    reference's energy; the last one tried when none does (``removed_db`` then says it is still not heard)."""
    cutoff = float(start_hz)
    while removed_db(reference, sample_rate, cutoff) < audible_db and cutoff / 2.0 >= floor_hz:
        cutoff /= 2.0
    return cutoff


def anchor_cutoffs(reference: np.ndarray, sample_rate: int, anchors) -> dict[str, float]:
    """The cutoff of each low-pass anchor in ``anchors`` for this reference (C, T): the standard's (3.5 and
    7 kHz) where the low-pass takes away at least ``ANCHOR_AUDIBLE_DB`` of its energy, else moved down in
    octaves until it does (not below ``ANCHOR_FLOOR_HZ``). The low anchor stays at least an octave below the
    mid one, as in the standard, unless the floor stops it."""
    cutoffs = {}
    if "anchor70" in anchors:
        cutoffs["anchor70"] = audible_cutoff(reference, sample_rate, STANDARD_CUTOFFS_HZ["anchor70"])
    if "anchor35" in anchors:
        below_mid = cutoffs.get("anchor70", float("inf")) / 2.0
        start = max(ANCHOR_FLOOR_HZ, min(STANDARD_CUTOFFS_HZ["anchor35"], below_mid))  # never under the floor
        cutoffs["anchor35"] = audible_cutoff(reference, sample_rate, start)
    return cutoffs


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770 integrated loudness in LUFS of ``audio (C, T)`` (-inf for silence)."""
    meter = pyloudnorm.Meter(sample_rate)
    data = np.asarray(audio, dtype=np.float64).T  # (T, C), as pyloudnorm wants
    if data.shape[0] < int(0.4 * sample_rate):
        raise StimulusError("a stimulus is shorter than the 400 ms a BS.1770 loudness measurement needs")
    return float(meter.integrated_loudness(data))


@dataclass(frozen=True)
class LoudnessReport:
    measured_lufs: dict[str, float]  # before matching
    gain_db: dict[str, float]  # applied per stimulus
    trial_gain_db: float  # common attenuation of the whole trial so that no peak exceeds peak_dbfs
    silent: tuple[str, ...]  # stimuli left unamplified because they are (almost) silent


def loudness_match(
    stimuli: dict[str, np.ndarray], sample_rate: int, target_lufs: float, peak_dbfs: float = -1.0
) -> tuple[dict[str, np.ndarray], LoudnessReport]:
    """Bring every stimulus of a trial to ``target_lufs``; then, if any peak would exceed ``peak_dbfs``,
    attenuate the whole trial by one common gain, so the stimuli stay matched to each other and nothing clips.
    Silent stimuli (below -70 LUFS) are left as they are instead of being amplified into noise.
    """
    measured = {name: integrated_loudness(audio, sample_rate) for name, audio in stimuli.items()}
    silent = tuple(name for name, lufs in measured.items() if not np.isfinite(lufs) or lufs < SILENT_LUFS)
    gains = {name: 0.0 if name in silent else target_lufs - lufs for name, lufs in measured.items()}
    scaled = {
        name: np.asarray(audio, np.float64) * 10 ** (gains[name] / 20) for name, audio in stimuli.items()
    }
    peak = max(float(np.max(np.abs(audio))) for audio in scaled.values())
    ceiling = 10 ** (peak_dbfs / 20)
    trial_gain_db = 0.0
    if peak > ceiling:
        trial_gain_db = 20 * np.log10(ceiling / peak)
    factor = 10 ** (trial_gain_db / 20)
    matched = {name: (audio * factor).astype(np.float32) for name, audio in scaled.items()}
    report = LoudnessReport(
        measured, {k: v + trial_gain_db for k, v in gains.items()}, float(trial_gain_db), silent
    )
    return matched, report


def dithered_pcm16(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """16-bit samples of ``audio (C, T)`` (float, full scale 1.0) with TPDF dither of +-1 LSB.

    Triangular dither (the difference of two uniform draws) of 2 LSB peak to peak removes the
    signal-dependent quantization error (Lipshitz, Wannamaker & Vanderkooy, JAES 1992); the added noise is
    white, about -96 dBFS RMS. Values beyond full scale are clipped.
    """
    scaled = np.asarray(audio, dtype=np.float64) * 32768.0
    dither = rng.random(scaled.shape) - rng.random(scaled.shape)  # triangular on (-1, 1) LSB
    return np.clip(np.round(scaled + dither), -32768, 32767).astype(np.int16)
