"""One sequence, every entry path (issue 19, point 5).

Persistence was written twice and the copies drifted: the "how much is left of this order"
query of a refund counted voided lines when a clerk entered it by hand and did not when the same
line came in a file. No test ran the same operation through every entry path; this one does.

Each sequence below is written once, against :class:`Path`, and run through every entry path on
SQLite and on PostgreSQL, each path on its own fresh grassroots record of the same world:

* ``cli-hand``  — ``bangfu purchase-add`` (in-process, ``--json``),
* ``api-hand``  — ``POST /api/records/{id}/purchases`` (bearer token),
* ``cli-file``  — ``bangfu import-purchases`` with a one-line CSV file per entry,
* ``api-file``  — ``POST /api/records/{id}/purchases/import`` with the same file.

An act a path does not offer (a file cannot void, fire or enter "by hand") is done through the
same surface's path that can (``purchase-void``, ``fire``, ``purchase-add`` of the CLI; the
API's void, fire and purchase endpoints), and the sequence continues in the path under test.

Then, across the paths: the same outcome for every step (accepted, or refused with the same
Chinese sentence; the same code among the paths of one kind — a file's refusal is always
``import.refused`` with one sentence per bad row, ``第 N 行：…``), the same stored purchase
rows (normalised), the same Annex 2 figures read through one public function
(:func:`workflow.app.reporting.stats`), no Annex 2 figure negative, and never exit code 1 nor
HTTP 500. Every problem of a run is collected and reported together, path by path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import World
from workflow.app import accounts, reporting
from workflow.entrypoints import cli
from workflow.entrypoints.web.app import create_app
from workflow.settings import Settings, get_settings
from workflow.store.tables import Purchase
from workflow.store.uow import UnitOfWork

# Inside the 2021 round (China time), the instant tests.conftest.NOW_2021; payments before it.
NOW_TEXT = "2021-11-01T10:00"
PAID = "2021-10-20T10:00"
PAID_FILE = "2021-10-20 10:00"

FILE_HEADER = "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,商品形态,经费来源,渠道,原订单号"

#: One grassroots record per path (each with its clerk ``gN-clerk``).
PATH_ORGS = {"cli-hand": "G1", "api-hand": "G2", "cli-file": "G3", "api-file": "G4"}


# --- what a step answered ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A step's answer, normalised across paths: ``code`` None when accepted.

    ``reason``: the Chinese sentence of the rule that refused (a file's refusal: its one bad
    row's sentence without the ``第 N 行：`` prefix), so it can be compared across paths.
    ``bug``: exit code 1 or HTTP 5xx (never allowed). ``new``: rows a file import added.
    """

    code: str | None = None
    message: str | None = None
    reason: str | None = None
    bug: bool = False
    new: int | None = None
    raw: str = ""

    @property
    def accepted(self) -> bool:
        return self.code is None

    def short(self) -> str:
        if self.bug:
            return f"BUG {self.raw}"
        if self.accepted:
            return "accepted" + (f" (new {self.new})" if self.new is not None else "")
        return f"refused {self.code}: {self.reason}"


ROW_PREFIX = re.compile(r"^第 \d+ 行：")


def _file_refusal(code: str, message: str, errors: list[str]) -> Outcome:
    rows = [ROW_PREFIX.sub("", e) for e in errors]
    reason = rows[0] if len(rows) == 1 else " | ".join(rows)
    return Outcome(code=code, message=message, reason=reason, raw=message)


@dataclass(frozen=True)
class Line:
    """One purchase line as a clerk types it (yuan as text)."""

    order_no: str
    amount: str
    people: int
    refund_of: str | None = None
    line_no: int = 1
    product: str = "梅州金柚"

    def csv_row(self) -> str:
        return (f"{self.order_no},{self.line_no},{PAID_FILE},{self.amount},{self.people},{self.product},实物,"
                f"额外额度,粤工惠购,{self.refund_of or ''}")


def csv_file(lines: list[Line]) -> bytes:
    return ("\r\n".join([FILE_HEADER, *(ln.csv_row() for ln in lines)]) + "\r\n").encode("utf-8")


# --- the paths ----------------------------------------------------------------------------------


class Path:
    """An entry path: how a clerk enters a line, voids it, imports a file and fires a trigger."""

    name: str
    org: str
    clerk: str
    kind: str  # "hand" or "file": the code a refusal carries depends on it

    def enter(self, line: Line) -> Outcome:
        raise NotImplementedError

    def enter_by_hand(self, line: Line) -> Outcome:
        raise NotImplementedError

    def void(self, order_no: str, reason: str, line_no: int = 1) -> Outcome:
        raise NotImplementedError

    def import_file(self, lines: list[Line]) -> Outcome:
        raise NotImplementedError

    def report_info(self) -> Outcome:
        raise NotImplementedError

    def fire(self, trigger: str) -> Outcome:
        raise NotImplementedError


class CliSurface(Path):
    """The ``bangfu`` command line, in-process, always ``--json``."""

    def __init__(self, name: str, org: str, run: Callable[..., tuple[int, str, str]], tmp: FsPath) -> None:
        self.name, self.org, self.clerk = name, org, f"{org.lower()}-clerk"
        self._run, self._tmp = run, tmp
        self._files = 0

    def _call(self, *args: str) -> tuple[Outcome, Any]:
        code, out, err = self._run(*args, "--as", self.clerk, "--json")
        if code == 0:
            return Outcome(), json.loads(out) if out.strip() else None
        try:
            body = json.loads(out)
        except ValueError:
            return Outcome(code="cli.unparsed", message=err or out, bug=True, raw=f"exit {code}: {err or out}"), None
        if code == 1 or body.get("code") == "internal":
            return Outcome(code=body.get("code"), message=body.get("message"), bug=True,
                           raw=f"exit {code} {body.get('message')}"), None
        if body.get("code") == "import.refused":
            message = body["message"]
            return _file_refusal(body["code"], message, message.split("\n")[1:]), None
        return Outcome(code=body["code"], message=body["message"], reason=body["message"],
                       raw=f"exit {code}"), None

    def enter_by_hand(self, line: Line) -> Outcome:
        args = ["purchase-add", self.org, "--paid-at", PAID, "--channel", "ygh", "--amount", line.amount,
                "--people", str(line.people), "--order", line.order_no, "--line", str(line.line_no),
                "--product", line.product, "--form", "实物"]
        if line.refund_of:
            args += ["--refund-of", line.refund_of]
        return self._call(*args)[0]

    def _live_id(self, order_no: str, line_no: int) -> int | None:
        outcome, listed = self._call("purchase-list", self.org)
        assert outcome.accepted, outcome
        live = [p["id"] for p in listed if (p["order_no"], p["line_no"]) == (order_no, line_no) and not p["voided"]]
        return live[0] if live else None

    def void(self, order_no: str, reason: str, line_no: int = 1) -> Outcome:
        pid = self._live_id(order_no, line_no)
        assert pid is not None, f"{self.name}: no live line of {order_no} to void"
        return self._call("purchase-void", self.org, "--id", str(pid), "--reason", reason)[0]

    def import_file(self, lines: list[Line]) -> Outcome:
        self._files += 1
        path = self._tmp / f"{self.name}-{self._files}-采购.csv"
        path.write_bytes(csv_file(lines))
        outcome, body = self._call("import-purchases", self.org, str(path), "--mapping", "generic")
        return Outcome(new=body["new"]) if outcome.accepted else outcome

    def report_info(self) -> Outcome:
        return self._call("report-info", self.org, "--reporter", "张三", "--phone", "020-83871234")[0]

    def fire(self, trigger: str) -> Outcome:
        return self._call("fire", self.org, trigger)[0]


class ApiSurface(Path):
    """The JSON API with a bearer token (no cookie, no CSRF)."""

    def __init__(self, name: str, org: str, client: TestClient, record_id: int) -> None:
        self.name, self.org, self.clerk = name, org, f"{org.lower()}-clerk"
        self._client, self._rid = client, record_id

    @staticmethod
    def _answer(resp: Any) -> Outcome:
        if resp.status_code < 300:
            body = resp.json()
            return Outcome(new=body.get("new") if isinstance(body, dict) else None)
        if resp.status_code >= 500:
            return Outcome(code=f"http.{resp.status_code}", bug=True, raw=f"HTTP {resp.status_code} {resp.text[:200]}")
        body = resp.json()
        if body.get("code") == "import.refused":
            return _file_refusal(body["code"], body["message"], body["errors"])
        return Outcome(code=body["code"], message=body["message"], reason=body["message"],
                       raw=f"HTTP {resp.status_code}")

    def enter_by_hand(self, line: Line) -> Outcome:
        body = {"paid_at": PAID, "channel": "ygh", "amount": line.amount, "people": line.people,
                "order_no": line.order_no, "line_no": line.line_no, "product": line.product,
                "product_form": "实物", "refund_of": line.refund_of}
        return self._answer(self._client.post(f"/api/records/{self._rid}/purchases", json=body))

    def void(self, order_no: str, reason: str, line_no: int = 1) -> Outcome:
        listed = self._client.get(f"/api/records/{self._rid}/purchases").json()
        live = [p["id"] for p in listed
                if (p["order_no"], p["line_no"]) == (order_no, line_no) and not p["voided"]]
        assert live, f"{self.name}: no live line of {order_no} to void"
        return self._answer(self._client.post(f"/api/records/{self._rid}/purchases/{live[0]}/void",
                                              json={"reason": reason}))

    def import_file(self, lines: list[Line]) -> Outcome:
        return self._answer(self._client.post(
            f"/api/records/{self._rid}/purchases/import", data={"mapping": "generic"},
            files={"file": ("采购.csv", csv_file(lines), "text/csv")}))

    def _version(self) -> int:
        return int(self._client.get(f"/api/records/{self._rid}").json()["version"])

    def report_info(self) -> Outcome:
        return self._answer(self._client.put(f"/api/records/{self._rid}/report-info", json={
            "seen_version": self._version(), "reporter": "张三", "phone": "020-83871234"}))

    def fire(self, trigger: str) -> Outcome:
        return self._answer(self._client.post(f"/api/records/{self._rid}/fire", json={
            "trigger": trigger, "seen_version": self._version()}))


class HandEntry:
    kind = "hand"

    def enter(self, line: Line) -> Outcome:
        return self.enter_by_hand(line)  # type: ignore[attr-defined,no-any-return]


class FileEntry:
    kind = "file"

    def enter(self, line: Line) -> Outcome:
        """A one-line file through the surface's import."""
        return self.import_file([line])  # type: ignore[attr-defined,no-any-return]


class CliHand(HandEntry, CliSurface):
    pass


class CliFile(FileEntry, CliSurface):
    pass


class ApiHand(HandEntry, ApiSurface):
    pass


class ApiFile(FileEntry, ApiSurface):
    pass


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture()
def paths(any_world: World, tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Iterator[dict[str, Path]]:
    """Every entry path, each on its own planned grassroots record of one world."""
    w = any_world
    monkeypatch.setenv("BANGFU_NOW", NOW_TEXT)
    monkeypatch.setenv("BANGFU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BANGFU_DATABASE_URL", w.db.url)
    monkeypatch.delenv("BANGFU_USER", raising=False)
    monkeypatch.delenv("BANGFU_DEBUG", raising=False)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    for org in PATH_ORGS.values():
        w.plan(org)
    app = create_app(w.db, Settings(env="test", secret_key="test-secret-" + "x" * 32))
    clients = []

    def api_client(org: str) -> TestClient:
        token = accounts.create_token(UnitOfWork(w.db), username=f"{org.lower()}-clerk", name="entry-paths")
        client = TestClient(app, raise_server_exceptions=False)
        client.headers["Authorization"] = f"Bearer {token}"
        clients.append(client)
        return client

    made: dict[str, Path] = {
        "cli-hand": CliHand("cli-hand", PATH_ORGS["cli-hand"], run, tmp_path),
        "api-hand": ApiHand("api-hand", PATH_ORGS["api-hand"], api_client(PATH_ORGS["api-hand"]),
                            w.rid(PATH_ORGS["api-hand"])),
        "cli-file": CliFile("cli-file", PATH_ORGS["cli-file"], run, tmp_path),
        "api-file": ApiFile("api-file", PATH_ORGS["api-file"], api_client(PATH_ORGS["api-file"]),
                            w.rid(PATH_ORGS["api-file"])),
    }
    yield made
    for client in clients:
        client.close()
    get_settings.cache_clear()


# --- what is stored and what Annex 2 says --------------------------------------------------------


def stored_rows(w: World, org: str) -> list[tuple[Any, ...]]:
    """The record's purchase lines, normalised: (channel, order, line, fen, people, paid_on,
    voided, the order a refund is linked to, whether that linked line is voided)."""
    t = Purchase.__table__  # type: ignore[attr-defined]
    with w.uow(True) as uow:
        rows = list(uow.session.execute(select(t).where(t.c.record_id == w.rid(org))).all())
    by_id = {r.id: r for r in rows}
    out = []
    for r in rows:
        link = by_id.get(r.refund_of_id) if r.refund_of_id is not None else None
        out.append((r.channel, r.order_no, r.line_no, r.amount_fen, r.people, r.paid_on.isoformat(),
                    r.voided_at is not None,
                    None if link is None else link.order_no,
                    None if link is None else link.voided_at is not None))
    return sorted(out, key=repr)


def annex2(w: World, org: str) -> tuple[str, list[tuple[str, int, int]], tuple[int, int]]:
    """The record's Annex 2 (snapshot once summarized, else live) through the app layer."""
    view = reporting.stats(w.uow(True), org_code=org, user_id=w.uid(f"{org.lower()}-clerk"),
                           round_label=w.round_label)
    rows = [(r.label, r.people, r.amount_fen) for r in view.table.rows]
    return view.source, rows, (view.table.total_people, view.table.total_amount_fen)


# --- the checks, collected --------------------------------------------------------------------


@dataclass
class Run:
    """Every path's outcomes, step by step, and the problems found."""

    w: World
    paths: dict[str, Path]
    steps: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def step(self, label: str, act: Callable[[Path], Outcome]) -> dict[str, Outcome]:
        outcomes = {name: act(p) for name, p in self.paths.items()}
        self.steps[label] = outcomes
        for name, o in outcomes.items():
            if o.bug:
                self.problems.append(f"[{label}] {name}: exit 1 / HTTP 5xx: {o.raw}")
        return outcomes

    def expect(self, label: str, *, code: str | None, reason: str | None = None,
               file_code: str = "import.refused", new: int | None = None, only_kind: str | None = None) -> None:
        """Every path's outcome of ``label`` is accepted (``code`` None) or refused with
        ``code`` (``file_code`` for a file path) and the same ``reason``."""
        for name, o in self.steps[label].items():
            kind = self.paths[name].kind if only_kind is None else only_kind
            want_code = code if code is None or kind == "hand" else file_code
            if o.code != want_code or (reason is not None and o.reason != reason):
                self.problems.append(f"[{label}] {name}: expected "
                                     + ("accepted" if code is None else f"refused {want_code}: {reason}")
                                     + f", got {o.short()}")
            elif new is not None and o.new is not None and o.new != new:
                self.problems.append(f"[{label}] {name}: expected {new} new rows, got {o.new}")

    def same_everywhere(self, label: str) -> None:
        """All paths agree: accepted or not, the same sentence; the same code within a kind."""
        outcomes = self.steps[label]
        if len({o.accepted for o in outcomes.values()}) > 1 or len({o.reason for o in outcomes.values()}) > 1:
            self.problems.append(f"[{label}] the paths disagree: "
                                 + "; ".join(f"{n}: {o.short()}" for n, o in outcomes.items()))
        for kind in ("hand", "file"):
            codes = {o.code for n, o in outcomes.items() if self.paths[n].kind == kind}
            if len(codes) > 1:
                self.problems.append(f"[{label}] the {kind} paths disagree on the code: {sorted(map(str, codes))}")

    def ledgers(self) -> dict[str, list[tuple[Any, ...]]]:
        return {n: stored_rows(self.w, p.org) for n, p in self.paths.items()}

    def same_ledger(self, label: str, expected: list[tuple[Any, ...]] | None = None) -> None:
        ledgers = self.ledgers()
        if expected is not None:
            for n, rows in ledgers.items():
                if rows != sorted(expected, key=repr):
                    self.problems.append(f"[{label}] {n}: stored rows {rows} != expected {sorted(expected, key=repr)}")
        elif len({repr(v) for v in ledgers.values()}) > 1:
            self.problems.append(f"[{label}] stored rows differ: " + "; ".join(f"{n}: {v}" for n, v in ledgers.items()))

    def same_annex2(self, label: str, *, total: tuple[int, int] | None = None, source: str | None = None) -> None:
        figures = {n: annex2(self.w, p.org) for n, p in self.paths.items()}
        for n, (src, rows, tot) in figures.items():
            negative = [r for r in rows if r[1] < 0 or r[2] < 0] + ([tot] if min(tot) < 0 else [])
            if negative:
                self.problems.append(f"[{label}] {n}: negative Annex 2 figures {negative}")
            if total is not None and tot != total:
                self.problems.append(f"[{label}] {n}: Annex 2 total (people, fen) {tot} != expected {total}")
            if source is not None and src != source:
                self.problems.append(f"[{label}] {n}: Annex 2 source {src} != {source}")
        if len({repr(v) for v in figures.values()}) > 1:
            self.problems.append(f"[{label}] Annex 2 differs: " + "; ".join(f"{n}: {v}" for n, v in figures.items()))

    def report(self) -> str:
        lines = ["outcomes, step by step:"]
        for label, outcomes in self.steps.items():
            lines.append(f"  {label}:")
            lines.extend(f"    {n:<9} {o.short()}" for n, o in outcomes.items())
        lines.append("problems:")
        lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)

    def done(self) -> None:
        assert not self.problems, self.report()


# --- the sequences, written once ----------------------------------------------------------------

ORDER = "A-1"
MISTYPED = Line(ORDER, "100.00", 10)
CORRECTED = Line(ORDER, "50.00", 5)
REFUND_20 = Line("A-1-R1", "-20.00", 0, refund_of=ORDER)
REFUND_120 = Line("A-1-R2", "-120.00", 0, refund_of=ORDER)

#: (channel, order, line, fen, people, paid_on, voided, refund linked to, linked line voided)
ROW_MISTYPED_VOIDED = ("ygh", ORDER, 1, 10000, 10, "2021-10-20", True, None, None)
ROW_CORRECTED = ("ygh", ORDER, 1, 5000, 5, "2021-10-20", False, None, None)
ROW_REFUND_20 = ("ygh", "A-1-R1", 1, -2000, 0, "2021-10-20", False, ORDER, False)


def void_and_enter_again(r: Run) -> None:
    """A clerk mistypes an order, voids it and enters it again under the same order number."""
    r.step("1a enter A-1 100元/10人次", lambda p: p.enter(MISTYPED))
    r.expect("1a enter A-1 100元/10人次", code=None, new=1)
    r.step("1b void A-1", lambda p: p.void(ORDER, "金额录错"))
    r.expect("1b void A-1", code=None)
    r.step("1c enter A-1 again 50元/5人次", lambda p: p.enter(CORRECTED))
    r.expect("1c enter A-1 again 50元/5人次", code=None, new=1)


def test_1_refund_after_void_and_reentry(any_world: World, paths: dict[str, Path]) -> None:
    r = Run(any_world, paths)
    void_and_enter_again(r)
    r.step("1d refund 20元 of A-1", lambda p: p.enter(REFUND_20))
    r.expect("1d refund 20元 of A-1", code=None, new=1)
    r.same_everywhere("1d refund 20元 of A-1")
    r.same_ledger("1 after the refund", [ROW_MISTYPED_VOIDED, ROW_CORRECTED, ROW_REFUND_20])
    r.same_annex2("1 after the refund", total=(5, 3000), source="live")
    r.done()


def test_2_refund_beyond_the_live_line_is_refused_everywhere(any_world: World, paths: dict[str, Path]) -> None:
    r = Run(any_world, paths)
    void_and_enter_again(r)
    r.step("2 refund 120元 of A-1 (live 50元)", lambda p: p.enter(REFUND_120))
    r.expect("2 refund 120元 of A-1 (live 50元)", code="purchase.refund_exceeds_order",
             reason="订单 A-1 的退款合计 120.00 元超过订单金额 50.00 元")
    r.same_everywhere("2 refund 120元 of A-1 (live 50元)")
    r.same_ledger("2 nothing written", [ROW_MISTYPED_VOIDED, ROW_CORRECTED])
    r.same_annex2("2 nothing written", total=(5, 5000))
    r.done()


def test_2b_refund_beside_a_voided_second_line_is_refused_everywhere(any_world: World,
                                                                    paths: dict[str, Path]) -> None:
    """The observed −70.00 元: a live 50 元 line 1 beside a voided 100 元 line 2 of the same
    order; a 120 元 refund counted against 150 元 by one copy of the query and 50 元 by the other."""
    r = Run(any_world, paths)
    r.step("2b-a enter E-1#1 50元/5人次", lambda p: p.enter(Line("E-1", "50.00", 5)))
    r.expect("2b-a enter E-1#1 50元/5人次", code=None)
    r.step("2b-b enter E-1#2 100元/10人次", lambda p: p.enter(Line("E-1", "100.00", 10, line_no=2)))
    r.expect("2b-b enter E-1#2 100元/10人次", code=None)
    r.step("2b-c void E-1#2", lambda p: p.void("E-1", "重复录入", line_no=2))
    r.expect("2b-c void E-1#2", code=None)
    r.step("2b-d refund 120元 of E-1 (live 50元)", lambda p: p.enter(Line("E-1-R1", "-120.00", 0, refund_of="E-1")))
    r.expect("2b-d refund 120元 of E-1 (live 50元)", code="purchase.refund_exceeds_order",
             reason="订单 E-1 的退款合计 120.00 元超过订单金额 50.00 元")
    r.same_everywhere("2b-d refund 120元 of E-1 (live 50元)")
    r.same_ledger("2b nothing written", [("ygh", "E-1", 1, 5000, 5, "2021-10-20", False, None, None),
                                         ("ygh", "E-1", 2, 10000, 10, "2021-10-20", True, None, None)])
    r.same_annex2("2b nothing written", total=(5, 5000))
    r.done()


def test_3_over_refund_and_refund_of_an_unknown_order_are_refused(any_world: World,
                                                                  paths: dict[str, Path]) -> None:
    r = Run(any_world, paths)
    r.step("3a enter B-1 100元/10人次", lambda p: p.enter(Line("B-1", "100.00", 10)))
    r.expect("3a enter B-1 100元/10人次", code=None)
    r.step("3b refund 150元 of B-1", lambda p: p.enter(Line("B-1-R1", "-150.00", 0, refund_of="B-1")))
    r.expect("3b refund 150元 of B-1", code="purchase.refund_exceeds_order",
             reason="订单 B-1 的退款合计 150.00 元超过订单金额 100.00 元")
    r.same_everywhere("3b refund 150元 of B-1")
    r.step("3c refund of unknown order NOPE-1", lambda p: p.enter(Line("NOPE-1-R", "-10.00", 0, refund_of="NOPE-1")))
    r.expect("3c refund of unknown order NOPE-1", code="purchase.refund_unknown_order",
             reason="找不到退款对应的原订单 NOPE-1")
    r.same_everywhere("3c refund of unknown order NOPE-1")
    r.same_ledger("3 nothing written", [("ygh", "B-1", 1, 10000, 10, "2021-10-20", False, None, None)])
    r.same_annex2("3 nothing written", total=(10, 10000))
    r.done()


FILE_LINES = [Line("C-1", "100.00", 10), Line("C-2", "60.00", 6)]


def test_4_import_twice_then_a_duplicate_by_hand(any_world: World, paths: dict[str, Path]) -> None:
    r = Run(any_world, paths)
    r.step("4a import C-1, C-2", lambda p: p.import_file(FILE_LINES))
    r.expect("4a import C-1, C-2", code=None, new=2)
    r.step("4b import the same file again", lambda p: p.import_file(FILE_LINES))
    r.expect("4b import the same file again", code=None, new=0)
    r.step("4c C-1 again by hand", lambda p: p.enter_by_hand(FILE_LINES[0]))
    r.expect("4c C-1 again by hand", code="purchase.duplicate", only_kind="hand")
    r.same_everywhere("4c C-1 again by hand")
    r.same_ledger("4 after", [("ygh", "C-1", 1, 10000, 10, "2021-10-20", False, None, None),
                              ("ygh", "C-2", 1, 6000, 6, "2021-10-20", False, None, None)])
    r.same_annex2("4 after", total=(16, 16000))
    r.done()


def test_5_summarize_and_submit_then_the_snapshots_agree(any_world: World, paths: dict[str, Path]) -> None:
    r = Run(any_world, paths)
    void_and_enter_again(r)
    r.step("5a refund 20元 of A-1", lambda p: p.enter(REFUND_20))
    r.expect("5a refund 20元 of A-1", code=None)
    r.step("5b import D-1", lambda p: p.import_file([Line("D-1", "30.00", 3)]))
    r.expect("5b import D-1", code=None, new=1)
    for label, act in (
        ("5c finish_purchasing", lambda p: p.fire("finish_purchasing")),
        ("5d report-info", lambda p: p.report_info()),
        ("5e summarize", lambda p: p.fire("summarize")),
        ("5f submit", lambda p: p.fire("submit")),
    ):
        r.step(label, act)
        r.expect(label, code=None)
    states = {n: any_world.state(p.org) for n, p in paths.items()}
    if set(states.values()) != {"submitted"}:
        r.problems.append(f"[5 states] {states}")
    r.same_ledger("5 submitted", [ROW_MISTYPED_VOIDED, ROW_CORRECTED, ROW_REFUND_20,
                                  ("ygh", "D-1", 1, 3000, 3, "2021-10-20", False, None, None)])
    r.same_annex2("5 snapshot", total=(8, 6000), source="snapshot")
    r.done()
