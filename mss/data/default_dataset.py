"""Where the embedded default dataset lives, and building it on first use (one build for concurrent callers).

The generator (``mss.data.synth``: FluidSynth, SoundFonts, espeak-ng) is imported only when a build is
needed, so opening an existing dataset works on a machine without it.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from mss.errors import DatasetError


def default_root() -> Path:
    """Where the embedded default dataset lives: ``$MSS_DATA_DIR/default`` or ``~/.cache/mss/datasets/default``."""
    base = os.environ.get("MSS_DATA_DIR")
    if base:
        return Path(base).expanduser() / "default"
    return Path.home() / ".cache" / "mss" / "datasets" / "default"


def is_dataset_built(root: str | os.PathLike | None = None) -> bool:
    """Whether ``root`` (default: ``default_root()``) holds a finished build of the current generator
    (manifest.json is written last; an embedded dataset from an older generator version is rebuilt by
    ``ensure_default_dataset``, so its audio matches the code)."""
    root = Path(root).expanduser() if root is not None else default_root()

    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    try:
        from mss.data.synth.writer import GENERATOR_VERSION  # lazily: the generator is optional here
    except ImportError:  # no generator here (e.g. FluidSynth missing): what is on disk is all there is
        return (root / "train").is_dir()
    return (root / "train").is_dir() and manifest.get("generator_version") == GENERATOR_VERSION


def ensure_default_dataset(
    root: str | os.PathLike | None = None,
    preset: str = "default",
    seed: int = 0,
    on_progress=None,
    jobs: int | None = None,
) -> Path:
    """Build the embedded dataset at ``root`` (default: ``default_root()``) unless it is already there.

    A file lock next to the folder makes concurrent callers (several training processes) wait for one build.
    on_progress: ``(songs done, songs in all)`` callback of the build. jobs: rendering processes (default:
    the CPU count, at most 4; the files are byte-identical whatever the number).
    """
    root = Path(root).expanduser() if root is not None else default_root()
    if is_dataset_built(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not is_dataset_built(root):
                try:
                    from mss.data.synth import generate_dataset  # lazily: optional, heavy (FluidSynth)
                except ImportError as exc:
                    raise DatasetError(
                        f"the embedded dataset generator (mss.data.synth) cannot be imported ({exc}); "
                        f"pass a dataset root instead of 'default'"
                    ) from exc
                jobs = jobs if jobs is not None else max(1, min(4, os.cpu_count() or 1))
                generate_dataset(
                    root,
                    preset=preset,
                    seed=seed,
                    progress=True,
                    overwrite=True,
                    jobs=jobs,
                    on_progress=on_progress,
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root
