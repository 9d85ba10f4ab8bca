"""Shared fixtures: the real MUSDB18 clips and a tiny generated dataset (built once per session); the listening
study tests' planted dataset and its rendered stimuli (once per module)."""

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


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A MUSDB18-HQ layout dataset whose vocals sound only within VOCALS_ACTIVE (study_helpers), two tiny
    checkpoints and a study file over them; one per test module (the listening_study tests write into it)."""
    import numpy as np
    from helpers import make_tiny_checkpoints
    from study_helpers import write_planted_song

    root = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(3)
    for subset, songs in (("train", ("gamma",)), ("test", ("alpha", "beta"))):
        for song in songs:
            write_planted_song(root / "dataset" / subset / song, rng)
    make_tiny_checkpoints(root)  # unet.pt and demucs.pt, named relative to the study file below
    study_file = root / "study.yaml"
    study_file.write_text(
        "study_id: planted\ndataset: dataset\nexcerpt_s: 3\ntargets: [vocals]\n"
        "songs:\n  - alpha\n  - {name: beta, start_s: 1.0, end_s: 4.5}\n"
        "systems: {unet: unet.pt, demucs: demucs.pt}\nanchors: [anchor35, anchor70, mixture]\n"
    )
    return root, study_file


@pytest.fixture(scope="module")
def rendered(planted):
    """The planted study's stimuli, rendered (``prepare_stimuli`` reports its progress up to 1.0)."""
    from listening_study.delivery.stimuli import prepare_stimuli
    from listening_study.design.study import load_study

    root, study_file = planted
    study = load_study(study_file)
    calls = []
    stimuli = prepare_stimuli(
        study, root / "cache", progress=lambda fraction, message: calls.append(fraction)
    )
    assert calls[-1] == 1.0
    return study, stimuli


@pytest.fixture(scope="module")
def known_csv(tmp_path_factory):
    """Ratings with known answers (tests/known_ratings.py), written once per module: (csv path, frame)."""
    from known_ratings import known_ratings

    return known_ratings(tmp_path_factory.mktemp("ratings"))


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the app tests' screenshots go: $MSS_SCREENSHOT_DIR, else a temp folder."""
    from app_browser import SCREENSHOTS

    folder = SCREENSHOTS or tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def running_app(tiny_dataset, tmp_path_factory):
    """The app (build_app, FastAPI + Gradio) on a free loopback port, serving a tiny study of one song of
    ``tiny_dataset``: (url, its StudyContext); one per module (the app tests)."""
    from app_browser import MIN_LISTEN_S, PASSWORD
    from helpers import load_app_module, make_tiny_checkpoints

    from mss_app.context import load_study_context
    from mss_app.server import BackgroundServer, build_app

    app_module = load_app_module()
    folder = tmp_path_factory.mktemp("app")
    checkpoints = make_tiny_checkpoints(folder)
    settings = (("min_listen_s", MIN_LISTEN_S), ("familiarization_excerpts", 1), ("excerpt_s", 3.0))
    config = app_module.AppConfig(
        dataset=str(tiny_dataset), study_dir=folder / "study", checkpoints=tuple(checkpoints.items()),
        eval_dir=folder / "no-eval", password=PASSWORD, n_songs=1, targets=("vocals", "drums"),
        study_settings=settings,
    )  # fmt: skip
    context = load_study_context(config)
    assert context.error is None, context.error
    with BackgroundServer(build_app(config, context)) as url:
        yield url, context


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the system's, CHROMIUM), one per module."""
    from app_browser import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
