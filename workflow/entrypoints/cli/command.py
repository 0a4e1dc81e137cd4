"""What a command module defines: one :class:`Command` per command, in its ``COMMANDS`` table.

A command is its parser's arguments, its handler and its human (Chinese) output, side by side in
one module under :mod:`workflow.entrypoints.cli.commands`; :mod:`.registry` names the module.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

#: A command's handler: the parsed command line and the context, to the result (printed as JSON
#: under ``--json``, else by the command's ``human``).
Handler = Callable[[argparse.Namespace, Any], Any]


class CommandContext(Protocol):
    """What the dispatcher needs of a command's context."""

    args: argparse.Namespace

    def close(self) -> None: ...

    def schema_problem(self, exc: Exception) -> str | None: ...


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command with the common options only."""


@dataclass(frozen=True, kw_only=True)
class Command:
    """One command. ``context`` builds what the handler gets: :class:`Bare` for a command without
    a database, :class:`workflow.entrypoints.cli.context.Context` for the others. ``human``
    prints a result that is neither ``None`` nor a string (those print as they are); without it,
    the result prints as JSON."""

    run: Handler
    context: Callable[[argparse.Namespace], CommandContext]
    arguments: Callable[[argparse.ArgumentParser], None] = no_arguments
    human: Callable[[Any], None] | None = None
    #: The exit code of a result that was printed (``verify`` exits 1 on a difference); 0 without it.
    exit_code: Callable[[Any], int] | None = None


class Bare:
    """The context of a command that opens no database (``lifecycle``): the command line only."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def close(self) -> None:
        return None

    def schema_problem(self, exc: Exception) -> str | None:
        return None
