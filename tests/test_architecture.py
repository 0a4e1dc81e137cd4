"""The layers as code: no import cycle between our modules, no import hidden inside a function
to dodge one, and the import-linter contracts kept (``make test`` runs ``lint-imports`` too; this
test keeps the same promise for a bare ``pytest``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

from workflow.domain import errors
from workflow.entrypoints.cli import EXIT_CODES
from workflow.entrypoints.web.errors import HTTP_STATUS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("states", "workflow", "notifications")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycle_between_our_modules() -> None:
    graph = grimp.build_graph(*PACKAGES)
    # A package's __init__ importing its own submodules is not a cycle of layers; grimp
    # reports direct imports only, so every edge here is a real ``import`` statement.
    assert _cycles(graph) == []


def _function_imports(path: Path) -> list[tuple[int, str]]:
    """Imports inside functions that carry no comment saying why (the line or the one above)."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import | ast.ImportFrom):
                here = lines[inner.lineno - 1]
                above = lines[inner.lineno - 2] if inner.lineno >= 2 else ""
                if "#" not in here and not above.strip().startswith("#"):
                    found.append((inner.lineno, here.strip()))
    return found


def test_no_unexplained_import_inside_a_function() -> None:
    """A lazy import is allowed for start-up time, with a one-line comment saying so."""
    offenders = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            if found := _function_imports(path):
                offenders[str(path.relative_to(ROOT))] = found
    worker = _function_imports(ROOT / "worker.py")
    if worker:
        offenders["worker.py"] = worker
    assert offenders == {}


def test_the_layer_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_every_error_lives_in_errors_and_has_a_status_and_an_exit_code() -> None:
    """One exception tree in workflow.domain.errors; the edges' tables name every error we
    raise on purpose (no user-facing error answers 500 or exit code 1)."""
    def row(table: dict[type, int], cls: type) -> int | None:
        return next((table[c] for c in cls.__mro__ if c in table), None)

    tree = _subclasses(errors.BangfuError)
    assert tree, "no errors found"
    assert {c.__module__ for c in tree} == {"workflow.domain.errors"}
    missing = [c.__name__ for c in tree if row(HTTP_STATUS, c) is None or row(EXIT_CODES, c) is None]
    assert missing == []
