"""``python -m workflow.entrypoints.cli``."""

from workflow.entrypoints.cli import run

run()
