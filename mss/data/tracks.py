"""One song's files and streams: TrackInfo (file names, lengths), targets planned as sums of stems (Part),
the song check measured once per song, and reading (TrackReader: wav at an offset, other formats through
the decoded-audio cache).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from mss import MUSDB_SAMPLE_RATE, SOURCES
from mss.audio import check_finite, resample
from mss.data.cache import AudioCache, CachedSong, CacheSpec, default_cache_dir
from mss.data.song_check import CheckStore, SongCheck, check_streams
from mss.errors import DatasetError, InvalidSongError


def track_recipes(track) -> tuple[list[str], dict]:
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
    sources, recipes = track_recipes(track)
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


def setup_of(db) -> tuple[list[str], dict]:
    """``(stem names, {target: {stem: gain}})`` of a musdb database: what ``plan_parts`` splits."""
    recipes = {name: dict(sources) for name, sources in db.setup["targets"].items()}
    return list(db.sources_names), recipes


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
