"""Song plan: style, tempo, key, song form (sections with chords per bar) and the time grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .theory import MAJOR_PROGRESSIONS, MINOR_PROGRESSIONS, Chord, Key, progression

SWUNG = 0.2  # a style swung this much or more (shuffle) plays no 16th-note figures (generator v6)


@dataclass(frozen=True)
class Style:
    name: str
    tempo_bpm: tuple[float, float]
    swing: float  # 0 = straight; 1/3 = full triplet swing of the 8th notes
    minor_probability: float
    seventh_chords: bool
    drum_kits: tuple[int, ...]  # GM drum kit presets (bank 128)

    @property
    def swung(self) -> bool:
        """Swung enough (``SWUNG``) that an off-beat 16th would land next to the following one."""
        return self.swing >= SWUNG


STYLES: dict[str, Style] = {
    "rock": Style("rock", (100, 140), 0.0, 0.4, False, (0, 16, 8)),
    "pop": Style("pop", (90, 124), 0.0, 0.3, False, (0, 8)),
    "funk": Style("funk", (92, 112), 0.08, 0.5, True, (0, 8)),
    "ballad": Style("ballad", (64, 82), 0.0, 0.35, True, (0, 8, 40)),
    "electronic": Style("electronic", (116, 128), 0.0, 0.5, False, (24, 25)),
    "shuffle": Style("shuffle", (88, 116), 0.3, 0.3, True, (0, 8, 32)),
}

# Section lengths in bars and which roles normally play. Parts refine this per song.
SECTION_BARS = {"intro": 2, "verse": 8, "pre": 2, "chorus": 8, "bridge": 4, "break": 2, "outro": 2}
SECTION_ENERGY = {
    "intro": 0.45,
    "verse": 0.6,
    "pre": 0.7,
    "chorus": 0.9,
    "bridge": 0.65,
    "break": 0.35,
    "outro": 0.5,
}
VOCAL_SECTIONS = {"verse", "pre", "chorus", "bridge"}

FORMS = (
    ("intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "verse", "pre", "chorus", "break", "verse", "pre", "chorus", "chorus", "outro"),
    ("verse", "chorus", "verse", "chorus", "break", "bridge", "chorus", "outro"),
    ("intro", "verse", "verse", "chorus", "bridge", "chorus", "chorus", "outro"),
)


@dataclass(frozen=True)
class Section:
    name: str
    index: int  # position in the form (0, 1, ...)
    start_bar: int  # relative to the start of the rendered window (may be negative when cut)
    n_bars: int
    chords: tuple[Chord, ...]  # one per bar
    energy: float

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.n_bars


@dataclass(frozen=True)
class SongPlan:
    style: Style
    tempo_bpm: float
    key: Key
    sections: tuple[Section, ...]
    n_bars: int  # bars composed (covers the whole song)
    duration_s: float

    @property
    def bar_s(self) -> float:
        return 4 * 60.0 / self.tempo_bpm

    @property
    def phrase_bars(self) -> int:
        """Bars per sung phrase: two when a bar is short (under 2.8 s), else one. The singer's phrases and
        the v6 lead's answers between them are cut alike."""
        return 2 if self.bar_s < 2.8 else 1

    @property
    def step_s(self) -> float:
        """Length of a 16th note."""
        return self.bar_s / 16

    def time(self, bar: int, step: float) -> float:
        """Seconds at ``step`` (16th notes, may be fractional) of ``bar``, with the style's swing on off-beat 8ths."""
        offset = 0.0
        if self.style.swing and step % 4 == 2:
            offset = self.style.swing * 2 * self.step_s
        return (bar * 16 + step) * self.step_s + offset

    def chord_at(self, bar: int) -> Chord:
        section = self.section_at(bar)
        return section.chords[min(max(bar - section.start_bar, 0), section.n_bars - 1)]

    def section_at(self, bar: int) -> Section:
        for section in self.sections:
            if section.start_bar <= bar < section.end_bar:
                return section
        return self.sections[0] if bar < self.sections[0].start_bar else self.sections[-1]


def plan_song(rng: np.random.Generator, style_name: str, duration_s: float) -> SongPlan:
    """Pick tempo and key, lay out a song form and cut a window of ``duration_s`` seconds from it.

    The window starts at the beginning of a section that has vocals (or a bar or two before, so a
    drum fill leads in), like the excerpts of MUSDB18's sample set.
    """
    style = STYLES[style_name]
    tempo = float(np.round(rng.uniform(*style.tempo_bpm)))
    mode = "minor" if rng.random() < style.minor_probability else "major"
    key = Key(int(rng.integers(12)), mode)
    pool = MAJOR_PROGRESSIONS if mode == "major" else MINOR_PROGRESSIONS
    picks = rng.choice(len(pool), size=3, replace=False)
    texts = {"verse": pool[picks[0]], "chorus": pool[picks[1]], "bridge": pool[picks[2]]}
    texts["intro"] = texts["outro"] = texts["break"] = texts["chorus"]
    texts["pre"] = "IV V" if mode == "major" else "iv V"
    form = FORMS[int(rng.integers(len(FORMS)))]
    bar_s = 4 * 60.0 / tempo
    needed = int(np.ceil(duration_s / bar_s)) + 1
    short = needed < 20  # short songs get 4-bar verses and choruses so more sections fit
    layout = [(name, 4 if short and name in ("verse", "chorus") else SECTION_BARS[name]) for name in form]
    while sum(n for _, n in layout) < needed + 4:  # a long excerpt: more choruses before the outro
        layout.insert(len(layout) - 1, ("chorus", SECTION_BARS["chorus"]))
    starts = np.cumsum([0] + [n for _, n in layout])
    total = int(starts[-1])
    candidates = [int(starts[i]) for i, (name, _) in enumerate(layout) if name in VOCAL_SECTIONS]
    candidates = [c for c in candidates if c + needed <= total] or [0]
    window_start = int(rng.choice(candidates))
    if window_start >= 2 and rng.random() < 0.35:
        window_start -= int(rng.integers(1, 3))
    sections = []
    for i, (name, bars) in enumerate(layout):
        start = int(starts[i]) - window_start
        if start + bars <= 0 or start >= needed:
            continue
        chords = progression(texts[name], key, seventh=style.seventh_chords and rng.random() < 0.7)
        per_bar = tuple(chords[b % len(chords)] for b in range(bars))
        energy = SECTION_ENERGY[name] + float(rng.uniform(-0.05, 0.05))
        sections.append(Section(name, i, start, bars, per_bar, energy))
    return SongPlan(style, tempo, key, tuple(sections), needed, float(duration_s))
