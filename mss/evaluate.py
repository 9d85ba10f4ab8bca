"""``python -m mss.evaluate``: the evaluation's command line, kept under its first name (the code is the
``mss.evaluation`` package; ``from mss.evaluation import evaluate`` is the Python API)."""

import sys

from mss.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
