"""Pure augmentation functions on stems ``(S, C, T)``.

The random draws take an explicit ``numpy.random.Generator`` (no global random state is touched); the gain,
swap and flip return new stems, while the EQ (``equalize``) and the width (``narrow``) work in place on the
chunk's sources, and the repitch (``repitch``) resamples a source read a little longer or shorter. Every
source gets its own random draw, so the sources of one training example are transformed independently. The
mixture is built *after* augmenting (``mix = stems.sum(0)``), as in Demucs, so it stays the exact sum of what
the model must recover.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import resample_poly, sosfilt

from mss import EQ_MAX_DB, REPITCH_MAX_SEMITONES


def random_gain(stems: np.ndarray, rng: np.random.Generator, gain_db: tuple[float, float]) -> np.ndarray:
    """Scale each source by a gain drawn uniformly in ``gain_db`` (dB). stems: (S, C, T) -> (S, C, T)."""
    low, high = gain_db
    if low > high:
        raise ValueError(f"gain_db must be (low, high) with low <= high, got {gain_db}")
    gains_db = rng.uniform(low, high, size=stems.shape[0])  # (S,)
    gains = (10.0 ** (gains_db / 20.0)).astype(stems.dtype)
    return stems * gains[:, None, None]


def channel_swap(stems: np.ndarray, rng: np.random.Generator, probability: float = 0.5) -> np.ndarray:
    """Swap left and right of each stereo source with ``probability``. Mono stems are returned unchanged."""
    if stems.shape[1] != 2:
        return stems.copy()
    swap = rng.random(stems.shape[0]) < probability  # (S,)
    out = stems.copy()
    out[swap] = stems[swap][:, ::-1]  # (S_swapped, C, T) with the channel order reversed
    return out


def sign_flip(stems: np.ndarray, rng: np.random.Generator, probability: float = 0.5) -> np.ndarray:
    """Multiply each source by -1 with ``probability`` (inaudible on its own, but changes the sum)."""
    signs = np.where(rng.random(stems.shape[0]) < probability, -1.0, 1.0).astype(stems.dtype)  # (S,)
    return stems * signs[:, None, None]


def augment_params(
    rng: np.random.Generator,
    count: int,
    channels: int,
    gain_db: tuple[float, float] | None = (-6.0, 3.0),
    swap: bool = True,
    flip: bool = True,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """The random draws of ``augment`` for ``count`` sources: ``scale (count,)`` (gain times sign) and
    ``order (count, channels)`` (input channel of each output channel), drawn in augment's order."""
    scale = np.ones(count, dtype=dtype)  # (S,)
    if gain_db is not None:
        low, high = gain_db
        if low > high:
            raise ValueError(f"gain_db must be (low, high) with low <= high, got {gain_db}")
        scale = (10.0 ** (rng.uniform(low, high, size=count) / 20.0)).astype(dtype)
    order = np.tile(np.arange(channels), (count, 1))  # (S, C)
    if swap and channels == 2:
        order[rng.random(count) < 0.5] = [1, 0]
    if flip:
        scale = scale * np.where(rng.random(count) < 0.5, -1.0, 1.0).astype(dtype)
    return scale, order


def augment(
    stems: np.ndarray,
    rng: np.random.Generator,
    gain_db: tuple[float, float] | None = (-6.0, 3.0),
    swap: bool = True,
    flip: bool = True,
) -> np.ndarray:
    """Apply gain, channel swap and sign flip (each optional) in that order. stems: (S, C, T).

    Equal, bit for bit and draw for draw, to ``sign_flip(channel_swap(random_gain(...)))`` (a sign is
    exact and a swap only moves samples), but done in one pass over the audio: it runs on every
    training example, where three full copies were a third of the data time.
    """
    count = stems.shape[0]
    scale, order = augment_params(rng, count, stems.shape[1], gain_db, swap, flip, stems.dtype)
    out = stems[np.arange(count)[:, None], order]  # (S, C, T), channels reordered (one copy)
    out *= scale[:, None, None]
    return out


# Random equalisation (domain randomisation of each stem's timbre). Three RBJ-cookbook biquads per source:
# a low shelf, a peak and a high shelf, each with a gain drawn uniformly in [-max_db, max_db]. Corner and
# centre frequencies are drawn log-uniformly in these ranges (Hz), each range's top lowered to a fraction of
# Nyquist where the rate is low (EQ_NYQUIST_SHARE).
EQ_LOW_SHELF_HZ: tuple[float, float] = (60.0, 300.0)
EQ_PEAK_HZ: tuple[float, float] = (200.0, 5000.0)
EQ_PEAK_Q: tuple[float, float] = (0.5, 2.0)
EQ_HIGH_SHELF_HZ: tuple[float, float] = (2000.0, 8000.0)
EQ_NYQUIST_SHARE: tuple[float, float, float] = (0.4, 0.7, 0.8)  # low shelf, peak, high shelf
#: Samples of a song before a chunk that TrainChunks runs through the EQ first, so that the chunk starts in
#: the filters' state as if the whole song had been filtered (a 60-Hz shelf settles in about 50 ms).
EQ_PREROLL: int = 2048
_SHELF_SLOPE_ALPHA = np.sqrt(2.0) / 2.0  # the cookbook's shelf slope S = 1: alpha = sin(w0) / 2 * sqrt(2)


def _normalised(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """One second-order section ``(6,)``: ``b0 b1 b2 1 a1 a2`` divided by ``a0``."""
    return np.concatenate([b, a]) / a[0]


def _shelf(freq_hz: float, gain_db: float, sample_rate: int, side: int) -> np.ndarray:
    """RBJ shelf of slope 1 (``side`` +1: low shelf, -1: high shelf; the two differ only in the sign of
    the cosine terms and of b1, a1). Returns (6,)."""
    amp, w0 = 10.0 ** (gain_db / 40.0), 2.0 * np.pi * freq_hz / sample_rate
    cos, alpha = side * np.cos(w0), np.sin(w0) * _SHELF_SLOPE_ALPHA
    root = 2.0 * np.sqrt(amp) * alpha
    b = amp * np.array(
        [
            (amp + 1) - (amp - 1) * cos + root,
            2 * side * ((amp - 1) - (amp + 1) * cos),
            (amp + 1) - (amp - 1) * cos - root,
        ]
    )
    a = np.array(
        [
            (amp + 1) + (amp - 1) * cos + root,
            -2 * side * ((amp - 1) + (amp + 1) * cos),
            (amp + 1) + (amp - 1) * cos - root,
        ]
    )
    return _normalised(b, a)


def low_shelf(freq_hz: float, gain_db: float, sample_rate: int) -> np.ndarray:
    """RBJ low shelf (slope 1): ``gain_db`` at DC, 0 dB at Nyquist, half of it at ``freq_hz``. Returns (6,)."""
    return _shelf(freq_hz, gain_db, sample_rate, 1)


def high_shelf(freq_hz: float, gain_db: float, sample_rate: int) -> np.ndarray:
    """RBJ high shelf (slope 1): 0 dB at DC, ``gain_db`` at Nyquist, half of it at ``freq_hz``. Returns (6,)."""
    return _shelf(freq_hz, gain_db, sample_rate, -1)


def peak(freq_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """RBJ peaking EQ: ``gain_db`` at ``freq_hz``, 0 dB at DC and Nyquist, bandwidth set by ``q``. Returns (6,)."""
    amp, w0 = 10.0 ** (gain_db / 40.0), 2.0 * np.pi * freq_hz / sample_rate
    cos, alpha = np.cos(w0), np.sin(w0) / (2.0 * q)
    b = np.array([1 + alpha * amp, -2 * cos, 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * cos, 1 - alpha / amp])
    return _normalised(b, a)


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float], top: float, size: int) -> np.ndarray:
    """``size`` draws log-uniform in ``bounds``, the upper bound lowered to ``top`` if above it."""
    low, high = bounds[0], min(bounds[1], top)
    return np.exp(rng.uniform(np.log(low), np.log(max(high, low)), size=size))


def eq_params(rng: np.random.Generator, count: int, max_db: float, sample_rate: int) -> np.ndarray:
    """Random EQ for ``count`` sources: second-order sections ``(count, 3, 6)`` (low shelf, peak, high
    shelf), gains uniform in [-max_db, max_db]. Draws, in order: 3 x ``count`` gains, then the low-shelf
    frequencies, the peak frequencies, the peak Qs and the high-shelf frequencies (``count`` each)."""
    if not 0.0 <= max_db <= EQ_MAX_DB:
        raise ValueError(f"max_db must be in [0, {EQ_MAX_DB:g}] dB, got {max_db}")
    gains = rng.uniform(-max_db, max_db, size=(3, count))  # (band, source)
    tops = [share * sample_rate / 2.0 for share in EQ_NYQUIST_SHARE]
    low = _log_uniform(rng, EQ_LOW_SHELF_HZ, tops[0], count)
    mid = _log_uniform(rng, EQ_PEAK_HZ, tops[1], count)
    q = rng.uniform(*EQ_PEAK_Q, size=count)
    high = _log_uniform(rng, EQ_HIGH_SHELF_HZ, tops[2], count)
    sos = np.empty((count, 3, 6))
    for k in range(count):
        sos[k, 0] = low_shelf(low[k], gains[0, k], sample_rate)
        sos[k, 1] = peak(mid[k], gains[1, k], q[k], sample_rate)
        sos[k, 2] = high_shelf(high[k], gains[2, k], sample_rate)
    return sos


def equalize(stems: np.ndarray, sos: np.ndarray, before: list[np.ndarray] | None = None) -> None:
    """Filter each source of ``stems (S, C, T)`` by its sections ``sos (S, n, 6)``, in place (causal IIR,
    scipy's ``sosfilt``). ``before[k] (C, P_k)``, where given, is the audio that precedes source ``k`` in
    its song: it is filtered first and dropped, so the source comes out exactly as the same samples of the
    whole filtered song would (no start-up transient); without it the filters start from silence, which
    is exact at a song's start."""
    for k in range(stems.shape[0]):
        state = np.zeros((sos.shape[1], stems.shape[1], 2))  # (sections, C, 2): at rest
        if before is not None and before[k].shape[-1]:
            _, state = sosfilt(sos[k], before[k], axis=-1, zi=state)
        stems[k] = sosfilt(sos[k], stems[k], axis=-1, zi=state)[0]


# Random stereo width (domain randomisation of each stem's image). Generator v5's stems are wider than
# recorded ones (the realism gauge's L/R correlation: vocals 0.95 against a real 0.99, "other" 0.79 against
# 0.86), and folding the real train clip to mono cost the UNet 0.9 dB. An ablation: checkpoints/history.md.


def width_params(rng: np.random.Generator, count: int, width_min: float) -> np.ndarray:
    """Random width factors ``(count,)`` drawn uniformly in [width_min, 1]: 1 keeps a source's image, 0
    folds it to mono. One draw per source."""
    if not 0.0 <= width_min <= 1.0:
        raise ValueError(f"width_min must be in [0, 1], got {width_min}")
    return rng.uniform(width_min, 1.0, size=count)


def narrow(stems: np.ndarray, widths: np.ndarray) -> None:
    """Scale each stereo source's side signal ``(L - R) / 2`` by ``widths (S,)``, keeping its mid
    ``(L + R) / 2``, in place. stems: (S, 2, T). A mono source (L = R) is unchanged, and the mixture built
    after it stays the exact sum of the sources."""
    if stems.shape[1] != 2:
        raise ValueError(f"narrow needs stereo sources (S, 2, T), got {stems.shape}")
    mid = 0.5 * (stems[:, 0] + stems[:, 1])  # (S, T)
    side = 0.5 * (stems[:, 0] - stems[:, 1]) * widths.astype(stems.dtype)[:, None]  # (S, T)
    stems[:, 0] = mid + side
    stems[:, 1] = mid - side


# Random repitch, done as a change of speed: a source read ``ratio`` times as long is resampled to the chunk's
# length, so its pitch and tempo both scale by ``ratio`` (2 semitones: 12%), one polyphase resampling. (Demucs's
# pitch and tempo augmentation, Defossez 2021, "Hybrid Spectrogram and Waveform Source Separation", moves them
# independently with SoundTouch's time-stretch: with probability 0.2 per example, every stream by the same
# integer pitch in +-2 semitones and a tempo change of sigma 5% clipped to +-12%.) The ratio is quantised to
# ``steps / REPITCH_STEPS`` so that the resampling is rational and output sample ``REPITCH_STEPS * k`` falls
# exactly on input sample ``steps * k``.
REPITCH_STEPS: int = 100


def repitch_params(rng: np.random.Generator, count: int, semitones: float, probability: float) -> np.ndarray:
    """Random speed steps ``(count,)`` int: ``REPITCH_STEPS`` (unchanged) for a source left alone, else
    ``round(REPITCH_STEPS * 2 ** (u / 12))`` with ``u`` uniform in [-semitones, semitones], for each source
    with ``probability``. Two draws per source (whether, then how much)."""
    if not 0.0 <= semitones <= REPITCH_MAX_SEMITONES:
        raise ValueError(f"semitones must be in [0, {REPITCH_MAX_SEMITONES:g}], got {semitones}")
    if not 0.0 < probability <= 1.0:
        raise ValueError(f"probability must be in (0, 1], got {probability}")
    chosen = rng.random(count) < probability  # (S,)
    shifts = rng.uniform(-semitones, semitones, size=count)  # (S,)
    steps = np.rint(REPITCH_STEPS * 2.0 ** (shifts / 12.0)).astype(np.int64)
    return np.where(chosen, steps, REPITCH_STEPS)


def repitch_span(steps: int, before: int, length: int) -> tuple[int, int]:
    """What ``repitch`` needs read: ``(offset, count)`` input samples, from ``offset`` (<= 0) relative to the
    input sample where output sample 0 lies, to output samples ``[-before, length)`` at speed
    ``steps / REPITCH_STEPS``. ``before`` must be a multiple of ``REPITCH_STEPS``. A margin of ``steps``
    input samples on either side (far more than the filter's 10-13) keeps the kept output away from the
    resampler's zero-padded edges (a read that runs past a song's end is zero-padded like the song)."""
    if before % REPITCH_STEPS:
        raise ValueError(f"before must be a multiple of {REPITCH_STEPS}, got {before}")
    offset = -(before // REPITCH_STEPS) * steps - steps
    count = -offset + -(-length * steps // REPITCH_STEPS) + steps  # ceil(length * steps / REPITCH_STEPS)
    return offset, count


def repitch(audio: np.ndarray, steps: int, length: int) -> np.ndarray:
    """``audio (C, n)``, read from where ``repitch_span`` says, played ``steps / REPITCH_STEPS`` times as fast:
    ``(C, length)`` float32, the span's ``before + length`` output samples. Output sample ``j`` is the
    band-limited value of input sample ``steps * (1 + j / REPITCH_STEPS)`` (scipy's ``resample_poly``, whose
    filter delay is compensated). A source sped up (``steps > REPITCH_STEPS``) loses the top
    ``1 - REPITCH_STEPS / steps`` of its band to the anti-aliasing filter; a slowed one keeps its whole band,
    which then ends below the output's Nyquist. Zero-padded at the end if ``audio`` is short."""
    out = resample_poly(audio, REPITCH_STEPS, int(steps), axis=-1)  # (C, ~n * REPITCH_STEPS / steps)
    out = out[:, REPITCH_STEPS : REPITCH_STEPS + length]
    if out.shape[-1] < length:
        out = np.pad(out, ((0, 0), (0, length - out.shape[-1])))
    return np.ascontiguousarray(out, dtype=np.float32)
