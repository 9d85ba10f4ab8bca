"""Render a composed song: every part through FluidSynth and its effects, summed into stems, scaled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mss import SOURCES

from . import effects, production, rooms
from .compose import Song
from .kits import Sampler, find_kits
from .parts import Part
from .players import Band, render_part
from .render import Renderer
from .versions import GeneratorVersion

EXTRA_STEMS = ("piano",)  # per-instrument stems written beside the four MUSDB stems
ACTIVE_DB = -60.0  # a stem is active where some 1-s window is louder than this (RMS, dBFS)
MAX_PEAK = 0.99
#: RMS of each stem's white noise floor (dBFS), drawn per stem: a quiet studio channel's floor.
NOISE_FLOOR_DB = (-90.0, -80.0)
RECORDED_KIT = 0.8  # share of songs whose drums are a recorded Hydrogen kit (when one is installed)
LIMITER_DRIVE_DB = (0.0, 6.0)  # how far the bus limiter pushes the mixture's peaks down
#: The production chains (v4 on): a studio live room (RT60, s) as the shared ambience, sends drier than v3's, a
#: harder limiter.
ROOM_RT60_V4 = (0.35, 0.9)
SEND_SCALE_V4 = 0.6
LIMITER_DRIVE_DB_V4 = (2.0, 8.0)


class SongRejected(Exception):
    """The rendered song breaks an invariant (silent stem, clipping); the generator composes another."""


@dataclass
class SongAudio:
    stems: dict[str, np.ndarray]  # name -> (2, T) float32: SOURCES, "piano" and "mixture"
    active_stems: list[str]
    sample_rate: int
    sources: dict[str, str] | None = None  # part name -> SoundFont / drum kit / voice that played it


def window_rms_db(audio: np.ndarray, sample_rate: int, window_s: float = 1.0) -> np.ndarray:
    """RMS level (dBFS) of consecutive windows of ``audio (C, T)`` -> (N,)."""
    size = int(window_s * sample_rate)
    n = max(1, audio.shape[-1] // size)
    frames = audio[:, : n * size].reshape(audio.shape[0], n, size)  # (C, N, size)
    power = np.mean(frames.astype(np.float64) ** 2, axis=(0, 2))
    return 10 * np.log10(np.maximum(power, 1e-20))


def _active_rms(audio: np.ndarray, sample_rate: int) -> float:
    """RMS over the 100-ms frames where the part actually plays (within 30 dB of its loudest frame)."""
    levels = window_rms_db(audio, sample_rate, 0.1)
    loud = levels[levels > levels.max() - 30]
    return float(np.sqrt(np.mean(10 ** (loud / 10))))


def render_song(
    song: Song, renderer: Renderer, rng: np.random.Generator, spec: GeneratorVersion
) -> SongAudio:
    """Every part rendered, processed and summed into stems, then mastered as generator ``spec`` does: parts
    through ``effects`` and a limiter (no ``spec.production``), or through ``players.Band`` and
    ``production``'s chains, a studio room, a bus compressor and a limiter, sung by ``spec.singer``."""
    rate = renderer.sample_rate
    band = None
    sampler = None
    if spec.production is not None:
        band = Band(renderer, rng, spec.singer)
        impulse = rooms.studio_room(rng, rate, ROOM_RT60_V4)[1]
        impulse = np.pad(impulse, ((0, 0), (int(0.01 * rate), 0)))  # 10-ms pre-delay
    else:
        impulse = effects.room_impulse(song.reverb_s, rate, rng)
        kits = find_kits()
        if kits and rng.random() < RECORDED_KIT:
            sampler = Sampler(kits[int(rng.integers(len(kits)))], rate)
    try:
        return _mix(song, renderer, rng, spec, band, sampler, impulse)
    finally:
        if band is not None:
            band.close()


def _play(
    part: Part,
    renderer: Renderer,
    band: Band | None,
    sampler: Sampler | None,
    n_samples: int,
    channel: int,
    rng: np.random.Generator,
    song: Song,
    spec: GeneratorVersion,
) -> tuple[np.ndarray, np.ndarray, str]:
    """One part rendered and processed: its audio (2, T), its reverb send (2, T) and what played it."""
    rate = renderer.sample_rate
    if band is not None:
        audio, source, panned = band.play(part, n_samples, channel, rng)
        if not np.any(audio):
            return audio, audio, source
        audio = production.process_part(part, audio, rate, rng, panned, spec.production)
        send = part.reverb_send * SEND_SCALE_V4
        if part.role == "vocals":
            voicing = production.VOICINGS[spec.production]
            send *= voicing.vocal_send  # v5: halved (real vocal stems are near mono)
        wet_input = audio * np.float32(send)
    else:
        audio, source = render_part(part, renderer, sampler, n_samples, channel, rng)
        if not np.any(audio):
            return audio, audio, source
        audio = effects.highpass(audio, part.highpass_hz, rate)
        audio = effects.shelves(audio, *part.shelf_db, rate)
        audio = effects.compress(audio, part.compress_ratio, rate)
        audio = effects.pan(audio, part.pan)
        audio *= 10 ** (part.level_db / 20) / max(_active_rms(audio, rate), 1e-9)
        wet_input = audio * part.reverb_send
    if part.echo:
        delay_s = 3 * song.plan.step_s  # a dotted eighth
        wet_input = effects.echo(wet_input, delay_s, 0.45, 2.0, rate)
        audio = effects.echo(audio, delay_s, 0.4, 0.18, rate)
    return audio, wet_input, source


def _mix(
    song: Song,
    renderer: Renderer,
    rng: np.random.Generator,
    spec: GeneratorVersion,
    band: Band | None,
    sampler: Sampler | None,
    impulse: np.ndarray,
) -> SongAudio:
    rate = renderer.sample_rate
    n_samples = int(round(song.plan.duration_s * rate))
    stems = {name: np.zeros((2, n_samples), dtype=np.float32) for name in (*SOURCES, *EXTRA_STEMS)}
    sends: dict[str, np.ndarray] = {}  # reverb bus -> summed dry sends (2, T), then their mono mix (T,)
    last_part = {_bus(part): index for index, part in enumerate(song.parts)}
    sources: dict[str, str] = {}
    for channel, part in enumerate(song.parts):
        if not part.instrument.notes:
            continue
        audio, wet_input, source = _play(part, renderer, band, sampler, n_samples, channel, rng, song, spec)
        sources[part.instrument.name] = source
        if not np.any(audio):
            continue
        bus = _bus(part)
        if bus in sends:
            sends[bus] += wet_input  # in place: a full-length (2, T) buffer per bus, no more
        else:
            sends[bus] = wet_input
        if last_part[bus] == channel:  # the reverb only needs the mono mix of a finished bus
            sends[bus] = sends[bus].mean(axis=0)
        stems[part.role] += audio
        if part.kind == "piano":
            stems["piano"] += audio
    # Reverb is linear: one convolution per bus (stem, piano apart) instead of one per part. One bus at
    # a time, its send freed as soon as it is used: all buses at once held ~2 GB of spectra at 5 min.
    audio = wet_input = None  # the last part's buffers
    for bus in list(sends):
        send = sends.pop(bus)
        wet = effects.reverb((send.mean(axis=0) if send.ndim == 2 else send)[None], impulse)[0]  # (2, T)
        stems["other" if bus == "piano" else bus] += wet
        if bus == "piano":
            stems["piano"] += wet
        del send, wet
    # Short fade-in against clicks; a fade-out like the end of an excerpt.
    fade_in, fade_out = int(0.005 * rate), int((1.5 if song.plan.duration_s >= 20 else 0.1) * rate)
    envelope = np.ones(n_samples, dtype=np.float32)
    envelope[:fade_in] = np.linspace(0, 1, fade_in, dtype=np.float32)
    envelope[-fade_out:] = np.linspace(1, 0, fade_out, dtype=np.float32) ** 2
    for name in stems:
        stems[name] *= envelope
    # Scale the whole song (stems and mixture alike) to a random peak below full scale. Everything in
    # place, in the order np.sum would add (same float32 values, one buffer less per stem).
    mixture = stems[SOURCES[0]].copy()
    for name in SOURCES[1:]:
        mixture += stems[name]
    peak = max(_peak(a) for a in [mixture, *stems.values()])
    if peak <= 0:
        raise SongRejected("the song is silent")
    if spec.production is not None:
        gain = production.master_gain(mixture, rate, rng)
        for name in stems:
            stems[name] *= gain[None]
        mixture *= gain[None]
    drive_db = float(rng.uniform(*(LIMITER_DRIVE_DB if spec.production is None else LIMITER_DRIVE_DB_V4)))
    limit_bus(stems, mixture, drive_db, rate)
    del mixture
    mixture = stems[SOURCES[0]].copy()
    for name in SOURCES[1:]:
        mixture += stems[name]
    peak = max(_peak(a) for a in [mixture, *stems.values()])
    scale = float(rng.uniform(0.6, 0.95)) / peak
    for audio in stems.values():
        audio *= scale  # float32 times a Python float stays float32 (NEP 50), as `audio * scale` did
    add_noise_floor(stems, rng)
    mixture = stems["vocals"] + stems["drums"]
    mixture += stems["bass"]
    mixture += stems["other"]
    stems["mixture"] = mixture
    return SongAudio(stems, check_song(stems, rate), rate, sources)


def limit_bus(stems: dict[str, np.ndarray], mixture: np.ndarray, drive_db: float, rate: int) -> None:
    """A look-ahead peak limiter on the mix bus whose gain is applied to every stem, in place.

    The gain follows the mixture (its peaks pushed ``drive_db`` down), and multiplying every stem by the
    same per-sample gain keeps mixture == sum of stems. The gain never exceeds what the peak at each
    sample needs: a minimum over +-W then a centred W-sample average (W = 10 ms) is at most the
    minimum needed anywhere within W/2, so the limit holds while the gain moves smoothly (no clicks).
    """
    if drive_db <= 0:
        return
    from scipy import ndimage

    window = int(0.01 * rate)
    level = np.abs(mixture).max(axis=0)  # (T,)
    threshold = float(level.max()) * 10 ** (-drive_db / 20)
    needed = np.minimum(1.0, threshold / np.maximum(level, 1e-12)).astype(np.float32)
    gain = ndimage.minimum_filter1d(needed, 2 * window + 1, mode="nearest")
    gain = ndimage.uniform_filter1d(gain, window + 1, mode="nearest")
    for name in stems:
        stems[name] *= gain[None]


def add_noise_floor(stems: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Give every stem the full-band noise floor real recordings have (white, NOISE_FLOOR_DB RMS), in place.

    Rendered stems are noise-free and band-limited (a bass has nothing above 8 kHz), which makes the
    BSS Eval projection of museval numerically singular: its SIR/SAR/ISR then mean nothing. Piano is a
    part of "other", so piano's own floor is added to both and "other" gets one more for its rest:
    the stems still add up to the mixture, and other - piano keeps a floor of its own. A stem the song
    does not have (all zeros) stays silent.
    """
    for name in ("piano", *SOURCES):
        if name not in stems or not stems[name].any():
            continue  # a song without piano keeps a silent (absent) piano stem
        level = 10.0 ** (rng.uniform(*NOISE_FLOOR_DB) / 20.0)
        noise = rng.standard_normal(stems[name].shape, dtype=np.float32)
        noise *= np.float32(level)
        stems[name] += noise
        if name == "piano" and "other" in stems:
            stems["other"] += noise


def _bus(part: Part) -> str:
    """The reverb bus of a part: its stem, except piano, which has its own (it is also a stem)."""
    return "piano" if part.kind == "piano" else part.role


def _peak(audio: np.ndarray) -> float:
    """max |audio| without an |audio|-sized temporary."""
    return max(float(audio.max()), -float(audio.min()))


def check_song(stems: dict[str, np.ndarray], sample_rate: int) -> list[str]:
    """Assert the dataset invariants; returns the active stems. Raises SongRejected when violated."""
    active = []
    for name, audio in stems.items():
        if not np.isfinite(audio).all():
            raise SongRejected(f"{name} has non-finite samples")
        peak = _peak(audio)
        if peak > MAX_PEAK:
            raise SongRejected(f"{name} clips (peak {peak:.3f})")
        if name != "mixture" and window_rms_db(audio, sample_rate).max() > ACTIVE_DB:
            active.append(name)
    missing = [s for s in SOURCES if s not in active]
    if missing:
        raise SongRejected(f"silent stems: {missing}")
    return active
