"""Piano-target models in the app (``python app.py --models piano``): the checkpoint set and its targets,
a default study of its own over the songs that have piano, and a participant served a piano trial.

The dataset is the session's ``tiny_dataset`` with its songs without piano (a silent ``piano.wav``, see
mss.data.synth.versions.GeneratorVersion.has_piano) linked into the test subset beside the two test songs,
which have piano.
The systems are tiny random-weight models whose only source is piano.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import httpx
import pytest
from helpers import load_app_module, make_tiny_checkpoints, step_audio_urls

from listening_study.design.study import default_study
from listening_study.errors import StudyError
from mss import SOURCES
from mss.checkpoint import CHECKPOINT_SETS, DEFAULT_CHECKPOINTS, PIANO_CHECKPOINTS
from mss_app.context import load_study_context
from mss_app.server import BackgroundServer, build_app

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]

PIANO = ("piano",)
ANSWERS = {"age": "25-34", "experience": "some", "headphones": "closed"}


def _songs_without_piano(dataset: Path) -> list[tuple[str, str]]:
    """(subset, song) of the songs the generator made without piano, from its manifest."""
    songs = json.loads((dataset / "manifest.json").read_text())["songs"]
    return sorted(tuple(key.split("/", 1)) for key, info in songs.items() if not info["has_piano"])


def _linked_dataset(tiny: Path, root: Path, songs: list[tuple[str, str]]) -> Path:
    """A dataset whose test subset holds ``songs`` of ``tiny`` (files symlinked, nothing copied)."""
    for subset, song in songs:
        (root / "test" / song).mkdir(parents=True)
        for wav in (tiny / subset / song).iterdir():
            (root / "test" / song / wav.name).symlink_to(wav)
    shutil.copyfile(tiny / "setup.yaml", root / "setup.yaml")  # declares the piano stem
    return root


@pytest.fixture(scope="module")
def piano_dataset(tiny_dataset, tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """(root, test songs with piano, test songs without piano, all sorted by name)."""
    without = _songs_without_piano(tiny_dataset)
    assert without, "the tiny preset should have a song without piano (versions.GeneratorVersion.has_piano)"
    with_piano = sorted(path.name for path in (tiny_dataset / "test").iterdir())
    assert not {song for _, song in without} & set(with_piano)
    songs = [*without, *(("test", song) for song in with_piano)]
    root = _linked_dataset(tiny_dataset, tmp_path_factory.mktemp("piano-dataset"), songs)
    return root, with_piano, sorted(song for _, song in without)


@pytest.fixture(scope="module")
def piano_checkpoints(tmp_path_factory) -> dict[str, Path]:
    return make_tiny_checkpoints(tmp_path_factory.mktemp("piano-checkpoints"), sources=PIANO)


def test_models_option_picks_the_checkpoint_set_its_targets_and_study():
    app_module = load_app_module()
    assert set(CHECKPOINT_SETS["stems"]) == set(CHECKPOINT_SETS["piano"]) == {"unet", "demucs"}
    piano = app_module.parse_args(["--models", "piano"])
    assert dict(piano.checkpoints) == PIANO_CHECKPOINTS
    assert [path.name for _, path in piano.checkpoints] == ["unet-piano.pt", "demucs-piano.pt"]
    assert piano.targets == PIANO and piano.study_id == "mss-piano"
    stems = app_module.parse_args([])
    assert dict(stems.checkpoints) == DEFAULT_CHECKPOINTS and stems.targets == SOURCES
    assert stems.study_id == "mss-default"  # the 4-stem study keeps its sessions and ratings
    mine = app_module.parse_args(["--models", "piano", "--checkpoint", "mine=runs/mine/best.pt"])
    assert mine.checkpoints == (("mine", Path("runs/mine/best.pt")),)  # an explicit checkpoint wins
    assert mine.targets == PIANO and mine.study_id == "mss-piano"
    with pytest.raises(SystemExit):
        app_module.parse_args(["--models", "kazoo"])


def test_missing_piano_checkpoints_say_how_to_train_them(tiny_dataset, tmp_path, monkeypatch):
    import mss.checkpoint

    absent = {arch: tmp_path / f"{arch}-piano.pt" for arch in ("unet", "demucs")}
    monkeypatch.setitem(mss.checkpoint.CHECKPOINT_SETS, "piano", absent)  # whether or not they are committed
    app_module = load_app_module()
    config = app_module.AppConfig(dataset=str(tiny_dataset), study_dir=tmp_path / "study", models="piano")
    context = load_study_context(config)
    assert context.study is None and context.checkpoints == {}
    assert context.error.startswith("Checkpoints not found: unet (")
    assert str(absent["demucs"]) in context.error
    assert "python -m training.run --model unet --dataset default --targets piano" in context.error


def test_default_piano_study_skips_songs_without_piano(piano_dataset, piano_checkpoints):
    root, with_piano, without = piano_dataset
    skipped = []
    study = default_study(root, piano_checkpoints, n_songs=10, targets=PIANO, study_id="mss-piano",
                          on_skip=skipped.append)  # fmt: skip
    assert [spec.song for spec in study.songs] == with_piano and study.targets == PIANO
    assert study.study_id == "mss-piano"
    assert len(skipped) == len(without)
    for song, note in zip(without, skipped, strict=True):
        assert note == f"song {song!r} skipped: piano silent throughout"
    # the 4-stem study of the same songs skips none (every song has the four stems)
    stems = default_study(root, piano_checkpoints, n_songs=10, on_skip=skipped.append)
    assert len(stems.songs) == len(with_piano) + len(without) and len(skipped) == len(without)


def test_default_piano_study_without_any_piano_song_is_refused(tiny_dataset, piano_checkpoints, tmp_path):
    without = _songs_without_piano(tiny_dataset)
    root = _linked_dataset(tiny_dataset, tmp_path / "no-piano", without)
    with pytest.raises(StudyError, match="no song of the test subset .* has piano") as error:
        default_study(root, piano_checkpoints, targets=PIANO)
    assert all(f"song {song!r} skipped: piano silent throughout" in str(error.value) for _, song in without)


def test_piano_app_serves_a_piano_trial(piano_dataset, piano_checkpoints, tmp_path):
    from mss.browser import SpectrogramBrowser

    root, with_piano, without = piano_dataset
    app_module = load_app_module()
    argv = ["--models", "piano", "--dataset", str(root), "--study-dir", str(tmp_path / "study"),
            "--eval-dir", str(tmp_path / "no-eval"), "--password", "piano-password",
            *(f"--checkpoint={name}={path}" for name, path in piano_checkpoints.items())]  # fmt: skip
    settings = (("excerpt_s", 3.0), ("min_listen_s", 0.0), ("familiarization_excerpts", 1))
    config = dataclasses.replace(app_module.parse_args(argv), n_songs=1, study_settings=settings)
    context = load_study_context(config)
    assert context.error is None, context.error
    # The first song by name that has piano; the songs without piano come before it (titles are numbered
    # by song index, train songs first) and are skipped, visibly.
    assert [spec.song for spec in context.study.songs] == with_piano[:1] and max(without) < with_piano[0]
    skips = [f"song {song!r} skipped: piano silent throughout" for song in without]
    # the generated piano part has next to nothing above 7 kHz: its mid anchor moves down, and the note says so
    (cutoffs,) = context.stimuli.anchor_hz().values()
    assert cutoffs["anchor70"] < 7000.0 and cutoffs["anchor35"] <= cutoffs["anchor70"] / 2
    assert context.notes == [*skips, context.stimuli.moved_anchors()]
    assert context.notes[-1].startswith("Low-pass anchors moved below 3.5 / 7 kHz in 1 of 1 trials")
    assert context.study.study_id == "mss-piano"
    assert context.ratings_csv.parent == tmp_path / "study" / "mss-piano"
    (trial,) = context.stimuli.trials
    assert trial.target == "piano" and trial.song == with_piano[0]
    assert all(context.stimuli.path(i).is_file() for i in (trial.reference, *trial.conditions.values()))
    # the experimenter's spectrogram browser offers the piano systems and their one target
    browser = SpectrogramBrowser(context.dataset, context.checkpoints)
    assert browser.targets() == ["piano"] and browser.systems() == ["unet", "demucs"]
    view = browser.view(with_piano[0], "piano", browser.systems(), 0.0, 2.0)
    assert [row.system for row in view.rows] == ["unet", "demucs"] and view.reference.any()

    with (
        BackgroundServer(build_app(config, context)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        assert client.get("/").status_code == 200
        assert client.get("/mushra/api/info").json()["n_trials"] == 1
        session = client.post("/mushra/api/start", json={"consent": True}).json()
        session_id = session["session_id"]
        answers = {"session_id": session_id, "answers": ANSWERS}
        session = client.post("/mushra/api/questionnaire", json=answers).json()
        for step in ("volume", "headphones", "familiarization", "instructions"):
            assert session["step"] == step
            if step == "headphones":  # fetched, then answered right (the design is the server's)
                for sound in session["headphones"]["trials"]:
                    assert client.get(sound["url"]).status_code == 200
                store = context.sessions
                right = [t.quiet for t in store.headphone_design(store.resume(session_id))]
                body = {"session_id": session_id, "answers": right}
                session = client.post("/mushra/api/headphones", json=body).json()
                continue
            for url in step_audio_urls(session):
                assert client.get(url).status_code == 200
            session = client.post("/mushra/api/step", json={"session_id": session_id, "step": step}).json()
        assert session["step"] == "trial" and session["n_trials"] == 1
        served = session["trial"]
        urls = [served["reference_url"], *(condition["url"] for condition in served["conditions"])]
        # two systems, the hidden reference, three anchors
        assert len(served["conditions"]) == len(context.study.conditions) == 6
        sizes = set()
        for audio_url in urls:
            response = client.get(audio_url)
            assert response.status_code == 200 and response.content[:4] == b"RIFF"
            sizes.add(len(response.content))
        assert len(sizes) == 1  # the files of a trial look alike
