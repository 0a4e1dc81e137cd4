"""The ``bangfu`` command line: a thin entry point over the services.

Exit codes: 0 done, 2 bad input (or not found), 3 refused by a rule or a permission,
4 version conflict (try again), 1 a bug. Errors are one line on stderr, never a traceback
(set ``BANGFU_DEBUG=1`` to see one). ``--json`` prints machine-readable output, and under it a
refusal is JSON too: ``{"code", "message", "exit"}`` on stdout.

Layout: each command is one module under :mod:`.commands` (its arguments, its handler and its
Chinese output together); :mod:`.registry` is the table of commands, :mod:`.parser` builds the
parser from it, and the pieces the commands share are :mod:`.context` (the database and the
acting user), :mod:`.output`, :mod:`.exits` and :mod:`.command`. Nothing imports this module.

Start-up: ``bangfu --help`` reads the registry and imports no command module, so neither the
services nor SQLAlchemy; a command imports its own module only (and what that module needs).
The help and argparse's own messages are Chinese (see :mod:`.argparse_zh`).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn

from workflow.domain.errors import BangfuError
from workflow.entrypoints.cli import registry
from workflow.entrypoints.cli.argparse_zh import ChineseParser, json_refusal, wants_json
from workflow.entrypoints.cli.command import CommandContext, Handler
from workflow.entrypoints.cli.exits import EXIT_CODES, exit_code_for, refuse
from workflow.entrypoints.cli.output import print_result
from workflow.entrypoints.cli.parser import build_parser

__all__ = ["COMMANDS", "EXIT_CODES", "SHORT_COMMANDS", "build_parser", "exit_code_for", "main", "run"]

log = logging.getLogger("bangfu.cli")

#: Handlers standing in for a command's own, by name (a test's spy); empty in use.
COMMANDS: dict[str, Handler] = {}
#: The commands that run one short transaction (a clerk's everyday commands): they run with the
#: cyclic garbage collector paused, see :func:`_collector_paused`.
SHORT_COMMANDS = registry.SHORT_COMMANDS


def run() -> NoReturn:
    """The ``bangfu`` console script: :func:`main`, then a quick exit.

    A command's work is done when :func:`main` returns (its transaction committed, its database
    connections closed by ``ctx.close``); what is left is the interpreter tearing down every
    module's objects, about 0.07 s of CPU for SQLAlchemy alone, paid by every call of a clerk's
    script. So the exit handlers run and the streams are flushed here, then the process ends
    without that teardown. With another thread still running, the normal exit waits for it.
    """
    code = main(process_ends=True)
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # noqa: SLF001 - what interpreter exit would run (logging.shutdown included)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # piped into `head`, or closed
            stream.flush()
    os._exit(code)


@contextlib.contextmanager
def _collector_paused(paused: bool, *, resume: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector while a short command loads and runs (``paused``), then
    resume it (unless not ``resume``: the process ends right after).

    A short command's CPU is mostly imports: SQLAlchemy and psycopg build some 90,000 objects, and
    with the collector on, Python scans the growing heap about 140 times on the way (a tenth of
    the command's CPU). Reference counting still frees everything that is not in a cycle; what a
    short command leaves in cycles is small and freed at exit. Long commands (imports, sweeps,
    ``serve``) keep the collector on.
    """
    if not paused or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if resume:
            gc.enable()


def main(argv: Sequence[str] | None = None, *, process_ends: bool = False) -> int:
    """Run one command line; its exit code. ``process_ends``: the process ends right after (the
    console script, :func:`run`), so a short command leaves the garbage collector paused."""
    logging.basicConfig(level=os.environ.get("BANGFU_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    json_out = wants_json(argv)
    ChineseParser.json_errors = json_out
    words = sys.argv[1:] if argv is None else list(argv)
    # The command's module is imported while its command line is parsed: paused from there on, the
    # output and the closing too (resuming the collector scans every object made since).
    short = bool(words) and words[0] in SHORT_COMMANDS
    with _collector_paused(short, resume=not process_ends):
        return _dispatch(words, json_out)


def _dispatch(words: list[str], json_out: bool) -> int:
    """Parse (a usage error exits 2 from argparse), run and print; a refusal or a bug as one line."""
    ctx: CommandContext | None = None
    try:
        args = build_parser().parse_args(words)  # imports the command's module: a failure is a bug
        command = registry.load(args.command)
        ctx = command.context(args)
        result = COMMANDS.get(args.command, command.run)(args, ctx)
        print_result(result, command.human, as_json=args.json)
        return 0
    except BangfuError as exc:
        missing = ctx.schema_problem(exc) if ctx is not None else None
        if missing is not None:
            return refuse(json_out, code="db.schema", message=missing, exit_code=3)
        return refuse(json_out, exc.code, exc.message, exit_code_for(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's flush at exit
        return 0
    except Exception as exc:  # a bug: one line, the traceback only in debug mode
        if os.environ.get("BANGFU_DEBUG"):
            raise
        # The traceback goes to the log at DEBUG only: stderr gets one line, never a traceback.
        log.debug("unexpected error", exc_info=True)
        missing = ctx.schema_problem(exc) if ctx is not None else None
        if missing is not None:
            return refuse(json_out, code="db.schema", message=missing, exit_code=3)
        message = f"内部错误（{type(exc).__name__}）：{exc}。设置 BANGFU_DEBUG=1 查看详情"
        if json_out:
            print(json_refusal("internal", message, 1))
            return 1
        print(message, file=sys.stderr)
        return 1
    finally:
        if ctx is not None:
            ctx.close()
