"""``lifecycle``: the workflow as a Mermaid diagram (no database; nothing heavy is imported)."""

from __future__ import annotations

import argparse

import states
from workflow.entrypoints.cli.command import Bare, Command


def lifecycle(args: argparse.Namespace, ctx: Bare) -> str:
    return states.mermaid()


COMMANDS = {"lifecycle": Command(run=lifecycle, context=Bare)}
