"""Open any dataset through ``musdb.DB``: MUSDB18 (stems .mp4), MUSDB18-HQ (wav folders), the embedded
generated set (its ``ROOT/setup.yaml`` declares extra stems such as piano) and the musdb 7-s sample.

musdb and stempeg probe ffmpeg when they are imported, so they are imported lazily here and their
failure is turned into a ``MissingDependencyError`` that says how to install ffmpeg.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from pathlib import Path

import soundfile as sf
import yaml

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.audio import require_ffmpeg
from mss.data.default_dataset import ensure_default_dataset
from mss.errors import DatasetError, MissingDependencyError, require_program
from mss.files import write_text_atomic

SUBSETS: tuple[str, ...] = ("train", "test")
SPLITS: tuple[str | None, ...] = (None, "train", "valid")
DEFAULT_NAMES: tuple[str, ...] = ("default",)


def import_musdb():
    """The ``musdb`` module, or a MissingDependencyError when ffmpeg/ffprobe are absent."""
    require_ffmpeg()
    require_program(
        "ffprobe",
        "ffprobe (part of ffmpeg) is not installed, but musdb needs it to read track metadata. "
        "Install it with: sudo apt-get install -y ffmpeg",
    )
    try:
        import musdb
    except RuntimeError as exc:  # stempeg raises RuntimeError at import when it cannot find ffmpeg
        raise MissingDependencyError(
            f"musdb cannot be imported ({exc}). Install ffmpeg with: sudo apt-get install -y ffmpeg"
        ) from exc
    return musdb


def _detect_is_wav(root: Path, subsets: list[str]) -> bool:
    """True for wav folders (MUSDB18-HQ layout), False for ``.stem.mp4`` files (MUSDB18)."""
    has_stems = has_wav = False
    for subset in subsets:
        folder = root / subset
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            has_stems |= entry.name.endswith(".stem.mp4")
            has_wav |= entry.is_dir() and (entry / "mixture.wav").is_file()
    if has_stems:
        return False
    if has_wav:
        return True
    raise DatasetError(
        f"no tracks found in {root} ({'/'.join(subsets)}): expected `.stem.mp4` files (MUSDB18) or track folders "
        f"holding mixture.wav and one wav per source (MUSDB18-HQ)"
    )


def _setup_file(root: Path) -> str | None:
    """The musdb setup file to use for ``root``: None (musdb's own) or a path musdb can open.

    musdb joins ``setup_file`` to the root, and joining an absolute path returns it unchanged; an incomplete
    ``ROOT/setup.yaml`` (e.g. without ``stem_ids``) is completed from musdb's defaults into a cached copy.
    """
    path = root / "setup.yaml"
    if not path.is_file():
        return None
    try:
        setup = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(setup, dict) or not isinstance(setup.get("sources"), dict) or not setup["sources"]:
        raise DatasetError(f"{path} must be a musdb setup file with a `sources:` mapping")
    defaults = yaml.safe_load((Path(import_musdb().__path__[0]) / "configs" / "mus.yaml").read_text())
    complete = dict(setup)
    complete.setdefault("mixture", "mixture.wav")
    complete.setdefault("sample_rate", float(MUSDB_SAMPLE_RATE))
    complete.setdefault("validation_tracks", [])
    complete["validation_tracks"] = list(complete["validation_tracks"] or [])
    complete.setdefault("targets", {name: {name: 1} for name in setup["sources"]})
    stem_ids = dict(complete.get("stem_ids") or {})
    for name in ["mixture", *setup["sources"]]:
        if name not in stem_ids:
            stem_ids[name] = defaults["stem_ids"].get(name, max(stem_ids.values(), default=0) + 1)
    complete["stem_ids"] = stem_ids
    if complete == setup:
        return "setup.yaml"
    text = yaml.safe_dump(complete, sort_keys=False)
    cached = Path(tempfile.gettempdir()) / f"mss-setup-{hashlib.sha1(text.encode()).hexdigest()[:16]}.yaml"
    if not cached.is_file():
        write_text_atomic(cached, text)
    return str(cached)


def open_db(
    root: str | os.PathLike | None = None,
    subset: str = "train",
    split: str | None = None,
    is_wav: bool | None = None,
    download: bool = False,
):
    """Open a dataset as a ``musdb.DB`` holding one subset (and, on train, optionally one split).

    root: a dataset folder with ``train/``/``test/``; None or "default" is the embedded default dataset
    (generated on first use). split: "train"/"valid" selects musdb's official split of the train subset
    (``validation_tracks`` of the setup file). is_wav: None detects wav folders vs ``.stem.mp4`` files.
    download: fetch the musdb 7-s sample (needs the internet) into ``root`` or musdb's default folder.
    """
    if subset not in SUBSETS:
        raise DatasetError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose 'train', 'valid' or None")
    if split is not None and subset != "train":
        raise DatasetError(f"split={split!r} only applies to the train subset, not {subset!r}")
    musdb = import_musdb()
    if download:
        db = musdb.DB(root=None if root is None else str(root), download=True, subsets=subset, split=split)
        return _check_tracks(db, Path(db.root), subset, split)
    if root is None or str(root) in DEFAULT_NAMES:
        root = ensure_default_dataset()
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"dataset root not found: {root}. Pass a folder with train/ and test/ (MUSDB18 or MUSDB18-HQ layout) "
            f"or 'default' for the embedded dataset"
        )
    if not any((root / name).is_dir() for name in SUBSETS):
        raise DatasetError(f"{root} is not a musdb dataset: it has neither a train/ nor a test/ folder")
    if not (root / subset).is_dir():
        raise DatasetError(f"{root} has no {subset}/ folder")
    if is_wav is None:
        is_wav = _detect_is_wav(root, [subset])
    try:
        db = _tolerant_db_class(musdb)(
            root=str(root), setup_file=_setup_file(root), is_wav=is_wav, subsets=subset, split=split
        )
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"cannot open {root} with musdb: {exc!r}") from exc
    return _check_tracks(db, root, subset, split)


def _check_tracks(db, root: Path, subset: str, split: str | None):
    if not hasattr(db, "unreadable"):
        db.unreadable = []
    if len(db) == 0:
        where = f"{subset}" + (f" (split {split!r})" if split else "")
        bad = f"; unreadable: {'; '.join(why for _, why in db.unreadable[:5])}" if db.unreadable else ""
        raise DatasetError(f"no readable tracks in {root} / {where}{bad}")
    return db


def _probe_reason(exc: BaseException, path: Path) -> str:
    """One line saying why ffprobe / musdb could not read ``path``."""
    if path.suffix == ".wav":
        try:
            if sf.info(str(path)).frames == 0:
                return "empty (0 samples)"
        except (sf.LibsndfileError, RuntimeError) as sf_exc:
            return f"not a readable wav file ({sf_exc})"
    stderr = getattr(exc, "stderr", None)
    if stderr:
        lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        if lines:
            return f"not a readable audio file ({lines[-1]})"
    if isinstance(exc, KeyError):
        return f"no audio stream with a duration ({exc!r} missing in ffprobe's answer)"
    return f"{type(exc).__name__}: {exc}"


def _tolerant_db_class(musdb):
    """``musdb.DB`` whose track list skips unreadable tracks instead of failing as a whole.

    musdb probes each mixture with ffprobe while it lists the tracks, so one corrupt or empty file used to
    abort every run on the dataset. Here each track is built on its own (musdb's own ``MultiTrack``,
    ``Source`` and ``create_targets``, in musdb's order and split rules) and a track that fails, or lacks
    its mixture or stems, goes to ``db.unreadable`` as ``(name, "path: reason")``.
    """

    class TolerantDB(musdb.DB):
        def load_mus_tracks(self, subsets=None, split=None):
            from musdb.audio_classes import MultiTrack, Source

            subsets = [subsets] if isinstance(subsets, str) else list(subsets or SUBSETS)
            self.unreadable: list[tuple[str, str]] = []  # (track name, why)
            tracks = []
            for subset in subsets:
                folder = Path(self.root) / subset
                if not folder.is_dir():
                    continue
                if self.is_wav:
                    entries = sorted(e.name for e in folder.iterdir() if e.is_dir())
                    names = entries
                else:
                    entries = sorted(e.name for e in folder.iterdir() if e.name.endswith(".stem.mp4"))
                    names = [e[: -len(".stem.mp4")] for e in entries]
                for entry, name in zip(entries, names, strict=True):
                    valid = name in self.setup.get("validation_tracks", [])
                    if subset == "train" and (
                        (split == "train" and valid) or (split == "valid" and not valid)
                    ):
                        continue
                    path = folder / entry / self.setup["mixture"] if self.is_wav else folder / entry
                    try:
                        track = MultiTrack(
                            name=name, path=str(path), subset=subset, is_wav=self.is_wav,
                            stem_id=self.setup["stem_ids"]["mixture"], sample_rate=self.sample_rate,
                        )  # fmt: skip
                    except Exception as exc:  # ffmpeg.Error, KeyError('duration_ts'), ...
                        self.unreadable.append((name, f"{path}: {_probe_reason(exc, path)}"))
                        continue
                    sources, missing = {}, []
                    for src, source_file in self.setup["sources"].items():
                        src_path = folder / entry / source_file if self.is_wav else path
                        if src_path.exists():
                            sources[src] = Source(
                                track, name=src, path=str(src_path), stem_id=self.setup["stem_ids"][src],
                                sample_rate=self.sample_rate,
                            )  # fmt: skip
                        elif src in SOURCES:
                            missing.append(source_file)
                    if track.samples is None:
                        self.unreadable.append((name, f"{path}: missing"))
                        continue
                    if missing or not sources:
                        self.unreadable.append(
                            (name, f"{folder / entry}: missing stem file(s) {', '.join(missing)}")
                        )
                        continue
                    track.sources = sources
                    track.targets = self.create_targets(track)
                    tracks.append(track)
            return tracks

    return TolerantDB


def available_targets(db_or_root) -> list[str]:
    """Names usable as targets: the declared sources (incl. extra stems) then musdb's targets (accompaniment...)."""
    db = db_or_root if hasattr(db_or_root, "sources_names") else open_db(db_or_root)
    names = list(db.sources_names)
    return names + [name for name in db.targets_names if name not in names]


def find_track(db, name: str):
    """The track called ``name`` (DatasetError with close matches when there is none)."""
    for track in db.tracks:
        if track.name == name:
            return track
    names = [track.name for track in db.tracks]
    close = difflib.get_close_matches(name, names, n=3)
    hint = (
        f"; did you mean {', '.join(map(repr, close))}?"
        if close
        else f"; {len(names)} tracks: {names[:5]}..."
    )
    raise DatasetError(f"unknown track {name!r}{hint}")
