"""The low-pass anchors of ITU-R BS.1534-3, as the study design defines them: the standard's cutoffs, and how
far a cutoff may move so that an anchor is heard on a stem with little high-frequency energy.

Design constants only: the filtering itself is ``listening_study.delivery.processing``, which reads these,
and the analysis reads which stimuli are the low-pass anchors from here too.
"""

from __future__ import annotations

#: BS.1534-3's low-pass anchors: the low (3.5 kHz) and the mid (7 kHz) one.
STANDARD_CUTOFFS_HZ: dict[str, float] = {"anchor35": 3500.0, "anchor70": 7000.0}
#: A low-pass anchor is there to be heard: what it takes away must be at least this share of the reference's
#: energy (dB re its total: -30 dB is 0.1%). The standard's cutoffs assume full-band audio; a bass stem has
#: -41 to -58 dB of its energy above 3.5 kHz, so its 3.5 kHz low-pass sounds like the reference itself.
ANCHOR_AUDIBLE_DB = -30.0
#: The lowest cutoff an anchor moves down to, whatever the reference.
ANCHOR_FLOOR_HZ = 100.0


def standard_cutoffs(anchors) -> dict[str, float]:
    """BS.1534-3's cutoff of each low-pass anchor in ``anchors`` (the mixture anchor has none)."""
    return {anchor: STANDARD_CUTOFFS_HZ[anchor] for anchor in anchors if anchor in STANDARD_CUTOFFS_HZ}
