"""Output folder names for separated songs: one per input, never shared by two inputs."""

from __future__ import annotations

import os
from pathlib import Path

#: File names that say nothing about the song: in MUSDB18-HQ a song is ``<song>/mixture.wav``.
GENERIC_STEMS: tuple[str, ...] = ("mixture", "mix")


def song_name(path: str | os.PathLike) -> str:
    """Folder name for a song's stems: the file name without its extension(s), e.g. ``x.stem.mp4`` -> ``x``;
    for a MUSDB18-HQ ``<song>/mixture.wav``, the song's folder name."""
    path = Path(path)
    name = path.name
    for suffix in (".stem.mp4", ".stem.m4a"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    stem = Path(name).stem
    if stem.lower() in GENERIC_STEMS and path.parent.name not in ("", ".", "/"):
        return path.parent.name
    return stem


def _prefixed_name(path: Path, depth: int) -> str:
    """``song_name(path)`` prefixed with the ``depth`` folders above the song (``a-song``)."""
    anchor = path.parent.parent if path.stem.lower() in GENERIC_STEMS else path.parent
    prefix = [part for part in anchor.parts[-depth:] if part not in ("/", "")]
    return "-".join([*prefix, song_name(path)])


def output_names(paths: list[str | os.PathLike]) -> list[str]:
    """One distinct output folder name per input: ``song_name``, or, where two inputs share it
    (``a/song.wav`` and ``b/song.wav``), the name prefixed with as many parent folders as needed
    (``a-song``, ``b-song``), so no input's stems ever overwrite another's."""
    resolved = [Path(p).absolute() for p in paths]
    names = [song_name(p) for p in resolved]
    for depth in range(1, 64):
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            return names
        names = [
            _prefixed_name(path, depth) if n in clashes else n
            for path, n in zip(resolved, names, strict=True)
        ]
    return [f"{name}-{i + 1}" for i, name in enumerate(names)]
