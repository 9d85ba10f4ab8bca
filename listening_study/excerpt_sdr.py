"""SDR of the rated excerpts themselves, computed from the study's stimulus files and cached beside them.

    study_excerpt_sdr(stimuli) -> DataFrame[trial_id, song, target, excerpt_start_s, excerpt_end_s,
                                            condition, sdr_db]
    trial_gains_db(trial_folder) -> {condition: gain_db}     # the loudness gains of trial.json
    read_unmatched(stimuli, stimulus_id, gain_db) -> ((C, T) float64, rate)   # a file, its gain undone
    read_cached_table(path, kind, version, columns, trial_ids) / write_cached_table(path, kind, version, table)

Every condition of every MUSHRA trial is scored against the trial's open reference: BSS Eval v4 SDR on
1-s frames, median over frames (museval's aggregation; mss.evaluation.frame_sdr.window_sdr_frames, checked against
museval in tests/test_browser.py). That is the SDR of exactly the excerpt the listeners rated, not of the
whole song, so it needs no ``python -m mss.evaluate`` run.

The files are loudness-matched (listening_study.processing.loudness_match), which would change the SDR
(it is not scale invariant); the gain each file received is in its trial's ``trial.json`` and is undone
first, so the SDR is that of the system's own output on the excerpt. The 16-bit dither of the files
(about -96 dBFS) bounds it near +70 dB, far above any separation output. The hidden reference is the
reference: its SDR is written as ``inf`` and left out of every comparison (listening_study.sdr).

The table is cached as ``excerpt_sdr.csv`` in the stimulus folder (whose name is the study's content
hash, so the cache is never stale); written atomically, so app processes sharing a study agree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import soundfile

from listening_study.errors import StimulusError
from listening_study.study import REFERENCE
from mss.evaluation.bsseval import frame_bounds
from mss.evaluation.frame_sdr import window_sdr_frames
from mss.evaluation.museval_format import median_sdr
from mss.files import write_text_atomic

if TYPE_CHECKING:
    from listening_study.stimuli import StimulusSet, Trial

CACHE_NAME = "excerpt_sdr.csv"
FRAME_S = 1.0  # BSS Eval v4 / museval frames
#: Largest sample value the +-1 LSB TPDF dither of a silent 16-bit file can hold (rounding included).
DITHER_PEAK = 2.0 / 32768
#: Version of the table's computation; a cache of another version is computed again.
FORMAT = 1
COLUMNS = ["trial_id", "song", "target", "excerpt_start_s", "excerpt_end_s", "condition", "sdr_db"]


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


def _trial_sdr(stimuli: StimulusSet, trial: Trial) -> list[dict]:
    folder = stimuli.root / trial.trial_id
    gains = trial_gains_db(folder)
    reference, rate = read_unmatched(stimuli, trial.reference, gains.get("open_reference", 0.0))
    rows = []
    for condition, stimulus_id in trial.conditions.items():
        if condition == REFERENCE:
            sdr = math.inf  # identical to the reference by construction
        else:
            estimate, _ = read_unmatched(stimuli, stimulus_id, gains.get(condition, 0.0))
            sdr = median_sdr(window_sdr_frames(reference, estimate, rate))
        rows.append({"trial_id": trial.trial_id, "song": trial.song, "target": trial.target,
                     "excerpt_start_s": trial.start_s, "excerpt_end_s": trial.end_s, "condition": condition,
                     "sdr_db": sdr})  # fmt: skip
    return rows


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


def study_excerpt_sdr(stimuli: StimulusSet) -> pd.DataFrame:
    """The SDR of every condition of every MUSHRA trial (module docstring), from the cache when present."""
    path = Path(stimuli.root) / CACHE_NAME
    trial_ids = {trial.trial_id for trial in stimuli.trials}
    cached = read_cached_table(path, "excerpt_sdr", FORMAT, COLUMNS, trial_ids)
    if cached is not None:
        return cached
    rows = [row for trial in stimuli.trials for row in _trial_sdr(stimuli, trial)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_cached_table(path, "excerpt_sdr", FORMAT, table)
    return table
