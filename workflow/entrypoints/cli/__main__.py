"""``python -m workflow.entrypoints.cli``."""

import sys

from workflow.entrypoints.cli import main

sys.exit(main())
