"""A notice's numbers, loaded from a TOML file and checked field by field.

A policy is data: rounds, caps, deadlines, who reports to whom, channels and their Annex 2 rows,
the ordinary gift limits of 粤工总〔2018〕5号, holidays and forbidden product forms. A malformed
file is refused with :class:`~workflow.domain.errors.PolicyError` naming the field and the reason.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from workflow.domain import clock
from workflow.domain.errors import PolicyError

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
OFFICIAL_VALUES = ("yes", "preferred", "no")


@dataclass(frozen=True)
class Channel:
    code: str
    name: str
    stats_row: str
    official: str  # yes | preferred | no
    operator: str = ""
    access: str = ""

    @property
    def is_official(self) -> bool:
        return self.official == "yes"


@dataclass(frozen=True)
class StatsRow:
    code: str
    label: str


@dataclass(frozen=True)
class OrdinaryLimits:
    source: str
    budget_share_soft_percent: int
    budget_share_hard_percent: int
    retained_share_hard_percent: int
    per_member_soft_fen: int


@dataclass(frozen=True)
class RoundSpec:
    """One reporting year of a policy, with its deadlines as China last days."""

    year: int
    label: str
    quota_last_day: date
    report_last_day_reporting_unit: date
    report_last_day_default: date
    entry_cutoff_last_day: date
    cap_fen_per_member: int
    scope: str | None = None

    @property
    def quota_deadline(self) -> datetime:
        return clock.deadline_instant(self.quota_last_day)

    @property
    def report_deadline_reporting_unit(self) -> datetime:
        return clock.deadline_instant(self.report_last_day_reporting_unit)

    @property
    def report_deadline_default(self) -> datetime:
        return clock.deadline_instant(self.report_last_day_default)

    @property
    def entry_cutoff(self) -> datetime:
        return clock.deadline_instant(self.entry_cutoff_last_day)


@dataclass(frozen=True)
class Caps:
    """Upper bounds on what one line of input may hold, chosen far above any real union and low
    enough that no sum over a province can overflow a 64-bit column: a purchase line is at most
    1亿元 (10^10 fen), so an overflow of a total needs 922 million lines at the cap; 人次 per line
    and members per union at most 10 million (Guangdong has about 22 million members in all).
    A policy file may lower (or, within the bounds below, raise) them in a ``[caps]`` table.
    """

    line_amount_fen: int = 10**10
    line_people: int = 10_000_000
    line_no: int = 1_000_000
    members: int = 10_000_000
    #: A purchase file: rows, bytes (as uploaded and uncompressed), seconds of parsing (a hard
    #: timeout: the parse runs in a child process, killed when it overruns).
    import_rows: int = 50_000
    import_bytes: int = 20 * 1024 * 1024
    import_unzipped_bytes: int = 50 * 1024 * 1024
    import_seconds: int = 60
    #: What an XLSX may cost, measured before it is parsed (issue 20 point 5): cells (with the
    #: empty cells a sheet's dimension pads rows with), shared strings, zip members, each large
    #: member's compression ratio; and the memory of the child process that parses it.
    import_cells: int = 2_000_000
    import_strings: int = 1_000_000
    import_zip_members: int = 1_000
    import_zip_ratio: int = 100
    import_memory_bytes: int = 512 * 1024 * 1024
    #: How many bad rows a refused import lists (the rest are counted).
    import_errors_shown: int = 200


@dataclass(frozen=True)
class Policy:
    code: str
    document: str
    title: str
    receiver_label: str
    receiver_kind: str
    reporting_unit_kinds: frozenset[str]
    grassroots_kinds: frozenset[str]
    kind_labels: dict[str, str]
    rounds: tuple[RoundSpec, ...]
    stats_rows: tuple[StatsRow, ...]
    channels: tuple[Channel, ...]
    limits: OrdinaryLimits
    holidays: tuple[str, ...]
    forbidden_forms: tuple[str, ...]
    reminder_offsets: tuple[int, ...]
    reminder_hour: int
    scope: str | None = None
    source_text: str = field(default="", repr=False, compare=False)
    caps: Caps = field(default_factory=Caps)
    #: Four eyes (``[review] four_eyes``, default on): the user who entered data on a record's
    #: behalf or submitted it since its last return may not accept it.
    four_eyes: bool = True
    #: The notice's official order of the reporting units (``[organisations] official_order``:
    #: names or name prefixes, 广州 … 云浮, then the provincial unions); the province's workbook
    #: follows it. Units it does not name come after, in code order.
    official_order: tuple[str, ...] = ()

    def official_rank(self, name: str) -> int:
        """Where a unit named ``name`` stands in :attr:`official_order` (unnamed: last)."""
        for i, prefix in enumerate(self.official_order):
            if name.startswith(prefix):
                return i
        return len(self.official_order)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source_text.encode()).hexdigest()[:16]

    def channel(self, code: str) -> Channel | None:
        for c in self.channels:
            if c.code == code:
                return c
        return None

    def round(self, year: int) -> RoundSpec | None:
        for r in self.rounds:
            if r.year == year:
                return r
        return None


class _Reader:
    """Reads typed fields out of nested TOML tables, naming the field on error."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _fail(self, key: str, reason: str) -> PolicyError:
        return PolicyError(f"策略文件字段 {self.where}{key} 无效：{reason}", code="policy.invalid")

    def table(self, key: str) -> _Reader:
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self._fail(key, "缺少该表或类型不是表")
        return _Reader(value, f"{self.where}{key}.")

    def tables(self, key: str) -> list[_Reader]:
        value = self.data.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise self._fail(key, "需要至少一项 [[...]] 表")
        return [_Reader(v, f"{self.where}{key}[{i}].") for i, v in enumerate(value)]

    def text(self, key: str, *, default: str | None = None, allowed: tuple[str, ...] = ()) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "需要非空字符串")
        if allowed and value not in allowed:
            raise self._fail(key, f"取值须为 {', '.join(allowed)} 之一，实际为 {value!r}")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "需要字符串")
        return value

    def integer(self, key: str, *, lo: int, hi: int, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "需要整数")
        if not lo <= value <= hi:
            raise self._fail(key, f"须在 {lo} 到 {hi} 之间，实际为 {value}")
        return value

    def flag(self, key: str, *, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "需要 true 或 false")
        return value

    def str_list(self, key: str, *, nonempty: bool = True) -> list[str]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "需要字符串列表")
        if nonempty and not value:
            raise self._fail(key, "列表不能为空")
        return value

    def int_list(self, key: str, *, lo: int, hi: int) -> list[int]:
        value = self.data.get(key)
        if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in value
        ):
            raise self._fail(key, f"需要 {lo} 到 {hi} 之间的整数列表")
        return value

    def month_day(self, key: str, year: int) -> date:
        value = self.data.get(key)
        if isinstance(value, date):
            return value
        if not isinstance(value, str):
            raise self._fail(key, "需要 MM-DD 或完整日期")
        try:
            if len(value) == 5:
                month, day = (int(p) for p in value.split("-"))
                return date(year, month, day)
            return date.fromisoformat(value)
        except ValueError:
            raise self._fail(key, f"日期 {value!r} 不合法") from None


class _HasYear(Protocol):
    @property
    def year(self) -> int: ...


_R = TypeVar("_R", bound=_HasYear)


def begun_rounds(rounds: Sequence[_R], today: date) -> list[_R]:
    """The rounds a command or page means when none is named, best first: the newest round whose
    year has begun (China time), so that on 31 December 2021 a clerk works on 2021's record even
    when later rounds are loaded; then the older ones. When none has begun yet, all of them,
    newest first. ``rounds`` come in year order."""
    begun = [r for r in rounds if r.year <= today.year] or list(rounds)
    return begun[::-1]


def parse_policy(text: str, *, source: str = "<string>") -> Policy:
    """Parse and check a policy file's text.

    Args:
        text: the TOML text.
        source: where it came from, for messages.

    Returns:
        The checked :class:`Policy`.

    Raises:
        PolicyError: naming the field and the reason.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"策略文件 {source} 不是合法的 TOML：{exc}") from None
    top = _Reader(data, "")
    head = top.table("policy")
    quota = top.table("quota")
    dl = top.table("deadlines")
    orgs = top.table("organisations")
    cap_yuan = quota.integer("cap_yuan_per_member", lo=0, hi=100_000)
    scope = head.opt_str("scope")

    labels_raw = orgs.data.get("labels", {})
    if not isinstance(labels_raw, dict) or not all(isinstance(v, str) for v in labels_raw.values()):
        raise PolicyError("策略文件字段 organisations.labels 无效：需要 种类 = \"名称\" 的表")

    rounds: list[RoundSpec] = []
    for r in top.tables("rounds"):
        year = r.integer("year", lo=2000, hi=2100)
        src = {**quota.data, **dl.data, **r.data}
        rr = _Reader(src, r.where)
        quota_day = rr.month_day("deadline", year)
        report_ru = rr.month_day("report_reporting_unit", year)
        report_default = rr.month_day("report_default", year)
        cutoff_year = year + 1 if rr.flag("entry_cutoff_next_year", default=True) else year
        cutoff = rr.month_day("entry_cutoff", cutoff_year)
        if report_default > report_ru:
            raise PolicyError(
                f"策略文件字段 {r.where}report_default 无效：下级报送截止日 {report_default} "
                f"不能晚于报送单位截止日 {report_ru}"
            )
        if cutoff < quota_day:
            raise PolicyError(
                f"策略文件字段 {r.where}entry_cutoff 无效：补录截止日 {cutoff} 早于额度截止日 {quota_day}"
            )
        rounds.append(
            RoundSpec(
                year=year,
                label=r.text("label"),
                quota_last_day=quota_day,
                report_last_day_reporting_unit=report_ru,
                report_last_day_default=report_default,
                entry_cutoff_last_day=cutoff,
                cap_fen_per_member=rr.integer("cap_yuan_per_member", lo=0, hi=100_000, default=cap_yuan)
                * 100,
                scope=r.opt_str("scope") or scope,
            )
        )
    years = [r.year for r in rounds]
    if len(set(years)) != len(years):
        raise PolicyError("策略文件字段 rounds 无效：同一年度出现了两次")

    stats_rows = tuple(StatsRow(s.text("code"), s.text("label")) for s in top.tables("stats_rows"))
    row_codes = {s.code for s in stats_rows}
    channels: list[Channel] = []
    for c in top.tables("channels"):
        row = c.text("stats_row")
        if row not in row_codes:
            raise PolicyError(f"策略文件字段 {c.where}stats_row 无效：{row!r} 不是附件2中的行")
        channels.append(
            Channel(
                code=c.text("code"),
                name=c.text("name"),
                stats_row=row,
                official=c.text("official", allowed=OFFICIAL_VALUES),
                operator=c.opt_str("operator") or "",
                access=c.opt_str("access") or "",
            )
        )
    if len({c.code for c in channels}) != len(channels):
        raise PolicyError("策略文件字段 channels 无效：渠道代码重复")

    caps = _caps(top.data.get("caps"))
    lim = top.table("ordinary_limits")
    gifts = top.table("gifts")
    soft = lim.integer("budget_share_soft_percent", lo=0, hi=100)
    hard = lim.integer("budget_share_hard_percent", lo=0, hi=100)
    if soft > hard:
        raise PolicyError("策略文件字段 ordinary_limits 无效：一般比例不能高于最高比例")
    return Policy(
        code=head.text("code"),
        document=head.text("document"),
        title=head.text("title"),
        receiver_label=head.text("receiver"),
        receiver_kind=orgs.text("receiver"),
        reporting_unit_kinds=frozenset(orgs.str_list("reporting_units")),
        grassroots_kinds=frozenset(orgs.str_list("grassroots")),
        official_order=tuple(orgs.str_list("official_order")) if "official_order" in orgs.data else (),
        kind_labels=dict(labels_raw),
        rounds=tuple(rounds),
        stats_rows=stats_rows,
        channels=tuple(channels),
        limits=OrdinaryLimits(
            source=lim.text("source"),
            budget_share_soft_percent=soft,
            budget_share_hard_percent=hard,
            retained_share_hard_percent=lim.integer("retained_share_hard_percent", lo=0, hi=100),
            per_member_soft_fen=lim.integer("per_member_soft_yuan", lo=0, hi=1_000_000) * 100,
        ),
        holidays=tuple(gifts.str_list("holidays")),
        forbidden_forms=tuple(gifts.str_list("forbidden_forms", nonempty=False)),
        reminder_offsets=tuple(sorted(set(dl.int_list("reminder_offsets", lo=0, hi=366)), reverse=True)),
        reminder_hour=dl.integer("reminder_hour", lo=0, hi=23),
        scope=scope,
        source_text=text,
        caps=caps,
        four_eyes=_Reader(top.data.get("review") or {}, "review.").flag("four_eyes", default=True),
    )


def _caps(raw: object) -> Caps:
    """The optional ``[caps]`` table (yuan for the amount); each bound keeps sums inside 64 bits."""
    if raw is None:
        return Caps()
    if not isinstance(raw, dict):
        raise PolicyError("策略文件字段 caps 无效：需要一个表")
    r = _Reader(raw, "caps.")
    d = Caps()
    return Caps(
        line_amount_fen=r.integer("line_amount_yuan", lo=1, hi=10**8, default=d.line_amount_fen // 100) * 100,
        line_people=r.integer("line_people", lo=1, hi=10**8, default=d.line_people),
        line_no=r.integer("line_no", lo=1, hi=10**7, default=d.line_no),
        members=r.integer("members", lo=1, hi=10**8, default=d.members),
        import_rows=r.integer("import_rows", lo=1, hi=1_000_000, default=d.import_rows),
        import_bytes=r.integer("import_bytes", lo=1024, hi=1024**3, default=d.import_bytes),
        import_unzipped_bytes=r.integer("import_unzipped_bytes", lo=1024, hi=4 * 1024**3,
                                        default=d.import_unzipped_bytes),
        import_seconds=r.integer("import_seconds", lo=1, hi=3600, default=d.import_seconds),
        import_cells=r.integer("import_cells", lo=1000, hi=100_000_000, default=d.import_cells),
        import_strings=r.integer("import_strings", lo=1000, hi=100_000_000, default=d.import_strings),
        import_zip_members=r.integer("import_zip_members", lo=10, hi=100_000, default=d.import_zip_members),
        import_zip_ratio=r.integer("import_zip_ratio", lo=10, hi=1100, default=d.import_zip_ratio),
        import_memory_bytes=r.integer("import_memory_bytes", lo=64 * 1024**2, hi=16 * 1024**3,
                                      default=d.import_memory_bytes),
        import_errors_shown=r.integer("import_errors_shown", lo=1, hi=10_000, default=d.import_errors_shown),
    )


def load_policy(path: str | Path) -> Policy:
    """Load and check a policy file from disk. Raises PolicyError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"无法读取策略文件 {p}：{exc}") from None
    return parse_policy(text, source=str(p))


def builtin(code: str = "yuegongzong-2021-17") -> Policy:
    """A policy shipped with bangfu, by code."""
    return load_policy(POLICY_DIR / f"{code}.toml")
