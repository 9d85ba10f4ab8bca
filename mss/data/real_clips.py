"""Real MUSDB18 clips available offline, scored beside the synthetic data (never trained or tuned on).

The project trains on generated audio; what matters is how it separates real music. By default the
real clips are the MUSDB18 *train*-subset clips at hand: the ``.stem.mp4`` files of the project's
``../shared/data/musdb-sample`` (when the checkout has it; "Music Delta - 80s Rock"). MUSDB18 stem files
hold the streams mixture, drums, bass, other, vocals (AAC). Training validation and the evaluation
report score them as a "real clips" row; best.pt is still chosen on the synthetic validation songs.

The clip that ships with stempeg (``stempeg.example_stem_path()``, "The Easton Ellises - Falcon 69") is a
MUSDB18 **test-set** song: it is not a default real clip, because a figure watched every epoch or
used to choose a recipe must not include a test song. It can still be named in ``$MSS_REAL_CLIPS``
(tests read it as a file); ``is_test_set_song`` recognises it, and tables label it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mss.audio import check_finite, read_stems, resample
from mss.data.default_dataset import default_root
from mss.data.songs import Song
from mss.errors import AudioError, DatasetError

#: MUSDB18 stem-file stream order.
STREAMS = ("mixture", "drums", "bass", "other", "vocals")
SHARED_SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "musdb-sample"
#: MUSDB18 test-set songs known to ship outside MUSDB18 (stempeg's example clip). A song under a folder
#: named ``test`` counts as one too.
KNOWN_TEST_SET_SONGS = frozenset({"The Easton Ellises - Falcon 69"})
TEST_SET_LABEL = " (MUSDB18 test-set song)"


def is_test_set_song(path: Path) -> bool:
    """Whether ``path`` (a stem file or a song folder) is a MUSDB18 test-set song, by name or by its folder."""
    path = Path(path)
    return clip_name(path) in KNOWN_TEST_SET_SONGS or path.parent.name == "test"


def label(name: str) -> str:
    """A clip's name for tables: test-set songs are labelled as such."""
    return name + TEST_SET_LABEL if name in KNOWN_TEST_SET_SONGS else name


def find_real_clips() -> list[Path]:
    """``$MSS_REAL_CLIPS`` (``os.pathsep``-separated files or folders) if set, else the shared sample's
    ``.stem.mp4`` files (train subset); existing files only, each once, in that order. Never stempeg's
    example clip unless named: it is a MUSDB18 test-set song."""
    configured = [Path(p) for p in os.environ.get("MSS_REAL_CLIPS", "").split(os.pathsep) if p]
    if not configured:
        configured = [SHARED_SAMPLE]
    found: dict[Path, Path] = {}  # resolved -> as found: a clip reached by two names is kept once
    for entry in configured:
        files = sorted(entry.rglob("*.stem.mp4")) if entry.is_dir() else [entry] if entry.is_file() else []
        for path in files:
            found.setdefault(path.resolve(), path)
    return list(found.values())


def lacking_stems(targets) -> list[str]:
    """The targets a MUSDB18 stem file has no stem for (e.g. ``piano``)."""
    return [t for t in targets if t not in STREAMS[1:]]


def clip_name(path: Path) -> str:
    name = path.name
    return name[: -len(".stem.mp4")] if name.endswith(".stem.mp4") else path.stem


def load_real_clip(path: Path, targets: tuple[str, ...], sample_rate: int) -> Song:
    """A stem file as a validation Song at ``sample_rate``: the real mixture and the target stems.

    Raises AudioError naming the file when it cannot be read, is not a 5-stream MUSDB18 file, or
    lacks a target (e.g. ``piano``: MUSDB18 has no piano stem).
    """
    missing = lacking_stems(targets)
    if missing:
        raise AudioError(f"{path}: MUSDB18 stem files have no {', '.join(missing)} stem")
    try:
        audio, rate = read_stems(path)  # (streams, C, T)
    except AudioError as exc:
        raise AudioError(f"cannot read the stem file {path}: {exc}") from None
    if audio.ndim != 3 or audio.shape[0] != len(STREAMS):
        raise AudioError(f"{path}: expected {len(STREAMS)} streams (MUSDB18 layout), got shape {audio.shape}")
    check_finite(audio, str(path), 0, int(rate))
    audio = resample(audio, int(rate), sample_rate)
    mix = audio[0]
    references = np.stack([audio[STREAMS.index(t)] for t in targets])
    return Song(clip_name(path), mix, references, sample_rate, tuple(targets))


def load_real_clips(
    targets: tuple[str, ...],
    sample_rate: int,
    paths: list[Path] | None = None,
    on_error: Callable[[AudioError], None] | None = None,
) -> list[Song]:
    """Every clip of ``paths`` (default :func:`find_real_clips`) with the targets; [] for targets real stems
    lack (piano). A clip that cannot be read raises AudioError, or with ``on_error`` is passed to it and
    left out (the other clips are still scored)."""
    if lacking_stems(targets):
        return []
    songs = []
    for path in find_real_clips() if paths is None else paths:
        try:
            songs.append(load_real_clip(path, targets, sample_rate))
        except AudioError as exc:
            if on_error is None:
                raise
            on_error(exc)
    return songs


def real_clips_dataset(root: Path | None = None) -> Path:
    """A MUSDB18-layout folder whose ``train/`` links every clip of :func:`find_real_clips` (made afresh
    each call, so it follows what is at hand); default ``$MSS_DATA_DIR/real-clips`` or
    ``~/.cache/mss/datasets/real-clips``. Raises DatasetError when no clip is found."""
    clips = find_real_clips()
    if not clips:
        raise DatasetError(
            "no real MUSDB18 clip found: set MSS_REAL_CLIPS to MUSDB18 train-subset stem files or folders"
        )
    if root is None:
        root = default_root().parent / "real-clips"  # beside the embedded default dataset
    train = Path(root) / "train"
    train.mkdir(parents=True, exist_ok=True)
    for old in train.iterdir():
        if old.is_symlink():
            old.unlink()
    for clip in clips:
        (train / clip.name).symlink_to(clip.resolve())
    return Path(root)
