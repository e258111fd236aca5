"""`python -m ffnlp_core ...`: the headless command line (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
