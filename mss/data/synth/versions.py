"""What each generator version does, in one table: the one place to read, or change, how versions differ.

A version is a frozen record of the choices the generator makes from it; the code asks the record, never
compares version numbers. Adding a version is one new row of ``GENERATORS`` (and, where it does something
new, a field and the code that reads it), e.g.

    GeneratorVersion(8, "what it changed", production=5, guitar_led=True, busy=False, singer="hts")

Versions whose records agree in ``composition`` compose the same songs for a seed (3 and 4; 5 and 7), unless a
song's render is rejected and composed again from the next attempt's stream (see ``docs/data.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mss.errors import DatasetError


@dataclass(frozen=True)
class GeneratorVersion:
    """One generator version.

    number: the version (recorded in each dataset's manifest as ``generator_version``).
    summary: one line on what it changed, for ``--help`` and the docs.
    production: ``None``: parts go through ``effects`` (hand-written scipy chains, v3's mix); else the key of
        ``production.VOICINGS`` whose settings its pedalboard chains draw from, with a studio room, a bus
        compressor and ``players.Band``'s sources (v4 on).
    guitar_led: the accompaniment is led by guitars and piano plays in 4 songs of 10 (else 7 of 10).
    busy: busier bass and accompaniment parts and a melodic lead in "other" (v6).
    singer: who speaks the sung words, one of ``voice.SPEECH_ENGINES``: "espeak" (espeak-ng's formant
        synthesis) or "hts" (Festival's HTS voice).
    """

    number: int
    summary: str
    production: int | None
    guitar_led: bool
    busy: bool
    singer: str

    def __post_init__(self) -> None:
        if self.production is None and self.singer != "espeak":  # v3's players sing with espeak-ng only
            raise ValueError(
                f"generator v{self.number}: only the production chains sing with {self.singer!r}"
            )

    @property
    def composition(self) -> tuple[bool, bool]:
        """What decides the songs it composes for a seed, ``(guitar_led, busy)``: equal for versions that
        compose the same songs (the realism gauge pairs their songs by it)."""
        return self.guitar_led, self.busy

    def has_piano(self, index: int) -> bool:
        """Whether song ``index`` has a piano part, at fixed positions so even a tiny dataset has piano songs:
        4 songs in 10 when guitar-led (real accompaniment is led by guitars more often than by a piano), else
        7 in 10."""
        if self.guitar_led:
            return index % 10 in (0, 3, 6, 8)
        return index % 10 not in (2, 5, 8)


#: every version this code renders (1 and 2 are rendered no more)
GENERATORS: Mapping[int, GeneratorVersion] = MappingProxyType({
    row.number: row
    for row in (
        GeneratorVersion(
            3, "several SoundFonts, recorded drum kits, sung vocals with lyrics, a bus limiter",
            production=None, guitar_led=False, busy=False, singer="espeak",
        ),
        GeneratorVersion(
            4, "production that sounds recorded (production.py)",
            production=4, guitar_led=False, busy=False, singer="espeak",
        ),
        GeneratorVersion(
            5, "v4 voiced like the realism gauge's recorded stems, guitar-led, piano in 4 songs of 10",
            production=5, guitar_led=True, busy=False, singer="espeak",
        ),
        GeneratorVersion(
            6, 'v5 with busier parts and a melodic lead in "other" (lead.py)',
            production=5, guitar_led=True, busy=True, singer="espeak",
        ),
        GeneratorVersion(
            7, "v5's songs sung by Festival's HTS voice instead of espeak-ng (hts.py)",
            production=5, guitar_led=True, busy=False, singer="hts",
        ),
    )
})  # fmt: skip
VERSIONS = tuple(GENERATORS)
#: the embedded default dataset's version; bumping it rebuilds that dataset (its manifest records it)
DEFAULT_VERSION = 3


def generator(version: int) -> GeneratorVersion:
    """The record of generator ``version``; DatasetError unless this code renders it."""
    try:
        return GENERATORS[version]
    except (KeyError, TypeError):
        raise DatasetError(
            f"unknown generator version {version!r}; this code renders versions {VERSIONS}"
        ) from None


def check_version(version: int) -> None:
    """DatasetError unless this code renders generator ``version``."""
    generator(version)


def versions_help() -> str:
    """One line per version, for ``--help``."""
    return "; ".join(f"{g.number}: {g.summary}" for g in GENERATORS.values()).replace("%", "%%")  # argparse
