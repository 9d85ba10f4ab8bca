"""Shared fixtures: the real MUSDB18 clips and a tiny generated dataset (built once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MSS_SHARED_DIR", REPO_ROOT.parent / "shared"))


def _session_folder(variable: str, folder: Path):
    """Point ``variable`` at ``folder`` for the session; restore it after."""
    previous = os.environ.get(variable)
    os.environ[variable] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = previous


@pytest.fixture(scope="session", autouse=True)
def isolated_audio_cache(tmp_path_factory):
    """Decoded-audio cache entries (mss.data.cache) go to a per-session folder, not ~/.cache."""
    yield from _session_folder("MSS_CACHE_DIR", tmp_path_factory.mktemp("decoded-cache"))


@pytest.fixture(scope="session", autouse=True)
def isolated_data_dir(tmp_path_factory):
    """Datasets (the embedded default, the real clips' layout) go to a per-session folder, not
    ~/.cache/mss/datasets: the suite works in temporary space and never builds the 3.4 GB demo set."""
    yield from _session_folder("MSS_DATA_DIR", tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def musdb_sample_root(tmp_path_factory) -> Path:
    """Folder with one real MUSDB18 clip (stems .mp4, train subset).

    ``../shared/data/musdb-sample`` (the project's 7-s clip) where it exists; otherwise, as on a user's
    clone, the real MUSDB18 clip that ships with stempeg, linked into a musdb layout.
    """
    root = SHARED_DIR / "data" / "musdb-sample"
    if root.is_dir():
        return root
    import stempeg

    clip = Path(stempeg.example_stem_path())
    root = tmp_path_factory.mktemp("stempeg-sample")
    (root / "train").mkdir()
    (root / "train" / clip.name).symlink_to(clip)
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: small models and resampling run several times faster on one
    thread than on two when the 2-core machine is busy (as inside DataLoader workers); restored after."""
    from training.process import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A tiny embedded dataset (MUSDB18-HQ layout) generated once for the whole test session."""
    from mss.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth") / "tiny"
    generate_dataset(root, preset="tiny", seed=1, progress=False)
    return root
