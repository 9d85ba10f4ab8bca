"""Open any dataset through ``musdb.DB``: MUSDB18 (stems .mp4), MUSDB18-HQ (wav folders), the embedded
generated set (its ``ROOT/setup.yaml`` declares extra stems such as piano) and the musdb 7-s sample.

musdb and stempeg probe ffmpeg when they are imported, so they are imported lazily here and their
failure is turned into a ``MissingDependencyError`` that says how to install ffmpeg.
"""

from __future__ import annotations

import difflib
import fcntl
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.audio import check_finite, require_ffmpeg, resample
from mss.data.cache import AudioCache, CachedSong, CacheSpec, default_cache_dir
from mss.data.song_check import CheckStore, SongCheck, check_streams
from mss.errors import DatasetError, InvalidSongError, MissingDependencyError

SUBSETS: tuple[str, ...] = ("train", "test")
SPLITS: tuple[str | None, ...] = (None, "train", "valid")
DEFAULT_NAMES: tuple[str, ...] = ("default",)


def import_musdb():
    """The ``musdb`` module, or a MissingDependencyError when ffmpeg/ffprobe are absent."""
    require_ffmpeg()
    if shutil.which("ffprobe") is None:
        raise MissingDependencyError(
            "ffprobe (part of ffmpeg) is not installed, but musdb needs it to read track metadata. "
            "Install it with: sudo apt-get install -y ffmpeg"
        )
    try:
        import musdb
    except RuntimeError as exc:  # stempeg raises RuntimeError at import when it cannot find ffmpeg
        raise MissingDependencyError(
            f"musdb cannot be imported ({exc}). Install ffmpeg with: sudo apt-get install -y ffmpeg"
        ) from exc
    return musdb


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
    import json

    root = Path(root).expanduser() if root is not None else default_root()

    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    try:
        from mss.data.synth.writer import GENERATOR_VERSION
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
                    from mss.data.synth import generate_dataset
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
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, cached)
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


def _track_setup(track) -> tuple[list[str], dict]:
    """Declared sources and musdb targets of a track, as recipes ``{target: {source: gain}}``."""
    recipes = {
        name: {source.name: float(source.gain) for source in target.sources}
        for name, target in (track.targets or {}).items()
    }
    return list(track.sources), recipes


def track_stems(
    track, targets, info: TrackInfo | None = None, reader: TrackReader | None = None
) -> np.ndarray:
    """Whole-track stems of ``targets`` at 44.1 kHz, float32 ``(S, C, T)``.

    Targets may be sources, extra stems (piano) or musdb targets (accompaniment). When an extra stem that is
    part of "other" (piano) is requested together with "other", "other" means the rest of other (other - piano)
    so that the targets never overlap; this is the same convention as the training datasets use.
    ``.stem.mp4`` streams are decoded once into the on-disk cache (see ``TrackReader``) and cropped to
    their common length.
    """
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    sources, recipes = _track_setup(track)
    parts, _ = plan_parts(sources, recipes, targets)
    info = info or track_info(track)
    reader = reader or TrackReader()
    audio = read_parts(info, parts, 0, reader.num_samples(info), reader)  # (S, C, T) at info.rate
    if info.rate != MUSDB_SAMPLE_RATE:
        audio = resample(audio, info.rate, MUSDB_SAMPLE_RATE)
    return audio


# ---------------------------------------------------------------------------------------------------------
# Targets as parts of the mixture


@dataclass(frozen=True)
class Part:
    """One additive component of the mixture: ``sum(gain * source)`` over ``terms``."""

    name: str
    terms: tuple[tuple[str, float], ...]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(source for source, _ in self.terms)


def plan_parts(
    sources: Sequence[str], recipes: Mapping[str, Mapping[str, float]], targets: Sequence[str]
) -> tuple[tuple[Part, ...], tuple[Part, ...]]:
    """Split the mixture into non-overlapping parts: one per target, then the distractors (the rest).

    sources: the declared sources (the four MUSDB sources plus extra stems such as piano, which are taken
    to be sub-parts of "other"); recipes: musdb targets ``{name: {source: gain}}``. When an extra stem is a
    target, "other" becomes "other minus that stem" everywhere (as a target and as the distractor), so the
    parts always add up to the mixture. Raises DatasetError for unknown or overlapping targets.
    """
    if isinstance(targets, str) or not targets:
        raise DatasetError(f"targets must be a non-empty list of names, got {targets!r}")
    known = list(sources) + [name for name in recipes if name not in sources]
    expanded: dict[str, dict[str, float]] = {}
    for target in targets:
        if target in sources:
            expanded[target] = {target: 1.0}
        elif target in recipes:
            expanded[target] = {source: float(gain) for source, gain in recipes[target].items()}
        else:
            raise DatasetError(f"unknown target {target!r}; this dataset has: {', '.join(known)}")
    if len(expanded) != len(targets):
        raise DatasetError(f"duplicate targets in {list(targets)}")
    extras = [name for name in sources if name not in SOURCES]
    split_off = [e for e in extras if "other" in sources and any(e in recipe for recipe in expanded.values())]
    atoms = [name for name in SOURCES if name in sources] + split_off  # MUSDB order, whatever the setup's
    owner: dict[str, str] = {}
    for target, recipe in expanded.items():
        for atom in recipe:
            if atom not in atoms:
                continue
            if atom in owner:
                raise DatasetError(f"targets {owner[atom]!r} and {target!r} overlap (both contain {atom!r})")
            owner[atom] = target

    def terms(recipe: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
        out = []
        for source, gain in recipe.items():
            out.append((source, gain))
            if source == "other":  # other - piano when piano is a part of its own
                out.extend((extra, -gain) for extra in split_off)
        return tuple(out)

    target_parts = tuple(Part(target, terms(expanded[target])) for target in targets)
    distractors = tuple(Part(atom, terms({atom: 1.0})) for atom in atoms if atom not in owner)
    return target_parts, distractors


# ---------------------------------------------------------------------------------------------------------
# Reading audio without musdb's per-chunk ffmpeg calls


@dataclass(frozen=True)
class TrackInfo:
    """What is needed to read a track, light and picklable (DataLoader workers get a copy)."""

    name: str
    subset: str
    is_wav: bool
    rate: int
    num_samples: int
    files: tuple[tuple[str, str], ...]  # (source or "mixture", path)
    stem_ids: tuple[tuple[str, int], ...]  # (source or "mixture", stream index in a .stem.mp4)

    @property
    def key(self) -> str:
        return f"{self.subset}/{self.name}"

    def file(self, source: str) -> str:
        found = dict(self.files).get(source)
        if found is None:
            raise DatasetError(
                f"track {self.key!r} has no {source!r} stem (available: {[n for n, _ in self.files]})"
            )
        return found


def track_info(track) -> TrackInfo:
    """TrackInfo of a musdb track (reads wav headers; stem files were already probed by musdb)."""
    files = [("mixture", str(track.path))] + [(name, str(src.path)) for name, src in track.sources.items()]
    stem_ids = [("mixture", int(track.stem_id))] + [
        (name, int(src.stem_id)) for name, src in track.sources.items()
    ]
    if track.is_wav:
        try:
            infos = [sf.info(path) for _, path in files]
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise DatasetError(f"cannot read the wav files of track {track.name!r}: {exc}") from exc
        rate, num_samples = int(infos[0].samplerate), min(int(info.frames) for info in infos)
    else:
        rate, num_samples = int(track.rate), int(track.samples)
    return TrackInfo(
        track.name, str(track.subset), bool(track.is_wav), rate, num_samples, tuple(files), tuple(stem_ids)
    )


def song_check(info: TrackInfo, cache: AudioCache | None = None) -> SongCheck:
    """The song check of a track (``mss.data.song_check``), measured once per song and kept: wav files are
    read at their own rate (kept in a ``CheckStore`` beside the decoded-audio cache), a ``.stem.mp4``
    through its cache entry (``cache``, default the files' rate; the check is kept in the entry).
    Returns the check whether or not the song passes; ``.require()`` refuses a failing one."""
    if not info.is_wav:
        cache = cache if cache is not None else AudioCache()
        try:
            entry = cache.open(info)
        except InvalidSongError as exc:
            return exc.check
        return cache.check(info, entry)
    store = CheckStore(default_cache_dir() / "checks")
    found = store.lookup(info)
    if found is not None:
        return found
    try:
        infos = {name: sf.info(path) for name, path in info.files}
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DatasetError(f"cannot read the wav files of track {info.key!r}: {exc}") from exc
    rates = {int(header.samplerate) for header in infos.values()}
    if len(rates) != 1:
        raise DatasetError(f"track {info.key!r} mixes sample rates {sorted(rates)}")
    lengths = {name: int(header.frames) for name, header in infos.items()}
    channels = {name: int(header.channels) for name, header in infos.items()}
    check = check_streams(
        info.key, dict(info.files), lengths, rates.pop(), lambda name, a, n: read_wav(info.file(name), a, n),
        channels,
    )  # fmt: skip
    store.save(info, check)
    return check


class TrackReader:
    """Reads ``(C, T)`` chunks of a track's streams at ``info.rate``.

    wav: soundfile at an offset (nothing else is decoded). ``.stem.mp4``: the file is decoded once into
    the on-disk ``AudioCache`` (the files' rate, float32, streams cropped to a common length) and read
    by slices of its memory map after that, in this process and in every other (DataLoader workers,
    evaluation jobs, later runs). ``cache``: where those entries live (default: ``default_cache_dir()``).
    """

    def __init__(self, cache: AudioCache | None = None):
        self.cache = cache if cache is not None else AudioCache()
        if self.cache.spec != CacheSpec():
            raise DatasetError("TrackReader reads files at their own rate: its cache must use CacheSpec()")
        self._entries: dict[str, CachedSong] = {}
        self._valid: set[str] = set()  # keys of the wav tracks whose song check passed

    def __getstate__(self) -> dict:
        return {"cache": self.cache, "_entries": {}, "_valid": set()}

    def _require_valid(self, info: TrackInfo) -> None:
        """A wav track is checked (``song_check``) on first use; a ``.stem.mp4`` when its entry opens."""
        if info.key not in self._valid:
            song_check(info).require()
            self._valid.add(info.key)

    def entry(self, info: TrackInfo) -> CachedSong:
        """The cache entry of a ``.stem.mp4`` track (decoded now when missing)."""
        if info.key not in self._entries:
            self._entries[info.key] = self.cache.open(info)
        return self._entries[info.key]

    def num_samples(self, info: TrackInfo) -> int:
        """Samples common to every stream of the track (the length mixture and stems are aligned to);
        InvalidSongError for a song that fails its check."""
        if info.is_wav:
            self._require_valid(info)
            return info.num_samples
        return self.entry(info).num_samples

    def read(self, info: TrackInfo, source: str, start: int, length: int) -> np.ndarray:
        """``(C, length)`` float32 from sample ``start`` at ``info.rate``, zero-padded past the end."""
        if not info.is_wav:
            return self.entry(info).read(source, start, length)
        self._require_valid(info)
        return read_wav(info.file(source), start, length)


def read_wav(path: str, start: int, length: int) -> np.ndarray:
    """``(C, length)`` float32 of a wav file from sample ``start`` (which may lie past its end), zero-padded
    past its end. DatasetError when the file cannot be read, AudioError (naming the file and the time) on
    NaN or infinite samples."""
    try:
        with sf.SoundFile(str(path)) as handle:
            rate, frames = handle.samplerate, handle.frames
            handle.seek(min(start, frames))
            audio = handle.read(
                max(0, min(length, frames - start)), dtype="float32", always_2d=True
            ).T  # (C, n)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    check_finite(audio, path, start, rate)
    if audio.shape[-1] < length:
        audio = np.pad(audio, ((0, 0), (0, length - audio.shape[-1])))
    return np.ascontiguousarray(audio, dtype=np.float32)


def read_part(part: Part, read: Callable[[str, int, int], np.ndarray], start: int, length: int) -> np.ndarray:
    """``(C, length)``: the weighted sum of the part's sources, each from ``read(source, start, length)``
    (e.g. ``functools.partial(TrackReader().read, info)``, or a cache entry's ``read``)."""
    out = None
    for source, gain in part.terms:
        audio = read(source, start, length)
        audio = audio if gain == 1.0 else audio * np.float32(gain)
        out = audio if out is None else out + audio
    return out


def read_parts(
    info: TrackInfo, parts: Sequence[Part], start: int, length: int, reader: TrackReader | None = None
) -> np.ndarray:
    """``(P, C, length)``: each part read from the same track and offset, at ``info.rate``."""
    read = functools.partial((reader or TrackReader()).read, info)
    return np.stack([read_part(part, read, start, length) for part in parts])
