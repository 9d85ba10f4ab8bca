"""Objective evaluation: museval's BSS Eval v4 on held-out songs, beside oracle and trivial baselines.

    python -m mss.evaluate --checkpoint A.pt --checkpoint B.pt --dataset default --jobs 2 --out eval

Modules, in the order of their dependencies (each imports only modules above it):

- ``museval_format``  the BSS Eval frame (1 s), museval's per-track JSON written and read (leaf)
- ``bsseval``         BSS Eval v4 equal to museval's, streamed by blocks; the fast window SDR
- ``oracles``         IRM1 / IRM2 / mixture baselines
- ``tables``          results tables from an evaluation folder (museval's aggregation), markdown
- ``methods``         what is scored (checkpoint variants, baselines), provenance, methods.json
- ``scoring``         one song scored: every method from one decode of the song (worker side)
- ``records``         what a run keeps beside the scores: conditioning, song checks, the pace
- ``driver``          ``evaluate()``: separate, dispatch one scoring job per song, write the tables
- ``cli``             the command line (``python -m mss.evaluate`` / ``python -m mss.evaluation``)
"""

from mss import SOURCES
from mss.evaluation.cli import main
from mss.evaluation.driver import REAL_CLIPS, EvaluationResult, evaluate, load_song, resolve_dataset
from mss.evaluation.methods import Method, describe_checkpoints, file_hash, load_checkpoint_model
from mss.evaluation.museval_format import HOP_S, WINDOW_S, is_scored
from mss.evaluation.tables import aggregate, format_markdown, track_table

__all__ = [
    "HOP_S",
    "REAL_CLIPS",
    "EvaluationResult",
    "SOURCES",
    "WINDOW_S",
    "Method",
    "aggregate",
    "describe_checkpoints",
    "evaluate",
    "file_hash",
    "format_markdown",
    "is_scored",
    "load_checkpoint_model",
    "load_song",
    "main",
    "resolve_dataset",
    "track_table",
]
