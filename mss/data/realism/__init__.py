"""The realism gauge: statistics of generated stems beside real MUSDB18 train-subset stems.

``stats`` describes one stem, ``compare`` summarises sets of songs and scores their distance to the
real stems, ``sources`` reads real and generated songs, ``figure`` draws them; ``python -m
mss.data.realism`` runs it all.
"""

from .compare import differences, distance, summarise
from .stats import StemStats, stem_statistics

__all__ = ["StemStats", "differences", "distance", "stem_statistics", "summarise"]
