"""BSS Eval v4's SDR frame by frame without the projection filters: milliseconds instead of seconds, for
the views that score a window at a time (the spectrogram browser, the listening study's excerpts)."""

from __future__ import annotations

import numpy as np

from mss import MUSDB_SAMPLE_RATE
from mss.evaluation.bsseval import frame_bounds
from mss.evaluation.museval_format import HOP_S, WINDOW_S, frame_samples


def window_sdr_frames(
    reference: np.ndarray, estimate: np.ndarray, rate: int = MUSDB_SAMPLE_RATE
) -> np.ndarray:
    """BSS Eval v4 SDR of (C, T) arrays on 1-s frames, as museval.evaluate gives it -> (N,).

    In BSS Eval the SDR is ``||s_true||^2 / ||e_spat + e_interf + e_artif||^2`` and the three error terms
    add up to ``estimate - reference`` whatever the projection filters are, so the SDR needs no
    filters: ``10 log10(sum s^2 / sum (s_hat - s)^2)`` per frame, with museval's framing and its
    silent-frame rule (a frame where the reference's or the estimate's channel sum is all zero is NaN).
    That is milliseconds instead of museval's seconds per view (the spectrogram browser, the listening
    study's excerpts); tests/test_browser.py checks it against museval.evaluate.
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    window = frame_samples(rate, WINDOW_S)
    out = []
    for start, stop in frame_bounds(reference.shape[-1], window, frame_samples(rate, HOP_S)):
        ref, est = reference[:, start:stop], estimate[:, start:stop]
        if not np.any(ref.sum(axis=0)) or not np.any(est.sum(axis=0)):
            out.append(np.nan)
            continue
        error = float(np.sum(np.square(est - ref)))
        out.append(np.inf if error == 0 else 10.0 * np.log10(float(np.sum(np.square(ref))) / error))
    return np.asarray(out, dtype=np.float64)
