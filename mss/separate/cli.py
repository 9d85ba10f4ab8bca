"""``python -m mss.separate SONG [SONG ...] [--checkpoint PATH] --out DIR [--stems a,b] [--device cpu]``:
writes ``DIR/<song>/<stem>.wav`` at the song's rate, channel count and exact length."""

from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from mss import shifts_arg, wiener_arg
from mss.checkpoint import default_checkpoint
from mss.errors import MSSError
from mss.models import load_model
from mss.precision import PRECISIONS

from .arrays import check_stems
from .naming import output_names
from .streaming import separate_file

DESCRIPTION = "Separate whole tracks of any length with any model: chunked overlap-add, resampling, channels."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mss.separate", description=DESCRIPTION)
    parser.add_argument(
        "songs", nargs="+", metavar="SONG", help="audio files (wav, flac, mp3, mp4, .stem.mp4)"
    )
    parser.add_argument(
        "--checkpoint", default=str(default_checkpoint("demucs")), help="model checkpoint (.pt)"
    )
    parser.add_argument("--out", required=True, help="output folder: OUT/<song>/<stem>.wav")
    parser.add_argument("--stems", default=None, help="comma-separated subset of the model's stems")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--segment-s", type=float, default=None, help="chunk length (default: the model's)")
    parser.add_argument(
        "--overlap", type=float, default=None,
        help="chunk overlap fraction (default: 0.25 in one plain pass, 0.125 with the shift trick)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=4, help="chunks per forward pass (default 4)")
    parser.add_argument(
        "--shifts", type=shifts_arg, default=None,
        help="average N randomly shifted separations (Demucs' shift trick; N times slower; 0: one plain pass; "
        "default: the checkpoint's own, its config's shifts)",
    )  # fmt: skip
    parser.add_argument(
        "--wiener", type=wiener_arg, default=None, metavar="N",
        help="EM iterations of the multichannel Wiener post-filter (0: none; default: the checkpoint's own, "
        "its config's wiener_iterations)",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto",
        help="the model's number format: auto (bf16 autocast on a CPU with native bf16 units, else fp32), "
        "fp32 or bf16 (mss.precision)",
    )  # fmt: skip
    parser.add_argument(
        "--band-limited", action="store_true",
        help="leave the estimates empty above the model's Nyquist frequency (default: full band, mss.bandwidth)",
    )  # fmt: skip
    return parser


def _separate_songs(model: nn.Module, stems: list[str], args: argparse.Namespace) -> list[str]:
    """Separate each song of ``args.songs`` (once each, into its own folder) -> the songs that failed."""
    failures = []
    songs = list(dict.fromkeys(args.songs))  # the same file named twice is separated once
    for song, name in zip(songs, output_names(songs), strict=True):
        try:
            written = separate_file(
                model, song, args.out, name=name, stems=stems, segment_s=args.segment_s, overlap=args.overlap,
                batch_size=args.batch_size, device=args.device, progress=True, shifts=args.shifts,
                full_band=not args.band_limited, wiener_iterations=args.wiener, precision=args.precision,
            )  # fmt: skip
            print(f"{song}: wrote {', '.join(str(p) for p in written.values())}")
        except (MSSError, OSError, ValueError) as exc:
            failures.append(song)
            print(f"error: {song}: {exc}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(songs)} song(s) failed: {', '.join(failures)}", file=sys.stderr)
    return failures


def main(argv: list[str] | None = None) -> int:
    """The command line: 0 when every song was separated, 1 when some failed, 2 for a bad model/stems."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    try:
        model = load_model(args.checkpoint, map_location=args.device)
        stems = check_stems(model, args.stems.split(",") if args.stems else None)
    except (MSSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if _separate_songs(model, stems, args) else 0
