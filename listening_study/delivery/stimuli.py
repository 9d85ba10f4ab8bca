"""Render, loudness-match and cache the stimuli of a study.

Public API (stable)::

    prepare_stimuli(study, cache_dir, progress=None, separator=None) -> StimulusSet
    StimulusSet.trials: tuple[Trial, ...]         # MUSHRA trials, in study order
    StimulusSet.ab_trials: tuple[Trial, ...]      # A/B preference trials (mode "ab")
    StimulusSet.trial(trial_id) -> Trial          # StimulusError for an unknown id
    StimulusSet.path(stimulus_id) -> Path         # whitelisted: StimulusError for anything else
    StimulusSet.rendered: int                     # trials rendered by this call (0: all from the cache)
    StimulusSet.anchor_hz() -> {trial_id: {anchor: cutoff_hz}}   # the low-pass anchors' cutoffs per trial
    StimulusSet.moved_anchors() -> str            # the trials whose anchors moved below 3.5 / 7 kHz, or ""
    Trial(trial_id, song, target, start_s, end_s, reference, conditions: dict[condition, stimulus_id], mode)
    SAMPLE_RATE = 44100

Stimuli are 44.1 kHz 16-bit stereo WAV files under ``cache_dir/<study hash>/<trial_id>/<stimulus_id>.wav``
(what the analysis reads; each session receives its own re-dithered copy, listening_study.delivery.wav),
each trial matched to ``study.loudness_lufs`` (ITU-R BS.1770, pyloudnorm) with one common clip-safe gain.
Stimulus ids are random (drawn once at render time, kept in ``trial.json``) and never leave the server:
participants get per-session tokens instead (listening_study.design.blinding); ids are checked against the
study's whitelist before any path is built.

Blindness of the files themselves: every stimulus of a trial has the same length, channel count and
format, so the WAV files of a trial have identical headers and byte lengths. Each file is quantized to
16 bits with its own independent TPDF dither (+-1 LSB triangular, drawn from the OS's entropy), the
textbook way to requantize (no quantization distortion; a noise floor near -96 dBFS RMS, inaudible at
the -23 LUFS listening level) that also makes the hidden reference differ, byte for byte, from the open
reference and from the same stimulus rendered again. An independent re-encode (e.g. a lossy codec)
would differ too, but alters the audio audibly more; a dither is what 16-bit delivery needs anyway.
The signals themselves stay what they are: a listener (or a program) comparing the *sound* of the
hidden reference with the reference will find them alike; that is the test. ``progress(fraction, message)`` is
called while rendering (a ``gr.Progress`` works). ``separator(system, mix (C, T), rate, target) -> (C, T)``
replaces the default (the system's checkpoint through mss.models.load_model + mss.separate.separate).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from listening_study.delivery.processing import (
    anchor_cutoffs,
    dithered_pcm16,
    loudness_match,
    lowpass,
    recorded_anchors,
    select_excerpt,
    taken_away_db,
)
from listening_study.design.anchors import (
    ANCHOR_AUDIBLE_DB,
    ANCHOR_FLOOR_HZ,
    STANDARD_CUTOFFS_HZ,
    standard_cutoffs,
)
from listening_study.design.dataset import open_study_db
from listening_study.design.study import REFERENCE, StudyConfig, SystemSpec, study_hash
from listening_study.errors import StimulusError
from mss.audio import resample
from mss.data import track_stems
from mss.files import atomic_path, write_text_atomic
from mss.models import load_model
from mss.separate import separate

__all__ = ["SAMPLE_RATE", "StimulusSet", "Trial", "prepare_stimuli"]

SAMPLE_RATE = 44100
#: Seconds of audio either side of the excerpt given to the separator, so chunk edges fall outside it.
CONTEXT_S = 2.0
STIMULUS_ID = re.compile(r"^[0-9a-f]{16}$")

Separator = Callable[[SystemSpec, np.ndarray, int, str], np.ndarray]


@dataclass(frozen=True)
class Trial:
    trial_id: str
    song: str
    target: str
    start_s: float
    end_s: float
    reference: str  # stimulus id of the open (labelled) reference
    conditions: dict[str, str]  # condition name -> stimulus id
    mode: str = "mushra"


def _load_song(db, song: str, targets: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """mix (C, T) and {target: (C, T)} at SAMPLE_RATE."""
    tracks = [t for t in db.tracks if t.name == song]
    if not tracks:
        raise StimulusError(f"song {song!r} is not in the dataset")
    track = tracks[0]
    mix = np.asarray(track.audio, dtype=np.float32).T  # (C, T)
    stems = np.asarray(track_stems(track, list(targets)), dtype=np.float32)  # (S, C, T)
    rate = int(track.rate)
    mix, stems = resample(mix, rate, SAMPLE_RATE), resample(stems, rate, SAMPLE_RATE)
    return mix, dict(zip(targets, stems, strict=True))


def model_separator() -> Separator:
    """The default separator: loads each checkpoint once (per call of prepare_stimuli)."""
    models: dict[str, object] = {}

    def run(system: SystemSpec, mix: np.ndarray, rate: int, target: str) -> np.ndarray:
        if system.name not in models:
            models[system.name] = load_model(system.checkpoint)
        model = models[system.name]
        if target not in model.sources:
            raise StimulusError(
                f"system {system.name!r} ({system.checkpoint}) separates {list(model.sources)}, not {target!r}"
            )
        return separate(model, mix, rate, stems=[target])[target]

    return run


def _stimulus_id() -> str:
    """A random file name: nothing public (study, trial, condition) leads to it."""
    return secrets.token_hex(8)


def _same_length(audio: dict[str, np.ndarray], trial_id: str) -> dict[str, np.ndarray]:
    """Every stimulus of a trial cropped to the shortest (C, T): equal lengths give equal file sizes."""
    length = min(signal.shape[-1] for signal in audio.values())
    channels = {signal.shape[0] for signal in audio.values()}
    if len(channels) != 1:
        raise StimulusError(f"trial {trial_id}: stimuli with different channel counts {sorted(channels)}")
    if length < SAMPLE_RATE:
        raise StimulusError(f"trial {trial_id}: the excerpt is shorter than 1 s ({length} samples)")
    return {name: signal[:, :length] for name, signal in audio.items()}


def _render_trial(
    study: StudyConfig, mix: np.ndarray, target_audio: np.ndarray, start_s: float, end_s: float, target: str,
    separator: Separator,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:  # fmt: skip
    """Every condition (plus the open reference) of one trial, before loudness matching, and its low-pass
    anchors' record for ``trial.json``: ``anchor_hz`` (their cutoffs) and ``anchor_removed_db`` (what each takes
    away from the reference, dB re its energy, rounded)."""
    start, end = int(round(start_s * SAMPLE_RATE)), int(round(end_s * SAMPLE_RATE))
    reference = target_audio[:, start:end]  # (C, T)
    if not np.any(reference):
        raise StimulusError(f"target {target!r} is silent in the excerpt {start_s:g}-{end_s:g} s")
    audio = {"open_reference": reference, REFERENCE: reference.copy()}
    context = int(CONTEXT_S * SAMPLE_RATE)
    lo, hi = max(0, start - context), min(mix.shape[-1], end + context)
    for system in study.systems:
        estimate = np.asarray(separator(system, mix[:, lo:hi], SAMPLE_RATE, target), dtype=np.float32)
        if estimate.shape != (mix.shape[0], hi - lo):
            raise StimulusError(
                f"system {system.name!r} returned shape {estimate.shape}, expected {(mix.shape[0], hi - lo)}"
            )
        audio[system.name] = estimate[:, start - lo : end - lo]
    cutoffs = trial_cutoffs(study, reference)
    removed = {}
    for anchor, cutoff in cutoffs.items():
        audio[anchor] = lowpass(reference, SAMPLE_RATE, cutoff)
        removed[anchor] = round(taken_away_db(reference, audio[anchor]), 1)
    if "mixture" in study.anchors:
        audio["mixture"] = mix[:, start:end]
    return audio, {"anchor_hz": cutoffs, "anchor_removed_db": removed}


def trial_cutoffs(study: StudyConfig, reference: np.ndarray) -> dict[str, float]:
    """The cutoff of each low-pass anchor of ``study`` for one trial's ``reference (C, T)``: fitted to it
    (``anchor_cutoffs``) or, without ``fit_anchors``, the standard's."""
    if study.fit_anchors:
        return anchor_cutoffs(reference, SAMPLE_RATE, study.anchors)
    return standard_cutoffs(study.anchors)


class StimulusSet:
    """The rendered stimuli of a study; the only way from a stimulus id to a file."""

    def __init__(self, study: StudyConfig, root: Path, trials: list[Trial], rendered: int):
        self.study, self.root, self.rendered = study, Path(root), rendered
        self.trials = tuple(trials)
        self.ab_trials = tuple(
            Trial(
                f"ab{k}-{t.trial_id}",
                t.song,
                t.target,
                t.start_s,
                t.end_s,
                t.reference,
                {name: t.conditions[name] for name in pair},
                mode="ab",
            )  # fmt: skip
            for t in trials
            for k, pair in enumerate(study.ab_pairs)
        )
        self._by_id = {t.trial_id: t for t in (*self.trials, *self.ab_trials)}
        self._files: dict[str, Path] = {}
        for t in trials:
            for stimulus_id in (t.reference, *t.conditions.values()):
                self._files[stimulus_id] = self.root / t.trial_id / f"{stimulus_id}.wav"

    def trial(self, trial_id: str) -> Trial:
        if not isinstance(trial_id, str) or trial_id not in self._by_id:
            raise StimulusError(f"unknown trial {str(trial_id)[:80]!r}")
        return self._by_id[trial_id]

    def path(self, stimulus_id: str) -> Path:
        """WAV file of a stimulus; the id must be one of this study's (never joined into a path raw)."""
        if (
            not isinstance(stimulus_id, str)
            or not STIMULUS_ID.match(stimulus_id)
            or stimulus_id not in self._files
        ):
            raise StimulusError(f"unknown stimulus id {str(stimulus_id)[:80]!r}")
        return self._files[stimulus_id]

    @property
    def stimulus_ids(self) -> frozenset[str]:
        return frozenset(self._files)

    def moved_anchors(self) -> str:
        """A sentence for the experimenter naming the trials whose low-pass anchors were moved below the
        standard's cutoffs (``anchor_hz``), and any still under ``ANCHOR_AUDIBLE_DB``; "" when none moved."""
        anchors = self._anchors()
        moved = {
            trial_id: cutoffs for trial_id, (cutoffs, _) in anchors.items()
            if any(hz != STANDARD_CUTOFFS_HZ[a] for a, hz in cutoffs.items())
        }  # fmt: skip
        if not moved:
            return ""
        listed = "; ".join(
            f"{trial_id} " + ", ".join(f"{a} {hz:,.0f} Hz" for a, hz in sorted(c.items()))
            for trial_id, c in moved.items()
        )
        note = (
            f"Low-pass anchors moved below 3.5 / 7 kHz in {len(moved)} of {len(self.trials)} trials, where the "
            f"standard's would not be heard (they would take away under {100 * 10 ** (ANCHOR_AUDIBLE_DB / 10):g}% "
            f"of the reference's energy, {ANCHOR_AUDIBLE_DB:g} dB; fit_anchors): {listed}."
        )
        unheard = [
            f"{trial_id} {anchor} ({db:g} dB)" for trial_id, (_, removed) in anchors.items()
            for anchor, db in removed.items() if db < ANCHOR_AUDIBLE_DB
        ]  # fmt: skip
        if unheard:
            note += f" Still under {ANCHOR_AUDIBLE_DB:g} dB at the {ANCHOR_FLOOR_HZ:g} Hz floor: {', '.join(unheard)}."
        return note

    def anchor_hz(self) -> dict[str, dict[str, float]]:
        """{trial id: {low-pass anchor: cutoff in Hz}} as each trial was rendered (its ``trial.json``; a trial
        rendered before the cutoffs were recorded had the standard's)."""
        return {trial_id: cutoffs for trial_id, (cutoffs, _) in self._anchors().items()}

    def _anchors(self) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
        """{trial id: (cutoffs, dB each takes away)} from each ``trial.json`` (``recorded_anchors``)."""
        return {
            trial.trial_id: recorded_anchors(self.root / trial.trial_id / "trial.json")
            for trial in self.trials
        }


def _cached_trial(folder: Path) -> Trial | None:
    manifest = folder / "trial.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        trial = Trial(**data["trial"])
    except (ValueError, KeyError, TypeError):
        return None  # a damaged cache entry is rendered again
    ids = (trial.reference, *trial.conditions.values())
    if not all((folder / f"{i}.wav").is_file() for i in ids):
        return None
    return trial


def _save_pcm16(path: Path, samples: np.ndarray) -> None:
    """Write int16 samples (C, T) as a 16-bit WAV, atomically; the integers are stored as they are."""
    import soundfile

    with atomic_path(path, suffix=".wav.tmp") as tmp:
        soundfile.write(tmp, samples.T, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def prepare_stimuli(
    study: StudyConfig,
    cache_dir: str | Path,
    progress: Callable | None = None,
    separator: Separator | None = None,
) -> StimulusSet:
    """Render (or load from the cache) every trial of the study; see the module docstring."""
    key = study_hash(study)
    root = Path(cache_dir) / key
    root.mkdir(parents=True, exist_ok=True)
    plan = [(i, spec, target) for i, spec in enumerate(study.songs) for target in study.targets]
    trials, rendered, db, songs = [], 0, None, {}
    separator = separator or model_separator()
    for step, (index, spec, target) in enumerate(plan):
        trial_id = f"t{index:02d}-{target}"
        if progress is not None:
            progress(step / len(plan), f"stimuli: {spec.song} / {target}")
        folder = root / trial_id
        cached = _cached_trial(folder)
        if cached is not None:
            trials.append(cached)
            continue
        if db is None:
            db = open_study_db(study)
        if spec.song not in songs:
            songs = {spec.song: _load_song(db, spec.song, study.targets)}  # keep one song in memory
        mix, stems = songs[spec.song]
        if spec.automatic:
            start_s, end_s = select_excerpt(stems[target], SAMPLE_RATE, study.excerpt_s)
        else:
            start_s, end_s = spec.start_s, spec.end_s
            if end_s * SAMPLE_RATE > mix.shape[-1] + 1:
                raise StimulusError(f"excerpt {start_s:g}-{end_s:g} s is beyond the end of {spec.song!r}")
        audio, anchors = _render_trial(study, mix, stems[target], start_s, end_s, target, separator)
        matched, report = loudness_match(_same_length(audio, trial_id), SAMPLE_RATE, study.loudness_lufs)
        ids = {name: _stimulus_id() for name in matched}
        folder.mkdir(parents=True, exist_ok=True)
        for name, signal in matched.items():  # each file its own dither (module docstring)
            rng = np.random.default_rng(secrets.randbits(128))
            _save_pcm16(folder / f"{ids[name]}.wav", dithered_pcm16(signal, rng))
        conditions = {name: ids[name] for name in study.conditions}
        trial = Trial(
            trial_id, spec.song, target, float(start_s), float(end_s), ids["open_reference"], conditions
        )
        write_text_atomic(
            folder / "trial.json",
            json.dumps({"trial": asdict(trial), "loudness": asdict(report), **anchors}, indent=1),
        )
        trials.append(trial)
        rendered += 1
    if progress is not None:
        progress(1.0, "stimuli ready")
    return StimulusSet(study, root, trials, rendered)
