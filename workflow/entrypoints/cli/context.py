"""What a command with a database gets: the database, its units of work and the acting user."""

from __future__ import annotations

import argparse
import logging
import os

from workflow.app import oplog, record_views
from workflow.domain import money
from workflow.domain.errors import BadInput, StoreError
from workflow.settings import get_settings
from workflow.store.engine import Database
from workflow.store.uow import UnitOfWork

log = logging.getLogger("bangfu.cli")


class Context:
    """The database (opened on first use) and the acting user of one command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._db: Database | None = None
        # The operation log's rows of this command say where it ran (user@host on the CLI).
        where = oplog.cli_where()
        oplog.set_where("cli", where.address, operator=where.operator)

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(get_settings().database_url)
        return self._db

    @property
    def opened_db(self) -> Database | None:
        """The database if this command opened one (nothing is opened to ask)."""
        return self._db

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        """A unit of work: the one factory every command uses."""
        return UnitOfWork(self.db, readonly=readonly)

    def user_id(self) -> int:
        name = self.args.as_user or os.environ.get("BANGFU_USER")
        if not name:
            raise BadInput("请用 --as 用户名 指定以哪个用户身份操作（或设置 BANGFU_USER）", code="cli.no_user")
        with self.uow(readonly=True) as uow:
            return uow.directory.user_by_name(name).id or 0

    def record_id(self, org: str) -> int:
        return record_views.find_record(self.uow(readonly=True), org_code=org, round_label=self.args.round)

    def seen_version(self, record_id: int) -> int:
        """The version the caller saw: ``--version`` or, on the command line, the current one."""
        if self.args.version is not None:
            return money.parse_count(self.args.version, "版本号", minimum=1)
        with self.uow(readonly=True) as uow:
            return uow.records.get(record_id).version

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()

    def schema_problem(self, exc: Exception) -> str | None:
        """A database error from a database bangfu has not set up, or one whose schema is older
        than this release: the step to take, in Chinese, instead of the driver's English and SQL."""
        if self._db is None or not isinstance(exc, StoreError):
            return None
        try:
            current, head = self._db.schema_revisions()
        except Exception:  # the database does not answer at all: the error as it came
            log.debug("schema check failed", exc_info=True)
            return None
        if current == head:
            return None
        if current is None:
            return "数据库尚未建立：请先运行 bangfu db-upgrade（或 make run），再执行此命令"
        return "数据库结构不是本版本所需的最新版本：请先运行 bangfu db-upgrade，再执行此命令"
