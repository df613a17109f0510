"""``python -m minigrad``: the command line."""
import sys

from minigrad.cli import main

sys.exit(main())
