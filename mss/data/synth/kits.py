"""Recorded drum kits: Hydrogen drumkits (Debian's ``hydrogen-drumkits``) played as a one-shot sampler.

A Hydrogen kit is a ``drumkit.xml`` listing instruments, each with velocity layers of recorded
samples. Instruments are mapped to General MIDI percussion keys by their names ("Pearl Kick",
"Sabian Hat Open", "Tom Floor"...); a note picks the layer of its velocity and plays the sample at a
velocity-scaled gain; open hi-hats are choked by the next closed or pedal hat, as on a real kit.
Notes of keys the kit lacks are handed back to be rendered by FluidSynth.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
from scipy import signal

KIT_DIRS = ("/usr/share/hydrogen/data/drumkits",)
#: (regex on the lower-cased instrument name, GM keys it plays), first match wins per key.
NAME_TO_KEYS: tuple[tuple[str, tuple[int, ...]], ...] = (
    (r"roll|swish|choke|flink|fx|noise|reverse", ()),
    (r"kick|bass ?drum|\bbd\b", (36, 35)),
    (r"side ?stick|rim ?click|\bstick\b|rimshot", (37,)),
    (r"clap", (39,)),
    (r"snare", (38, 40)),
    (r"(hat|hh).*(pedal|foot)|pedal.*(hat|hh)", (44,)),
    (r"(hat|hh).*(open|semi)|open.*(hat|hh)", (46,)),
    (r"(hat|hh).*(closed|clos)|closed.*(hat|hh)", (42,)),
    (r"floor|tom.*(low|lo\b|3|16)", (41, 43)),
    (r"tom.*(mid|2|13)", (45, 47)),
    (r"tom.*(hi|high|1|12)", (48, 50)),
    (r"\btom", (45, 47, 48)),
    (r"china", (52,)),
    (r"splash", (55,)),
    (r"crash", (49, 57)),
    (r"(ride|cymbal).*(bell|cup)|bell.*ride", (53,)),
    (r"ride", (51, 59)),
    (r"cowbell", (56,)),
    (r"tamb", (54,)),
    (r"shak|maraca|cabasa", (70,)),
)
CHOKED_BY = {46: (42, 44)}  # open hat: stopped by a closed or pedal hat


@dataclass
class Layer:
    low: float  # velocity range (0-1) of the layer
    high: float
    gain: float
    path: Path


@dataclass
class Kit:
    name: str
    path: Path
    keys: dict[int, list[Layer]]  # GM key -> velocity layers


def find_kits(dirs: tuple[str, ...] = KIT_DIRS) -> list[Kit]:
    """The kits (folders with a drumkit.xml, sorted) that play at least a kick, a snare and a closed hi-hat."""
    extra = os.environ.get("MSS_DRUMKITS")
    roots = [Path(d) for d in ((extra,) if extra else ()) + dirs]
    kits = []
    for root in roots:
        if root.is_dir():
            for xml in sorted(root.glob("*/drumkit.xml")):
                try:
                    kit = load_kit(xml.parent)
                except (ET.ParseError, OSError, ValueError):
                    continue
                if {36, 38, 42} <= set(kit.keys):
                    kits.append(kit)
    return kits


def _text(element, tag: str, default: str = "") -> str:
    found = element.find(tag)
    return found.text if found is not None and found.text is not None else default


def load_kit(folder: Path) -> Kit:
    """Parse ``folder/drumkit.xml`` (namespaced or not) into GM key -> layers (samples not read yet)."""
    root = ET.parse(folder / "drumkit.xml").getroot()
    for element in root.iter():  # drop the XML namespace
        element.tag = element.tag.split("}", 1)[-1]
    keys: dict[int, list[Layer]] = {}
    for instrument in root.iter("instrument"):
        name = _text(instrument, "name").lower()
        layers = []
        for layer in instrument.iter("layer"):
            filename = _text(layer, "filename")
            if filename and (folder / filename).is_file():
                layers.append(
                    Layer(
                        float(_text(layer, "min", "0")),
                        float(_text(layer, "max", "1")),
                        float(_text(layer, "gain", "1")) * float(_text(instrument, "volume", "1")),
                        folder / filename,
                    )
                )
        if not layers:
            continue
        for pattern, gm_keys in NAME_TO_KEYS:
            if re.search(pattern, name):
                for key in gm_keys:
                    keys.setdefault(key, layers)
                break
    return Kit(_text(root, "name", folder.name), folder, keys)


class Sampler:
    """Plays one kit at ``sample_rate``; samples are read (and resampled) on first use."""

    def __init__(self, kit: Kit, sample_rate: int) -> None:
        self.kit = kit
        self.sample_rate = sample_rate
        self._cache: dict[Path, np.ndarray] = {}

    def _sample(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            audio, rate = sf.read(path, dtype="float32", always_2d=True)  # (T, C)
            audio = audio.T
            if audio.shape[0] == 1:
                audio = np.repeat(audio, 2, axis=0)
            audio = audio[:2]
            if rate != self.sample_rate:
                gcd = np.gcd(rate, self.sample_rate)
                audio = signal.resample_poly(audio, self.sample_rate // gcd, rate // gcd, axis=-1)
            self._cache[path] = np.ascontiguousarray(audio, dtype=np.float32)
        return self._cache[path]

    def render(
        self, notes: list[pretty_midi.Note], n_samples: int
    ) -> tuple[np.ndarray, list[pretty_midi.Note]]:
        """-> ((2, n_samples) float32, the notes this kit cannot play)."""
        out = np.zeros((2, n_samples), dtype=np.float32)
        missing = []
        notes = sorted(notes, key=lambda n: n.start)
        starts = {
            key: [int(n.start * self.sample_rate) for n in notes if n.pitch in chokers]
            for key, chokers in CHOKED_BY.items()
        }
        for note in notes:
            layers = self.kit.keys.get(note.pitch)
            if not layers:
                missing.append(note)
                continue
            velocity = note.velocity / 127
            fitting = [layer for layer in layers if layer.low <= velocity <= layer.high] or layers
            layer = fitting[0]
            sample = self._sample(layer.path)
            start = int(note.start * self.sample_rate)
            if start >= n_samples:
                continue
            length = min(sample.shape[1], n_samples - start)
            if note.pitch in starts:  # choke at the next closing hat, with a 10-ms fade
                later = [s for s in starts[note.pitch] if s > start]
                if later:
                    length = min(length, later[0] - start + int(0.01 * self.sample_rate))
            piece = sample[:, :length] * np.float32(layer.gain * velocity**1.2)
            fade = min(length, int(0.01 * self.sample_rate))
            if length < sample.shape[1] and fade > 0:
                piece[:, -fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
            out[:, start : start + length] += piece
        return out, missing
