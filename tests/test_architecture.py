"""The layers as code: no import cycle between our modules, no import hidden inside a function
to dodge one (nor behind ``__import__`` or ``importlib``), the command line's registry whole, and
the import-linter contracts kept (``make test`` runs ``lint-imports`` too; this test keeps the
same promise for a bare ``pytest``).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import grimp

from workflow.domain import errors
from workflow.entrypoints.cli import EXIT_CODES, registry
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.web.errors import HTTP_STATUS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("states", "workflow", "notifications")
CLI = ROOT / "workflow" / "entrypoints" / "cli"


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


def _sources() -> list[Path]:
    return [*(p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))), ROOT / "worker.py"]


def _dynamic_imports(path: Path) -> list[tuple[str, int, str]]:
    """``__import__(...)`` and ``importlib.import_module(...)`` calls that may load one of our
    modules (a name that is not a literal may): (enclosing function, line, source)."""
    source = path.read_text()
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
            continue
        where = getattr(node, "name", "<module>")
        for call in ast.walk(node):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name not in ("__import__", "import_module"):
                continue
            first = call.args[0] if call.args else None
            literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
            if literal is None or literal.split(".")[0] in PACKAGES:
                found.append((where, call.lineno, ast.get_source_segment(source, call) or ""))
    return found


def test_no_dynamic_import_of_our_modules_but_the_registrys_loader() -> None:
    """A module loaded by name is an import the graph (grimp, import-linter) cannot see: the one
    allowed is the command line's registry loading the module of the command being run."""
    found = {}
    for path in _sources():
        # A call inside a function is seen from the module and from each enclosing function.
        if calls := sorted({(line, text) for _where, line, text in _dynamic_imports(path)}):
            found[str(path.relative_to(ROOT))] = calls
    loader = "workflow/entrypoints/cli/registry.py"
    assert set(found) == {loader}, found
    assert [w for w, _line, _text in _dynamic_imports(ROOT / loader) if w != "<module>"] == ["load"]


def test_every_registered_command_has_its_module_and_its_parts() -> None:
    """Each entry of the registry names a module of ``cli/commands`` whose ``COMMANDS`` defines
    that command (handler, context, arguments, output); each command defined there is registered."""
    modules = {p.stem for p in (CLI / "commands").glob("*.py") if p.stem != "__init__"}
    assert {entry.module for entry in registry.COMMANDS.values()} == modules
    for name, entry in registry.COMMANDS.items():
        path = CLI / "commands" / f"{entry.module}.py"
        tree = ast.parse(path.read_text())
        top = {t.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
        assert "COMMANDS" in top, path
        assert any("\u4e00" <= ch <= "\u9fff" for ch in entry.help), name
        command = registry.load(name)
        assert isinstance(command, Command), name
        assert callable(command.run) and callable(command.context) and callable(command.arguments), name
        assert command.human is None or callable(command.human), name
    for module in modules:
        defined = vars(importlib.import_module(f"{registry.PACKAGE}.{module}"))["COMMANDS"]
        assert {n for n, e in registry.COMMANDS.items() if e.module == module} == set(defined), module


def test_the_command_line_imports_nothing_inside_a_function() -> None:
    """Its modules import at the top: a command's module is loaded only when that command runs
    (by the registry), so what it needs may load with it."""
    found = {}
    for path in sorted(CLI.rglob("*.py")):
        tree = ast.parse(path.read_text())
        lines = [inner.lineno for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                 for inner in ast.walk(node) if isinstance(inner, ast.Import | ast.ImportFrom)]
        if lines:
            found[str(path.relative_to(ROOT))] = sorted(set(lines))
    assert found == {}


def test_nothing_imports_the_command_line_package_back() -> None:
    """The commands import the shared modules (context, output, exits), never the package that
    dispatches to them: only ``python -m``'s ``__main__`` imports it."""
    graph = grimp.build_graph(*PACKAGES)
    assert graph.find_modules_that_directly_import("workflow.entrypoints.cli") <= {"workflow.entrypoints.cli.__main__"}


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


#: What a unit of work keeps for its repositories (inside workflow/store only).
_STORE_INTERNALS = {"session", "connection", "execute"}


def test_nothing_above_the_store_reaches_into_a_unit_of_works_transaction() -> None:
    """Issue 19: the use cases and the edges say ``with uow:`` and call repositories
    (``uow.records.get(…)``); none touches the session, the connection or a raw statement, nor
    names SQLAlchemy (import-linter forbids the import; this catches an attribute reached through a
    unit of work, whatever the variable is called)."""
    offenders = []
    above = [p for p in _sources() if not p.is_relative_to(ROOT / "workflow" / "store")
             and not p.is_relative_to(ROOT / "workflow" / "scheduler")]
    for path in above:
        source = path.read_text()
        tree = ast.parse(source)
        units = {"uow", "read", "write", "unit"}
        for node in ast.walk(tree):
            # a variable bound to a unit of work: ``with UnitOfWork(...) as x`` or ``x = UnitOfWork(...)``
            if isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
                units.add(node.optional_vars.id)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in _STORE_INTERNALS
                    and isinstance(node.value, ast.Name) and node.value.id in units):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.get_source_segment(source, node)}")
    assert offenders == []
