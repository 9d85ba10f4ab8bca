"""The study's dataset: opening it and measuring songs. Shared by study.py (validation) and stimuli.py
(rendering), so that neither imports the other (study.py -> dataset.py <- stimuli.py).

    open_study_db(study) -> musdb.DB        # anything with .dataset ("default" or a root) and .subset
    song_duration_s(track) -> float
    silent_targets(track, targets) -> list[str]   # the targets a song does not have
"""

from __future__ import annotations

from mss.audio import SILENCE_DB, peak_db
from mss.data import open_db, track_stems


def open_study_db(study):
    """The study's dataset subset as a musdb.DB (through mss.data.open_db)."""
    return open_db(None if study.dataset == "default" else study.dataset, subset=study.subset)


def song_duration_s(track) -> float:
    duration = getattr(track, "duration", None)
    if duration:
        return float(duration)
    return track.audio.shape[0] / float(track.rate)


def silent_targets(track, targets) -> list[str]:
    """The ``targets`` that are silent over the whole song (peak below ``mss.audio.SILENCE_DB``): parts the
    song does not have. The embedded dataset writes every extra stem for every song, as digital silence
    where the song has no such instrument (``piano.wav`` of a song without piano)."""
    targets = list(targets)
    # All at once: with "other" and "piano" together, "other" means the rest of other, as in the stimuli.
    stems = track_stems(track, targets)  # (S, C, T)
    return [target for target, audio in zip(targets, stems, strict=True) if peak_db(audio) < SILENCE_DB]
