"""``python -m listening_study.analysis RATINGS.csv --out DIR ...``: the analysis pipeline's command line."""

import sys

from listening_study.analysis.pipeline import main

sys.exit(main())
