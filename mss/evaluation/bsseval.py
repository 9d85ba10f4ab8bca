"""BSS Eval v4 (museval ``evaluate(..., mode="v4")``), streamed: memory bounded by the block size, not
by the song length, and the reference-only work done once per song for every method scored on it.

API (shape letters of ``mss/__init__.py``; P = S*C reference channels, L = filters_len, N frames)::

    BlockReader = Callable[[int, int], np.ndarray]  # (start, stop) -> (S, C, stop - start), 0 past the end
    array_reader(audio (S, C, T)) -> BlockReader
    BSSEvalConfig(window=44100, hop=44100, filters_len=512, block=176400)  # frozen, sizes in samples
    frame_bounds(num_samples, window, hop) -> (N, 2) int [start, stop)    # museval's Framing
    ReferenceCorrelations.compute(references, num_samples, num_sources, channels, config=BSSEvalConfig())
        -> ReferenceCorrelations   # once per song: lags (P, P, L) and the factorizations of G, G_jj
    bss_eval_v4(references, estimates, correlations, config=None)
        -> Scores(sdr, isr, sir, sar), each (S, N) in dB, as museval.evaluate returns them
    evaluate_arrays(references (S, C, T), estimates (S, C, T'), window=44100, hop=44100, ...)
        -> Scores                  # museval.evaluate on channels-first arrays, in one call

    correlations = ReferenceCorrelations.compute(read_refs, T, S, C)
    scores = {name: bss_eval_v4(read_refs, read_est, correlations) for name, read_est in methods.items()}

How it maps onto museval (``museval/metrics.py``, version 0.4):

- G, the Gram matrix of all references delayed by 0..L-1 samples, (P*L, P*L) with rows (source,
  channel, delay), is built from the lagged correlations ``sum_t x_p[t + k] x_q[t]``, k in [0, L),
  accumulated block by block: segments of ``M = nfft - L + 1`` samples are correlated with the
  ``M + L - 1`` samples of the other signal from the same start by FFTs of nfft = 8192 points, and
  the cross-spectra are summed over segments before one inverse FFT. That is the exact linear
  correlation with no whole-song FFT (museval's are next_pow2(T + L - 1) points, ~GBs per song).
- D (each estimate channel against every delayed reference channel) is accumulated the same way,
  per method. The filters solve ``(G + eps I) C = D`` and ``(G_jj + eps I) C_j = D_j`` (the
  estimate's own source) from LU factorizations made once per song, all estimates' right-hand sides
  at once; museval refactorizes G for every estimate. Exactly zero pivots fall back to
  ``lstsq(G, D)``, as in museval (see _Solver, also for bitwise dual-mono sources).
- Per frame, museval convolves every reference channel with every filter (``_project``) and measures
  energies in the time domain. Here each frame's references and estimates are FFT'd once, at a length
  >= W + L - 1 so products are linear convolutions, and the energies of the projections and errors
  are read off the spectra (Parseval), with no inverse FFT. SDR = |s|^2 / |e_j - s|^2 does not
  involve the filters and is computed in the time domain.
- Frames and the silent-frame rule (any reference or estimate source whose channel sum is zero over
  a frame -> NaN for every source in it) follow ``Framing`` and ``_any_source_silent``; a source
  silent over the whole song raises ValueError, as museval's ``validate`` does.

Numerics found while testing against museval (tests/test_bsseval.py):

- On broadband data (noise, music with a noise floor) all four metrics agree with museval to ~1e-9 dB
  (1e-13 dB on white noise).
- G is often numerically singular: delayed copies of a band-limited signal are nearly linearly
  dependent. Harmonic tones low-passed at 4 kHz give eigenvalues of G at the rounding level
  (condition ~1e17), and so does the real MUSDB clip in ``shared/data/musdb-sample`` (AAC-coded,
  bass L/R equal to -71 dB; eigenvalues from -7e-11 to 1.1e6). The filters are then rounding noise
  with huge gains in G's near-null directions; the global projection cancels them, but a frame cuts
  the references with a rectangular window whose edges are broadband, so per-frame ISR/SIR/SAR are
  noise too. On that clip (7 s) with IRM2 oracle estimates, museval itself reports median SIR -19 to
  -31 dB and SAR ~0 dB, and this module (same algorithm, other rounding) -10 to -20 dB: neither
  means anything. One whole-song frame gives plausible SIR (15-22 dB), still up to 3.5 dB apart
  between the two. SDR never uses the filters and agrees to 1e-14 dB. A -80 dBFS white floor on the
  references makes G well-conditioned: the clip then gives SIR 17-21 dB, identical here and in
  museval to 1e-10 dB.
- museval computes in the inputs' dtype (scipy.fftpack keeps float32 as complex64); this module
  always computes in float64, so compare on float64 inputs.

Memory: O((P L)^2) for G, factored in place (134 MB at 4 stereo sources, L = 512), plus O(block) for
the streamed passes (~440 MB peak in all with the defaults, for any song length). A window >= the
song length is one frame of the whole song, held in memory.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.fft
import scipy.linalg

from mss import MUSDB_SAMPLE_RATE
from mss.evaluation.museval_format import FILTERS_LEN, HOP_S, WINDOW_S, frame_samples

__all__ = [
    "BSSEvalConfig",
    "BlockReader",
    "ReferenceCorrelations",
    "Scores",
    "array_reader",
    "bss_eval_v4",
    "evaluate_arrays",
    "frame_bounds",
]

BlockReader = Callable[[int, int], np.ndarray]
#: museval's regularisation of the projection systems: np.finfo(float).eps on the diagonal.
EPS: float = float(np.finfo(float).eps)
#: FFT length of the correlation segments: large enough that the L - 1 overlap wastes little, small
#: enough to stay in cache (8192 - 511 useful samples per FFT at L = 512).
MIN_SEGMENT_FFT: int = 8192


@dataclass(frozen=True)
class BSSEvalConfig:
    """window/hop: frame length and step in samples (museval ``win``/``hop``); filters_len: taps of the
    distortion filters (museval's 512); block: samples per read, which bounds the streamed memory."""

    window: int = frame_samples(MUSDB_SAMPLE_RATE, WINDOW_S)
    hop: int = frame_samples(MUSDB_SAMPLE_RATE, HOP_S)
    filters_len: int = FILTERS_LEN
    block: int = 4 * MUSDB_SAMPLE_RATE

    def __post_init__(self):
        sizes = (self.window, self.hop, self.filters_len, self.block)
        if not all(isinstance(size, numbers.Integral) and size > 0 for size in sizes):
            raise ValueError(f"all sizes must be positive integers (samples), got {self}")


class Scores(NamedTuple):
    """BSS Eval v4 metrics in dB, each (S, N); NaN in frames with a silent source (museval's order)."""

    sdr: np.ndarray
    isr: np.ndarray
    sir: np.ndarray
    sar: np.ndarray


def array_reader(audio: np.ndarray) -> BlockReader:
    """audio (S, C, T) -> reader of (S, C, stop - start) slices, zero past the end."""

    def read(start: int, stop: int) -> np.ndarray:
        out = np.zeros((*audio.shape[:2], stop - start), dtype=np.float64)
        available = max(0, min(stop, audio.shape[-1]) - start)
        out[..., :available] = audio[..., start : start + available]
        return out

    return read


def frame_bounds(num_samples: int, window: int, hop: int) -> np.ndarray:
    """museval's ``Framing``: (N, 2) [start, stop) of the full frames, or one frame of the whole song
    when window >= num_samples."""
    if window >= num_samples:
        return np.array([[0, num_samples]])
    starts = np.arange((num_samples - window + hop) // hop) * hop
    return np.stack([starts, starts + window], axis=1)


def _read(reader: BlockReader, start: int, stop: int, num_samples: int, shape: tuple[int, int]) -> np.ndarray:
    """One block as float64 (S, C, stop - start), zeroed from num_samples on: this is museval's
    truncation of estimates longer than the references (its padding comes from the reader's zeros)."""
    block = np.array(reader(start, stop), dtype=np.float64)  # a copy: zeroing must not touch the caller's
    if block.shape != (*shape, stop - start):
        raise ValueError(f"reader({start}, {stop}) returned {block.shape}, expected {(*shape, stop - start)}")
    block[..., max(0, num_samples - start) :] = 0.0
    return block


def _nonsilent_sources(block: np.ndarray) -> np.ndarray:
    """block (S, C, T) -> (S,) bool: some sample has a non-zero channel sum (museval's silence test)."""
    return np.any(block.sum(axis=1) != 0, axis=-1)


def _lagged_correlations(
    read: Callable[[int, int], tuple[np.ndarray, np.ndarray]], num_samples: int, filters_len: int, block: int
) -> np.ndarray:
    """out[q, p, k] = sum_{t < num_samples} y[q, t + k] * x[p, t] for k in [0, L), y zero past the end.

    read(start, length) -> x (P, length) from start, y (Q, length + L - 1) from start, float64. Each
    block of x is cut into segments of M samples; segment m of x is correlated with the M + L - 1
    samples of y starting at the same place (the lookahead lag L - 1 needs), by FFTs of nfft >= M + L - 1
    points, so the circular correlation is the linear one. Summing the cross-spectra over segments
    and inverting once gives the whole-signal correlation; returns (Q, P, L).
    """
    nfft = max(MIN_SEGMENT_FFT, 1 << int(np.ceil(np.log2(4 * filters_len))))
    segment = nfft - filters_len + 1
    segments_per_block = max(1, -(-block // segment))
    cross = None
    for start in range(0, num_samples, segments_per_block * segment):
        count = min(segments_per_block, -(-(num_samples - start) // segment))
        x, y = read(start, count * segment)  # (P, count * M), (Q, count * M + L - 1)
        x_spec = scipy.fft.rfft(x.reshape(len(x), count, segment), n=nfft, axis=-1)  # (P, count, F)
        y_windows = np.lib.stride_tricks.sliding_window_view(y, segment + filters_len - 1, axis=-1)
        y_spec = scipy.fft.rfft(y_windows[:, ::segment], n=nfft, axis=-1)  # (Q, count, F)
        # For each frequency, the sum over segments of Y conj(X) is a (Q, count) @ (count, P) product.
        x_conj = np.ascontiguousarray(x_spec.transpose(2, 1, 0))  # (F, count, P)
        np.conjugate(x_conj, out=x_conj)
        block_cross = np.matmul(np.ascontiguousarray(y_spec.transpose(2, 0, 1)), x_conj)  # (F, Q, P)
        if cross is None:
            cross = block_cross
        else:
            cross += block_cross
    lags = scipy.fft.irfft(cross, n=nfft, axis=0)[:filters_len]  # (L, Q, P)
    return np.ascontiguousarray(lags.transpose(1, 2, 0))  # (Q, P, L)


def _gram(lags: np.ndarray) -> np.ndarray:
    """lags (P, P, L), lags[p, q, k] = sum_t x_p[t + k] x_q[t] -> G (P*L, P*L) as museval's
    ``_reshape_G``: G[(p, a), (q, b)] = <x_p delayed by a, x_q delayed by b> = xcorr_pq(b - a)."""
    channels, _, filters_len = lags.shape
    lag0 = lags[:, :, 0]
    # Negative lags of (p, q) are positive lags of (q, p); lag 0 is symmetrised so G is exactly
    # symmetric, as museval builds it (it fills G[i, j] and G[j, i] from one FFT).
    full = np.concatenate(
        [lags.transpose(1, 0, 2)[:, :, :0:-1], (0.5 * (lag0 + lag0.T))[:, :, None], lags[:, :, 1:]], axis=2
    )  # (P, P, 2L - 1), full[p, q, L - 1 + k] = xcorr_pq(k)
    delay = np.arange(filters_len)
    lag_index = filters_len - 1 + delay[None, :] - delay[:, None]  # (L, L): [a, b] -> L - 1 + b - a
    gram = np.empty((channels, filters_len, channels, filters_len))
    for p in range(channels):
        gram[p] = full[p][:, lag_index].transpose(1, 0, 2)  # (L, P, L)
    return gram.reshape(channels * filters_len, channels * filters_len)


@dataclass(frozen=True, eq=False)
class _Solver:
    """Solves ``(G + eps I) x = rhs`` as numpy.linalg.solve does (LU with partial pivoting), from a
    factorization made once, G being the Gram matrix of the delayed channels ``kept``.

    Channels that are bitwise copies of another (dual-mono stems stored as stereo) are left out of
    the system and get zero filters: the span of the delayed references, hence every projection, is
    unchanged, but G would be exactly singular. museval keeps them and its LU then meets pivots at
    the rounding level, so its filters, and ISR/SIR/SAR, depend on the rounding of G (observed: SIR
    of 13.5 dB from museval, -77 dB from the same LU on a G that differs from museval's in the last
    bit). When the LU meets an exactly zero pivot, numpy raises LinAlgError and museval falls back
    to ``lstsq(G, rhs)`` (no eps); that minimum-norm solution is kept here as an SVD of G.
    """

    kept: np.ndarray  # indices of the channels (of the rhs's P) in the system
    filters_len: int
    lu: np.ndarray | None  # LU of (G + eps I)^T = G + eps I (G is exactly symmetric)
    pivots: np.ndarray | None
    svd: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # (U, s, Vt) of G, only when singular
    condition: float = float("inf")  # estimated 1-norm condition number of G + eps I (LAPACK gecon)

    @classmethod
    def factor(cls, lags: np.ndarray, kept: np.ndarray) -> _Solver:
        """lags (P, P, L) as in ReferenceCorrelations; kept: the channels to build G from."""
        sub_lags = lags[np.ix_(kept, kept)]
        gram = _gram(sub_lags)
        gram[np.diag_indices_from(gram)] += EPS
        norm = float(np.abs(gram).sum(axis=0).max())  # 1-norm, before the LU overwrites G
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # handled just below
            # The transpose is F-contiguous, so LAPACK factors it in place without a copy.
            lu, pivots = scipy.linalg.lu_factor(gram.T, overwrite_a=True, check_finite=False)
        if not np.any(np.diag(lu) == 0):  # numpy.linalg.solve raises LinAlgError exactly then
            # O(n^2) estimate from the factors: how much rounding the filters (hence ISR/SIR/SAR) carry.
            (gecon,) = scipy.linalg.get_lapack_funcs(("gecon",), (lu,))
            rcond, _ = gecon(lu, norm, norm="1")
            condition = float("inf") if rcond <= 0 else 1.0 / float(rcond)
            return cls(kept, lags.shape[-1], lu, pivots, None, condition)
        del lu, pivots, gram
        return cls(kept, lags.shape[-1], None, None, np.linalg.svd(_gram(sub_lags)))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """rhs (P*L, K), rows (channel, delay) -> filters (P*L, K), zero for the left-out channels."""
        channels, taps = rhs.shape[0] // self.filters_len, self.filters_len
        kept_rhs = rhs.reshape(channels, taps, -1)[self.kept].reshape(len(self.kept) * taps, -1)
        if self.svd is None:
            solution = scipy.linalg.lu_solve((self.lu, self.pivots), kept_rhs, check_finite=False)
        else:
            # numpy.linalg.lstsq's default cutoff: singular values below eps * n * s_max count as zero.
            u, singular_values, vt = self.svd
            keep = singular_values > EPS * len(singular_values) * singular_values[0]
            solution = vt[keep].T @ ((u[:, keep].T @ kept_rhs) / singular_values[keep, None])
        out = np.zeros((channels, taps, rhs.shape[1]))
        out[self.kept] = solution.reshape(len(self.kept), taps, -1)
        return out.reshape(channels * taps, -1)


def _first_copies(same: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """Those of ``channels`` that are not a bitwise copy of an earlier one; same (P, P) bool."""
    return np.array([p for i, p in enumerate(channels) if not any(same[q, p] for q in channels[:i])])


@dataclass(frozen=True, eq=False)
class ReferenceCorrelations:
    """Everything BSS Eval v4 needs from the references alone, computed once per song and shared by
    every method scored on it: the lagged correlations and the factorizations of G and of each
    source's diagonal block G_jj."""

    num_samples: int
    num_sources: int
    channels: int
    filters_len: int
    lags: np.ndarray  # (P, P, L): lags[p, q, k] = sum_t ref_p[t + k] ref_q[t], p = source * C + channel
    full: _Solver  # G + eps I over all reference channels, (P*L, P*L)
    per_source: tuple[_Solver, ...]  # G_jj + eps I over source j's channels, (C*L, C*L) each

    @property
    def condition(self) -> float:
        """Estimated condition number of the projection system (inf: exactly singular). Filters carry
        relative errors up to about ``condition * 1e-16``: above ~1e12, ISR/SIR/SAR are rounding noise
        (band-limited, noise-free references); SDR does not use the filters and stays exact."""
        return max([self.full.condition, *(solver.condition for solver in self.per_source)])

    @classmethod
    def compute(
        cls,
        references: BlockReader,
        num_samples: int,
        num_sources: int,
        channels: int,
        config: BSSEvalConfig = BSSEvalConfig(),
    ) -> ReferenceCorrelations:
        """references: reader of (S, C, n) blocks; num_samples: the song length T."""
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        shape = (num_sources, channels)
        nonsilent = np.zeros(num_sources, dtype=bool)
        # same[p, q] (p < q): channels p and q are bitwise equal so far.
        same = np.triu(np.ones((num_sources * channels,) * 2, dtype=bool), k=1)

        def read(start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
            # G correlates the references with themselves: x is the head of the extended block y.
            nonlocal nonsilent
            block = _read(references, start, start + length + config.filters_len - 1, num_samples, shape)
            nonsilent |= _nonsilent_sources(block)
            y = block.reshape(num_sources * channels, -1)
            for p, q in zip(*np.nonzero(same), strict=True):
                same[p, q] = np.array_equal(y[p], y[q])
            return y[:, :length], y

        lags = _lagged_correlations(read, num_samples, config.filters_len, config.block)
        if not nonsilent.all():
            raise ValueError(f"reference sources {np.flatnonzero(~nonsilent).tolist()} are all zeros")
        per_source = []
        for j in range(num_sources):
            own = slice(j * channels, (j + 1) * channels)
            kept = _first_copies(same[own, own], np.arange(channels))
            per_source.append(_Solver.factor(lags[own, own], kept))
        full = _Solver.factor(lags, _first_copies(same, np.arange(num_sources * channels)))
        return cls(num_samples, num_sources, channels, config.filters_len, lags, full, tuple(per_source))


def _filters(correlations: ReferenceCorrelations, cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cross (S*C estimate channels, P, L) -> distortion filters, as museval's
    ``_compute_projection_filters``: all (S_est, P, L, C) over every reference channel, and own
    (S, C_in, L, C) over the estimate's own source only."""
    sources, channels, taps = correlations.num_sources, correlations.channels, correlations.filters_len
    # Right-hand sides of every estimate at once: rows (reference channel, delay), columns (estimate, channel).
    rhs = cross.reshape(sources * channels, -1).T  # (P*L, S*C)
    solution = correlations.full.solve(rhs)  # (P*L, S*C)
    all_filters = solution.reshape(sources * channels, taps, sources, channels).transpose(2, 0, 1, 3)
    size = channels * taps
    own = np.stack(
        [
            correlations.per_source[j]
            .solve(rhs[j * size : (j + 1) * size, j * channels : (j + 1) * channels])
            .reshape(channels, taps, channels)
            for j in range(sources)
        ]
    )  # (S, C_in, L, C)
    return all_filters, own


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """museval's ``_safe_db``: +inf where den == 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.inf, 10 * np.log10(num / np.where(den == 0, 1.0, den)))


def _score_frames(
    refs: np.ndarray, ests: np.ndarray, all_spec: np.ndarray, own_spec: np.ndarray, nfft: int
) -> np.ndarray:
    """refs, ests (S, C, N, W) frames -> (4, S, N) SDR/ISR/SIR/SAR as museval's ``_bss_decomp_mtifilt``
    and ``_bss_crit`` (images version). all_spec (S_est, P, C, F), own_spec (S, C_in, C, F): filter
    spectra at nfft >= W + L - 1 points.

    With P_j = own projection and P = full projection (both W + L - 1 long): s_true + e_spat = P_j,
    s_true + e_spat + e_interf = P, so ISR = |s|^2/|P_j - s|^2, SIR = |P_j|^2/|P - P_j|^2,
    SAR = |P|^2/|e - P|^2, SDR = |s|^2/|e - s|^2.
    """
    sources, channels, frames, _ = refs.shape
    # Parseval for a real signal from its rfft: interior bins count twice.
    weight = np.full(nfft // 2 + 1, 2.0 / nfft)
    weight[0] = 1.0 / nfft
    if nfft % 2 == 0:
        weight[-1] = 1.0 / nfft

    def energy(spec: np.ndarray) -> np.ndarray:  # (C, N, F) -> (N,)
        return np.einsum("cnf,f->n", spec.real**2 + spec.imag**2, weight)

    # Frequency last throughout: einsum over the few channels is ~3x faster than a matmul batched
    # over tens of thousands of frequencies.
    ref_spec = scipy.fft.rfft(refs.reshape(sources * channels, frames, -1), n=nfft, axis=-1)  # (P, N, F)
    est_spec = scipy.fft.rfft(ests, n=nfft, axis=-1)  # (S, C, N, F)
    true_energy = np.sum(refs**2, axis=(1, 3))  # (S, N)
    error_energy = np.sum((ests - refs) ** 2, axis=(1, 3))  # (S, N)
    scores = np.empty((4, sources, frames))
    scores[0] = _db(true_energy, error_energy)
    for j in range(sources):
        own_ref = ref_spec[j * channels : (j + 1) * channels]  # (C, N, F): s_true
        projection = np.einsum("pcf,pnf->cnf", all_spec[j], ref_spec)  # (C, N, F)
        own_projection = np.einsum("icf,inf->cnf", own_spec[j], own_ref)  # (C, N, F)
        scores[1, j] = _db(true_energy[j], energy(own_projection - own_ref))
        scores[2, j] = _db(energy(own_projection), energy(projection - own_projection))
        scores[3, j] = _db(energy(projection), energy(est_spec[j] - projection))
    silent = ~_nonsilent_frames(refs) | ~_nonsilent_frames(ests)  # (N,)
    scores[:, :, silent] = np.nan
    return scores


def _nonsilent_frames(frames: np.ndarray) -> np.ndarray:
    """frames (S, C, N, W) -> (N,): no source is silent in the frame (museval's ``_any_source_silent``)."""
    return np.all(np.any(frames.sum(axis=1) != 0, axis=-1), axis=0)


def bss_eval_v4(
    references: BlockReader,
    estimates: BlockReader,
    correlations: ReferenceCorrelations,
    config: BSSEvalConfig | None = None,
) -> Scores:
    """museval.evaluate(references, estimates, win, hop, mode="v4") of one method, streamed.

    references, estimates: readers of (S, C, n) blocks, the references those of ``correlations``.
    Estimates are truncated (or, by the reader's zeros, padded) to the references' length.
    config: window, hop and block; by default 1 s frames at 44.1 kHz with the correlations' filters_len.
    Returns Scores with arrays (S, N), N = len(frame_bounds(T, window, hop)).
    """
    if config is None:
        config = BSSEvalConfig(filters_len=correlations.filters_len)
    if config.filters_len != correlations.filters_len:
        raise ValueError(
            f"config.filters_len={config.filters_len}, correlations use {correlations.filters_len}"
        )
    num_samples, sources, channels = correlations.num_samples, correlations.num_sources, correlations.channels
    shape = (sources, channels)
    nonsilent = np.zeros(sources, dtype=bool)

    def read(start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        nonlocal nonsilent
        refs = _read(references, start, start + length, num_samples, shape)
        ests = _read(estimates, start, start + length + config.filters_len - 1, num_samples, shape)
        nonsilent |= _nonsilent_sources(ests)
        return refs.reshape(sources * channels, -1), ests.reshape(sources * channels, -1)

    # D: each estimate channel at lag a against each reference channel, (S*C, P, L).
    cross = _lagged_correlations(read, num_samples, config.filters_len, config.block)
    if not nonsilent.all():
        raise ValueError(f"estimated sources {np.flatnonzero(~nonsilent).tolist()} are all zeros")
    all_filters, own_filters = _filters(correlations, cross)

    bounds = frame_bounds(num_samples, config.window, config.hop)
    window = int(bounds[0, 1] - bounds[0, 0])
    nfft = scipy.fft.next_fast_len(window + config.filters_len - 1, real=True)
    all_spec = scipy.fft.rfft(all_filters, n=nfft, axis=2).transpose(0, 1, 3, 2).copy()  # (S_est, P, C, F)
    own_spec = scipy.fft.rfft(own_filters, n=nfft, axis=2).transpose(0, 1, 3, 2).copy()  # (S, C_in, C, F)

    scores = np.empty((4, sources, len(bounds)))
    frames_per_group = max(1, config.block // nfft)
    for first in range(0, len(bounds), frames_per_group):
        group = bounds[first : first + frames_per_group]
        start, stop = int(group[0, 0]), int(group[-1, 1])
        offsets = group[:, 0] - start
        refs = _read(references, start, stop, num_samples, shape)
        ests = _read(estimates, start, stop, num_samples, shape)
        # (S, C, N, W): frame n is samples [offsets[n], offsets[n] + W) of the group's span.
        ref_frames = np.stack([refs[..., o : o + window] for o in offsets], axis=2)
        est_frames = np.stack([ests[..., o : o + window] for o in offsets], axis=2)
        scores[:, :, first : first + len(group)] = _score_frames(
            ref_frames, est_frames, all_spec, own_spec, nfft
        )
    return Scores(*scores)


def evaluate_arrays(
    references: np.ndarray,
    estimates: np.ndarray,
    window: int = BSSEvalConfig.window,
    hop: int = BSSEvalConfig.hop,
    filters_len: int = BSSEvalConfig.filters_len,
    block: int = BSSEvalConfig.block,
) -> Scores:
    """museval.evaluate(refs, ests, win=window, hop=hop, mode="v4") on channels-first arrays:
    references (S, C, T), estimates (S, C, T') padded or truncated to T -> Scores, each (S, N)."""
    if references.ndim != 3 or estimates.shape[:2] != references.shape[:2]:
        raise ValueError(
            f"expected (S, C, T) references and estimates, got {references.shape}, {estimates.shape}"
        )
    config = BSSEvalConfig(window=window, hop=hop, filters_len=filters_len, block=block)
    sources, channels, num_samples = references.shape
    read_refs = array_reader(references)
    correlations = ReferenceCorrelations.compute(read_refs, num_samples, sources, channels, config)
    return bss_eval_v4(read_refs, array_reader(estimates), correlations, config)
