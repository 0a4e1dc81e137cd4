"""The operation audit log (issue 21): who did what, from where, to what, with what outcome.

**The writer API** (for every caller, the login seam included)::

    from workflow.app import oplog

    # inside an open unit of work (the row commits or rolls back with the change):
    oplog.record(uow, actor_id, role, org_id, "user.unlock", "user:gd-clerk", oplog.OK,
                 address, {"why": "…"})

    # on its own (a login, a failed login, a lockout, a logout, a reveal of phones):
    oplog.log(database, action="auth.login_failed", actor_name="gd-clerk", outcome=oplog.REFUSED,
              address="10.0.0.7", detail={"code": "login.failed"})

``role``/``org_id`` None: the actor's seats are looked up (all roles held). ``address`` None:
the client address of the request or command being served (:func:`acting_from`, set by the web
middleware and the CLI). Action codes are in one catalogue, :mod:`workflow.domain.oplog`
(``auth.login``, ``auth.login_failed``, ``auth.lockout``, ``auth.logout``,
``auth.password_change``, ``user.unlock``, ``password.policy``, ``contacts.reveal``,
``contacts.export`` …); add a code there before writing it.

**The seam for use cases**: a write use case is decorated with :func:`audited`; its row is left
pending on the unit of work and written by ``uow.commit()`` in the same transaction (so no
committed write goes without its row); a refusal or an error writes a row with that outcome in a
transaction of its own. ``tests/app/test_oplog.py`` fails for a use case that commits and is not
decorated.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ParamSpec, TypeVar

from workflow.domain import access, clock
from workflow.domain import oplog as catalogue
from workflow.domain.errors import BadInput, BangfuError, NotFound, PermissionDenied, StoreError
from workflow.domain.oplog import FAILED, OK, REFUSED
from workflow.store.engine import Database
from workflow.store.oplog import Entry, Filters, Row, canonical
from workflow.store.uow import UnitOfWork

__all__ = ["FAILED", "OK", "REFUSED", "Where", "acting_from", "audited", "log", "record"]

logger = logging.getLogger("bangfu.oplog")

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Where:
    """Where the current request or command comes from."""

    channel: str | None = None  # web | api | cli | worker
    address: str | None = None  # the client's address (the web's), or user@host (the CLI's)
    operator: str | None = None  # who runs a command without an account (the OS user)


_WHERE: ContextVar[Where] = ContextVar("bangfu_oplog_where", default=Where())  # noqa: B039 - frozen
_INSIDE: ContextVar[bool] = ContextVar("bangfu_oplog_inside", default=False)


@contextmanager
def acting_from(channel: str, address: str | None, *, operator: str | None = None) -> Iterator[None]:
    """Within the block, rows written without an address carry this one (the edges set it)."""
    token = _WHERE.set(Where(channel, address, operator))
    try:
        yield
    finally:
        _WHERE.reset(token)


def set_where(channel: str, address: str | None, *, operator: str | None = None) -> None:
    """:func:`acting_from` for an edge that sets it once for its context (a request's task)."""
    _WHERE.set(Where(channel, address, operator))


def cli_where() -> Where:
    """The command line's origin: the operating system's user at this host."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name (a container without /etc/passwd)
        user = "unknown"
    return Where("cli", f"{user}@{socket.gethostname()}"[:64], user)


def where() -> Where:
    return _WHERE.get()


def record(uow: UnitOfWork, actor_id: int | None, role: str | None, org_id: int | None, action: str,
           object: str | None, outcome: str = OK, address: str | None = None,
           detail: dict[str, Any] | None = None, *, actor_name: str | None = None) -> int:
    """Write one row inside an open unit of work (it commits with the unit); its sequence number."""
    w = _WHERE.get()
    return uow.oplog.write(actor_id, role, org_id, action, object, outcome, address or w.address, detail,
                           actor_name=actor_name or (w.operator if actor_id is None else None),
                           channel=w.channel)


def log(database: Database, *, action: str, actor_id: int | None = None, actor_name: str | None = None,
        role: str | None = None, org_id: int | None = None, object: str | None = None, outcome: str = OK,
        address: str | None = None, detail: dict[str, Any] | None = None) -> int:
    """Write one row in a transaction of its own (logins, logouts, lockouts, reveals)."""
    with UnitOfWork(database) as uow:
        seq = record(uow, actor_id, role, org_id, action, object, outcome, address, detail, actor_name=actor_name)
        uow.commit()
    return seq


# --- the seam: write use cases -----------------------------------------------------------------

#: Keyword arguments that name the object of a use case, in the order looked for.
_OBJECT_KEYS = (("record_id", "record"), ("purchase_id", "purchase"), ("username", "user"),
                ("org_code", "org"), ("round_label", "round"))
#: Keyword arguments never copied into a row's detail.
_SECRET = ("password", "token", "data", "phone", "email")


def _object_of(kwargs: dict[str, Any]) -> str | None:
    for key, kind in _OBJECT_KEYS:
        if kwargs.get(key) not in (None, ""):
            return f"{kind}:{kwargs[key]}"
    return None


def _detail_of(kwargs: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keep:
        value = kwargs.get(key)
        if value is None or any(s in key for s in _SECRET):
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {k: v for k, v in dataclasses.asdict(value).items()
                     if v is not None and not any(s in k for s in _SECRET)}
        out[key] = value if isinstance(value, str | int | float | bool | dict) else str(value)
    return out


def audited(action: str, *, keep: tuple[str, ...] = (),
            subject: Callable[[dict[str, Any]], str | None] | None = None,
            success_row: bool = True) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a write use case ``fn(uow, *, …)``: each call leaves one row of ``action``.

    The actor is the ``user_id`` or ``actor_id`` keyword (None: an operator on the command line,
    named by :func:`cli_where`); the object the first of ``record_id``, ``purchase_id``,
    ``username``, ``org_code``, ``round_label`` (or ``subject(kwargs)``); the detail the ``keep``
    keywords plus what the use case adds with ``uow.oplog.note(…)``. A call inside another
    audited call writes no row of its own (the outer one speaks for both).

    ``success_row=False`` (a transition): a success's row is the history row the use case writes
    in its own transaction (chained, append-only; the log's readers read it too, see
    :meth:`workflow.store.oplog.OpLogRepo.search`), so the hot path writes nothing twice; only a
    refusal or an error is written here.
    """
    catalogue.check(action, OK)

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if _INSIDE.get():
                return fn(*args, **kwargs)
            uow = args[0] if args else kwargs["uow"]
            assert isinstance(uow, UnitOfWork)
            actor = kwargs.get("user_id", kwargs.get("actor_id"))
            w = _WHERE.get()
            entry = Entry(action=action, actor_id=actor if isinstance(actor, int) else None,
                          actor_name=w.operator if actor is None else None,
                          object=(subject or _object_of)(kwargs), channel=w.channel, address=w.address,
                          detail=_detail_of(kwargs, keep))
            token = _INSIDE.set(True)
            uow.oplog.expect(entry if success_row else None)
            try:
                result = fn(*args, **kwargs)
            except BangfuError as exc:
                _after(uow, entry, FAILED if isinstance(exc, StoreError) else REFUSED,
                       {"code": exc.code, "message": exc.message[:200]})
                raise
            except Exception as exc:
                _after(uow, entry, FAILED, {"error": type(exc).__name__})
                raise
            finally:
                _INSIDE.reset(token)
            if success_row and uow.oplog.pending is not None:  # the use case committed nothing
                _after(uow, entry, OK, {})
            return result

        run.__oplog_action__ = action  # type: ignore[attr-defined]
        return run

    return wrap


def _after(uow: UnitOfWork, entry: Entry, outcome: str, more: dict[str, Any]) -> None:
    """The row of a call that did not commit its own: in a transaction of its own."""
    extra = uow.oplog.extra
    uow.oplog.expect(None)
    detail = dict(entry.detail or {}, **extra, **more)
    try:
        with UnitOfWork(uow.database) as own:
            own.oplog.write(entry.actor_id, entry.role, entry.org_id, entry.action, entry.object, outcome,
                            entry.address, detail or None, actor_name=entry.actor_name, channel=entry.channel)
            own.commit()
    except Exception:  # the database is gone: the caller's error says so; never hide it
        logger.warning("oplog row not written for %s (%s)", entry.action, outcome, exc_info=True)


# --- reading: the auditor's page, `bangfu audit-log`, the CSV --------------------------------

#: The CSV's columns (Chinese headers, one row per log row).
CSV_HEADER = ("序号", "时间", "操作人账号", "操作人姓名", "角色", "所属单位", "操作", "对象", "结果", "来源", "地址", "详情")
CHANNEL_LABELS = {"web": "网页", "api": "接口", "cli": "命令行", "worker": "后台任务"}


@dataclass(frozen=True)
class LogQuery:
    """The reader's filters (all optional): an account, an action (or a prefix ending in
    "."), an organisation (its subtree's actors), China dates from and to (inclusive), an
    outcome."""

    actor: str | None = None
    action: str | None = None
    org_code: str | None = None
    since: date | None = None
    until: date | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class LogPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _filters(uow: UnitOfWork, user_id: int, q: LogQuery) -> Filters:
    """The query as the store's filters, narrowed to what the user may read (auditors only)."""
    scope = access.oplog_scope(uow.directory.memberships(user_id))
    if scope is None:
        raise PermissionDenied("只有审计员可以查看审计日志", code="permission.not_auditor")
    if q.action and q.action not in catalogue.ACTIONS and not q.action.endswith("."):
        raise BadInput(f"没有“{q.action}”这种操作", code="oplog.unknown_action")
    if q.outcome and q.outcome not in catalogue.OUTCOMES:
        raise BadInput(f"结果应为 {'、'.join(catalogue.OUTCOMES)} 之一", code="oplog.unknown_action")
    paths: tuple[str, ...] | None = tuple(scope) if scope else None
    if q.org_code:
        try:
            org = uow.directory.org_by_code(q.org_code.strip())
        except NotFound:
            raise NotFound(f"找不到单位“{q.org_code}”", code="org.not_found") from None
        if paths is not None and not any(org.path.startswith(p) for p in paths):
            raise NotFound(f"找不到单位“{q.org_code}”", code="org.not_found")
        paths = (org.path,)
    return Filters(actor=(q.actor or "").strip() or None, action=q.action or None, org_paths=paths,
                   since=clock.at_china_hour(q.since, 0) if q.since else None,
                   until=clock.at_china_hour(q.until + timedelta(days=1), 0) if q.until else None,
                   outcome=q.outcome or None)


def shown(row: Row) -> dict[str, Any]:
    """A row as the page and the CSV show it: China time, Chinese names."""
    return {
        "seq": row.seq, "at": row.at.astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M:%S"),
        "actor": row.actor_name or "系统", "actor_display": row.actor_display or "",
        "role": "、".join(ROLE_NAMES.get(r, r) for r in (row.actor_role or "").split(",") if r),
        "org": row.org_name or "", "action": row.action, "action_label": catalogue.label(row.action),
        "object": object_label(row.object), "outcome": row.outcome,
        "outcome_label": catalogue.OUTCOMES.get(row.outcome, row.outcome),
        "channel": CHANNEL_LABELS.get(row.channel or "", row.channel or ""), "address": row.address or "",
        "detail": detail_text(row.detail),
    }


OBJECT_KINDS = {"record": "记录 #", "purchase": "采购行 #", "user": "账号 ", "org": "单位 ", "round": "年度 "}
#: The detail's keys as a clerk reads them (others as they are).
DETAIL_LABELS = {
    "trigger": "操作", "reason": "原因", "seen_version": "看到的版本", "on_behalf": "代填报", "before": "修改前",
    "amount_per_member_fen": "每人额度（分）", "members": "会员人数", "purchase": "采购", "order_no": "订单号",
    "amount_fen": "金额（分）", "people": "人次", "channel": "渠道", "display_name": "姓名", "new_username": "用户名",
    "org_code": "单位代码", "role": "角色", "name": "名称", "kind": "类型", "parent_code": "上级单位代码",
    "last_day": "截止日期", "filename": "文件名", "code": "拒绝原因代码", "message": "说明", "rows": "条数",
    "reporter": "填报人", "fill_date": "填表时间", "note": "说明", "query": "筛选条件",
}


def object_label(obj: str | None) -> str:
    """``record:12`` as 记录 #12, ``user:gd-clerk`` as 账号 gd-clerk."""
    if not obj:
        return ""
    kind, _, rest = obj.partition(":")
    return f"{OBJECT_KINDS[kind]}{rest}" if kind in OBJECT_KINDS else obj


def detail_text(detail: dict[str, Any] | None) -> str:
    """The detail as 键：值 pairs in Chinese (nested values as they are)."""
    if not detail:
        return ""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "是" if v else "否"
        if isinstance(v, dict):
            return "（" + "，".join(f"{DETAIL_LABELS.get(k, k)}：{value(x)}" for k, x in sorted(v.items())) + "）"
        return str(v)
    return "；".join(f"{DETAIL_LABELS.get(k, k)}：{value(v)}" for k, v in sorted(detail.items()))


ROLE_NAMES = {"clerk": "填报员", "reviewer": "审核人", "admin": "管理员", "observer": "观察员",
              access.SYSTEM_ADMIN: "系统管理员", access.SECURITY_ADMIN: "安全管理员", access.AUDITOR: "审计员"}


def read(uow: UnitOfWork, *, user_id: int, query: LogQuery, page: int = 1, per_page: int = 100) -> LogPage:
    """One page of the log, newest first (an auditor's)."""
    page, per_page = max(1, page), min(max(1, per_page), 500)
    with uow:
        f = _filters(uow, user_id, query)
        total = uow.oplog.count(f)
        rows = uow.oplog.search(f, limit=per_page, offset=(page - 1) * per_page)
    return LogPage([shown(r) for r in rows], total, page, per_page)


@audited("oplog.export", keep=("query",))
def export_csv(uow: UnitOfWork, *, user_id: int, query: LogQuery) -> bytes:
    """Every row the query selects as CSV (the one CSV writer: UTF-8 with BOM, formulas
    neutralised); the export is itself a row of the log."""
    # Imported here: the exports module loads openpyxl and Jinja2, which every command line
    # that writes (and so imports this module) would pay for at start-up.
    from workflow.formats.exports import csv_bytes

    with uow:
        f = _filters(uow, user_id, query)
        rows: list[list[object]] = [list(CSV_HEADER)]
        for row in uow.oplog.search(f, limit=None):
            s = shown(row)
            rows.append([s[k] for k in ("seq", "at", "actor", "actor_display", "role", "org", "action_label",
                                        "object", "outcome_label", "channel", "address", "detail")])
        uow.oplog.note(rows=len(rows) - 1)
    return csv_bytes(rows)


# --- verifying the chain -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    rows: int
    problem: str | None  # the first break, in Chinese; None: the chain is whole

    def text(self) -> str:
        if self.problem is None:
            return f"核对了审计日志的 {self.rows} 条记录：链完整，没有发现改动。\n"
        return f"核对了审计日志的 {self.rows} 条记录：{self.problem}\n"


def verify_chain(uow: UnitOfWork) -> ChainCheck:
    """Walk the log's chain: contiguous sequence numbers from 1, each row's ``prev_hash`` the
    row before's hash, each row's keyed hash matching its content. The first break is named."""
    n = 0
    prev: str | None = None
    with uow:
        mac = uow.audit.sealer.mac
        for row in uow.oplog.walk():
            n += 1
            seq = row["seq"]
            if seq != n:
                return ChainCheck(n, f"第 {n} 条之前的记录被删除（下一条是第 {seq} 条）" if seq > n
                                  else f"第 {seq} 条重复：链被分叉或插入了伪造行")
            if row["prev_hash"] != prev:
                return ChainCheck(n, f"第 {seq} 条与前一条的哈希不衔接：前一条被删除或改写")
            if mac(canonical(row)) != row["row_hash"]:
                return ChainCheck(n, f"第 {seq} 条的内容与链哈希不符：此条被改写（或在没有密钥的情况下伪造）")
            prev = row["row_hash"]
    return ChainCheck(n, None)
