"""``python -m benchmarks.fleet``: the fleet benchmark's command line (see the package's docstring)."""

import sys

from benchmarks.fleet.cli import main

sys.exit(main())
