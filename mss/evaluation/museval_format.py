"""museval's file format and framing: the one definition of the BSS Eval v4 frame, per-track JSON written
and read. A leaf module (no import of the evaluation's other modules): scoring, the driver, the browser and
the listening study all import it, and it imports none of them.

The per-track JSON is what ``museval.eval_mus_track(output_dir=...)`` writes and what
``museval.MethodStore().add_eval_dir`` and the SiSEC analysis tools read::

    {"targets": [{"name": "vocals", "frames": [{"time": 0.0, "duration": 1.0,
                  "metrics": {"SDR": ..., "SIR": ..., "ISR": ..., "SAR": ...}}, ...]}, ...]}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import simplejson

from mss.files import write_text_atomic

#: BSS Eval v4 frame length and hop (seconds), as in SiSEC 2018 and museval's defaults.
WINDOW_S: float = 1.0
HOP_S: float = 1.0
#: taps of BSS Eval's distortion filters (museval's 512)
FILTERS_LEN: int = 512


def frame_samples(rate: int, seconds: float = WINDOW_S) -> int:
    """A frame length or hop in samples at ``rate``."""
    return int(seconds * rate)


def track_store(
    track_name: str,
    names: Sequence[str],
    keep: Sequence[str],
    sdr: np.ndarray,
    isr: np.ndarray,
    sir: np.ndarray,
    sar: np.ndarray,
    win_s: float = WINDOW_S,
    hop_s: float = HOP_S,
):
    """``museval.TrackStore`` of framewise metrics ``(S, N)`` (rows in ``names`` order; only ``keep`` stored)."""
    import museval  # lazily: importing it (scipy.signal, musdb) takes about 3 s

    store = museval.TrackStore(win=win_s, hop=hop_s, track_name=track_name)
    for index, name in enumerate(names):
        if name in keep:
            values = {
                "SDR": np.asarray(sdr[index]).tolist(),
                "SIR": np.asarray(sir[index]).tolist(),
                "ISR": np.asarray(isr[index]).tolist(),
                "SAR": np.asarray(sar[index]).tolist(),
            }
            store.add_target(target_name=name, values=values)
    return store


def write_track_json(store, path: str | os.PathLike) -> Path:
    """Validate ``store`` against museval's schema and write its JSON atomically."""
    store.validate()
    return write_text_atomic(path, store.json)


def read_track_json(path: str | os.PathLike) -> dict:
    """A per-track JSON (NaN allowed, as museval writes it); OSError or ValueError when unreadable."""
    return simplejson.loads(Path(path).read_text(), allow_nan=True)


def is_scored(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a readable museval JSON (so a rerun skips it)."""
    try:
        data = read_track_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("targets"), list) and len(data["targets"]) > 0


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def museval_frames(scores: Mapping, target: str) -> np.ndarray | None:
    """(N, 3) rows (time_s, duration_s, SDR) of a target in a per-track JSON, None if absent."""
    for entry in scores.get("targets", []):
        if entry.get("name") == target:
            rows = [
                (_number(f.get("time")), _number(f.get("duration")), _number(f.get("metrics", {}).get("SDR")))
                for f in entry.get("frames", [])
            ]
            return np.array(rows, dtype=np.float64).reshape(-1, 3)
    return None


def median_sdr(values: np.ndarray) -> float:
    """museval's per-song statistic: median over frames, NaN frames (silent reference) skipped."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def frames_in_window(frames: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """SDRs of the frames (``museval_frames`` rows) lying wholly inside [start_s, end_s]."""
    eps = 1e-6
    inside = (frames[:, 0] >= start_s - eps) & (frames[:, 0] + frames[:, 1] <= end_s + eps)
    return frames[inside, 2]
