"""The catalogue of refusal and error codes (:mod:`workflow.domain.codes`) is whole: every code the
source gives is in it, and every code in it is given somewhere.

A code is given (found by reading the source with :mod:`ast`, not by importing it) as:

* the first argument of ``Refusal("…", …)``;
* a ``code="…"`` keyword of any call (``BadInput(…, code="…")``, ``TimeInputError(…)`` …);
* a class's ``code = "…"`` (the error classes' defaults, ``RowError.code``);
* a parameter named ``code``: its default (``money._refuse(…, code="input.money")``) and the
  argument passed in its place (``print_refusal(json_out, "db.schema", …)``, ``json_refusal("cli.usage", …)``);
* a ``{"code": "…"}`` literal (the web's JSON answers);
* a tuple of a code and a Chinese sentence (the web's ``(code, title, message)`` problems).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from workflow.domain import codes

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("workflow", "states", "notifications", "worker.py")
CODE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
DOTTED_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
CJK_RE = re.compile(r"[\u4e00-\u9fff]")


def _files() -> Iterator[Path]:
    for name in SOURCES:
        path = ROOT / name
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def _literal(node: ast.AST | None, pattern: re.Pattern[str] = CODE_RE) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.match(node.value):
        return node.value
    return None


def _code_positions(tree: ast.AST) -> dict[str, tuple[int, bool]]:
    """Function name → (index of its positional parameter named ``code``, whether it also takes a
    ``message``: then even an undotted code such as ``internal`` is one; otherwise only a dotted
    one is, so that ``_platform("ygh")`` is not taken for a code)."""
    out: dict[str, tuple[int, bool]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
            if "code" in names:
                out[node.name] = (names.index("code"), "message" in names)
    return out


def used_codes() -> dict[str, set[str]]:
    """Code → the files that give it."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in _files()}
    everywhere: dict[str, tuple[int, bool] | None] = {}
    for tree in trees.values():
        for name, index in _code_positions(tree).items():
            everywhere[name] = index if everywhere.get(name, index) == index else None  # ambiguous
    found: dict[str, set[str]] = defaultdict(set)
    for path, tree in trees.items():
        local = _code_positions(tree)
        where = str(path.relative_to(ROOT))

        def add(value: str | None, where: str = where) -> None:
            if value:
                found[value].add(where)

        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name == "Refusal" and node.args:
                    add(_literal(node.args[0]))
                for kw in node.keywords:
                    if kw.arg == "code":
                        add(_literal(kw.value))
                position = local.get(name, everywhere.get(name))
                if position is not None and len(node.args) > position[0]:
                    add(_literal(node.args[position[0]], CODE_RE if position[1] else DOTTED_RE))
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    target = (stmt.targets[0] if isinstance(stmt, ast.Assign) else
                              stmt.target if isinstance(stmt, ast.AnnAssign) else None)
                    if isinstance(target, ast.Name) and target.id == "code":
                        add(_literal(stmt.value))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                positional = [*node.args.posonlyargs, *node.args.args]
                defaults = dict(zip([a.arg for a in positional[len(positional) - len(node.args.defaults):]],
                                    node.args.defaults, strict=True))
                defaults.update({a.arg: d for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
                                 if d is not None})
                add(_literal(defaults.get("code")))
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "code":
                        add(_literal(value))
            elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
                rest = node.elts[1:]
                if any(isinstance(e, ast.Constant) and isinstance(e.value, str) and CJK_RE.search(e.value)
                       for e in rest):
                    add(_literal(node.elts[0], DOTTED_RE))
    return dict(found)


def test_every_code_given_is_in_the_catalogue() -> None:
    missing = {code: sorted(files) for code, files in used_codes().items() if code not in codes.CODES}
    assert not missing, f"codes given but not in workflow/domain/codes.py: {missing}"


def test_every_code_in_the_catalogue_is_given_somewhere() -> None:
    unused = sorted(set(codes.CODES) - set(used_codes()))
    assert not unused, f"codes in workflow/domain/codes.py that nothing gives: {unused}"


def test_each_entry_has_an_area_and_a_chinese_line() -> None:
    areas = {area for area, _ in codes.AREAS}
    for code, entry in codes.CODES.items():
        assert entry.area in areas, code
        assert CJK_RE.search(entry.text) and "\n" not in entry.text and len(entry.text) <= 80, code
    listed = [code for _, table in codes._BY_AREA.items() for code in table]
    assert len(listed) == len(set(listed)) == len(codes.CODES), "a code is listed in two areas"
    assert [area for area, _ in codes.AREAS] == list(codes._BY_AREA)
    assert codes.describe("purchase.outside_year") == codes.CODES["purchase.outside_year"].text
    assert codes.describe("no.such_code") is None
