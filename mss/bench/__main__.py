"""python -m mss.bench: the separation benchmark (``mss.bench.separation``)."""

import sys

from mss.bench.separation import main

sys.exit(main())
