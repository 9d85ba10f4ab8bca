"""python -m mss.report: the comparison report."""

import sys

from mss.report.build import main

sys.exit(main())
