"""The study's dataset: opening it and measuring songs. Shared by study.py (validation) and stimuli.py
(rendering), so that neither imports the other (study.py -> dataset.py <- stimuli.py).

    open_study_db(study) -> musdb.DB        # anything with .dataset ("default" or a root) and .subset
    song_duration_s(track) -> float
"""

from __future__ import annotations


def open_study_db(study):
    """The study's dataset subset as a musdb.DB (through mss.data.open_db)."""
    # lazy: keeps `import listening_study` light for processes that only store ratings
    from mss.data import open_db

    return open_db(None if study.dataset == "default" else study.dataset, subset=study.subset)


def song_duration_s(track) -> float:
    duration = getattr(track, "duration", None)
    if duration:
        return float(duration)
    return track.audio.shape[0] / float(track.rate)
