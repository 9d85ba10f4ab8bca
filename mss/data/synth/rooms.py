"""Room impulse responses for generator v4: image-source early reflections plus a measured-like late tail.

A studio recording's ambience is a real room heard through a pair of microphones: discrete early
reflections from the walls (their delays set by the room's geometry) and a dense tail that decays
faster at high frequencies. ``studio_room`` builds that from pyroomacoustics' image-source model of a
shoebox room (the source and a spaced AB pair of microphones placed in it) for the first reflections,
and a stochastic tail (seeded noise in three bands, each decaying at its own RT60, as air and wall
absorption make real rooms do) from the mixing time on. The full image-source model up to the RT60 is
exact but costs seconds per room at 44.1 kHz (O(order^3) images); the hybrid costs ~0.1 s.

Everything is deterministic for a given ``rng`` state. Output: ``(2, L)`` float32, unit energy per channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

MAX_ORDER = 8  # image-source reflection order; the tail takes over after MIXING_S
MIXING_S = 0.06
#: (band edges Hz, RT60 multiplier): highs decay faster than the broadband RT60, lows a little slower.
TAIL_BANDS: tuple[tuple[tuple[float, float], float], ...] = (
    ((20.0, 500.0), 1.15),
    ((500.0, 4000.0), 1.0),
    ((4000.0, 20000.0), 0.6),
)


@dataclass(frozen=True)
class Room:
    """A shoebox room (metres) and its broadband reverberation time (s)."""

    size: tuple[float, float, float]
    rt60_s: float


def draw_room(rng: np.random.Generator, rt60_s: tuple[float, float]) -> Room:
    """A studio live room: 4-12 m long, 3.5-9 m wide, 2.7-5 m high, RT60 drawn in ``rt60_s``."""
    size = (float(rng.uniform(4, 12)), float(rng.uniform(3.5, 9)), float(rng.uniform(2.7, 5)))
    return Room(size, float(rng.uniform(*rt60_s)))


def _early(room: Room, rng: np.random.Generator, rate: int) -> np.ndarray:
    """Image-source response (2, L) of the room for one source and an AB pair 0.4-0.8 m apart."""
    import pyroomacoustics as pra  # lazily: only the generator needs it

    absorption, _ = pra.inverse_sabine(room.rt60_s, list(room.size))
    absorption = float(np.clip(absorption, 0.01, 0.99))
    shoebox = pra.ShoeBox(
        list(room.size), fs=rate, materials=pra.Material(absorption), max_order=MAX_ORDER, air_absorption=True
    )
    length, width, height = room.size
    source = [length * rng.uniform(0.25, 0.45), width * rng.uniform(0.35, 0.65), rng.uniform(0.8, 1.6)]
    spacing = rng.uniform(0.4, 0.8)
    centre = [length * rng.uniform(0.55, 0.75), width * 0.5, min(height - 0.5, rng.uniform(1.5, 2.2))]
    mics = np.array(
        [[centre[0], centre[0]], [centre[1] - spacing / 2, centre[1] + spacing / 2], [centre[2], centre[2]]]
    )
    shoebox.add_source(source)
    shoebox.add_microphone_array(mics)
    shoebox.compute_rir()
    responses = [np.asarray(shoebox.rir[m][0], dtype=np.float64) for m in range(2)]
    out = np.zeros((2, max(len(r) for r in responses)))
    for m, response in enumerate(responses):
        out[m, : len(response)] = response
    return out


def _tail(room: Room, rng: np.random.Generator, rate: int, length: int) -> np.ndarray:
    """Decorrelated stereo noise (2, length) decaying per band at the band's RT60."""
    t = np.arange(length) / rate
    tail = np.zeros((2, length))
    for (low, high), factor in TAIL_BANDS:
        sos = signal.butter(2, [low, min(high, 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
        band = signal.sosfilt(sos, rng.standard_normal((2, length)), axis=-1)
        tail += band * np.exp(-6.9 * t / (room.rt60_s * factor))
    return tail


def studio_room(rng: np.random.Generator, rate: int, rt60_s: tuple[float, float]) -> tuple[Room, np.ndarray]:
    """A drawn room and its stereo impulse response ``(2, L)`` float32, unit energy per channel."""
    room = draw_room(rng, rt60_s)
    early = _early(room, rng, rate)
    direct = int(np.argmax(np.abs(early).max(axis=0)))
    start = direct + int(MIXING_S * rate)
    length = start + int(1.2 * room.rt60_s * rate)
    ir = np.zeros((2, max(length, early.shape[1])))
    ir[:, : early.shape[1]] = early
    tail = _tail(room, rng, rate, length - start)
    # The tail continues the early part's level at the mixing time, faded in over 20 ms.
    level = np.sqrt(np.mean(early[:, max(0, start - int(0.02 * rate)) : start] ** 2) + 1e-20)
    tail *= level / (np.sqrt(np.mean(tail[:, : int(0.02 * rate)] ** 2)) + 1e-20)
    fade = np.minimum(1.0, np.arange(tail.shape[1]) / (0.02 * rate))
    ir[:, start:length] = ir[:, start:length] * (1 - fade) + tail * fade
    ir = ir[:, direct:]  # the pre-delay is set by the caller
    ir[:, : int(0.003 * rate)] = 0.0  # no direct sound: the dry signal is the close microphone's
    ir /= np.sqrt(np.sum(ir**2, axis=-1, keepdims=True))
    return room, ir.astype(np.float32)
