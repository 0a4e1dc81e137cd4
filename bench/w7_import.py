"""W7: importing a province's directory through the CSV imports (set-based), on SQLite and
PostgreSQL.

Usage::

    python -m bench.w7_import [--scale province] [--db both]

The CSVs are made from the generator's tree (:func:`bench.generate.build_tree`: the province,
21 cities, 105 districts, the provincial unions and, at ``province`` scale, 215,000 grassroots
unions) with two users per organisation (a clerk and a second clerk or reviewer: about 430,000
lines). On a fresh database with the 17号 policy loaded, it times
:func:`workflow.app.directory.import_organisations` (which also opens both rounds' records),
:func:`workflow.app.directory.import_users`, then a re-import of the organisation file that
moves one city's whole subtree under another city, and checks the counts and the moved paths.
Results go to ``bench/out/w7.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from typing import Any

from sqlalchemy import text

from bench.generate import NOW, SCALES, build_tree
from bench.scratch import OUT, bench_database, kinds
from workflow.app import directory
from workflow.domain.policy import builtin
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork


def csvs(scale: str) -> tuple[bytes, bytes, int, int]:
    """(organisations CSV, users CSV, organisations, user lines)."""
    tree = build_tree(SCALES[scale])
    code_of = {o[0]: o[1] for o in tree.orgs}
    orgs = io.StringIO()
    orgs.write("code,name,kind,parent_code\n")
    users = io.StringIO()
    users.write("username,display_name,org_code,role,email\n")
    lines = 0
    for _id, code, name, kind, parent, _path, _depth in tree.orgs:
        orgs.write(f"{code},{name},{kind},{code_of.get(parent, '') if parent else ''}\n")
        second = "clerk" if kind == "grassroots" else "reviewer"
        for n, role in ((1, "clerk"), (2, second)):
            users.write(f"{code.lower()}-{n},{name}{'填报员' if role == 'clerk' else '审核人'}{n},{code},{role},"
                        f"{code.lower()}-{n}@example.test\n")
            lines += 1
    return orgs.getvalue().encode(), users.getvalue().encode(), len(tree.orgs), lines


def _scalar(database: Database, sql: str) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def run_one(database: Database, scale: str) -> dict[str, Any]:
    org_csv, user_csv, n_orgs, n_lines = csvs(scale)
    database.upgrade()
    directory.install_policy(UnitOfWork(database), policy=builtin(), now=NOW)
    out: dict[str, Any] = {"dialect": database.dialect, "organisations": n_orgs, "user_lines": n_lines}
    t0 = time.perf_counter()
    rep = directory.import_organisations(UnitOfWork(database), data=org_csv, now=NOW)
    out["organisations_s"] = time.perf_counter() - t0
    out["records_opened"] = rep.records_opened
    t0 = time.perf_counter()
    users = directory.import_users(UnitOfWork(database), data=user_csv, now=NOW)
    out["users_s"] = time.perf_counter() - t0
    out["users_created"] = users.created
    # Move the first city (with its districts and grassroots unions) under the second.
    with database.engine.connect() as conn:
        (c1, c1_name, c1_id), (c2, _n, c2_id) = conn.execute(text(
            "SELECT code, name, id FROM organisation WHERE kind = 'city_federation' ORDER BY id LIMIT 2")).all()
        below = int(conn.execute(text("SELECT count(*) FROM organisation WHERE path LIKE :p"),
                                 {"p": f"%/{c1_id}/%"}).scalar() or 0)
    # The re-import carries the whole file again, every row unchanged but the moved city's.
    prefix = f"{c1},".encode()
    moved = b"\n".join(f"{c1},{c1_name},city_federation,{c2}".encode() if line.startswith(prefix) else line
                        for line in org_csv.split(b"\n"))
    t0 = time.perf_counter()
    directory.import_organisations(UnitOfWork(database), data=moved, now=NOW)
    out["reimport_move_s"] = time.perf_counter() - t0
    c2_path = f"%/{c2_id}/{c1_id}/%"
    out["moved_subtree"] = below
    out["moved_ok"] = _scalar(database, f"SELECT count(*) FROM organisation WHERE path LIKE '{c2_path}'") == below
    out["organisations_in_db"] = _scalar(database, "SELECT count(*) FROM organisation")
    out["users_in_db"] = _scalar(database, "SELECT count(*) FROM app_user")
    out["memberships_in_db"] = _scalar(database, "SELECT count(*) FROM membership")
    out["records_in_db"] = _scalar(database, "SELECT count(*) FROM record")
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    """The seconds per part and the total (organisations + users) per database, as plain text."""
    head = ("database", "organisations s", "users s", "total s", "re-import moving a city s")
    rows = [(k, f"{r['organisations_s']:.1f}", f"{r['users_s']:.1f}", f"{r['total_s']:.1f}",
             f"{r['reimport_move_s']:.1f}") for k, r in results.items()]
    widths = [max(len(c[i]) for c in (head, *rows)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
                     for line in (head, *rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.w7_import", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="province")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args(argv)
    results = {}
    for kind in kinds(args.db):
        with bench_database(kind, prefix="bangfu_w7") as database:
            r = results[kind] = run_one(database, args.scale)
            r["total_s"] = r["organisations_s"] + r["users_s"]
            print(f"{kind}: {r['organisations']:,} organisations (+{r['records_opened']:,} records),"
                  f" {r['user_lines']:,} user lines, a city moved with {r['moved_subtree']:,} below it:"
                  f" moved paths correct: {r['moved_ok']}", flush=True)
    print(table(results))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "w7.json").write_text(json.dumps({"scale": args.scale, "results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
