"""The rules a graded trial must meet before it is stored (ITU-R BS.1534-3 practice; webMUSHRA's
``mustPlayback`` and ``mustRate``), checked on the server with messages meant for the participant.

    TrialRules.from_study(study) -> TrialRules(min_listen_s, require_100, active_slider_only)
    check_mushra(labels, scores, listen_ms, rules) -> dict[label, float]     # SubmissionError
    check_listening(labels, listen_ms, rules)                                # SubmissionError
    check_elapsed(n_conditions, elapsed_s, rules)                            # SubmissionError

What the server can check, it checks: every condition rated (the page sends ``null`` for a slider that
was never moved), scores that are numbers (not ``true``, not ``"70"``), each condition heard for at least
``min_listen_s`` (as measured and reported by the page), at least one condition at 100, and, by its
own clock, that the trial was open long enough for that listening to have happened (one condition
sounds at a time, so ``n_conditions x min_listen_s`` at least): a page that lies about its listening
times is still refused. What it cannot check (that a slider moved only while its condition was
selected: a click on another condition's slider selects that condition) the page enforces.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from numbers import Real

from listening_study.errors import SubmissionError

#: The shortest loop the player accepts: shorter loops are mostly transient and click (webMUSHRA: 500 ms).
MIN_LOOP_S = 0.5
#: Slack of the server's elapsed-time check: the page's clock and the server's, request latency.
ELAPSED_TOLERANCE = 0.9


@dataclass(frozen=True)
class TrialRules:
    min_listen_s: float = 2.0
    require_100: bool = True
    active_slider_only: bool = True

    @classmethod
    def from_study(cls, study) -> TrialRules:
        return cls(study.min_listen_s, study.require_100, study.active_slider_only)

    def as_json(self) -> dict:
        return {**asdict(self), "min_loop_s": MIN_LOOP_S}


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def labels_exactly(what: str, labels: set[str], given) -> None:
    """SubmissionError unless ``given`` is a dict keyed by exactly ``labels``."""
    if not isinstance(given, dict) or set(given) != labels:
        got = set(given) if isinstance(given, dict) else set()
        raise SubmissionError(
            f"{what} must be given for exactly the labels {sorted(labels)}"
            f" (missing {sorted(labels - got)}, extra {sorted(str(k)[:8] for k in got - labels)})"
        )


def check_listening(labels: set[str], listen_ms, rules: TrialRules) -> None:
    """Each condition heard for at least ``rules.min_listen_s`` (the page's own measurement)."""
    if rules.min_listen_s <= 0 and listen_ms is None:
        return
    labels_exactly("listening times", labels, listen_ms)
    for label, value in listen_ms.items():
        if not _is_number(value) or value < 0:
            raise SubmissionError(
                f"listening time of {label} must be a non-negative number of ms, got {value!r}"
            )
    short = sorted(label for label, value in listen_ms.items() if value < 1000 * rules.min_listen_s)
    if short:
        heard = ", ".join(f"{label} ({listen_ms[label] / 1000:.1f} s)" for label in short)
        raise SubmissionError(
            f"Please listen to every version for at least {rules.min_listen_s:g} s. Too short so far: {heard}."
        )


def check_scores(labels: set[str], scores) -> dict[str, float]:
    """Scores for exactly ``labels``, each a whole number within 0-100 (the slider's steps; not a bool, not
    a string; 70.0 is 70, 50.5 or 1e-320 is refused), as floats; SubmissionError otherwise. What any stored MUSHRA trial satisfies (``RatingsStore.submit``)."""
    labels_exactly("ratings", labels, scores)
    for label, score in scores.items():
        if not _is_number(score):
            raise SubmissionError(f"rating of {label} must be a finite number, got {str(score)[:20]!r}")
        if not 0 <= score <= 100:
            raise SubmissionError(f"rating of {label} is {score}; ratings must lie within 0-100")
        if score != round(score):
            raise SubmissionError(f"rating of {label} is {score}; ratings are whole numbers (0, 1, ..., 100)")
    return {label: float(score) for label, score in scores.items()}


def check_mushra(labels: set[str], scores, listen_ms, rules: TrialRules) -> dict[str, float]:
    """The scores to store, or SubmissionError: unrated, not numbers, too short a listen, no 100."""
    labels_exactly("ratings", labels, scores)
    unrated = sorted(label for label, score in scores.items() if score is None)
    if unrated:
        raise SubmissionError(
            f"Please rate every version: move its slider (not yet rated: {', '.join(unrated)})."
        )
    values = check_scores(labels, scores)
    check_listening(labels, listen_ms, rules)
    if rules.require_100 and not any(score == 100 for score in values.values()):
        raise SubmissionError(
            "Please rate at least one version 100: one of them is identical to the reference."
        )
    return values


def check_elapsed(n_conditions: int, elapsed_s: float, rules: TrialRules) -> None:
    """The trial was open (by the server's clock) long enough to hear every condition for
    ``rules.min_listen_s``, one after the other."""
    needed_s = n_conditions * rules.min_listen_s
    if elapsed_s < ELAPSED_TOLERANCE * needed_s:
        raise SubmissionError(
            f"This page was submitted {max(elapsed_s, 0):.1f} s after it opened; listening to each of its "
            f"{n_conditions} versions for {rules.min_listen_s:g} s takes at least {needed_s:g} s."
        )
