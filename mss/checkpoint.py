"""Checkpoints as plain dicts of tensors and primitives: loadable with ``torch.load(weights_only=True)``
(an int8 file's weights then need ``mss.weight_codec.decode``: ``load_checkpoint`` does it).

No pickled classes: the model config is stored as ``dataclasses.asdict`` (tuples become lists and are
restored by ``mss.models.config_from_dict``), the architecture by its registry name.

This module owns the file format (the dict, its version, atomic writes, export) and knows no model
class; ``mss.models`` owns the registry and rebuilds models from these dicts (``load_model``). The
dependency goes one way only, models -> checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from mss import SOURCES, shifts_arg, shifts_problem, valid_level_db, wiener_arg, wiener_problem
from mss.errors import CheckpointError
from mss.files import atomic_path
from mss.weight_codec import decode, encode

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported in the functions that use it: app.py reads CHECKPOINT_SETS while it parses its command
# line, before its start-up page is up, and importing torch takes seconds.

FORMAT_VERSION = 1
#: the format of files whose weights are stored as int8 (``export_checkpoint(int8=True)``): readers that know
#: only version 1 refuse them instead of loading the int8 values as weights
INT8_FORMAT_VERSION = 2
READABLE_VERSIONS = (FORMAT_VERSION, INT8_FORMAT_VERSION)
#: the longest chunk `--segment-s` sets (seconds): a chunk is held in memory as one batch item
MAX_SEGMENT_S: float = 60.0
REPO_ROOT = Path(__file__).resolve().parents[1]
#: where training puts the trained models that the CLI, evaluation and app use by default
DEFAULT_CHECKPOINTS: dict[str, Path] = {
    "unet": REPO_ROOT / "checkpoints" / "unet.pt",
    "demucs": REPO_ROOT / "checkpoints" / "demucs.pt",
}
#: the piano-target models (``python -m training.run --targets piano``), committed beside the 4-stem ones
PIANO_CHECKPOINTS: dict[str, Path] = {
    "unet": REPO_ROOT / "checkpoints" / "unet-piano.pt",
    "demucs": REPO_ROOT / "checkpoints" / "demucs-piano.pt",
}
#: named sets of committed checkpoints (``python app.py --models NAME``) ...
CHECKPOINT_SETS: dict[str, dict[str, Path]] = {"stems": DEFAULT_CHECKPOINTS, "piano": PIANO_CHECKPOINTS}
#: ... and the targets the models of each set separate (their ``sources``)
CHECKPOINT_SET_TARGETS: dict[str, tuple[str, ...]] = {"stems": SOURCES, "piano": ("piano",)}
REQUIRED_KEYS = ("format_version", "arch", "model_config", "state_dict")
#: what an exported (inference) checkpoint keeps; the rest (optimizer, EMA, RNG...) is training state
#: ``export_changes``: model-config fields an export set over what training wrote (``--level-db``), kept as a record
EXPORTED_KEYS = (
    *REQUIRED_KEYS,
    "weights_dtype",
    "training_config",
    "step",
    "epoch",
    "metrics",
    "export_changes",
)


def default_checkpoint(arch: str) -> Path:
    """Default checkpoint path of ``arch`` (``<repo>/checkpoints/<arch>.pt``); it may not exist yet."""
    if arch not in DEFAULT_CHECKPOINTS:
        raise CheckpointError(f"no default checkpoint for {arch!r}; known: {', '.join(DEFAULT_CHECKPOINTS)}")
    return DEFAULT_CHECKPOINTS[arch]


def checkpoint_set(name: str) -> tuple[dict[str, Path], tuple[str, ...]]:
    """The committed checkpoints of set ``name`` (``{arch: path}``, which may not exist yet) and its targets."""
    if name not in CHECKPOINT_SETS:
        raise CheckpointError(f"unknown checkpoint set {name!r}; known: {', '.join(CHECKPOINT_SETS)}")
    return dict(CHECKPOINT_SETS[name]), CHECKPOINT_SET_TARGETS[name]


def training_hint(path: str | os.PathLike) -> str:
    """How to make ``path`` when it is one of the committed checkpoints ("" for any other path)."""
    path = Path(path).resolve()
    for name, paths in CHECKPOINT_SETS.items():
        if path in {p.resolve() for p in paths.values()}:
            targets = "" if name == "stems" else f" --targets {','.join(CHECKPOINT_SET_TARGETS[name])}"
            return f" (train one first: python -m training.run --model ...{targets} --out ..., then copy best.pt there)"
    return ""


def _primitive(value):
    """Make configs/metrics weights_only-safe: tuples -> lists, Paths -> str, dataclasses -> dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _primitive(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_primitive(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    training_config: dict | None = None,
    step: int = 0,
    epoch: int = 0,
    metrics: dict | None = None,
    extra: dict | None = None,
    half: bool = False,
) -> Path:
    """Write ``model`` (and training metadata) to ``path`` atomically (temp file + os.replace).

    ``half=True`` stores floating-point weights as float16 (half the file size, for checkpoints that
    are committed to the repository); ``load_state_dict`` casts them back to the model's float32.
    """
    import torch

    arch = getattr(model, "arch", "")
    if not arch or not dataclasses.is_dataclass(getattr(model, "config", None)):
        raise CheckpointError(f"{type(model).__name__} is not a registered separation model (no arch/config)")
    payload = {
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "model_config": _primitive(model.config),
        "state_dict": encode(model.state_dict(), "float16" if half else "float32")[0],
        "weights_dtype": "float16" if half else "float32",
        "training_config": _primitive(training_config or {}),
        "step": int(step),
        "epoch": int(epoch),
        "metrics": _primitive(metrics or {}),
    }
    for key, value in (extra or {}).items():
        if key in payload:
            raise CheckpointError(f"extra key {key!r} would overwrite a checkpoint field")
        payload[key] = _primitive(value) if not isinstance(value, torch.Tensor | dict) else value
    return write_checkpoint(path, payload)


def write_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write a checkpoint dict atomically (``mss.files.atomic_path``: a killed process can still leave a
    ``.<name>.*.tmp`` behind)."""
    import torch  # lazily, as everywhere in this module (see the note at the top)

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint dict with ``torch.load(weights_only=True)``; CheckpointError if unusable.

    Weights stored as int8 (``weight_scales`` present, or int8 tensors) come back decoded to float32
    (``mss.weight_codec``), the dict then saying ``weights_dtype`` float32, ``stored_dtype`` int8 and format 1,
    so it can be written again as it is."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}{training_hint(path)}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt, truncated or not ours): {exc}"
        ) from exc
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not an mss checkpoint (expected keys {', '.join(REQUIRED_KEYS)})")
    if checkpoint["format_version"] not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint format {checkpoint['format_version']!r}; this version reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    weights = checkpoint["state_dict"]
    stored_int8 = isinstance(weights, dict) and any(
        getattr(v, "dtype", None) == torch.int8 for v in weights.values()
    )
    if "weight_scales" in checkpoint or stored_int8:  # the model and everything else read float weights
        try:
            checkpoint["state_dict"] = decode(weights, checkpoint.pop("weight_scales", None) or {})
        except (ValueError, AttributeError, TypeError) as exc:
            raise CheckpointError(f"{path}: its int8 weights cannot be read: {exc}") from exc
        checkpoint.update(weights_dtype="float32", stored_dtype="int8", format_version=FORMAT_VERSION)
    return checkpoint


def _change(payload: dict, field: str, value) -> None:
    """Set ``field`` of an export's model config to ``value``, and record it in its ``export_changes``."""
    payload["model_config"] = {**payload["model_config"], field: value}
    payload["export_changes"] = {**(payload.get("export_changes") or {}), field: value}


def export_checkpoint(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    half: bool = True,
    level_db: float | None = None,
    segment_s: float | None = None,
    shifts: int | None = None,
    wiener_iterations: int | None = None,
    int8: bool = False,
) -> Path:
    """Copy a training checkpoint's model, config, metrics and training config to ``destination``.

    Weights are stored as float16 (``half``, the default), float32, or with ``int8`` as int8 rows with a
    float32 scale each (``mss.weight_codec``: half the float16 file; measure what it costs with
    ``mss.evaluate`` on both files). ``load_checkpoint`` hands back float weights whatever the storage.

    Drops resumable state (optimizer, EMA copies, RNG): what the app, the CLI and the evaluation need.
    Works on the dict alone (no model is built); ``mss.models.load_model`` checks the weights against
    the config when the export is used. ``level_db`` sets a UNet's level normalisation
    (``UNetConfig.level_db``) on weights trained without it; the change is recorded in ``export_changes``.
    Measure what it does first (``python -m mss.bench.level``, ``mss.evaluate``). ``segment_s`` sets the chunk
    length the model separates in (its config's ``segment_s``, any architecture; same weights), also recorded:
    measure it with ``python -m mss.bench.chunk``. ``shifts`` sets the shifted separations the model averages by
    default (its config's ``shifts``, any architecture: ``mss.separate.shift_average``), also recorded: measure
    its quality with ``mss.evaluate --shifts N`` and its speed with ``python -m mss.bench``. ``wiener_iterations``
    sets the EM iterations of the model's Wiener post-filter at inference (its config's ``wiener_iterations``;
    0: none), also recorded: measure it with ``mss.evaluate --wiener``.
    """
    import torch

    checkpoint = load_checkpoint(source)
    weights = checkpoint["state_dict"]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{source}: its state_dict is not a dict of tensors")
    payload = {key: checkpoint[key] for key in EXPORTED_KEYS if key in checkpoint}
    dtype = "int8" if int8 else "float16" if half else "float32"
    try:
        stored, scales = encode(weights, dtype)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    payload["format_version"] = INT8_FORMAT_VERSION if scales else FORMAT_VERSION
    if scales:
        payload["weight_scales"] = scales
    payload.update(
        state_dict=stored,
        weights_dtype=dtype,
        training_config=checkpoint.get("training_config") or {},
        step=int(checkpoint.get("step", 0)),
        epoch=int(checkpoint.get("epoch", 0)),
        metrics=checkpoint.get("metrics") or {},
    )
    if level_db is not None:
        if checkpoint.get("arch") != "unet":
            raise CheckpointError(
                f"{source}: --level-db applies to UNet checkpoints, this is {checkpoint.get('arch')!r}"
            )
        if not valid_level_db(level_db):
            raise CheckpointError(
                f"--level-db must be a finite RMS level in dBFS (at most 0), got {level_db}"
            )
        _change(payload, "level_db", float(level_db))
    if segment_s is not None:
        if not (math.isfinite(segment_s) and 0.0 < segment_s <= MAX_SEGMENT_S):
            raise CheckpointError(f"--segment-s must be seconds in (0, {MAX_SEGMENT_S:g}], got {segment_s}")
        _change(payload, "segment_s", float(segment_s))
    if shifts is not None:
        if (problem := shifts_problem(shifts, "--shifts")) is not None:
            raise CheckpointError(problem)
        _change(payload, "shifts", int(shifts))
    if wiener_iterations is not None:
        if (problem := wiener_problem(wiener_iterations, "--wiener")) is not None:
            raise CheckpointError(problem)
        _change(payload, "wiener_iterations", int(wiener_iterations))
    return write_checkpoint(destination, payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mss.checkpoint",
        description="Export a training checkpoint for inference (float16 weights by default).",
    )
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--full-precision", action="store_true", help="keep float32 weights")
    precision.add_argument(
        "--int8", action="store_true",
        help="store weight matrices and kernels as int8 with a float32 scale per first-dimension slice (mss.weight_codec: "
        "half the float16 file; biases and norms stay float16); measure what it costs with mss.evaluate",
    )  # fmt: skip
    parser.add_argument(
        "--level-db", type=float, metavar="DBFS",
        help="UNet only: normalise each chunk to this RMS level before the network (UNetConfig.level_db), on "
        "weights trained without it; recorded in the checkpoint's export_changes",
    )  # fmt: skip
    parser.add_argument(
        "--segment-s", type=float, metavar="SECONDS",
        help="the chunk length the model separates in (its config's segment_s; a UNet's should be its training "
        "chunk: python -m mss.bench.chunk); recorded in the checkpoint's export_changes",
    )  # fmt: skip
    parser.add_argument(
        "--shifts", type=shifts_arg, metavar="N",
        help="the shifted separations the model averages by default (its config's shifts; 0: one plain pass; "
        "measure with mss.evaluate --shifts N and python -m mss.bench); recorded in the checkpoint's export_changes",
    )  # fmt: skip
    parser.add_argument(
        "--wiener", type=wiener_arg, metavar="N",
        help="EM iterations of the model's Wiener post-filter at inference (its config's wiener_iterations; 0: "
        "none; measure with mss.evaluate --wiener); recorded in the checkpoint's export_changes",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        path = export_checkpoint(
            args.source, args.destination, half=not args.full_precision, level_db=args.level_db,
            segment_s=args.segment_s, shifts=args.shifts, wiener_iterations=args.wiener, int8=args.int8,
        )  # fmt: skip
    except CheckpointError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
