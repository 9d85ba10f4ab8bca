"""The embedded default dataset: procedurally composed multitrack songs rendered with a GM SoundFont.

Like Slakh2100, songs are symbolic (pretty_midi) and rendered per instrument through FluidSynth, then
mixed with per-part EQ, compression, panning and a shared room reverb. Output: the MUSDB18-HQ layout
(``ROOT/{train,test}/<song>/{mixture,vocals,drums,bass,other,piano}.wav``, float32 or 16-bit) or the
MUSDB18 one (``ROOT/{train,test}/<song>.stem.mp4``, see ``formats``), ``setup.yaml`` for musdb and
``manifest.json``. ``python -m mss.data.synth ROOT --preset tiny|default|large|musdb|musdb-mini --seed N
[--format wav|stems] [--subtype FLOAT|PCM_16]``.
"""

from .mix import EXTRA_STEMS
from .presets import DATASET_PRESETS, SynthPreset
from .song import build_song
from .writer import generate_dataset, generator_speed, setup_config

__all__ = [
    "EXTRA_STEMS",
    "DATASET_PRESETS",
    "SynthPreset",
    "build_song",
    "generate_dataset",
    "generator_speed",
    "setup_config",
]
