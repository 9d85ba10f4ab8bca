"""Study files (YAML or TOML) -> a frozen :class:`StudyConfig`.

Public API (stable; the app imports only this)::

    load_study(path, *, check_dataset=True) -> StudyConfig
    default_study(dataset_root, checkpoints: dict[str, Path], n_songs=4,
                  targets=("vocals", "drums", "bass", "other"), study_id="mss-default", on_skip=None,
                  **settings) -> StudyConfig
    validate_study(study, *, check_dataset=True) -> StudyConfig   # raises StudyError
    study_hash(study) -> str                                        # 16 hex chars, content hash
    StudyConfig, ExcerptSpec, SystemSpec, ANCHORS, REFERENCE, SAFE_ID

A study file (relative paths are resolved against the file's folder)::

    study_id: mss-pilot
    dataset: default            # or a dataset root (MUSDB18 / MUSDB18-HQ layout)
    subset: test
    excerpt_s: 8                # length of automatically chosen excerpts, 3-12 s
    loudness_lufs: -23          # ITU-R BS.1770 loudness every stimulus is matched to
    targets: [vocals, drums]
    songs:
      - song_000                # excerpt chosen automatically where the target is most active
      - {name: song_001, start_s: 10, end_s: 18}
    systems: {unet: checkpoints/unet.pt, demucs: checkpoints/demucs.pt}
    anchors: [anchor35, anchor70, mixture]   # the default; any of the three
    ab_pairs: [[unet, demucs]]     # optional; A/B preference trials (default: first two systems)
    training: true                 # familiarization pages before the graded trials (BS.1534-3 training phase)
    familiarization_excerpts: 2    # how many excerpts the familiarization plays (all conditions, not graded)
    min_listen_s: 2                # each condition must be heard this long before a trial can be submitted
    require_100: true              # at least one condition of a trial rated 100 (the hidden reference)
    active_slider_only: true       # a slider moves only with its condition selected: a click on one selects it
    experimenter: Jane Doe, Audio Lab   # shown on the consent page, with the contact
    contact: jane.doe@example.org
    max_sessions: 40               # the study starts at most this many sessions (0, the default: no limit)
    headphone_check: true          # headphone screening before the trials (Woods et al. 2017)
    fit_anchors: true              # low-pass anchors moved down in octaves where 3.5 / 7 kHz would not be heard

Conditions of every MUSHRA trial: the systems, the hidden reference (``reference``) and the anchors
(``anchor35``: 3.5 kHz low-pass of the reference, the low anchor of ITU-R BS.1534-3; ``anchor70``:
7 kHz low-pass, its mid anchor; ``mixture``: the unprocessed mixture, an interference anchor). All three
by default. With ``fit_anchors`` (the default) a low-pass anchor that would take away under 0.1% of the
reference's energy (``ANCHOR_AUDIBLE_DB``, -30 dB; the standard's cutoffs on a bass stem) moves down in octaves
until it takes more (``listening_study.delivery.processing.anchor_cutoffs``); each trial's cutoffs are
in its ``trial.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from listening_study.design.anchors import ANCHOR_AUDIBLE_DB, ANCHOR_FLOOR_HZ, STANDARD_CUTOFFS_HZ
from listening_study.design.dataset import open_study_db, silent_targets, song_duration_s
from listening_study.errors import StudyError
from mss.checkpoint import load_checkpoint
from mss.data import available_targets
from mss.errors import InvalidSongError

#: Version of the rendered stimulus files, part of the cache key (study_hash).
STIMULUS_FORMAT = 2
#: Name of the hidden reference condition.
REFERENCE = "reference"
#: Anchor conditions this package can render.
ANCHORS: tuple[str, ...] = ("anchor35", "anchor70", "mixture")
#: BS.1534-3 (section 4.1) asks for a low anchor (3.5 kHz) and a mid anchor (7 kHz); the mixture tells how much
#: of the interference a listener hears removed.
DEFAULT_ANCHORS: tuple[str, ...] = ("anchor35", "anchor70", "mixture")
#: Excerpt lengths allowed; BS.1534-3 recommends excerpts of about 10 s, no longer than 12 s.
MIN_EXCERPT_S, MAX_EXCERPT_S = 3.0, 12.0
#: Identifiers (study id, system names, trial ids) must match this before they are used anywhere.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RESERVED = {REFERENCE, *ANCHORS}
_KNOWN_KEYS = {
    "study_id", "dataset", "subset", "excerpt_s", "loudness_lufs", "targets", "songs", "systems",
    "anchors", "ab_pairs", "training", "description", "familiarization_excerpts", "min_listen_s",
    "require_100", "active_slider_only", "experimenter", "contact", "max_sessions", "headphone_check",
    "fit_anchors",
}  # fmt: skip
#: Settings that change how a session runs, not what the stimuli sound like (left out of the cache key).
SESSION_SETTINGS = ("training", "description", "ab_pairs", "familiarization_excerpts", "min_listen_s",
                    "require_100", "active_slider_only", "experimenter", "contact", "max_sessions",
                    "headphone_check")  # fmt: skip
#: Longest minimum listening time: every excerpt lasts at least MIN_EXCERPT_S, so it can always be met.
MAX_MIN_LISTEN_S = 3.0
MAX_FAMILIARIZATION_EXCERPTS = 6


@dataclass(frozen=True)
class ExcerptSpec:
    """One test song; ``start_s``/``end_s`` None means: choose the window where the target is most active."""

    song: str
    start_s: float | None = None
    end_s: float | None = None

    @property
    def automatic(self) -> bool:
        return self.start_s is None


@dataclass(frozen=True)
class SystemSpec:
    """A system under test: a condition name and the checkpoint that separates it."""

    name: str
    checkpoint: Path


@dataclass(frozen=True)
class StudyConfig:
    study_id: str
    dataset: str  # "default" or an absolute dataset root
    songs: tuple[ExcerptSpec, ...]
    targets: tuple[str, ...]
    systems: tuple[SystemSpec, ...]
    anchors: tuple[str, ...] = DEFAULT_ANCHORS
    subset: str = "test"
    excerpt_s: float = 8.0
    loudness_lufs: float = -23.0
    ab_pairs: tuple[tuple[str, str], ...] = ()
    training: bool = True
    description: str = ""
    # Rules of a graded trial (webMUSHRA's mustPlayback / mustRate and more); see the module docstring.
    familiarization_excerpts: int = 2
    min_listen_s: float = 2.0
    require_100: bool = True
    active_slider_only: bool = True
    # Who runs the study and how to reach them: shown on the consent page (ethics boards ask for both).
    experimenter: str = "the research team"  # neutral: a participant does not know the software's name
    contact: str = ""
    max_sessions: int = 0  # sessions the study starts at most, across app processes; 0: no limit
    headphone_check: bool = True  # the antiphase headphone screening (Woods et al. 2017) before the trials
    # Low-pass anchors moved down in octaves where the standard's 3.5 / 7 kHz would not be heard (a bass
    # reference); False: always 3.5 and 7 kHz, as before 2026-12-07 (and the same stimulus cache)
    fit_anchors: bool = True

    @property
    def conditions(self) -> tuple[str, ...]:
        """Condition names of a MUSHRA trial: systems, hidden reference, anchors."""
        return (*[s.name for s in self.systems], REFERENCE, *self.anchors)

    @property
    def system_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.systems)


def _read_file(path: Path) -> dict:
    if not path.is_file():
        raise StudyError(f"study file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        else:
            raise StudyError(f"study file {path} must end in .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise StudyError(f"cannot parse study file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StudyError(f"study file {path} must contain a mapping of settings, got {type(data).__name__}")
    return data


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StudyError(f"{what} must be a number, got {value!r}")
    return float(value)


def _count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StudyError(f"{what} must be a whole number, got {value!r}")
    return value


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):  # "false" would be truthy: only real booleans
        raise StudyError(f"{what} must be true or false, got {value!r}")
    return value


def _parse_song(item, index: int) -> ExcerptSpec:
    if isinstance(item, str):
        return ExcerptSpec(item)
    if not isinstance(item, dict) or "name" not in item:
        raise StudyError(f"songs[{index}] must be a song name or a mapping with 'name' (and start_s/end_s)")
    unknown = set(item) - {"name", "start_s", "end_s"}
    if unknown:
        raise StudyError(f"songs[{index}] has unknown keys {sorted(unknown)}; allowed: name, start_s, end_s")
    start, end = item.get("start_s"), item.get("end_s")
    if (start is None) != (end is None):
        raise StudyError(f"songs[{index}] ({item['name']}): give both start_s and end_s, or neither")
    if start is None:
        return ExcerptSpec(str(item["name"]))
    return ExcerptSpec(str(item["name"]), _number(start, "start_s"), _number(end, "end_s"))


def _parse(data: dict, base: Path) -> StudyConfig:
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise StudyError(f"unknown study settings {sorted(unknown)}; known: {sorted(_KNOWN_KEYS)}")
    for key in ("study_id", "songs", "targets", "systems"):
        if key not in data:
            raise StudyError(f"study file is missing '{key}'")
    songs = data["songs"]
    if not isinstance(songs, list) or not songs:
        raise StudyError("'songs' must be a non-empty list")
    targets = data["targets"]
    if isinstance(targets, str):
        targets = [targets]
    systems = data["systems"]
    if isinstance(systems, list):  # [{name:, checkpoint:}, ...] keeps duplicates visible to validation
        try:
            pairs = [(str(s["name"]), s["checkpoint"]) for s in systems]
        except (TypeError, KeyError):
            raise StudyError("'systems' entries must be mappings with 'name' and 'checkpoint'") from None
    elif isinstance(systems, dict):
        pairs = [(str(k), v) for k, v in systems.items()]
    else:
        raise StudyError("'systems' must map system names to checkpoint paths")
    dataset = str(data.get("dataset", "default"))
    if dataset != "default":
        dataset = str((base / dataset).resolve())
    return StudyConfig(
        study_id=str(data["study_id"]),
        dataset=dataset,
        songs=tuple(_parse_song(s, i) for i, s in enumerate(songs)),
        targets=tuple(str(t) for t in targets),
        systems=tuple(SystemSpec(name, (base / str(path)).resolve()) for name, path in pairs),
        anchors=tuple(str(a) for a in data.get("anchors", DEFAULT_ANCHORS)),
        subset=str(data.get("subset", "test")),
        excerpt_s=_number(data.get("excerpt_s", 8.0), "excerpt_s"),
        loudness_lufs=_number(data.get("loudness_lufs", -23.0), "loudness_lufs"),
        ab_pairs=tuple(tuple(str(c) for c in pair) for pair in data.get("ab_pairs", ())),
        training=_flag(data.get("training", True), "training"),
        description=str(data.get("description", "")),
        familiarization_excerpts=_count(data.get("familiarization_excerpts", 2), "familiarization_excerpts"),
        min_listen_s=_number(data.get("min_listen_s", 2.0), "min_listen_s"),
        require_100=_flag(data.get("require_100", True), "require_100"),
        active_slider_only=_flag(data.get("active_slider_only", True), "active_slider_only"),
        experimenter=str(data.get("experimenter", StudyConfig.experimenter))[:200],
        contact=str(data.get("contact", ""))[:200],
        max_sessions=_count(data.get("max_sessions", 0), "max_sessions"),
        headphone_check=_flag(data.get("headphone_check", True), "headphone_check"),
        fit_anchors=_flag(data.get("fit_anchors", True), "fit_anchors"),
    )


def _check_checkpoint(system: SystemSpec) -> None:
    path = system.checkpoint
    if not path.is_file():
        raise StudyError(f"checkpoint of system '{system.name}' not found: {path}")
    try:
        with open(path, "rb") as handle:
            handle.read(16)
    except OSError as exc:
        raise StudyError(f"checkpoint of system '{system.name}' is unreadable: {path} ({exc})") from exc
    try:
        load_checkpoint(path)
    except Exception as exc:
        raise StudyError(f"checkpoint of system '{system.name}' cannot be loaded: {path} ({exc})") from exc


def _check_structure(study: StudyConfig) -> None:
    if not SAFE_ID.match(study.study_id):
        raise StudyError(f"study_id {study.study_id!r} must be 1-64 letters, digits, '_', '-', '.'")
    if not study.targets:
        raise StudyError("a study needs at least one target")
    if len(set(study.targets)) != len(study.targets):
        raise StudyError(f"duplicate targets in {list(study.targets)}")
    if not study.systems:
        raise StudyError("a study needs at least one system under test")
    names = [s.name for s in study.systems]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StudyError(f"duplicate system names: {duplicates}")
    for name in names:
        if not SAFE_ID.match(name):
            raise StudyError(f"system name {name!r} must be 1-64 letters, digits, '_', '-', '.'")
        if name in _RESERVED:
            raise StudyError(f"system name {name!r} is reserved for an anchor or the hidden reference")
    for anchor in study.anchors:
        if anchor not in ANCHORS:
            raise StudyError(f"unknown anchor {anchor!r}; known anchors: {list(ANCHORS)}")
    if len(set(study.anchors)) != len(study.anchors):
        raise StudyError(f"duplicate anchors in {list(study.anchors)}")
    if len(study.conditions) > 12:  # BS.1534-3: no more than 12 conditions per trial
        raise StudyError(f"{len(study.conditions)} conditions per trial; ITU-R BS.1534-3 allows at most 12")
    if not MIN_EXCERPT_S <= study.excerpt_s <= MAX_EXCERPT_S:
        raise StudyError(f"excerpt_s={study.excerpt_s:g} s: must be {MIN_EXCERPT_S:g}-{MAX_EXCERPT_S:g} s")
    songs = [s.song for s in study.songs]
    if len(set(songs)) != len(songs):
        raise StudyError(f"duplicate songs: {sorted({s for s in songs if songs.count(s) > 1})}")
    for spec in study.songs:
        if spec.automatic:
            continue
        length = spec.end_s - spec.start_s
        if spec.start_s < 0 or length <= 0:
            raise StudyError(
                f"excerpt of {spec.song!r}: {spec.start_s:g}-{spec.end_s:g} s is not a valid window"
            )
        if not MIN_EXCERPT_S <= length <= MAX_EXCERPT_S + 1e-9:
            raise StudyError(
                f"excerpt of {spec.song!r} is {length:g} s long; excerpts must be {MIN_EXCERPT_S:g}-{MAX_EXCERPT_S:g} s"
            )
    if not 0 <= study.min_listen_s <= MAX_MIN_LISTEN_S:
        raise StudyError(f"min_listen_s={study.min_listen_s:g}: must be 0-{MAX_MIN_LISTEN_S:g} s")
    if not 0 <= study.familiarization_excerpts <= MAX_FAMILIARIZATION_EXCERPTS:
        raise StudyError(
            f"familiarization_excerpts={study.familiarization_excerpts}: must be 0-{MAX_FAMILIARIZATION_EXCERPTS}"
        )
    conditions = set(study.conditions)
    for pair in study.ab_pairs:
        if len(pair) != 2 or pair[0] == pair[1]:
            raise StudyError(f"ab_pairs entry {list(pair)} must name two different conditions")
        for name in pair:
            if name not in conditions:
                raise StudyError(
                    f"ab_pairs names unknown condition {name!r}; conditions: {sorted(conditions)}"
                )


def _check_targets(db, targets: tuple[str, ...]) -> None:
    known_targets = available_targets(db)
    for target in targets:
        if target not in known_targets:
            raise StudyError(f"unknown target {target!r}; the dataset has {sorted(known_targets)}")


def _check_dataset(study: StudyConfig) -> None:
    db = open_study_db(study)
    tracks = {t.name: t for t in db.tracks}
    _check_targets(db, study.targets)
    for spec in study.songs:
        if spec.song not in tracks:
            raise StudyError(
                f"unknown song {spec.song!r} in the {study.subset} subset; available: {sorted(tracks)[:20]}"
            )
        duration = song_duration_s(tracks[spec.song])
        if not spec.automatic and spec.end_s > duration + 1e-6:
            raise StudyError(
                f"excerpt {spec.start_s:g}-{spec.end_s:g} s of {spec.song!r} is out of range: the song lasts {duration:.2f} s"
            )
        if spec.automatic and duration < MIN_EXCERPT_S:
            raise StudyError(
                f"song {spec.song!r} lasts {duration:.2f} s, shorter than the {MIN_EXCERPT_S:g} s minimum"
            )


def validate_study(study: StudyConfig, *, check_dataset: bool = True) -> StudyConfig:
    """Raise StudyError for anything that would break a session later; returns the study unchanged."""
    _check_structure(study)
    for system in study.systems:
        _check_checkpoint(system)
    if check_dataset:
        _check_dataset(study)
    return study


def load_study(path: str | Path, *, check_dataset: bool = True) -> StudyConfig:
    """Read and validate a YAML or TOML study file."""
    path = Path(path)
    study = _parse(_read_file(path), path.resolve().parent)
    if not study.ab_pairs and len(study.systems) >= 2:
        study = replace(study, ab_pairs=((study.systems[0].name, study.systems[1].name),))
    return validate_study(study, check_dataset=check_dataset)


def default_study(
    dataset_root: str | Path | None,
    checkpoints: dict[str, Path],
    n_songs: int = 4,
    targets: tuple[str, ...] = ("vocals", "drums", "bass", "other"),
    study_id: str = "mss-default",
    on_skip: Callable[[str], None] | None = None,
    **settings,
) -> StudyConfig:
    """A study over the first ``n_songs`` songs of the test subset (by name) that have every target, excerpts
    chosen automatically.

    A song where a target is silent throughout (a piano study on a song without piano), or that is no valid
    song (``mss.data.song_check``: a mixture that is not the sum of its stems...), is skipped:
    ``on_skip(sentence)`` is told which and why; StudyError when no song has every target.
    ``settings``: other StudyConfig fields (``min_listen_s=1.0``, ``familiarization_excerpts=1``...)."""
    unknown = set(settings) - set(SESSION_SETTINGS) - {"excerpt_s", "loudness_lufs", "anchors", "fit_anchors"}
    if unknown:
        raise StudyError(f"unknown study settings {sorted(unknown)}")
    dataset = "default" if dataset_root in (None, "default") else str(Path(dataset_root).resolve())
    systems = tuple(SystemSpec(name, Path(path).resolve()) for name, path in checkpoints.items())
    draft = StudyConfig(study_id, dataset, (), tuple(targets), systems)
    db = open_study_db(draft)
    tracks = sorted(db.tracks, key=lambda track: track.name)
    if not tracks:
        raise StudyError(f"the test subset of {dataset} has no songs")
    _check_targets(db, draft.targets)  # before reading any audio: an unknown target is a StudyError
    names, skipped = [], []
    for track in tracks:
        if len(names) == n_songs:
            break
        try:
            silent = silent_targets(track, draft.targets)
        except InvalidSongError as exc:  # reads fine but is no valid song (mss.data.song_check)
            skipped.append(f"song {track.name!r} left out: {exc}")
            silent = None
        if silent:
            skipped.append(f"song {track.name!r} skipped: {' and '.join(silent)} silent throughout")
        if silent or silent is None:
            if on_skip is not None:
                on_skip(skipped[-1])
            continue
        names.append(track.name)
    if not names:
        shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        raise StudyError(f"no song of the test subset of {dataset} has {', '.join(draft.targets)}: {shown}")
    ab = ((systems[0].name, systems[1].name),) if len(systems) >= 2 else ()
    study = replace(draft, songs=tuple(ExcerptSpec(n) for n in names), ab_pairs=ab)
    return validate_study(replace(study, **settings))


def _checkpoint_fingerprint(path: Path) -> str:
    digest = hashlib.sha1()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return "missing"
    return digest.hexdigest()


def study_hash(study: StudyConfig) -> str:
    """Content hash of the study (settings + checkpoint bytes): the stimulus cache key."""
    content = asdict(study)
    content["systems"] = [(s.name, _checkpoint_fingerprint(s.checkpoint)) for s in study.systems]
    for name in SESSION_SETTINGS:  # no effect on the audio
        content.pop(name)
    # Version of the stimulus files: 2 = every file dithered independently (see stimuli.py; the FLAC copies
    # for delivery are made from those WAVs, so they need no new version); bumping it
    # renders caches of an older format again.
    content["stimulus_format"] = STIMULUS_FORMAT
    # fitted anchors sound different from the fixed ones of before (False: the cache rendered then still
    # serves); a study without a low-pass anchor renders the same either way
    if content.pop("fit_anchors") and any(anchor in STANDARD_CUTOFFS_HZ for anchor in study.anchors):
        content["fit_anchors"] = {"audible_db": ANCHOR_AUDIBLE_DB, "floor_hz": ANCHOR_FLOOR_HZ}
    blob = json.dumps(content, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]
