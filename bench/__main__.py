"""`python -m bench`: run the fan-out benchmark (see bench.run)."""

import sys

from bench.run import main

sys.exit(main())
