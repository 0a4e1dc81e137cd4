"""argparse in Chinese: the operators' one language for the CLI's help and usage errors.

argparse builds its texts with ``gettext`` (module globals ``argparse._`` and
``argparse.ngettext``). :class:`ChineseParser` swaps in a Chinese catalogue only while one of its
own methods runs (building, parsing, formatting help), so other argparse users in the same
process (pytest, for one) are untouched. Under ``--json`` a usage error is printed as the same
JSON refusal as any other error: ``{"code": "cli.usage", "message": ..., "exit": 2}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

__all__ = ["ChineseParser", "json_refusal", "wants_json"]

# argparse's msgids (Python 3.11-3.13) -> Chinese.
CATALOGUE: dict[str, str] = {
    "usage: ": "用法：",
    "positional arguments": "参数",
    "options": "选项",
    "optional arguments": "选项",
    "show this help message and exit": "显示本帮助并退出",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "one of the arguments %s is required": "须给出其中一个参数：%s",
    "expected one argument": "需要一个值",
    "expected at most one argument": "最多一个值",
    "expected at least one argument": "至少一个值",
    "invalid %(type)s value: %(value)r": "值 %(value)r 无效",
    "invalid choice: %(value)r (choose from %(choices)s)": "无效的选项 %(value)r（可选：%(choices)s）",
    "ambiguous option: %(option)s could match %(matches)s": "选项 %(option)s 不明确，可能是：%(matches)s",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "ignored explicit argument %r": "多余的值 %r",
    "unexpected option string: %s": "意外的选项：%s",
    "%(prog)s: error: %(message)s\n": "%(prog)s：错误：%(message)s\n",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "没有命令 %(parser_name)r（可选：%(choices)s）",
    "can't open '%(filename)s': %(error)s": "无法打开“%(filename)s”：%(error)s",
}
PLURALS: dict[str, str] = {
    "expected %s argument": "需要 %s 个值",
}


def _gettext(message: str) -> str:
    return CATALOGUE.get(message, message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return PLURALS.get(singular, singular if n == 1 else plural)


@contextmanager
def _chinese() -> Iterator[None]:
    saved: tuple[Callable[..., str], Callable[..., str]] = (argparse._, argparse.ngettext)  # type: ignore[attr-defined]
    argparse._ = _gettext  # type: ignore[attr-defined]
    argparse.ngettext = _ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


def wants_json(argv: Sequence[str] | None) -> bool:
    """Whether the command line asks for JSON output (before it is parsed)."""
    return "--json" in (sys.argv[1:] if argv is None else argv)


def json_refusal(code: str, message: str, exit_code: int) -> str:
    """The JSON a refusal prints under ``--json``."""
    return json.dumps({"code": code, "message": message, "exit": exit_code}, ensure_ascii=False)


class ChineseParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help, usage and errors are Chinese."""

    json_errors = False  # set by the CLI's ``main`` when ``--json`` is on the command line

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with _chinese():
            super().__init__(*args, **kwargs)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        with _chinese():
            return super().parse_known_args(*args, **kwargs)

    def parse_args(self, *args: Any, **kwargs: Any) -> Any:
        # Extra arguments are refused here, after parse_known_args: Chinese too.
        with _chinese():
            return super().parse_args(*args, **kwargs)

    def format_usage(self) -> str:
        with _chinese():
            return super().format_usage()

    def format_help(self) -> str:
        with _chinese():
            return super().format_help()

    def error(self, message: str) -> NoReturn:
        if ChineseParser.json_errors:
            print(json_refusal("cli.usage", message, 2))
            self.exit(2)
        with _chinese():
            super().error(message)
