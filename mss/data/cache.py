"""On-disk cache of decoded audio: each song is decoded (and resampled) once, then read by slices.

Why: a MUSDB18 ``.stem.mp4`` must be decoded whole (all five AAC streams, ~3.5 s and ~480 MB for a
5-minute song) before any chunk of it can be read, and a 44.1 kHz wav chunk must be resampled to the
model's 22.05 kHz for every training example (75% of the data time). Doing both once per song and
storing the result as a memory-mapped ``.npy`` turns reading a training chunk into a slice.

One cache entry = one song at one (sample rate, dtype): ``ROOT/<subset>-<song>-<key>.npy`` holding
``(K, C, T)`` (K streams in the order of ``meta["streams"]``: "mixture" then the sources), plus
``.json`` metadata written last (its presence marks a complete entry). The key hashes the cache
version, the spec and every source file's path, size and modification time, so an entry is rebuilt
when a file changes and is shared by every DataLoader worker, process and run that asks for the same
thing. Writes are atomic (temp file + ``os.replace``) and serialised by a lock file per entry.

Streams of a ``.stem.mp4`` differ in length by a few hundred samples (AAC padding): every entry is
cropped to its shortest stream, so mixture and stems are always aligned sample for sample. Each entry
also records its song's check (``mss.data.song_check``: stream lengths before the crop, the mixture's
residual to the sum of the stems); ``open`` refuses an entry whose song fails it (``InvalidSongError``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mss.audio import check_finite, read_stems, resample
from mss.data.song_check import SongCheck, check_streams, is_current
from mss.errors import AudioError, DatasetError, MSSError
from mss.files import atomic_path, write_text_atomic

#: Bumped when the stored format or the decoding/resampling changes (old entries are then ignored).
CACHE_VERSION: int = 1
DTYPES: tuple[str, ...] = ("float32", "float16", "int16")
#: int16 full scale (same convention as soundfile's PCM_16 reading: x / 32768).
INT16_SCALE: float = 32768.0


def default_cache_dir() -> Path:
    """``$MSS_CACHE_DIR`` or ``~/.cache/mss/decoded``."""
    base = os.environ.get("MSS_CACHE_DIR")
    return Path(base).expanduser() if base else Path.home() / ".cache" / "mss" / "decoded"


@dataclass(frozen=True)
class CacheSpec:
    """What an entry holds: audio at ``sample_rate`` (None: the files' own rate) stored as ``dtype``.

    float32 is lossless against the decoded, resampled signal (evaluation); float16 (relative error
    ~5e-4, i.e. ~66 dB below each sample) halves the disk and page-cache footprint for training.
    """

    sample_rate: int | None = None
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise DatasetError(f"cache dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.sample_rate is not None and self.sample_rate <= 0:
            raise DatasetError(f"cache sample_rate must be positive, got {self.sample_rate}")


def quantize(audio: np.ndarray, dtype: str) -> np.ndarray:
    """float32 audio -> the storage dtype (int16 clips to full scale)."""
    if dtype == "int16":
        return np.clip(np.round(audio * INT16_SCALE), -32768, 32767).astype(np.int16)
    return audio.astype(dtype, copy=False)


def dequantize(stored: np.ndarray) -> np.ndarray:
    """Stored samples -> float32 (what ``CachedSong.read`` returns)."""
    if stored.dtype == np.float16:
        return torch.from_numpy(np.ascontiguousarray(stored)).float().numpy()  # exact, ~10x numpy's astype
    if stored.dtype == np.int16:
        out = stored.astype(np.float32)
        out /= np.float32(INT16_SCALE)
        return out
    return stored.astype(np.float32, copy=False)


def decode_stream(info, source: str) -> tuple[np.ndarray, int]:
    """The whole stream ``source`` of a track at its file rate: ``(C, T)`` float32 and the rate.

    wav: read with soundfile. ``.stem.mp4``: only that stream is decoded (ffmpeg through stempeg).
    """
    path = info.file(source)
    if info.is_wav:
        try:
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from exc
        return np.ascontiguousarray(audio.T), int(rate)
    stream = dict(info.stem_ids)[source]
    try:
        return read_stems(path, stream)
    except AudioError as exc:
        raise DatasetError(f"{source} of {info.key!r}: {exc}") from exc


def stored_stream(info, source: str, spec: CacheSpec) -> tuple[np.ndarray, int]:
    """What an entry stores for one stream, before cropping: ``(C, T)`` in ``spec.dtype`` and the file rate.

    The whole stream is decoded and resampled in one piece (no chunk edges), then quantized; reading a
    cached chunk returns exactly ``dequantize(stored_stream(...)[0])[:, start:start + length]``.
    """
    audio, rate = decode_stream(info, source)
    check_finite(audio, f"{info.file(source)} ({info.key}, {source})", 0, rate)
    if spec.sample_rate is not None and rate != spec.sample_rate:
        audio = resample(audio, rate, spec.sample_rate)
    return quantize(audio, spec.dtype), rate


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60]


class CachedSong:
    """A complete cache entry, memory-mapped: ``read(source, start, length) -> (C, length)`` float32."""

    def __init__(self, path: Path, meta: dict):
        self.path = path
        self.meta = meta
        self.streams: tuple[str, ...] = tuple(meta["streams"])
        self.sample_rate: int = int(meta["sample_rate"])
        self.num_samples: int = int(meta["num_samples"])
        self.channels: int = int(meta["channels"])
        self._array: np.ndarray | None = None
        self._file: tuple[int, int, np.dtype, int] | None = None  # (fd, data offset, dtype, T stored)

    @property
    def array(self) -> np.ndarray:
        """The memory map ``(K, C, T)`` (opened on first use, so entries pickle cheaply into workers)."""
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __getstate__(self) -> dict:
        return {"path": self.path, "meta": self.meta}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["meta"])

    def index(self, source: str) -> int:
        try:
            return self.streams.index(source)
        except ValueError:
            raise DatasetError(
                f"{self.path.name} has no stream {source!r} (it has {list(self.streams)})"
            ) from None

    def _open_file(self) -> tuple[int, int, np.dtype, int]:
        if self._file is None:
            with open(self.path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = header(handle)
                if fortran or len(shape) != 3:
                    raise DatasetError(f"{self.path} is not a (K, C, T) C-ordered cache entry")
                offset = handle.tell()
            self._file = (os.open(self.path, os.O_RDONLY), offset, dtype, int(shape[2]))
        return self._file

    def _pread(self, index: int, start: int, length: int) -> np.ndarray:
        """``(C, n)`` stored samples by positioned reads, not through the memory map: the pages land in the
        page cache, not in this process's resident memory, so reading a whole long song stays flat."""
        fd, offset, dtype, total = self._open_file()
        n = max(0, min(length, total - start))
        out = np.empty((self.channels, n), dtype=dtype)
        for channel in range(self.channels):
            where = offset + ((index * self.channels + channel) * total + start) * dtype.itemsize
            data = os.pread(fd, n * dtype.itemsize, where)
            out[channel] = np.frombuffer(data, dtype=dtype, count=n)
        return out

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            os.close(self._file[0])

    def read(self, source: str, start: int, length: int) -> np.ndarray:
        """``(C, length)`` float32 from sample ``start`` at ``sample_rate``, zero-padded past the end."""
        start = max(0, int(start))
        piece = dequantize(self._pread(self.index(source), start, length))  # (C, n), own copy
        if piece.shape[-1] < length:
            piece = np.pad(piece, ((0, 0), (0, length - piece.shape[-1])))
        return np.ascontiguousarray(piece, dtype=np.float32)

    def read_scaled(self, source: str, start: int, out: np.ndarray, factor: float, order: np.ndarray) -> None:
        """``out (C, n) = factor * read(source, start, n)[order]`` in one pass (the training hot path:
        dequantizing, gain, sign and channel swap fused). Equal to that expression bit for bit: the
        int16 scale 2**-15 is exact, so one rounding happens either way."""
        stored = self.array[self.index(source), :, max(0, int(start)) : max(0, int(start)) + out.shape[-1]]
        if stored.dtype == np.float16:  # numpy's float16 conversion is slow: go through read()
            np.multiply(self.read(source, start, out.shape[-1])[order], np.float32(factor), out=out)
            return
        available = stored.shape[-1]
        step = (
            np.float32(factor) / np.float32(INT16_SCALE) if stored.dtype == np.int16 else np.float32(factor)
        )
        for channel, source_channel in enumerate(order):
            np.multiply(stored[source_channel], step, out=out[channel, :available], dtype=np.float32)
        out[:, available:] = 0.0


class AudioCache:
    """Decoded songs on disk at one ``CacheSpec`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None, spec: CacheSpec = CacheSpec()):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.spec = spec

    def key(self, info) -> str:
        """Hash of what the entry depends on: version, spec, and each file's path, size and mtime."""
        files = []
        for name, path in info.files:
            try:
                stat = os.stat(path)
            except OSError as exc:
                raise DatasetError(f"cannot read {path} (track {info.key!r}): {exc.strerror}") from exc
            files.append([name, str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
        record = [CACHE_VERSION, self.spec.sample_rate, self.spec.dtype, files, list(info.stem_ids)]
        return hashlib.sha1(json.dumps(record).encode()).hexdigest()[:16]

    def entry_path(self, info) -> Path:
        return self.root / f"{_safe(info.subset)}-{_safe(info.name)}-{self.key(info)}.npy"

    def lookup(self, info) -> CachedSong | None:
        """The complete entry of ``info``, or None."""
        path = self.entry_path(info)
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        return CachedSong(path, meta) if path.is_file() else None

    def open(self, info) -> CachedSong:
        """The entry of ``info``, built first when missing (other processes wait for one build);
        InvalidSongError when its song fails the song check, however often it is opened."""
        found = self.lookup(info)
        if found is not None:
            self.check(info, found).require()
            return found
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.entry_path(info)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                found = self.lookup(info)
                if found is None:
                    found = self._build(info, path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self.check(info, found).require()
        return found

    def check(self, info, entry: CachedSong) -> SongCheck:
        """The song check of an entry: from its metadata, or measured now on the entry (entries built before
        checks existed) and written into the metadata."""
        record = entry.meta.get("check")
        if record is not None and is_current(record):
            return SongCheck.from_dict(record)
        stored = entry.meta.get("source_lengths") or [entry.num_samples] * len(entry.streams)
        lengths = dict(zip(entry.streams, stored, strict=True))
        check = check_streams(info.key, dict(info.files), lengths, entry.sample_rate, entry.read)
        entry.meta["check"] = check.to_dict()
        try:
            write_text_atomic(entry.path.with_suffix(".json"), json.dumps(entry.meta, indent=1))
        except OSError:
            pass  # a read-only cache only costs a second measurement
        return check

    def _build(self, info, path: Path) -> CachedSong:
        names = [name for name, _ in info.files]
        decoded, rates = [], set()
        for name in names:  # one stream in memory at a time (plus the stored ones, at the storage dtype)
            stored, rate = stored_stream(info, name, self.spec)
            rates.add(rate)
            decoded.append(stored)
        if len(rates) != 1:
            raise DatasetError(f"track {info.key!r} mixes sample rates {sorted(rates)}")
        channels = {audio.shape[0] for audio in decoded}
        if len(channels) != 1:
            raise DatasetError(f"track {info.key!r} mixes channel counts {sorted(channels)}")
        length = min(audio.shape[-1] for audio in decoded)  # AAC streams differ by their padding
        if length == 0:
            raise DatasetError(f"track {info.key!r} has an empty stream (0 samples)")
        rate = self.spec.sample_rate or rates.pop()
        check = check_streams(
            info.key,
            dict(info.files),
            {name: audio.shape[-1] for name, audio in zip(names, decoded, strict=True)},
            rate,
            lambda name, start, n: dequantize(decoded[names.index(name)][:, start : start + n]),
        )
        with atomic_path(path, ".npy.tmp") as tmp:  # created with the umask's mode
            out = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=self.spec.dtype, shape=(len(names), channels.pop(), length)
            )
            for k, audio in enumerate(decoded):
                out[k] = audio[:, :length]
            out.flush()
            del out
        meta = {
            "version": CACHE_VERSION,
            "track": info.key,
            "streams": names,
            "sample_rate": int(rate),
            "num_samples": int(length),
            "channels": int(decoded[0].shape[0]),
            "dtype": self.spec.dtype,
            "source_lengths": [int(audio.shape[-1]) for audio in decoded],
            "check": check.to_dict(),  # kept with the entry: a song is measured once (refused in open)
        }
        write_text_atomic(path.with_suffix(".json"), json.dumps(meta, indent=1))
        return CachedSong(path, meta)

    def estimate_bytes(self, infos: Sequence) -> int:
        """Disk size the entries of ``infos`` will take (from the files' lengths and rates)."""
        itemsize = np.dtype(self.spec.dtype).itemsize
        total = 0
        for info in infos:
            rate = self.spec.sample_rate or info.rate
            total += len(info.files) * 2 * int(np.ceil(info.num_samples * rate / info.rate)) * itemsize
        return total

    def ensure(self, infos: Sequence, progress: bool = True, desc: str = "decoding") -> dict:
        """Build every missing entry of ``infos`` (tqdm bar, size estimate and build time printed).

        Returns ``{"songs", "built", "seconds", "bytes", "failed"}``. A song that cannot be decoded (corrupt,
        empty, NaN or infinite samples, mixed rates) is left out and listed in ``failed`` as
        ``(track key, reason naming the file)``; the other songs are cached.
        """
        missing = [info for info in infos if self.lookup(info) is None]
        stats = {"songs": len(infos), "built": len(missing), "seconds": 0.0, "bytes": 0, "failed": []}
        if missing:
            from tqdm import tqdm

            estimate = self.estimate_bytes(missing)
            rate = f"{self.spec.sample_rate} Hz" if self.spec.sample_rate else "the files' rate"
            if progress:
                print(
                    f"{desc}: caching {len(missing)} of {len(infos)} songs at {rate}, {self.spec.dtype}, "
                    f"into {self.root} (about {estimate / 1e9:.2f} GB); once only",
                    file=sys.stderr,
                    flush=True,
                )
            start = time.perf_counter()
            for info in tqdm(missing, desc=desc, unit="song", disable=not progress):
                try:
                    self.open(info)
                except MSSError as exc:  # DatasetError, or AudioError for NaN / infinite samples
                    stats["failed"].append((info.key, str(exc)))
            stats["seconds"] = time.perf_counter() - start
            stats["built"] -= len(stats["failed"])
            if progress:
                print(f"{desc}: cache built in {stats['seconds']:.1f} s", file=sys.stderr, flush=True)
        failed = {key for key, _ in stats["failed"]}
        entries = []
        for info in infos:
            entry = self.lookup(info)
            if entry is None or info.key in failed:
                continue
            check = self.check(info, entry)  # entries built earlier are refused here, as new ones in open
            if not check.ok:
                stats["failed"].append((info.key, check.message))
            entries.append(entry)
        stats["bytes"] = sum(entry.path.stat().st_size for entry in entries)
        return stats
