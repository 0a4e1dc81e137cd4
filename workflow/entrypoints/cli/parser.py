"""The command line's parser, built from :mod:`.registry`: every command is listed, and a
command's own arguments are added by its module when that command is parsed or asked for help."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.entrypoints.cli import registry
from workflow.entrypoints.cli.argparse_zh import ChineseParser


class CommandParser(ChineseParser):
    """A command's parser: its arguments come from its module, imported the first time the
    command line is parsed or its help formatted (only the named command's module loads)."""

    command: str | None = None  # set for a command of the registry; None for a nested parser
    _complete = False

    def _complete_arguments(self) -> None:
        if self.command is not None and not self._complete:
            self._complete = True
            registry.load(self.command).arguments(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._complete_arguments()
        return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        self._complete_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self._complete_arguments()
        return super().format_help()


def common_options() -> CommandParser:
    """The options every command takes (the parent of every command's parser)."""
    common = CommandParser(add_help=False)
    common.add_argument("--json", action="store_true",
                        help="输出 JSON（出错时也输出 JSON：code、message、exit）")
    common.add_argument("--as", dest="as_user", metavar="用户名", help="以该用户身份操作（或设置环境变量 BANGFU_USER）")
    common.add_argument("--round", metavar="年度", help="年度名称或年份，如 2021（默认最新年度）")
    common.add_argument("--version", metavar="版本号", help="你看到的记录版本号（默认当前版本）")
    return common


def org_argument(p: argparse.ArgumentParser) -> None:
    """The organisation a record command acts on (its only argument for several)."""
    p.add_argument("org", metavar="单位代码")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. ``only`` (the first word of a command line) is accepted for
    callers of the earlier one-command parser: every parser now builds a command's arguments only
    when that command is used, so the whole parser is the one command's parser too."""
    common = common_options()
    parser = ChineseParser(prog="bangfu", description="消费帮扶记录工作流（粤工总〔2021〕17号）",
                           epilog="退出码：0 完成，2 输入有误或找不到，3 规则或权限不允许，4 版本冲突（请重读后重试），1 程序错误。")
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令", title="可用命令",
                                parser_class=CommandParser)
    for name, entry in registry.COMMANDS.items():
        command = sub.add_parser(name, help=entry.help, description=entry.help, parents=[common])
        command.command = name
    return parser
