"""Tables of museval results: read an evaluation folder's JSON, aggregate as SiSEC does, format them.

Aggregation is museval's own (``MethodStore.agg_frames_tracks_scores``): median over the 1-s frames of
each track (NaN frames, where a reference is silent, ignored), then median over tracks. The average
over targets is the mean of the per-target medians (as in the SiSEC 2018 tables). ``SDRi`` is the SDR
improvement over the ``MIX`` baseline (the mixture as every estimate) on the same songs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mss import SOURCES
from mss.evaluation.museval_format import read_track_json
from mss.evaluation.oracles import ORACLES

METRICS: tuple[str, ...] = ("SDR", "SIR", "SAR", "ISR")
#: Metrics that depend on BSS Eval's projection filters (SDR does not).
FILTER_METRICS: tuple[str, ...] = ("SIR", "SAR", "ISR")
#: Condition number of the references' projection system above which the filters are rounding noise
#: (relative error ~ condition x 1e-16): noise-free, band-limited references (mss.bsseval).
ILL_CONDITIONED: float = 1e12
#: SDR above min(SIR, SAR) by more than this cannot come from a consistent decomposition: the energy
#: ratios combine as 1/SDR ~ 1/SIR + 1/SAR + 1/ISR, so SDR stays below each of them.
INCONSISTENT_DB: float = 3.0
#: Name of the floor baseline that SDR improvements are measured against.
FLOOR: str = "MIX"
AVERAGE: str = "average"


def method_names(eval_dir: str | os.PathLike, subset: str = "test") -> list[str]:
    """Methods with at least one JSON, in the order of ``methods.json`` (then alphabetical)."""
    eval_dir = Path(eval_dir)
    found = sorted(p.name for p in eval_dir.iterdir() if p.is_dir() and any((p / subset).glob("*.json")))
    order = []
    record = eval_dir / "methods.json"
    if record.is_file():
        try:
            order = list(json.loads(record.read_text()).get("methods", {}))
        except ValueError:
            order = []
    names = [m for m in order if m in found] + [m for m in found if m not in order]
    # models first, then the baselines in their fixed order (the oracle masks, then the floor)
    return [m for m in names if m not in ORACLES] + [m for m in ORACLES if m in names]


def frames_dataframe(
    eval_dir: str | os.PathLike,
    subset: str = "test",
    methods: Sequence[str] | None = None,
    tracks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """All frame scores, museval's long format: columns time, target, metric, score, track, method.

    ``tracks`` limits them to those songs (so every method is compared on the same ones).
    """
    import museval  # lazily: importing it (scipy.signal, musdb) takes about 3 s

    eval_dir = Path(eval_dir)
    methods = method_names(eval_dir, subset) if methods is None else list(methods)
    frames = []
    for method in methods:
        for path in sorted((eval_dir / method / subset).glob("*.json")):
            if tracks is not None and path.stem not in tracks:
                continue
            try:
                data = read_track_json(path)
            except ValueError:
                continue  # a half-written file from a killed run; the next run rescores it
            frame = museval.json2df(data, path.stem)
            frame["method"] = method
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["time", "target", "metric", "score", "track", "method"])
    frame = pd.concat(frames, ignore_index=True)
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    return frame


def track_table(
    eval_dir: str | os.PathLike,
    subset: str = "test",
    methods: Sequence[str] | None = None,
    tracks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (method, track, target): frame medians of each metric, and SDRi against MIX."""
    frames = frames_dataframe(eval_dir, subset, methods, tracks)
    columns = ["method", "track", "target", *METRICS, "SDRi"]
    if frames.empty:
        return pd.DataFrame(columns=columns)
    medians = frames.groupby(["method", "track", "target", "metric"])[
        "score"
    ].median()  # museval agg_frames_scores
    wide = medians.unstack("metric").reset_index()
    wide.columns.name = None
    floor = wide[wide["method"] == FLOOR].set_index(["track", "target"])["SDR"]
    keys = pd.MultiIndex.from_frame(wide[["track", "target"]])
    wide["SDRi"] = wide["SDR"].to_numpy() - floor.reindex(keys).to_numpy() if not floor.empty else np.nan
    order = {m: i for i, m in enumerate(dict.fromkeys(frames["method"]))}
    keys = {"method": lambda s: s.map(order), "target": lambda s: s.map(_target_rank)}
    wide = wide.sort_values(["method", "track", "target"], key=lambda s: keys.get(s.name, lambda x: x)(s))
    return wide[columns].reset_index(drop=True)


def aggregate(
    eval_dir: str | os.PathLike,
    subset: str = "test",
    methods: Sequence[str] | None = None,
    tracks: Sequence[str] | None = None,
    flag: bool = True,
) -> pd.DataFrame:
    """The standard table: one row per (method, target) plus ``average`` per method.

    ``flag``: blank the SIR/SAR/ISR that are not valid and say why (``flag_invalid``); False gives the
    raw medians (the ``validity`` column is then empty).

    Columns: method, target, SDR, SIR, SAR, ISR (median over frames, then over tracks, exactly museval's
    ``MethodStore.agg_frames_tracks_scores()``), SDRi (SDR minus MIX's SDR for the target), tracks.
    """
    import museval  # lazily: importing it (scipy.signal, musdb) takes about 3 s

    frames = frames_dataframe(eval_dir, subset, methods, tracks)
    columns = ["method", "target", *METRICS, "SDRi", "tracks"]
    if frames.empty:
        return pd.DataFrame(columns=[*columns, "validity"])
    store = museval.MethodStore()
    store.df = frames
    medians = store.agg_frames_tracks_scores().unstack("metric").reset_index()  # (method, target) x metric
    medians.columns.name = None
    counts = frames.groupby(["method", "target"])["track"].nunique().rename("tracks").reset_index()
    table = medians.merge(counts, on=["method", "target"])
    method_order = list(dict.fromkeys(frames["method"]))
    rows = []
    for method in method_order:
        part = table[table["method"] == method].copy()
        part = part.sort_values("target", key=lambda s: s.map(_target_rank))
        average = {"method": method, "target": AVERAGE, **{m: part[m].mean() for m in METRICS}}
        average["tracks"] = int(part["tracks"].max())
        rows.append(pd.concat([part, pd.DataFrame([average])], ignore_index=True))
    table = pd.concat(rows, ignore_index=True)
    floor = table[table["method"] == FLOOR].set_index("target")["SDR"]
    table["SDRi"] = table["SDR"] - table["target"].map(floor) if not floor.empty else np.nan
    table["tracks"] = table["tracks"].astype(int)
    if flag:
        table = flag_invalid(table, frames, conditioning(eval_dir, subset))
    else:
        table["validity"] = ""
    return table[[*columns, "validity"]].reset_index(drop=True)


def conditioning(eval_dir: str | os.PathLike, subset: str = "test") -> dict[str, float]:
    """``{track: condition number}`` recorded by mss.evaluate (inf for an exactly singular system)."""
    try:
        record = json.loads((Path(eval_dir) / "conditioning.json").read_text()).get(subset, {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {track: float("inf") if value is None else float(value) for track, value in record.items()}


def flag_invalid(table: pd.DataFrame, frames: pd.DataFrame, conditions: dict[str, float]) -> pd.DataFrame:
    """Blank SIR/SAR/ISR (NaN) where they are not valid numbers, and say why in a ``validity`` column.

    A row is flagged when some of its songs have an ill-conditioned projection (ILL_CONDITIONED), or
    when its SDR exceeds min(SIR, SAR) by more than INCONSISTENT_DB. SDR never depends on the
    projection and is always kept. An average row is flagged when one of its targets is.
    """
    table = table.copy()
    table["validity"] = ""
    tracks = frames.groupby("method")["track"].unique().to_dict() if not frames.empty else {}
    for index, row in table.iterrows():
        if row["target"] == AVERAGE:
            continue
        reasons = []
        songs = list(tracks.get(row["method"], []))
        ill = [t for t in songs if conditions.get(t, 0.0) > ILL_CONDITIONED]
        if ill:
            reasons.append(f"ill-conditioned projection in {len(ill)} of {len(songs)} songs")
        bound = np.nanmin([row["SIR"], row["SAR"]]) if np.isfinite([row["SIR"], row["SAR"]]).any() else np.nan
        if np.isfinite(bound) and row["SDR"] > bound + INCONSISTENT_DB:
            reasons.append(f"SDR exceeds min(SIR, SAR) by {row['SDR'] - bound:.1f} dB")
        if reasons:
            table.loc[index, list(FILTER_METRICS)] = np.nan
            table.loc[index, "validity"] = "; ".join(reasons) + ": SIR/SAR/ISR not valid"
    for method in table["method"].unique():
        mine = table["method"] == method
        if (table.loc[mine & (table["target"] != AVERAGE), "validity"] != "").any():
            average = mine & (table["target"] == AVERAGE)
            table.loc[average, list(FILTER_METRICS)] = np.nan
            table.loc[average, "validity"] = "a target is flagged: SIR/SAR/ISR not valid"
    return table


def sdr_overview(table: pd.DataFrame) -> pd.DataFrame:
    """Compact view of ``aggregate``'s table: one row per method, SDR per target, average SDR and SDRi."""
    if table.empty:
        return pd.DataFrame()
    wide = table.pivot(index="method", columns="target", values="SDR")
    targets = [t for t in dict.fromkeys(table["target"]) if t != AVERAGE]
    wide = wide[[*targets, AVERAGE]].rename(columns={AVERAGE: "average SDR"})
    wide["average SDRi"] = table[table["target"] == AVERAGE].set_index("method")["SDRi"]
    wide = wide.loc[list(dict.fromkeys(table["method"]))].reset_index()
    wide.columns.name = None
    return wide


def _target_rank(name: str) -> int:
    return SOURCES.index(name) if name in SOURCES else len(SOURCES)


def format_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A pandas table as a GitHub markdown table (numbers rounded), without needing ``tabulate``."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = (
        "|"
        + "|".join("---:" if pd.api.types.is_numeric_dtype(table[c]) else "---" for c in table.columns)
        + "|"
    )
    lines = [header, rule]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(format_cell(value, digits) for value in row) + " |")
    return "\n".join(lines)


def format_cell(value, digits: int) -> str:
    """A table cell as text: floats rounded to ``digits``, NaN as an en dash."""
    if isinstance(value, float | np.floating):
        return "–" if np.isnan(value) else f"{value:.{digits}f}"
    return str(value)
