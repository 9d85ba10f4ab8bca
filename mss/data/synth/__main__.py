"""python -m mss.data.synth ROOT [--preset NAME] [--seed N] [--format wav|stems] [--subtype FLOAT|PCM_16]
[--overwrite] [--jobs N] [--version 3|4|5|6|7]"""

from __future__ import annotations

import argparse
import sys
import time

from mss.errors import MSSError

from .formats import FORMATS, SUBTYPES
from .presets import DATASET_PRESETS
from .versions import DEFAULT_VERSION, VERSIONS, versions_help
from .writer import generate_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.data.synth", description=__doc__)
    parser.add_argument("root", help="output folder (MUSDB18-HQ or MUSDB18 layout)")
    parser.add_argument("--preset", default="default", choices=list(DATASET_PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--format",
        default="wav",
        choices=FORMATS,
        help="wav: MUSDB18-HQ folders of wav files; stems: MUSDB18 .stem.mp4 files (5 AAC streams, no piano)",
    )
    parser.add_argument(
        "--subtype",
        choices=SUBTYPES,
        help="samples of the wav files (default: the preset's, FLOAT; PCM_16 for the musdb presets)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset at ROOT")
    parser.add_argument(
        "--jobs", type=int, default=1, help="songs rendered in parallel (same bytes for any value)"
    )
    parser.add_argument(
        "--version",
        type=int,
        default=DEFAULT_VERSION,
        choices=VERSIONS,
        help=f"generator version (default {DEFAULT_VERSION}). {versions_help()}",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        root = generate_dataset(
            args.root,
            args.preset,
            args.seed,
            progress=True,
            overwrite=args.overwrite,
            jobs=args.jobs,
            format=args.format,
            subtype=args.subtype,
            version=args.version,
        )
    except MSSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {root} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
