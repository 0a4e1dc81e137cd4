"""``python -m bench.django_peer.run --db sqlite|postgres --pairs N``: W1 on the Django peer.

Makes a throw-away store (a SQLite file under ``bench/out/`` in WAL mode with IMMEDIATE write
transactions, as bangfu's; or a PostgreSQL database on ``BANGFU_BENCH_PG_URL``), creates the
tables, makes ``N`` summarized grassroots records under districts whose reviewers decide them,
then times ``N`` submit → accept pairs through :func:`fire` and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

OUT = Path(__file__).resolve().parent.parent / "out"
PG_URL = os.environ.get("BANGFU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2021, 11, 1, 2, 0, tzinfo=UTC)
CHINA = timedelta(hours=8)
#: Grassroots records per district (bangfu's generator has a few hundred to a few thousand).
PER_DISTRICT = 100


def configure(kind: str, name: str) -> None:
    import django
    from django.conf import settings

    if kind == "sqlite":
        db: dict[str, Any] = {
            "ENGINE": "django.db.backends.sqlite3", "NAME": str(OUT / f"{name}.db"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30,
                        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"},
        }
    else:
        u = urlparse(PG_URL)
        db = {"ENGINE": "django.db.backends.postgresql", "NAME": name, "USER": u.username or "postgres",
              "PASSWORD": u.password or "", "HOST": u.hostname or "127.0.0.1", "PORT": str(u.port or 5432),
              "CONN_MAX_AGE": None}
    settings.configure(
        DEBUG=False, USE_TZ=True, TIME_ZONE="UTC", DATABASES={"default": db},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django_fsm_log",
                        "bench.django_peer.apps.PeerConfig"],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DJANGO_FSM_LOG_STORAGE_METHOD="django_fsm_log.backends.SimpleBackend",
    )
    django.setup()


class Refused(Exception):
    """A transition refused: membership, rule or version."""


def user_channels(email: str | None, chosen: str) -> list[str]:
    out = ["inbox"]
    for c in (x.strip() for x in chosen.split(",")):
        if c and c not in out and not (c == "email" and not email):
            out.append(c)
    return out


# Django's models can only be imported once settings are configured (configure()), hence the
# imports inside the functions below.


def fire(*, record_id: int, trigger: str, user_id: int, seen_version: int, now: datetime) -> int:
    """One transition the way a Django team writes it; returns the outbox rows written."""
    from django.contrib.auth.models import User
    from django.db import transaction
    from django_fsm import TransitionNotAllowed, has_transition_perm

    from bench.django_peer.models import Membership, Notification, Record

    with transaction.atomic():
        rec = Record.objects.select_related("org", "round", "parent").get(pk=record_id)
        user = User.objects.select_related("profile").get(pk=user_id, is_active=True)
        mems = list(Membership.objects.filter(user_id=user_id).select_related("org"))
        if not any(rec.org.path.startswith(m.org.path) for m in mems):
            raise Refused("record.not_found")
        rec.relation = (frozenset(m.role for m in mems if m.org_id == rec.org_id),
                        frozenset(m.role for m in mems if m.org_id == rec.org.parent_id))
        rec.today = (now + CHINA).date()
        method = getattr(rec, trigger)
        if not has_transition_perm(method, user):
            raise Refused("permission")
        if rec.version != seen_version:
            raise Refused("version.conflict")
        source = rec.state
        try:
            method(by=user)  # conditions, then django-fsm-log's StateLog row
        except TransitionNotAllowed as e:
            raise Refused(str(e)) from None
        rec.seen_version = seen_version
        rec.version = seen_version + 1
        rec.updated_at = now
        if trigger == "submit":
            rec.submitted_at, rec.is_late, rec.is_overdue = now, now >= rec.report_deadline, False
        else:
            rec.decided_at, rec.last_reason = now, None
        rec.save()  # ConcurrentTransitionMixin: UPDATE … WHERE id AND state = source (AND version)
        if trigger == "accept" and rec.parent_id is not None:
            Record.objects.filter(pk=rec.parent_id, state="summarized", snapshot_id__isnull=False).update(
                snapshot_stale=True)
        if trigger == "submit":
            org_id, role = rec.org.parent_id, "reviewer"
        else:
            org_id, role = rec.org_id, "clerk"
        payload = json.dumps({"org_name": rec.org.name, "org_code": rec.org.code, "event": trigger,
                              "trigger": trigger, "actor_name": user.profile.display_name, "reason": None,
                              "path": f"/records/{rec.pk}", "from": source}, ensure_ascii=False, sort_keys=True)
        recipients = (User.objects.filter(membership__org_id=org_id, membership__role=role, is_active=True)
                      .exclude(pk=user.pk).select_related("profile"))
        rows = [Notification(user=u, channel=ch, source=f"history:{rec.pk}:{rec.version}", kind="record_event",
                             record=rec, payload=payload, status="sent" if ch == "inbox" else "pending",
                             created_at=now, sent_at=now if ch == "inbox" else None)
                for u in recipients for ch in user_channels(u.email, u.profile.channels)]
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        return len(rows)


def make_data(pairs: int) -> list[tuple[int, int, int]]:
    """Organisations, users, memberships and ``pairs`` summarized records; returns
    (record id, clerk id, reviewer id) per record."""
    from django.contrib.auth.models import User

    from bench.django_peer.models import Membership, Org, Profile, Record, Round

    rnd = Round.objects.create(year=2021)
    province = Org.objects.create(code="GD", name="广东省总工会", path="/")
    province.path = f"/{province.pk}/"
    province.save()
    deadline = datetime(2021, 12, 1, 16, 0, tzinfo=UTC)
    districts = []
    for d in range((pairs + PER_DISTRICT - 1) // PER_DISTRICT):
        org = Org.objects.create(code=f"D{d}", name=f"第{d}区总工会", parent=province, path="")
        org.path = f"{province.path}{org.pk}/"
        org.save()
        districts.append(org)
    grass = Org.objects.bulk_create([
        Org(code=f"G{i}", name=f"第{i}基层工会", parent=districts[i // PER_DISTRICT], path="")
        for i in range(pairs)])
    for g in grass:
        g.path = f"{g.parent.path}{g.pk}/"
    Org.objects.bulk_update(grass, ["path"])
    people = [(o, "reviewer") for o in districts] + [(o, "clerk") for o in grass]
    users = User.objects.bulk_create([User(username=f"u{k}", email=f"u{k}@example.test") for k in range(len(people))])
    Profile.objects.bulk_create([Profile(user=u, display_name=f"{o.name}{r}") for u, (o, r) in zip(users, people, strict=True)])
    Membership.objects.bulk_create([Membership(user=u, org=o, role=r) for u, (o, r) in zip(users, people, strict=True)])
    reviewer_of = {o.pk: u.pk for u, (o, r) in zip(users, people, strict=True) if r == "reviewer"}
    clerk_of = {o.pk: u.pk for u, (o, r) in zip(users, people, strict=True) if r == "clerk"}
    parents = {o.pk: Record.objects.create(org=o, round=rnd, is_grassroots=False, report_deadline=deadline)
               for o in districts}
    recs = Record.objects.bulk_create([
        Record(org=g, round=rnd, parent=parents[g.parent_id], state="summarized", version=2, amount_per_member_fen=60000,
               members=100, report_deadline=deadline, reporter="张三", phone="13812345678",
               fill_date=date(2021, 10, 31), snapshot_id=k + 1) for k, g in enumerate(grass)])
    return [(r.pk, clerk_of[r.org_id], reviewer_of[r.org.parent_id]) for r in recs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.django_peer.run", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--pairs", type=int, default=1000)
    args = parser.parse_args(argv)
    name = f"bangfu_peer_{os.getpid()}"
    admin = None
    if args.db == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        for p in OUT.glob(f"{name}.db*"):
            p.unlink()
    else:
        import psycopg

        admin = psycopg.connect(PG_URL, autocommit=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        configure(args.db, name)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        work = make_data(args.pairs)
        from django_fsm_log.models import StateLog

        from bench.django_peer.models import Notification, Record

        t0, c0 = time.perf_counter(), time.process_time()
        notes = 0
        for rid, clerk, reviewer in work:
            notes += fire(record_id=rid, trigger="submit", user_id=clerk, seen_version=2, now=NOW)
            notes += fire(record_id=rid, trigger="accept", user_id=reviewer, seen_version=3, now=NOW)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = 2 * len(work)
        out = {"dialect": args.db, "pairs": len(work), "seconds": wall, "tps": n / wall, "cpu_us": cpu / n * 1e6,
               "history_rows": StateLog.objects.count(), "notifications": Notification.objects.count(),
               "accepted": Record.objects.filter(state="accepted").count(), "notified": notes,
               "django": __import__("django").get_version()}
        connection.close()
    finally:
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        else:
            for p in OUT.glob(f"{name}.db*"):
                p.unlink()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
