"""python -m mss.evaluation: the evaluation's command line (also ``python -m mss.evaluate``)."""

import sys

from mss.evaluation.cli import main

sys.exit(main())
