"""The methods an evaluation scores: a checkpoint (as it separates by default, or with its Wiener post-filter
switched the other way, or other shifts) or a baseline, what its scores depend on (provenance: a rerun rescores what changed), and methods.json.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from mss import shifts_problem
from mss.errors import CheckpointError
from mss.evaluation.museval_format import FILTERS_LEN, HOP_S, WINDOW_S
from mss.evaluation.oracles import ORACLE_HOP_LENGTH, ORACLE_N_FFT
from mss.files import write_text_atomic
from mss.models import count_parameters, load_model
from mss.separate import output_names, with_wiener


@dataclass(frozen=True)
class Method:
    """One row group of the results table: a checkpoint (with or without its Wiener post-filter) or a baseline."""

    name: str
    kind: str  # "model" | "oracle"
    checkpoint: str | None = None
    wiener: bool = False  # the Wiener post-filter on (mss.models.wiener)
    shifts: int = 0  # shifted separations averaged (mss.separate.shift_average); 0 = one plain pass
    full_band: bool = True  # the band above the model's Nyquist filled from the mixture (mss.bandwidth)
    precision: str = "fp32"  # the model's number format, resolved (mss.precision): fp32 or bf16
    #: the method this one varies (its post-filter switched, or other shifts); None: a model's own separation
    variant_of: str | None = None
    checkpoint_hash: str | None = None
    arch: str | None = None
    sources: tuple[str, ...] = ()
    parameters: int | None = None
    sample_rate: int | None = None

    @property
    def cache_key(self) -> str | None:
        """Folder of this method's separated audio under the cache dir (content hash: retrained = new key; the
        number of shifts too, so a separation made with other shifts is never reused)."""
        if self.kind != "model":
            return None
        band = "" if self.full_band else "-band-limited"
        return f"{self.name}-{self.checkpoint_hash[:12]}-shifts{self.shifts}-{self.precision}{band}"


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Models with a Wiener post-filter (``--wiener`` adds a method with it switched the other way for each).
WIENER_ARCHS = ("unet", "demucs")


def load_checkpoint_model(path: str | os.PathLike, wiener: bool | None = None):
    """The model of a checkpoint, in eval mode. ``wiener``: None, as the checkpoint separates; True, with its
    Wiener post-filter (one EM iteration when the checkpoint has it off); False, without it."""
    model = load_model(path)
    if wiener is None or wiener == (model.wiener_iterations > 0):
        return model
    return with_wiener(model, 1 if wiener else 0).eval()


def describe_checkpoints(
    checkpoints: Sequence[str | os.PathLike],
    wiener: bool,
    shifts: Sequence[int] | int = (),
    full_band: bool = True,
    precision: str = "fp32",
) -> tuple[list[Method], dict]:
    """One Method per checkpoint, separating as the checkpoint says (its model's ``shifts`` and Wiener
    post-filter), plus its post-filter switched the other way for each model when ``wiener`` (``<stem>-wiener``,
    or ``<stem>-nowiener`` for a model that filters by default) and ``<stem>-shifts<N>`` for each N of ``shifts`` that is
    not the model's own number (0: one plain pass; a single int is one N), and the loaded models. ValueError for a
    number of shifts outside [0, MAX_SHIFTS], before any model is loaded. ``precision`` (fp32 or bf16, resolved:
    ``mss.precision.resolve_precision``) is recorded in each method: its provenance and its audio cache's key."""
    shifts = [shifts] if isinstance(shifts, int) else list(shifts)
    for count in shifts:
        if (problem := shifts_problem(count, "shifts")) is not None:
            raise ValueError(problem)
    methods, models = [], {}
    paths = list(dict.fromkeys(Path(c).resolve() for c in checkpoints))  # the same file twice is one method
    # runs/unet/best.pt and runs/demucs/best.pt -> "unet-best" and "demucs-best"
    for path, name in zip(paths, output_names([p.with_suffix("") for p in paths]), strict=True):
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
        model = load_checkpoint_model(path)
        arch = model.arch
        base = Method(
            name=name,
            kind="model",
            checkpoint=str(path.resolve()),
            checkpoint_hash=file_hash(path),
            arch=arch,
            sources=tuple(model.sources),
            parameters=int(count_parameters(model)),
            sample_rate=int(model.sample_rate),
            full_band=full_band,
            precision=precision,
            shifts=model.shifts,
            wiener=model.wiener_iterations > 0,
        )
        variants = [base]
        if wiener and arch in WIENER_ARCHS:
            other = f"{name}-nowiener" if base.wiener else f"{name}-wiener"
            variants.append(
                Method(**{**asdict(base), "name": other, "wiener": not base.wiener, "variant_of": name})
            )
        for count in dict.fromkeys(shifts):
            if count != model.shifts:
                changes = {"name": f"{name}-shifts{count}", "shifts": count, "variant_of": name}
                variants.append(Method(**{**asdict(base), **changes}))
        for method in variants:
            if any(m.name == method.name for m in methods):
                raise CheckpointError(
                    f"two methods share the name {method.name!r}; rename one checkpoint file"
                )
            methods.append(method)
            # the variant with the post-filter switched is built when needed
            models[method.name] = model if method.wiener == base.wiener else None
    return methods, models


#: Changes whenever the scores of the same inputs would change (scorer, framing, oracle settings).
SCORING_VERSION: str = "bsseval-v4-streamed-1"


def provenance(method: Method, root: Path, subset: str, targets: Sequence[str]) -> dict:
    """What a method's scores depend on: the checkpoint's content (or the oracle), the dataset, the
    targets and the scoring settings."""
    record = {
        "method": method.name,
        "kind": method.kind,
        "checkpoint_hash": method.checkpoint_hash,
        "wiener": method.wiener,
        "shifts": method.shifts,
        "full_band": method.full_band,
        "dataset": str(Path(root).resolve()),
        "subset": subset,
        "targets": list(targets),
        "scoring": {
            "version": SCORING_VERSION,
            "window_s": WINDOW_S,
            "hop_s": HOP_S,
            "filters_len": FILTERS_LEN,
        },
    }
    if method.kind == "oracle":
        record["oracle"] = {"n_fft": ORACLE_N_FFT, "hop_length": ORACLE_HOP_LENGTH}
    else:
        record["precision"] = method.precision  # the models' number format; oracles do not depend on it
    return record


def refresh_provenance(method_dir: Path, record: dict) -> int:
    """Make ``method_dir/provenance-<subset>.json`` say ``record``; when it said something else, delete the
    score files of that subset made then (they would be stale) and return how many. A folder without
    one (an older run) counts as stale too, unless it holds no scores."""
    subset = record["subset"]
    path = method_dir / f"provenance-{subset}.json"
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = None
    if previous == record:
        return 0
    stale = sorted((method_dir / subset).glob("*.json")) if (method_dir / subset).is_dir() else []
    for old in stale:
        old.unlink()
    method_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(record, indent=2))
    return len(stale)


def write_methods(
    out_dir: Path, methods: list[Method], root: Path, subset: str, targets, cache_dir: Path
) -> None:
    """``out_dir/methods.json``: what each method is (checkpoint, hash, audio cache), for the report;
    methods of earlier runs into the same folder are kept."""
    record = {
        "dataset": str(root),
        "subset": subset,
        "targets": list(targets),
        "cache_dir": str(cache_dir.resolve()),
        "methods": {m.name: {**asdict(m), "cache_key": m.cache_key} for m in methods},
    }
    previous = out_dir / "methods.json"
    if previous.is_file():  # keep methods of earlier runs into the same folder
        try:
            old = json.loads(previous.read_text())
            record["methods"] = {**old.get("methods", {}), **record["methods"]}
        except ValueError:
            pass
    previous.write_text(json.dumps(record, indent=2))
