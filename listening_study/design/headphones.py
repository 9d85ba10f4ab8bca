"""The headphone screening before the trials: the antiphase loudness test of Woods et al. (2017).

Public API (stable)::

    design_check(seed, n_trials=N_TRIALS) -> tuple[HeadphoneTrial, ...]   # seed: key.seed("headphones", session_id)
    HeadphoneTrial(index, quiet, antiphase)      # positions 0-2 of the three tones; quiet is the right answer
    render_trial(trial, rate=SAMPLE_RATE, level_dbfs=LEVEL_DBFS) -> float32 (2, T), T == trial_samples(rate)
    trial_samples(rate=SAMPLE_RATE) -> int       # the same T for every trial
    tone_spans(rate=SAMPLE_RATE) -> ((start, end), (start, end), (start, end))   # sample ranges of the tones
    trial_wav_bytes(trial, rng, level_dbfs=LEVEL_DBFS) -> bytes   # 44.1 kHz 16-bit stereo WAV, TPDF dither
    score_check(trials, answers, pass_min=PASS_MIN) -> HeadphoneResult(n_correct, n_trials, passed)
    check_json(urls) -> {"trials": [{"url"}], "question", "choices", "instructions", "n_pass", "n_trials", "max_plays"}
    N_TRIALS = 6, PASS_MIN = 5, MAX_PLAYS = 1, QUESTION, CHOICES

The test (Woods, Siegel, Traer & McDermott 2017, "Headphone screening to facilitate web-based auditory
experiments", Attention, Perception & Psychophysics 79, 2064-2072), as used here:

* each trial is one sound of three 200 Hz pure tones, 1000 ms each, with 100 ms raised-cosine onset and
  offset ramps, 500 ms of silence between them (plus PAD_S = 250 ms of silence before the first and
  after the last, our addition so an output device that wakes up late or stops early clips no tone);
* two tones are at the standard level (LEVEL_DBFS, the peak of the sine: -20 dBFS), one of them diotic
  (in phase) and one in antiphase between the ears (right = -left); the third is diotic and 6 dB
  quieter (amplitude x 10^(-6/20), so its RMS is exactly 6.0 dB below);
* the order of the three is random per trial: each of the 6 arrangements equally likely, drawn
  independently for every trial (the paper's stimulus set holds the 6 arrangements; whether its
  trials were drawn with replacement we do not recall for sure, and independent draws keep earlier
  answers from telling anything about later ones);
* the listener answers which tone was the quietest (first, second or third), hearing each sound once
  (MAX_PLAYS = 1, as in the paper); 6 trials, passed with at least 5 correct.

Over loudspeakers the antiphase tone largely cancels in the air between the speakers and the ears and
sounds quietest, so the answer lands on it; over headphones each ear gets its own signal and the -6 dB
tone is heard as quietest. A guesser passes with probability (6 * 2 + 1) / 3^6 = 13/729 (1.8 %).

Blindness of the files: every trial's sound has the same length, format and channel count, so every
WAV has the same header and byte length (the size gives nothing away), and each is dithered with its own
TPDF noise. A program reading the samples can still find the answer (compare the tones' levels and the
channels' signs): that is inherent in any check run in a browser. It screens equipment, not cheaters;
the page's URLs should be opaque per-session tokens like the other stimuli's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from listening_study.delivery.processing import dithered_pcm16
from listening_study.delivery.wav import wav_bytes
from listening_study.errors import StimulusError, SubmissionError

__all__ = [
    "CHOICES", "HeadphoneResult", "HeadphoneTrial", "MAX_PLAYS", "N_TRIALS", "PASS_MIN", "QUESTION",
    "check_json", "design_check", "render_trial", "score_check", "tone_spans", "trial_samples",
    "trial_wav_bytes",
]  # fmt: skip

SAMPLE_RATE = 44100  # the rate of every stimulus of the study (listening_study.delivery.stimuli)
TONE_HZ = 200.0  # Woods et al. 2017: a low frequency, where antiphase cancellation over speakers is strong
TONE_S = 1.0  # each tone lasts 1000 ms ...
RAMP_S = 0.1  # ... with 100 ms raised-cosine onset and offset ramps
GAP_S = 0.5  # silence between the tones
PAD_S = 0.25  # silence before the first tone and after the last (ours, see the module docstring)
QUIET_DB = -6.0  # the quiet tone, relative to the two others
LEVEL_DBFS = -20.0  # peak level of the two louder tones: comfortable after the volume step, far from clipping
N_TRIALS = 6
PASS_MIN = 5
MAX_PLAYS = 1  # Woods et al. let each sound be played once
N_TONES = 3
QUESTION = "Which tone was the quietest?"
CHOICES = ("First", "Second", "Third")
INSTRUCTIONS = (
    "Put on headphones. Each sound has three tones; which tone was the quietest? "
    "You can play each sound only once, so listen carefully. The test needs headphones: if the check "
    f"does not confirm them ({PASS_MIN} of {N_TRIALS} right), the test ends after it, with thanks and a "
    "completion code."
)


@dataclass(frozen=True)
class HeadphoneTrial:
    index: int  # 0-based position of the trial in the check
    quiet: int  # position (0-2) of the -6 dB tone: the correct answer
    antiphase: int  # position (0-2) of the standard-level tone in antiphase; != quiet


@dataclass(frozen=True)
class HeadphoneResult:
    n_correct: int
    n_trials: int
    passed: bool  # n_correct >= the pass mark (PASS_MIN of N_TRIALS)


def design_check(seed: int, n_trials: int = N_TRIALS) -> tuple[HeadphoneTrial, ...]:
    """The trials of one session's check, from ``seed`` (``StudyKey.seed("headphones", session_id)``:
    reproducible with the study key, not without). Each trial's arrangement is uniform over the 6."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise StimulusError(f"a headphone check needs a positive whole number of trials, got {n_trials!r}")
    rng = np.random.default_rng(seed)
    trials = []
    for index in range(n_trials):
        quiet = int(rng.integers(N_TONES))
        others = [position for position in range(N_TONES) if position != quiet]
        antiphase = others[int(rng.integers(len(others)))]
        trials.append(HeadphoneTrial(index, quiet, antiphase))
    return tuple(trials)


def _samples(seconds: float, rate: int) -> int:
    return int(round(seconds * rate))


def trial_samples(rate: int = SAMPLE_RATE) -> int:
    """T of every trial's sound: pad, three tones with two gaps, pad."""
    tone, gap, pad = _samples(TONE_S, rate), _samples(GAP_S, rate), _samples(PAD_S, rate)
    return 2 * pad + N_TONES * tone + (N_TONES - 1) * gap


def tone_spans(rate: int = SAMPLE_RATE) -> tuple[tuple[int, int], ...]:
    """(start, end) sample of each of the three tones, in playing order."""
    tone, gap, pad = _samples(TONE_S, rate), _samples(GAP_S, rate), _samples(PAD_S, rate)
    return tuple((pad + k * (tone + gap), pad + k * (tone + gap) + tone) for k in range(N_TONES))


def _tone(rate: int) -> np.ndarray:
    """One unit-amplitude tone with its ramps: (T_tone,) float64, first and last sample 0."""
    length, ramp = _samples(TONE_S, rate), _samples(RAMP_S, rate)
    time_s = np.arange(length) / rate
    envelope = np.ones(length)
    onset = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)  # raised cosine 0 -> 1, (ramp,)
    envelope[:ramp] = onset
    envelope[length - ramp :] = onset[::-1]
    return np.sin(2 * np.pi * TONE_HZ * time_s) * envelope


def _check_trial(trial: HeadphoneTrial) -> None:
    positions = (trial.quiet, trial.antiphase)
    if any(isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < N_TONES for p in positions):
        raise StimulusError(f"trial positions must be 0, 1 or 2, got {trial}")
    if trial.quiet == trial.antiphase:
        raise StimulusError(f"the quiet tone cannot be the antiphase tone, got {trial}")


def render_trial(
    trial: HeadphoneTrial, rate: int = SAMPLE_RATE, level_dbfs: float = LEVEL_DBFS
) -> np.ndarray:
    """The sound of one trial: (2, T) float32, T == trial_samples(rate), rows left and right.

    The standard tones peak at ``level_dbfs``; the quiet one QUIET_DB below; the antiphase one has
    right = -left exactly (its mono downmix is digital silence).
    """
    _check_trial(trial)
    if not level_dbfs <= 0.0:  # the sine must fit in full scale (and NaN is refused)
        raise StimulusError(f"the tone level must be at most 0 dBFS, got {level_dbfs} dBFS")
    tone = _tone(rate) * 10 ** (level_dbfs / 20)  # (T_tone,)
    audio = np.zeros((2, trial_samples(rate)))  # (2, T)
    for position, (start, end) in enumerate(tone_spans(rate)):
        gain = 10 ** (QUIET_DB / 20) if position == trial.quiet else 1.0
        sign = -1.0 if position == trial.antiphase else 1.0
        audio[0, start:end] = gain * tone
        audio[1, start:end] = sign * gain * tone
    return audio.astype(np.float32)


def trial_wav_bytes(trial: HeadphoneTrial, rng: np.random.Generator, level_dbfs: float = LEVEL_DBFS) -> bytes:
    """One trial as a 44.1 kHz 16-bit stereo WAV file's bytes, TPDF-dithered with ``rng`` (give each file
    its own generator, e.g. ``np.random.default_rng(secrets.randbits(128))``). Same length for every trial."""
    samples = dithered_pcm16(render_trial(trial, SAMPLE_RATE, level_dbfs), rng)  # int16 (2, T)
    return wav_bytes(
        samples, SAMPLE_RATE
    )  # the canonical header of every stimulus (listening_study.delivery.wav)


def score_check(
    trials: Sequence[HeadphoneTrial], answers: Sequence[int], pass_min: int = PASS_MIN
) -> HeadphoneResult:
    """Score the participant's answers (one position 0-2 per trial, in trial order); SubmissionError,
    with one sentence for the participant, for anything else."""
    if not isinstance(answers, list | tuple):
        raise SubmissionError("The answers must be a list with one answer (0, 1 or 2) per sound.")
    if len(answers) != len(trials):
        raise SubmissionError(
            f"Please answer every sound once: {len(trials)} answers are needed, {len(answers)} were sent."
        )
    for number, answer in enumerate(answers, start=1):
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < N_TONES:
            raise SubmissionError(
                f"The answer for sound {number} must be 0, 1 or 2 (first, second or third tone), "
                f"not {str(answer)[:20]!r}."
            )
    n_correct = sum(answer == trial.quiet for trial, answer in zip(trials, answers, strict=True))
    return HeadphoneResult(int(n_correct), len(trials), n_correct >= pass_min)


def check_json(urls: Sequence[str], pass_min: int = PASS_MIN) -> dict:
    """What the page needs (listening_study/static/mushra-headphones.js): one audio URL per trial, in
    trial order, and the texts. Nothing about the answers."""
    if isinstance(urls, str) or not all(isinstance(url, str) and url for url in urls):
        raise StimulusError("check_json needs one non-empty URL string per trial")
    return {
        "trials": [{"url": url} for url in urls],
        "question": QUESTION,
        "choices": list(CHOICES),
        "instructions": INSTRUCTIONS,
        "n_pass": pass_min,
        "n_trials": len(urls),
        "max_plays": MAX_PLAYS,
    }
