"""The song check's figures for whole datasets: ``python -m mss.data.check ROOT|default|real-clips ...``

Prints, per song, the mixture's residual to the sum of its stems (``||mix - sum(stems)|| / ||mix||`` and in
dB), the spread of its streams' lengths and the verdict of ``mss.data.song_check`` (the bounds it applies
are printed first), then the largest residual and spread among the songs that pass. This is how the
bounds were chosen; run it on a dataset of your own before trusting its numbers.
"""

from __future__ import annotations

import argparse
import math
import sys

from mss.data.musdb_io import open_db
from mss.data.real_clips import real_clips_dataset
from mss.data.song_check import LENGTH_TOLERANCE_S, RESIDUAL_BOUND
from mss.data.tracks import song_check, track_info
from mss.errors import MSSError


def dataset_checks(dataset: str, subsets=("train", "test")) -> list:
    """The SongCheck (or the error message) of every song of ``dataset``."""
    root = None if dataset == "default" else real_clips_dataset() if dataset == "real-clips" else dataset
    rows = []
    for subset in subsets:
        try:
            db = open_db(root, subset=subset)
        except MSSError:
            continue  # a dataset without this subset
        for track in db.tracks:
            try:
                rows.append(song_check(track_info(track)))
            except MSSError as exc:  # unreadable: not this check's business, but named
                rows.append(f"{subset}/{track.name}: cannot read: {exc}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.data.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", help="dataset roots, 'default' or 'real-clips'")
    args = parser.parse_args(argv)
    print(f"bounds: residual <= {RESIDUAL_BOUND:g}, stream lengths within {LENGTH_TOLERANCE_S:g} s")
    print(f"{'song':50s} {'residual':>9s} {'dB':>7s} {'spread s':>9s}  verdict")
    failed = 0
    for dataset in args.datasets:
        checks = dataset_checks(dataset)
        passing = [c for c in checks if not isinstance(c, str) and c.ok]
        for check in checks:
            if isinstance(check, str):
                print(check)
                failed += 1
                continue
            residual = check.residual if check.residual is not None else math.nan
            db = 20 * math.log10(residual) if residual > 0 else -math.inf if residual == 0 else math.nan
            verdict = "ok" if check.ok else "REFUSED: " + "; ".join(check.problems)
            print(f"{check.track[:50]:50s} {residual:9.2e} {db:7.1f} {check.length_spread_s:9.4f}  {verdict}")
            failed += not check.ok
        residuals = [c.residual for c in passing if c.residual is not None]
        if passing:
            print(
                f"{dataset}: {len(passing)} of {len(checks)} songs pass; largest residual "
                f"{max(residuals, default=math.nan):.3g}, largest length spread "
                f"{max(c.length_spread_s for c in passing):.4f} s"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
