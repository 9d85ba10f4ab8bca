"""A session's design: trial order, the letters of every trial and familiarization page, the volume
page's excerpt, all from one seed (``StudyKey.seed("design", session_id)``: reproducible with the study
key, not without it).

    design_session(seed, trials, n_familiarization=0) -> (trial_order, {trial_id: SessionTrial},
                                                          familiarization pages, volume trial id)
    SessionTrial(trial_id, song, target, start_s, end_s, reference, labels, stimuli, mode)
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from listening_study.delivery.stimuli import Trial


@dataclass(frozen=True)
class SessionTrial:
    trial_id: str
    song: str
    target: str
    start_s: float
    end_s: float
    reference: str  # stimulus id of the open reference (server side only)
    labels: dict[str, str]  # screen label -> true condition name (server side only)
    stimuli: dict[str, str]  # screen label -> stimulus id (server side only; the page gets tokens)
    mode: str = "mushra"

    @property
    def screen_labels(self) -> list[str]:
        return sorted(self.labels)


def _labelled(trial: Trial, rng: np.random.Generator) -> SessionTrial:
    names = list(trial.conditions)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    labels = dict(zip(string.ascii_uppercase, shuffled, strict=False))
    return SessionTrial(
        trial.trial_id, trial.song, trial.target, trial.start_s, trial.end_s, trial.reference,
        labels, {label: trial.conditions[name] for label, name in labels.items()}, trial.mode,
    )  # fmt: skip


def _familiarization_picks(trials: tuple[Trial, ...], n: int, rng: np.random.Generator) -> list[Trial]:
    """``n`` excerpts, covering as many targets as possible (random among equals)."""
    shuffled = [trials[i] for i in rng.permutation(len(trials))]
    picks, targets = [], set()
    for trial in shuffled:  # first one per target ...
        if len(picks) < n and trial.target not in targets:
            picks.append(trial)
            targets.add(trial.target)
    for trial in shuffled:  # ... then any
        if len(picks) < n and trial not in picks:
            picks.append(trial)
    return picks


def design_session(
    seed: int, trials: tuple[Trial, ...], n_familiarization: int = 0
) -> tuple[tuple[str, ...], dict[str, SessionTrial], tuple[SessionTrial, ...], str]:
    """Trial order, per-trial labels, familiarization pages and the volume page's trial, from ``seed``
    (``StudyKey.seed("design", session_id)`` for a session: reproducible with the key, not without)."""
    rng = np.random.default_rng(seed)
    order = tuple(trials[i].trial_id for i in rng.permutation(len(trials)))
    # study order, so a trial's mapping does not depend on the shuffle above
    designed = {trial.trial_id: _labelled(trial, rng) for trial in trials}
    # The familiarization shows each excerpt under letters of its own: nothing learnt there about which
    # letter is which carries over to the graded trial of the same excerpt.
    pages = tuple(_labelled(t, rng) for t in _familiarization_picks(trials, n_familiarization, rng))
    volume = trials[int(rng.integers(len(trials)))].trial_id
    return order, designed, pages, volume
