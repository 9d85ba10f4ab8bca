"""mss: a music source separation workbench.

Shape letters used in every docstring and reshape comment of the project:

- **B** batch
- **S** sources (stems)
- **C** audio channels
- **T** time samples
- **F** frequency bins
- **N** STFT frames

Every model maps ``mix (B, C, T) -> stems (B, S, C, T)`` with the same T, so the spectrogram and the
waveform paradigms are interchangeable everywhere downstream. Audio arrays are float32, channels first.
"""

import argparse
import math
import numbers

__version__ = "0.1.0"

#: The four MUSDB18 stems, in MUSDB's order.
SOURCES: tuple[str, ...] = ("vocals", "drums", "bass", "other")

#: MUSDB18 (and the embedded dataset) are stored at 44.1 kHz; scores are always computed at this rate.
MUSDB_SAMPLE_RATE: int = 44100
#: The rate models train and separate at unless told otherwise (one default for every config: models, data,
#: training); scores are always computed at the references' MUSDB_SAMPLE_RATE.
MODEL_SAMPLE_RATE: int = 22050
#: The widest random-EQ gain range (+-dB) the training configs accept (``DataConfig.eq_db``,
#: ``TrainConfig.eq_db``; the EQ itself is ``mss.data.augment.eq_params``). Here, not in mss.data, so that
#: training.config validates it without importing the data layer (torch, musdb).
EQ_MAX_DB: float = 24.0
#: The most the training configs may lower the vocals' side signal by (dB; ``DataConfig.vocals_side_db``,
#: ``TrainConfig.vocals_side_db``): 40 dB leaves them mono to the ear.
VOCALS_SIDE_MAX_DB: float = 40.0
#: The widest random repitch (+-semitones) the training configs accept (``DataConfig.repitch_semitones``,
#: ``TrainConfig.repitch_semitones``; the resampling is ``mss.data.augment.repitch``): 4 semitones play a
#: source 26% faster or 21% slower.
REPITCH_MAX_SEMITONES: float = 4.0
#: The narrowest: speeds are quantised to 1% (``mss.data.augment.REPITCH_STEPS``), and under 0.09 semitones
#: every draw would round back to the recorded speed.
REPITCH_MIN_SEMITONES: float = 0.1


def augmentation_problems(settings) -> list[str]:
    """What is wrong with the training chunks' augmentation settings: the fields ``eq_db``, ``width_min``,
    ``vocals_side_db``, ``repitch_semitones``, ``repitch_prob``, ``other_stack_prob`` and ``remix_prob`` (with ``remix``) and
    ``channels`` of ``settings``, a ``DataConfig`` or a ``TrainConfig`` (both have them, under these names);
    one message per field, [] when all are valid. Here, not in mss.data, so that both configs check them alike
    without training.config importing the data layer."""
    eq_db, width_min, vocals_side_db = settings.eq_db, settings.width_min, settings.vocals_side_db
    repitch_semitones, repitch_prob, channels = (
        settings.repitch_semitones,
        settings.repitch_prob,
        settings.channels,
    )
    problems = []
    if not (repitch_semitones == 0.0 or REPITCH_MIN_SEMITONES <= repitch_semitones <= REPITCH_MAX_SEMITONES):
        problems.append(
            f"repitch_semitones must be 0 (off) or in [{REPITCH_MIN_SEMITONES:g}, {REPITCH_MAX_SEMITONES:g}] "
            f"semitones, got {repitch_semitones}"
        )
    if not 0.0 < repitch_prob <= 1.0:
        problems.append(
            f"repitch_prob must be in (0, 1] (repitch_semitones=0 turns it off), got {repitch_prob}"
        )
    if not 0.0 <= settings.other_stack_prob <= 1.0:
        problems.append(f"other_stack_prob must be in [0, 1] (0 = off), got {settings.other_stack_prob}")
    elif settings.other_stack_prob > 0 and not settings.remix:
        problems.append(
            "other_stack_prob adds another song's other chunk, but remix=false keeps every part of a chunk in "
            "one song and offset (in time and in tune): set one or the other"
        )
    if not 0.0 <= settings.remix_prob <= 1.0:
        problems.append(f"remix_prob must be in [0, 1] (1 = every chunk remixed), got {settings.remix_prob}")
    elif settings.remix_prob < 1.0 and not settings.remix:
        problems.append("remix_prob is the share of chunks remixed across songs: it needs remix=true")
    if not 0.0 <= eq_db <= EQ_MAX_DB:
        problems.append(f"eq_db must be in [0, {EQ_MAX_DB:g}] dB, got {eq_db}")
    if not 0.0 <= width_min <= 1.0:
        problems.append(f"width_min must be in [0, 1], got {width_min}")
    elif width_min < 1.0 and channels != 2:
        problems.append(f"width_min narrows stereo sources: it needs channels=2, got {channels}")
    if not 0.0 <= vocals_side_db <= VOCALS_SIDE_MAX_DB:
        problems.append(f"vocals_side_db must be in [0, {VOCALS_SIDE_MAX_DB:g}] dB, got {vocals_side_db}")
    elif vocals_side_db > 0 and channels != 2:
        problems.append(f"vocals_side_db narrows stereo vocals: it needs channels=2, got {channels}")
    return problems


#: The most shifted separations a model's default (``UNetConfig.shifts``, ``DemucsConfig.shifts``), an export's
#: ``--shifts`` or a separation's ``shifts`` may average (the shift trick, ``mss.separate.shift_average``): each
#: one is a whole separation more.
MAX_SHIFTS: int = 16


def _count_problem(value, name: str, top: int, zero: str) -> str | None:
    """What is wrong with a count that must be an int in [0, ``top``] (``zero``: what 0 means), or None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= top:
        return f"{name} must be an integer in [0, {top}] ({zero}), got {value!r}"
    return None


def _count_arg(text: str, problem) -> int:
    """An argparse ``type``: ``text`` as an int, or a usage error saying what ``problem`` finds wrong with it."""
    try:
        value: object = int(text)
    except ValueError:
        value = text
    if (message := problem(value)) is not None:
        raise argparse.ArgumentTypeError(message)
    return int(text)


def shifts_problem(value, name: str = "shifts") -> str | None:
    """What is wrong with a number of shifted separations (``MAX_SHIFTS``), or None: an int in [0, MAX_SHIFTS],
    0 being one plain pass. Here, not in mss.separate, so that the model configs and ``mss.checkpoint`` check it
    without importing the separation layer."""
    return _count_problem(value, name, MAX_SHIFTS, "0: one plain pass")


def shifts_arg(text: str) -> int:
    """The argparse ``type`` of every ``--shifts`` option (separate, evaluate, the benchmarks, export): the number,
    or a usage error saying what is wrong with it (``shifts_problem``)."""
    return _count_arg(text, lambda value: shifts_problem(value, "--shifts"))


#: The most EM iterations of the Wiener post-filter a model's default (``wiener_iterations``), an export's
#: ``--wiener`` or a separation's ``wiener_iterations`` may run (Open-Unmix runs 1; each one is another pass
#: of the EM over every chunk).
MAX_WIENER_ITERATIONS: int = 8


def wiener_problem(value, name: str = "wiener_iterations") -> str | None:
    """What is wrong with a number of Wiener EM iterations, or None: an int in [0, MAX_WIENER_ITERATIONS], 0
    being no post-filter (``mss.models.wiener``). Here so that configs, separation options and the CLIs share it."""
    return _count_problem(value, name, MAX_WIENER_ITERATIONS, "0: no Wiener post-filter")


def wiener_arg(text: str) -> int:
    """The argparse ``type`` of the ``--wiener`` options of separation, export and the benchmarks
    (``wiener_problem``)."""
    return _count_arg(text, lambda value: wiener_problem(value, "--wiener"))


#: the spellings of on and off that the command lines accept for a flag (training's --set, model_set)
FLAG_WORDS: dict[str, bool] = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


def parse_flag(text: str) -> bool | None:
    """``text`` as a flag (FLAG_WORDS, any case, surrounding spaces ignored); None when it is not one."""
    return FLAG_WORDS.get(text.strip().lower())


def valid_level_db(value: float) -> bool:
    """Whether ``value`` can be the UNet's level-normalisation target (``UNetConfig.level_db``): a finite RMS
    level in dBFS, at most 0. Here, not in mss.models, so that ``mss.checkpoint`` checks an export's
    ``--level-db`` without importing the models (which import it)."""
    return math.isfinite(value) and value <= 0


def covers_mixture(sources) -> bool:
    """Whether ``sources`` add up to the whole mixture: the four MUSDB18 stems, or vocals and accompaniment
    (not piano alone, nor vocals alone). Wiener filtering and the high-band split depend on it."""
    names = set(sources)
    return set(SOURCES) <= names or {"vocals", "accompaniment"} <= names
