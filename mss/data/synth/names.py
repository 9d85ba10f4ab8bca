"""Human-readable, path-safe song titles."""

from __future__ import annotations

import numpy as np

ADJECTIVES = (
    "Cobalt",
    "Amber",
    "Silent",
    "Golden",
    "Velvet",
    "Electric",
    "Hollow",
    "Crimson",
    "Paper",
    "Midnight",
    "Neon",
    "Quiet",
    "Wandering",
    "Copper",
    "Distant",
    "Frozen",
    "Lucky",
    "Northern",
    "Restless",
    "Silver",
    "Broken",
    "Gentle",
    "Wild",
    "Faded",
    "Bright",
    "Lonely",
    "Hidden",
    "Salty",
    "Rusty",
    "Emerald",
)
NOUNS = (
    "Harbor",
    "Engine",
    "Garden",
    "Highway",
    "Lantern",
    "River",
    "Mirror",
    "Station",
    "Orchard",
    "Signal",
    "Avenue",
    "Canyon",
    "Satellite",
    "Window",
    "Harvest",
    "Compass",
    "Island",
    "Meadow",
    "Skyline",
    "Motel",
    "Parade",
    "Carousel",
    "Tide",
    "Ember",
    "Valley",
    "Radio",
    "Letters",
    "Weather",
    "Horizon",
    "Bridge",
)


def song_title(index: int, rng: np.random.Generator) -> str:
    """``Synth 001 - Cobalt Harbor``: the number makes it unique, the words make it memorable."""
    return f"Synth {index + 1:03d} - {ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]} {NOUNS[int(rng.integers(len(NOUNS)))]}"
