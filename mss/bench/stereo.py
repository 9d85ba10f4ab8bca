"""python -m mss.bench.stereo: how much does a model's separation lean on the stereo image?

Recorded stems are narrower than generator v5's (the realism gauge's L/R correlation: vocals 0.99 against
0.95, "other" 0.86 against 0.79), and real songs place their sources in ways the generator never did. A model
that learned "wide means other" would lose when a song's image differs. Each song's mixture *and* references are
changed alike by every condition: each channel pair's side signal ``(L - R) / 2`` scaled by a width of
``--widths`` (1 = as is, 0 = folded to mono, L = R = mid), and left and right swapped. The model separates
the changed mixture, scored as ``mss.evaluate`` scores (``mss.bench.sweep``: museval SDR, median over 1-s
frames then over songs, 44.1 kHz). A model that does not lean on the image scores alike under every
condition; ``spread`` is the largest minus the smallest average.

Songs: ``--dataset real-clips`` (the default: the real MUSDB18 train clips at hand), ``default`` (the
embedded dataset's test songs) or a MUSDB18 root's test songs, the first ``--songs`` songs and
``--seconds`` seconds of each. Checkpoints: the committed 4-stem ones unless ``--checkpoint`` is given.
Not part of the test suite (a minute per checkpoint); ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from mss.bench.sweep import Condition, sweep, sweep_main
from mss.data.augment import narrow
from mss.errors import CheckpointError

DEFAULT_WIDTHS = (1.0, 0.5, 0.0)
MAX_WIDTH = 2.0
SWAPPED = "L/R swapped"


def with_width(audio: np.ndarray, width: float) -> np.ndarray:
    """``audio (..., 2, T)`` with its side signal scaled by ``width`` (mid kept): 0 folds it to mono."""
    if audio.shape[-2] != 2:
        raise ValueError(f"with_width needs stereo audio (..., 2, T), got {audio.shape}")
    pairs = np.array(audio, dtype=np.float32).reshape(-1, 2, audio.shape[-1])  # (N, 2, T), a copy
    if width == 1.0:
        return pairs.reshape(audio.shape)  # exactly as it was (mid + side would round)
    narrow(pairs, np.full(len(pairs), width))
    return pairs.reshape(audio.shape)


def swapped(audio: np.ndarray) -> np.ndarray:
    """``audio (..., 2, T)`` with left and right exchanged."""
    return audio[..., ::-1, :]


def conditions(widths: Sequence[float], swap: bool = True) -> list[Condition]:
    """The conditions of the sweep: one per width (``as is`` for 1, ``mono`` for 0), then the swapped channels."""
    names = {1.0: "as is", 0.0: "mono"}
    named = [(names.get(w, f"width {w:g}"), lambda audio, w=w: with_width(audio, w)) for w in widths]
    return named + ([(SWAPPED, swapped)] if swap else [])


def _widths(text: str) -> list[float]:
    """``--widths`` -> widths in [0, 2]."""
    try:
        widths = [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise ValueError(f"--widths must be numbers separated by commas, got {text!r}") from None
    if not widths:
        raise ValueError("--widths is empty")
    if len(set(widths)) < len(widths):
        raise ValueError(f"--widths names a width twice: {text!r}")
    bad = [w for w in widths if not (np.isfinite(w) and 0.0 <= w <= MAX_WIDTH)]
    if bad:
        raise ValueError(f"--widths must lie in [0, {MAX_WIDTH:g}], got {bad}")
    return widths


def _stereo(model) -> None:
    if model.audio_channels != 2:
        raise CheckpointError("a mono model has no stereo image to change")


def _no_swap_option(parser) -> None:
    parser.add_argument("--no-swap", action="store_true", help="leave out the swapped-channels condition")


def main(argv: Sequence[str] | None = None) -> int:
    def frame_of(model, songs, widths, args):
        return sweep(model, songs, conditions(widths, swap=not args.no_swap), shifts=args.shifts)

    return sweep_main(
        argv, "python -m mss.bench.stereo", __doc__.split("\n\n")[0],
        ("--widths", ",".join(f"{w:g}" for w in DEFAULT_WIDTHS), "side-signal scales, comma-separated"),
        _widths, frame_of, index="stereo image", add_options=_no_swap_option, check_model=_stereo,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
