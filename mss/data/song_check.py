"""Is a song a MUSDB18 song? Streams of one length, and a mixture that is the sum of its stems.

MUSDB18 defines a song by its stems: the mixture is ``vocals + drums + bass + other`` (exactly for
MUSDB18-HQ's wav, within the AAC coding noise for ``.stem.mp4``) and every stream has one length (within
the AAC encoder's padding). Every figure built on a song (SDR, SDRi, the oracles, a training target)
rests on both, and a file can decode without complaint and still break them: a truncated mixture, another
song's mixture, a stem cut short. ``check_streams`` measures both on a song's decoded streams; a song that
fails is refused (``InvalidSongError``, naming the file, the figures and the bound) like an unreadable one.

The bounds, from measurements (``python -m mss.data.check ROOT|default|real-clips`` prints the figures):

- residual ``||mix - sum(stems)|| / ||mix||``: 0.026 and 0.170 on the two real MUSDB18 ``.stem.mp4`` clips
  at hand (the second clip's mixture is limited where its stems' sum peaks at 3.7), exactly 0 on all 112
  songs of the embedded generated set (its bus limiter keeps mixture == sum in 16-bit integers), while another
  song's mixture gives 1.3 to 2.3 (five pairs of generated test songs; about sqrt(2) when the two songs are
  equally loud and unrelated). ``RESIDUAL_BOUND`` = 0.5 leaves a margin of 3x over the worst real clip.
- lengths: MUSDB18's streams differ by the AAC padding (a few hundred to a couple of thousand samples);
  ``LENGTH_TOLERANCE_S`` = 0.1 s (4,410 samples at 44.1 kHz).

Checks are kept on disk (``CheckStore``), keyed by each file's path, size and modification time, so a
song is measured once whatever reads it next (evaluation, training, the browser, the listening study).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mss import SOURCES
from mss.errors import InvalidSongError
from mss.files import write_text_atomic

#: Largest accepted ``||mix - sum(stems)|| / ||mix||`` (see the module docstring for the measurements).
RESIDUAL_BOUND: float = 0.5
#: Largest accepted difference between the lengths of a song's streams, in seconds (codec padding).
LENGTH_TOLERANCE_S: float = 0.1
#: Samples read at a time when a song's residual is measured.
CHECK_BLOCK: int = 1 << 20
#: Bump when what a check measures changes: stored checks of another version are measured again.
CHECK_VERSION: int = 1

Reader = Callable[[str, int, int], np.ndarray]  # (stream, start, length) -> (C, length)


@dataclass(frozen=True)
class SongCheck:
    """What was measured on one song, and what is wrong with it (``problems``, empty when valid)."""

    track: str  # the track's key, "subset/name"
    mixture: str  # the mixture's file (named in messages)
    rate: int  # of the lengths below
    lengths: dict[str, int]  # samples per stream, mixture included
    residual: float | None  # ||mix - sum(stems)|| / ||mix|| over the common length; None: not all four stems
    problems: tuple[str, ...] = ()
    version: int = CHECK_VERSION
    bounds: tuple[float, float] = (RESIDUAL_BOUND, LENGTH_TOLERANCE_S)  # the bounds the verdict used

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def length_spread_s(self) -> float:
        return (max(self.lengths.values()) - min(self.lengths.values())) / max(1, self.rate)

    @property
    def message(self) -> str:
        """One line: the file, the figures, the reason."""
        return f"{self.mixture}: not a valid song ({self.track}): " + "; ".join(self.problems)

    def to_dict(self) -> dict:
        record = asdict(self)
        record["problems"] = list(self.problems)
        record["bounds"] = list(self.bounds)
        record["ok"] = self.ok
        record["length_spread_s"] = round(self.length_spread_s, 6)
        return record

    @classmethod
    def from_dict(cls, record: Mapping) -> SongCheck:
        return cls(
            track=str(record["track"]),
            mixture=str(record["mixture"]),
            rate=int(record["rate"]),
            lengths={str(k): int(v) for k, v in record["lengths"].items()},
            residual=None if record.get("residual") is None else float(record["residual"]),
            problems=tuple(record.get("problems", ())),
            version=int(record.get("version", 0)),
            bounds=tuple(record.get("bounds") or ()),
        )

    def __reduce__(self):  # dict fields: rebuilt through from_dict in another process
        return (SongCheck.from_dict, (self.to_dict(),))

    def require(self) -> SongCheck:
        """self when valid, else InvalidSongError with the message."""
        if not self.ok:
            raise InvalidSongError(self)
        return self


def length_problems(lengths: Mapping[str, int], files: Mapping[str, str], rate: int) -> list[str]:
    """The streams whose length differs from the mixture's by more than ``LENGTH_TOLERANCE_S``."""
    problems = []
    longest = max(lengths.values())
    if longest - min(lengths.values()) <= LENGTH_TOLERANCE_S * rate:
        return problems
    # name the odd ones out: the streams that differ from the length most streams share
    values = list(lengths.values())
    common = max(set(values), key=lambda n: (values.count(n), n))
    if values.count(common) * 2 <= len(values):  # no majority: every stream's length, plainly
        shown = ", ".join(f"{Path(files.get(n, n)).name} {length:,}" for n, length in lengths.items())
        return [
            f"stream lengths disagree by {(longest - min(values)) / rate:.3f} s, more than codec padding "
            f"({LENGTH_TOLERANCE_S:g} s): {shown} samples"
        ]
    for name, length in lengths.items():
        if abs(length - common) > LENGTH_TOLERANCE_S * rate:
            what = "the mixture" if name == "mixture" else f"the {name} stem"
            problems.append(
                f"{what} ({Path(files.get(name, name)).name}) has {length:,} samples ({length / rate:.3f} s), "
                f"the other streams {common:,} ({common / rate:.3f} s): lengths differ by "
                f"{abs(length - common) / rate:.3f} s, more than codec padding ({LENGTH_TOLERANCE_S:g} s)"
            )
    return problems


def mixture_residual(read: Reader, stems: Sequence[str], length: int) -> float:
    """``||mix - sum(stems)|| / ||mix||`` over ``length`` samples, read in blocks (0 for an all-silent song;
    inf when the mixture is silent and the stems are not)."""
    error = energy = 0.0
    for start in range(0, length, CHECK_BLOCK):
        n = min(CHECK_BLOCK, length - start)
        mix = read("mixture", start, n).astype(np.float64)
        total = np.zeros_like(mix)
        for stem in stems:
            total += read(stem, start, n)
        error += float(np.sum((mix - total) ** 2))
        energy += float(np.sum(mix**2))
    if energy == 0.0:
        return 0.0 if error == 0.0 else float("inf")
    return float(np.sqrt(error / energy))


def check_streams(
    track: str,
    files: Mapping[str, str],
    lengths: Mapping[str, int],
    rate: int,
    read: Reader,
    channels: Mapping[str, int] | None = None,
) -> SongCheck:
    """Measure a song: ``files``, ``lengths`` (and ``channels``, when known) per stream, mixture included;
    ``read`` its decoded audio."""  # fmt: skip
    lengths = {name: int(n) for name, n in lengths.items()}
    problems = length_problems(lengths, files, rate)
    mixed_channels = bool(channels) and len(set(channels.values())) > 1
    if mixed_channels:
        shown = ", ".join(f"{Path(files.get(n, n)).name} {c}" for n, c in channels.items())
        problems.append(f"the streams have different channel counts ({shown})")
    stems = [name for name in SOURCES if name in lengths]
    residual = None
    if len(stems) == len(SOURCES) and not mixed_channels:  # the mixture: the sum of the four MUSDB18 stems
        residual = mixture_residual(read, stems, min(lengths.values()))
        if not residual <= RESIDUAL_BOUND:
            problems.append(
                f"the mixture is not the sum of its stems: ||mix - sum(stems)|| / ||mix|| = {residual:.3g} "
                f"({20 * np.log10(residual) if residual > 0 else float('-inf'):+.1f} dB) over "
                f"{min(lengths.values()) / rate:.2f} s, above the bound {RESIDUAL_BOUND:g} (real MUSDB18 "
                f".stem.mp4 clips measure 0.03-0.17)"
            )
    return SongCheck(track, files.get("mixture", "mixture"), int(rate), lengths, residual, tuple(problems))


def is_current(record: Mapping) -> bool:
    """Whether a stored check was made by this version with these bounds (else it is measured again)."""
    bounds = [float(b) for b in record.get("bounds") or ()]
    return record.get("version") == CHECK_VERSION and bounds == [RESIDUAL_BOUND, LENGTH_TOLERANCE_S]


class CheckStore:
    """Checks on disk, one small JSON per song keyed by its files' paths, sizes and modification times."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, info) -> Path:
        stats = []
        for name, file in info.files:
            stat = os.stat(file)
            stats.append([name, str(Path(file).resolve()), stat.st_size, stat.st_mtime_ns])
        key = hashlib.sha1(json.dumps([CHECK_VERSION, stats]).encode()).hexdigest()[:16]
        return self.root / f"{key}.json"

    def lookup(self, info) -> SongCheck | None:
        try:
            check = SongCheck.from_dict(json.loads(self.path(info).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return check if is_current(check.to_dict()) else None

    def save(self, info, check: SongCheck) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path(info), json.dumps(check.to_dict(), indent=1))
        except OSError:
            pass  # a read-only cache only costs a second measurement
