"""The peer's tables: the same shape as bangfu's (organisation tree with materialised paths,
memberships, a round with its cap, records with a version, an outbox with a unique key)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from django_fsm_log.decorators import fsm_log_by

STATES = ("planned", "purchased", "summarized", "submitted", "accepted")


class Org(models.Model):
    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, on_delete=models.CASCADE)
    path = models.CharField(max_length=512, db_index=True)


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=100)
    channels = models.CharField(max_length=100, default="inbox,email")


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    org = models.ForeignKey(Org, on_delete=models.CASCADE)
    role = models.CharField(max_length=32)

    class Meta:
        unique_together = [("user", "org", "role")]
        indexes = [models.Index(fields=["org", "role"])]


class Round(models.Model):
    year = models.IntegerField()
    cap_fen_per_member = models.BigIntegerField(default=60000)


def _contact_valid(rec: Record) -> bool:
    return bool(rec.reporter and rec.phone and rec.fill_date and rec.fill_date <= rec.today)


def _snapshot_fresh(rec: Record) -> bool:
    return rec.snapshot_id is not None and not rec.snapshot_stale


def _plan_valid(rec: Record) -> bool:
    if not rec.is_grassroots:
        return True
    return (rec.amount_per_member_fen is not None and rec.members is not None
            and 0 <= rec.amount_per_member_fen <= rec.round.cap_fen_per_member)


def _parent_unlocked(rec: Record) -> bool:
    return rec.parent is None or rec.parent.state not in ("submitted", "accepted")


def _own_clerk_or_parent_reviewer(rec: Record, user: Any) -> bool:
    return "clerk" in rec.relation[0] or "reviewer" in rec.relation[1]


def _parent_reviewer(rec: Record, user: Any) -> bool:
    return "reviewer" in rec.relation[1]


class Record(ConcurrentTransitionMixin, models.Model):
    org = models.ForeignKey(Org, on_delete=models.CASCADE)
    round = models.ForeignKey(Round, on_delete=models.CASCADE)
    parent = models.ForeignKey("self", null=True, on_delete=models.SET_NULL)
    state = FSMField(default="planned", choices=[(s, s) for s in STATES], protected=False)
    version = models.IntegerField(default=1)
    is_grassroots = models.BooleanField(default=True)
    amount_per_member_fen = models.BigIntegerField(null=True)
    members = models.BigIntegerField(null=True)
    report_deadline = models.DateTimeField()
    reporter = models.CharField(max_length=100, null=True)
    phone = models.CharField(max_length=64, null=True)
    fill_date = models.DateField(null=True)
    snapshot_id = models.BigIntegerField(null=True)
    snapshot_stale = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(null=True)
    decided_at = models.DateTimeField(null=True)
    last_reason = models.TextField(null=True)
    is_late = models.BooleanField(default=False)
    is_overdue = models.BooleanField(default=False)
    updated_at = models.DateTimeField(null=True)

    class Meta:
        unique_together = [("org", "round")]

    # Filled by the service before a transition: the actor's roles (own org, parent org), today,
    # the version the caller saw.
    relation: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    today: Any = None
    seen_version: int | None = None

    def _do_update(self, base_qs: Any, *args: Any, **kwargs: Any) -> bool:
        """The mixin filters the UPDATE on the state read; also on the version the caller saw
        (0 rows -> ``ConcurrentTransition``)."""
        if self.seen_version is not None:
            base_qs = base_qs.filter(version=self.seen_version)
        return bool(super()._do_update(base_qs, *args, **kwargs))

    @fsm_log_by
    @transition(field=state, source="summarized", target="submitted",
                conditions=[_plan_valid, _snapshot_fresh, _contact_valid],
                permission=_own_clerk_or_parent_reviewer)
    def submit(self, by: Any = None) -> None:
        pass

    @fsm_log_by
    @transition(field=state, source="submitted", target="accepted", conditions=[_parent_unlocked],
                permission=_parent_reviewer)
    def accept(self, by: Any = None) -> None:
        pass


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    channel = models.CharField(max_length=16)
    source = models.CharField(max_length=200)
    kind = models.CharField(max_length=32)
    record = models.ForeignKey(Record, null=True, on_delete=models.CASCADE)
    payload = models.TextField(default="{}")
    status = models.CharField(max_length=16, default="pending")
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField(null=True)
    sent_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "channel", "source"], name="uq_peer_notification_key")]
