"""Objective metrics of the rated excerpts, computed from the study's stimulus files and cached beside them.

    study_excerpt_metrics(stimuli, progress=None) -> DataFrame[trial_id, song, target, excerpt_start_s,
                                                               excerpt_end_s, condition, metric, value]
    study_excerpt_sdr(stimuli) -> DataFrame[trial_id, song, target, excerpt_start_s, excerpt_end_s, condition,
                                            sdr_db]          # the SDR rows of the same table (sdr_table)
    trial_gains_db(trial_folder) -> {condition: gain_db}     # the loudness gains of trial.json
    read_unmatched(stimuli, stimulus_id, gain_db) -> ((C, T) float64, rate)   # a file, its gain undone
    bss_sir_sar(reference (C, T), interference (C, T), estimates {name: (C, T)}, rate)
        -> {name: (sir_db, sar_db)}
    scale_invariant(reference (C, T), estimate (C, T), interference (C, T) | None = None)
        -> (si_sdr_db, si_sir_db, si_sar_db)
    mrstft_distance_db(reference (C, T), estimate (C, T), fft_sizes=FFT_SIZES) -> float
    METRICS, CACHE_NAME, FORMAT, COLUMNS

One row per MUSHRA trial x condition x metric (long format); every value is oriented so that higher is
better. Each condition is scored against the trial's open reference (the target's stem on the excerpt);
the interference is the rest of the mixture, ``mixture - reference``, which exists only where the study
has the ``mixture`` anchor (its file is the loudness-matched mixture excerpt).

- ``SDR``: BSS Eval v4 SDR against the trial's open reference, 1-s frames, median over frames (museval's
  aggregation; mss.evaluation.frame_sdr.window_sdr_frames, checked against museval in tests/test_browser.py),
  with the loudness-matching gains of ``trial.json`` undone first (``read_unmatched``): the SDR of the
  system's own output on exactly the excerpt the listeners rated, not scale invariant, no
  ``python -m mss.evaluate`` run needed. Frames holding nothing but the files' dither count as silent.
- ``SIR``, ``SAR``: BSS Eval v4 (museval mode "v4", mss.evaluation.bsseval) with two sources, the target
  (reference) and the interference; 1-s frames, median over frames (frames where either is silent have
  none, museval's rule). When the Gram matrix of the references is too ill-conditioned (above
  MAX_CONDITION, see mss.evaluation.bsseval) the filters are rounding noise and both are NaN.
- ``SI-SDR``, ``SI-SIR``, ``SI-SAR``: Le Roux et al., "SDR - half-baked or well done?" (ICASSP 2019), on
  the whole excerpt with both channels as one vector (one gain for the stereo image, as loudness
  matching applies): e_target = a s with a = <s_hat, s>/||s||^2, e_res = s_hat - e_target; e_interf is the
  projection of e_res onto span{s, n} (n = interference), e_artif = e_res - e_interf. SI-SDR needs no
  mixture; 1/SI-SDR = 1/SI-SIR + 1/SI-SAR (linear ratios) by construction.
- ``MRSTFT``: minus the multi-resolution STFT log-magnitude distance in dB (so higher is better): for FFT
  sizes 512, 1024 and 2048 (Hann, hop n/4), the mean over channels, frames and bins of
  ``|20 log10 max(|X|, floor) - 20 log10 max(|Y|, floor)|``, floor 80 dB below the reference's strongest
  bin, averaged over the sizes. It is computed on the files as heard (loudness matched), so a system's
  level error, which the listeners never heard, does not count, while a missing band does: a low-passed
  output is far from the reference although its SDR can equal a noisy one's.

Without the mixture anchor, SIR, SAR, SI-SIR and SI-SAR are NaN (rows kept, so every study gives every
metric). A reference silent in every full frame gives NaN SDR/SIR/SAR (museval's rule). The hidden
reference is the reference: SDR-like metrics are ``inf`` and MRSTFT 0 (NaN where the mixture is missing);
listening_study.analysis.correlations leaves it out.

Cached as ``excerpt_metrics.csv`` in the stimulus folder (named by the study's content hash, so never
stale), written atomically; a cache of another FORMAT is computed again. A study of 16 trials x 6
conditions x 10 s takes about 45 s of one core (two thirds of it BSS Eval's SIR/SAR), then milliseconds.

The mixture anchor is exactly target + interference: its SAR and SI-SAR are at the rounding level
(200-300 dB), and a low-passed anchor's SI-SIR is near 100 dB (no interference at all); rank correlations
are the fair comparison across metrics (listening_study.analysis.correlations.best_metrics uses Spearman's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.fft
import soundfile

from listening_study.design.study import REFERENCE
from listening_study.errors import StimulusError
from mss.evaluation.bsseval import (
    BSSEvalConfig,
    ReferenceCorrelations,
    array_reader,
    bss_eval_v4,
    frame_bounds,
)
from mss.evaluation.frame_sdr import window_sdr_frames
from mss.evaluation.museval_format import FILTERS_LEN, WINDOW_S, frame_samples, median_sdr
from mss.files import write_text_atomic

if TYPE_CHECKING:
    from listening_study.delivery.stimuli import StimulusSet, Trial

CACHE_NAME = "excerpt_metrics.csv"
FRAME_S = 1.0  # BSS Eval v4 / museval frames
#: Largest sample value the +-1 LSB TPDF dither of a silent 16-bit file can hold (rounding included).
DITHER_PEAK = 2.0 / 32768
#: The SDR table of the rated excerpts (study_excerpt_sdr): the SDR rows of the metrics, one column per key.
SDR_TABLE_COLUMNS = ["trial_id", "song", "target", "excerpt_start_s", "excerpt_end_s", "condition", "sdr_db"]
#: Version of the table's computation; a cache of another version is computed again.
FORMAT = 1
COLUMNS = ["trial_id", "song", "target", "excerpt_start_s", "excerpt_end_s", "condition", "metric", "value"]
METRICS: tuple[str, ...] = ("SDR", "SIR", "SAR", "SI-SDR", "SI-SIR", "SI-SAR", "MRSTFT")
#: Metrics that need the interference (the mixture anchor).
NEEDS_MIXTURE = frozenset({"SIR", "SAR", "SI-SIR", "SI-SAR"})
MIXTURE = "mixture"
FFT_SIZES: tuple[int, ...] = (512, 1024, 2048)
#: MRSTFT floor, relative to the reference's strongest STFT bin (-80 dB: far above the 16-bit dither
#: of a -23 LUFS file, near inaudible).
FLOOR_DB = -80.0
#: Above this condition number of BSS Eval's Gram matrix the projection filters, hence SIR and SAR, are
#: rounding noise (mss.evaluation.bsseval, ReferenceCorrelations.condition).
MAX_CONDITION = 1e12
NAN = float("nan")


def _db(numerator: float, denominator: float) -> float:
    if numerator == 0:
        return NAN if denominator == 0 else -math.inf
    return math.inf if denominator == 0 else 10.0 * math.log10(numerator / denominator)


def bss_sir_sar(
    reference: np.ndarray, interference: np.ndarray, estimates: Mapping[str, np.ndarray], rate: int
) -> dict[str, tuple[float, float]]:
    """Median over 1-s frames of BSS Eval v4's SIR and SAR (dB) of each estimate of the reference.

    reference, interference, estimates: (C, T) float arrays of one length. The two references are
    factorized once for every estimate (mss.evaluation.bsseval.ReferenceCorrelations). The interference
    source's own estimate is the interference itself: only the target's scores are kept, and they do not
    depend on it. (nan, nan) where BSS Eval has no answer: a silent reference, interference or estimate,
    or references too ill-conditioned (MAX_CONDITION)."""
    channels, num_samples = reference.shape
    nothing = dict.fromkeys(estimates, (NAN, NAN))
    refs = np.stack([reference, interference]).astype(np.float64)  # (2, C, T)
    window = frame_samples(rate, WINDOW_S)
    config = BSSEvalConfig(window=window, hop=window, filters_len=FILTERS_LEN, block=4 * window)
    try:
        correlations = ReferenceCorrelations.compute(array_reader(refs), num_samples, 2, channels, config)
    except ValueError:  # a source that is all zeros: museval refuses it
        return nothing
    if not correlations.condition <= MAX_CONDITION:
        return nothing
    out = {}
    for name, estimate in estimates.items():
        ests = np.stack([estimate, interference]).astype(np.float64)  # (2, C, T)
        try:
            scores = bss_eval_v4(array_reader(refs), array_reader(ests), correlations, config)
        except ValueError:  # a silent estimate
            out[name] = (NAN, NAN)
            continue
        out[name] = (median_sdr(scores.sir[0]), median_sdr(scores.sar[0]))
    return out


def scale_invariant(
    reference: np.ndarray, estimate: np.ndarray, interference: np.ndarray | None = None
) -> tuple[float, float, float]:
    """(SI-SDR, SI-SIR, SI-SAR) in dB of (C, T) arrays over the whole excerpt (module docstring); the last
    two NaN without an interference (C, T). All NaN for a silent reference."""
    s = np.asarray(reference, dtype=np.float64).ravel()  # (C*T,): one gain for every channel
    s_hat = np.asarray(estimate, dtype=np.float64).ravel()
    energy = float(s @ s)
    if energy == 0:
        return NAN, NAN, NAN
    target = (float(s_hat @ s) / energy) * s
    residual = s_hat - target
    target_energy = float(target @ target)
    si_sdr = _db(target_energy, float(residual @ residual))
    if interference is None:
        return si_sdr, NAN, NAN
    n = np.asarray(interference, dtype=np.float64).ravel()
    n_perp = n - (float(n @ s) / energy) * s  # span{s, n} = span{s, n_perp}; residual is orthogonal to s
    perp_energy = float(n_perp @ n_perp)
    if perp_energy <= 1e-20 * energy:  # no interference beyond the reference itself
        return si_sdr, NAN, NAN
    interf = (float(residual @ n_perp) / perp_energy) * n_perp
    artif = residual - interf
    return si_sdr, _db(target_energy, float(interf @ interf)), _db(target_energy, float(artif @ artif))


def _log_magnitudes(audio: np.ndarray, fft_sizes: tuple[int, ...], floors_db=None):
    """audio (C, T) -> ([20 log10 max(|STFT|, floor)] (C, N, F) per FFT size, [floor in dB] per size).

    Hann window, hop fft_size / 4, no padding; magnitudes scaled by the window's sum (a full-scale sine's
    bin is about 0.5 at every size). ``floors_db``: the reference's floors; None: this is the reference,
    floors FLOOR_DB below its strongest bin (-inf for a silent one)."""
    out, floors = [], []
    for index, fft_size in enumerate(fft_sizes):
        window = np.hanning(fft_size + 1)[:-1].astype(np.float32)  # periodic Hann
        # float32: twice as fast, and its 1e-7 relative rounding is 60 dB below the floor.
        frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float32), fft_size, axis=-1)
        frames = frames[:, :: fft_size // 4]  # (C, N, fft_size)
        magnitude = np.abs(scipy.fft.rfft(frames * window, axis=-1)) / window.sum()  # (C, N, F)
        with np.errstate(divide="ignore"):
            level = 20 * np.log10(magnitude)
        floor = float(level.max()) + FLOOR_DB if floors_db is None else floors_db[index]
        out.append(np.maximum(level, floor))
        floors.append(floor)
    return out, floors


def _distance_db(reference_levels, estimate: np.ndarray, fft_sizes: tuple[int, ...]) -> float:
    """MRSTFT distance of ``estimate (C, T)`` from ``reference_levels = _log_magnitudes(reference)``."""
    levels, floors = reference_levels
    if not np.isfinite(floors).all():  # a silent reference
        return NAN
    estimated, _ = _log_magnitudes(np.asarray(estimate, dtype=np.float64), fft_sizes, floors)
    return float(np.mean([np.mean(np.abs(ref - est)) for ref, est in zip(levels, estimated, strict=True)]))


def mrstft_distance_db(
    reference: np.ndarray, estimate: np.ndarray, fft_sizes: tuple[int, ...] = FFT_SIZES
) -> float:
    """Multi-resolution STFT log-magnitude distance (dB, >= 0, lower is better) of (C, T) arrays of one
    length (module docstring); NaN for a silent reference or one shorter than the largest FFT."""
    reference = np.asarray(reference, dtype=np.float64)
    if reference.shape != np.shape(estimate) or reference.shape[-1] < max(fft_sizes):
        return NAN
    return _distance_db(_log_magnitudes(reference, fft_sizes), estimate, fft_sizes)


def trial_gains_db(folder: Path) -> dict[str, float]:
    try:
        gains = json.loads((folder / "trial.json").read_text())["loudness"]["gain_db"]
        return {str(name): float(gain) for name, gain in gains.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StimulusError(f"{folder / 'trial.json'} has no loudness gains: {exc}") from exc


def read_unmatched(stimuli: StimulusSet, stimulus_id: str, gain_db: float) -> tuple[np.ndarray, int]:
    """(C, T) float64 of a stimulus file with its loudness-matching gain undone, and its sample rate.

    Frames (BSS Eval's 1-s framing) that hold nothing but the dither are zeroed: museval counts a frame
    whose reference or estimate is digital silence as silent (no SDR), and the dither alone must not turn
    such a frame into one with an SDR of -70 dB."""
    audio, rate = soundfile.read(stimuli.path(stimulus_id), dtype="float64", always_2d=True)
    audio = audio.T.copy()  # (C, T)
    window = int(FRAME_S * rate)
    for start, stop in frame_bounds(audio.shape[-1], window, window):
        if np.max(np.abs(audio[:, start:stop]), initial=0.0) <= DITHER_PEAK:
            audio[:, start:stop] = 0.0
    return audio / 10 ** (gain_db / 20), int(rate)


def read_cached_table(path: Path, kind: str, version: int, columns: list[str], trial_ids: set[str]):
    """A table cached by ``write_cached_table`` (first line ``# <kind> format <version>``), or None when it is
    missing, unreadable, of another version or columns, or of other trials (then it is computed again)."""
    try:
        with open(path) as handle:
            if handle.readline().strip() != f"# {kind} format {version}":
                return None
            table = pd.read_csv(handle)
    except (OSError, ValueError):
        return None
    if list(table.columns) != columns or set(table["trial_id"]) != trial_ids:
        return None
    return table


def write_cached_table(path: Path, kind: str, version: int, table: pd.DataFrame) -> None:
    """Write ``table`` atomically (app processes sharing a study agree) with its version line."""
    write_text_atomic(path, f"# {kind} format {version}\n" + table.to_csv(index=False))


def _read(stimuli: StimulusSet, stimulus_id: str, gain_db: float) -> tuple[np.ndarray, int]:
    """(C, T) of a stimulus with its loudness gain undone (excerpt_sdr's reading) and its rate."""
    path = stimuli.path(stimulus_id)  # StimulusError for an id that is not the study's
    try:
        return read_unmatched(stimuli, stimulus_id, gain_db)
    except (OSError, RuntimeError, ValueError) as exc:  # soundfile's errors are RuntimeErrors
        raise StimulusError(f"cannot read stimulus file {path}: {exc}") from exc


def _trial_rows(stimuli: StimulusSet, trial: Trial) -> list[dict]:
    gains = trial_gains_db(stimuli.root / trial.trial_id)
    reference, rate = _read(stimuli, trial.reference, gains.get("open_reference", 0.0))
    heard = 10 ** (gains.get("open_reference", 0.0) / 20)
    estimates, heard_gains = {}, {}
    for condition, stimulus_id in trial.conditions.items():
        if condition != REFERENCE:
            estimates[condition], _ = _read(stimuli, stimulus_id, gains.get(condition, 0.0))
            heard_gains[condition] = 10 ** (gains.get(condition, 0.0) / 20)
            if estimates[condition].shape != reference.shape:
                raise StimulusError(
                    f"{stimuli.path(stimulus_id)} has shape {estimates[condition].shape[::-1]}, the "
                    f"reference {stimuli.path(trial.reference)} {reference.shape[::-1]}"
                )
    interference = estimates[MIXTURE] - reference if MIXTURE in estimates else None
    sir_sar = {} if interference is None else bss_sir_sar(reference, interference, estimates, rate)
    # MRSTFT compares the files as heard (loudness matched); the reference's spectra serve every condition.
    spectra = _log_magnitudes(reference * heard, FFT_SIZES) if reference.shape[-1] >= max(FFT_SIZES) else None
    rows = []
    for condition in trial.conditions:
        if condition == REFERENCE:  # identical to the reference by construction
            unknown = NEEDS_MIXTURE if interference is None else frozenset()
            values = {metric: NAN if metric in unknown else math.inf for metric in METRICS}
            values["MRSTFT"] = 0.0  # no distance
        else:
            estimate = estimates[condition]
            si_sdr, si_sir, si_sar = scale_invariant(reference, estimate, interference)
            sir, sar = sir_sar.get(condition, (NAN, NAN))
            heard_estimate = estimate * heard_gains[condition]
            distance = NAN if spectra is None else _distance_db(spectra, heard_estimate, FFT_SIZES)
            values = {"SDR": median_sdr(window_sdr_frames(reference, estimate, rate)), "SIR": sir,
                      "SAR": sar, "SI-SDR": si_sdr, "SI-SIR": si_sir, "SI-SAR": si_sar,
                      "MRSTFT": -distance}  # fmt: skip
        for metric in METRICS:
            rows.append({"trial_id": trial.trial_id, "song": trial.song, "target": trial.target,
                         "excerpt_start_s": trial.start_s, "excerpt_end_s": trial.end_s,
                         "condition": condition, "metric": metric, "value": values[metric]})  # fmt: skip
    return rows


def study_excerpt_metrics(
    stimuli: StimulusSet, progress: Callable[[float, str], None] | None = None
) -> pd.DataFrame:
    """Every metric of every condition of every MUSHRA trial (module docstring), from the cache when
    present. ``progress(fraction, message)`` is called per trial while computing (a ``gr.Progress``
    works). StimulusError names a stimulus file or trial.json that cannot be read."""
    path = Path(stimuli.root) / CACHE_NAME
    cached = read_cached_table(path, "excerpt_metrics", FORMAT, COLUMNS, {t.trial_id for t in stimuli.trials})
    if cached is not None:
        return cached
    rows = []
    for step, trial in enumerate(stimuli.trials):
        if progress is not None:
            progress(step / max(1, len(stimuli.trials)), f"metrics: {trial.song} / {trial.target}")
        rows.extend(_trial_rows(stimuli, trial))
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_cached_table(path, "excerpt_metrics", FORMAT, table)
    if progress is not None:
        progress(1.0, "metrics ready")
    return table


def sdr_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """SDR_TABLE_COLUMNS: the SDR rows of a metrics table (``value`` as ``sdr_db``), what the SDR scatter
    and its correlations read (listening_study.analysis.correlations.sdr_vs_ratings)."""
    rows = metrics[metrics["metric"] == "SDR"].rename(columns={"value": "sdr_db"})
    return rows[SDR_TABLE_COLUMNS].reset_index(drop=True)


def study_excerpt_sdr(stimuli: StimulusSet) -> pd.DataFrame:
    """The SDR of every condition of every MUSHRA trial: the SDR rows of ``study_excerpt_metrics``."""
    return sdr_table(study_excerpt_metrics(stimuli))
