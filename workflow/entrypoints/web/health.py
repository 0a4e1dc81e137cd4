"""Operations endpoints: ``/readyz`` (database, broker, migrations at head), ``/metrics``
(Prometheus, behind ``BANGFU_METRICS_TOKEN`` and/or ``BANGFU_METRICS_ALLOW``: see
:func:`metrics_allowed`) and the admins' outbox page (:mod:`outbox_page`). ``/healthz`` (the process answers) lives in :mod:`workflow.entrypoints.web.app`.

The outbox and transition figures are read from the database at each scrape, so they are the
same whichever web, worker or CLI process did the work; request latency is this process's.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from workflow.entrypoints.web import outbox_page
from workflow.entrypoints.web.auth import client_ip
from workflow.scheduler import operations
from workflow.scheduler.locks import last_run
from workflow.settings import Settings
from workflow.store.tables import Database

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def check_database(database: Database) -> tuple[bool, str]:
    try:
        current, head = database.schema_revisions()
    except Exception as exc:  # any failure means "not ready"; the reason is logged by the caller
        return False, f"database: {type(exc).__name__}"
    if current != head:
        return False, f"migrations: at {current}, head is {head}"
    return True, "ok"


def check_broker(settings: Settings) -> tuple[bool, str]:
    if settings.broker_url.startswith("filesystem"):
        folder = (settings.var_dir / "broker").resolve()
        if folder.is_dir():
            return True, "ok"
        log.warning("readyz: the filesystem broker's folder %s is missing", folder)
        return False, "broker: folder missing"  # what is wrong, not where (the log says where)
    try:
        with Connection(settings.broker_url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:  # kombu raises transport-specific errors
        return False, f"broker: {type(exc).__name__}"
    return True, "ok"


@router.get("/readyz")
def readyz(request: Request) -> Response:
    """200 when the database answers at the newest migration and the broker answers."""
    db_ok, db_text = check_database(request.app.state.database)
    broker_ok, broker_text = check_broker(request.app.state.settings)
    body = {"ready": db_ok and broker_ok, "database": db_text, "broker": broker_text}
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """Who may scrape ``/metrics``: a request carrying ``Authorization: Bearer
    <BANGFU_METRICS_TOKEN>``, or one from an address in ``BANGFU_METRICS_ALLOW`` (addresses or
    networks). With neither set, loopback clients only (development and tests: anyone)."""
    token = settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode("utf-8"), f"Bearer {token}".encode()):
            return True
    networks = [_network(entry) for entry in settings.metrics_allow]
    if not token and not networks:
        if settings.is_development:
            return True
        networks = list(_LOOPBACK)
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in net for net in networks if net is not None)


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        log.error("BANGFU_METRICS_ALLOW: %r is not an address or network; ignored", entry)
        return None


class OutboxCollector(Collector):
    """Figures read from the database at scrape time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Any]:
        status = operations.outbox_status(self.database)
        rows = GaugeMetricFamily("bangfu_outbox_rows", "Outbox rows by channel and status",
                                 labels=["channel", "status"])
        delivered = CounterMetricFamily("bangfu_deliveries", "Notifications delivered",
                                        labels=["channel"])
        failures = CounterMetricFamily("bangfu_delivery_failures",
                                       "Notifications failed for good", labels=["channel"])
        per_channel: dict[str, dict[str, int]] = {}
        for line in status.lines:
            acc = per_channel.setdefault(line["channel"], {})
            for key in ("pending", "leased", "retrying", "sent", "failed"):
                acc[key] = acc.get(key, 0) + int(line[key])
        for channel, acc in sorted(per_channel.items()):
            for key, value in acc.items():
                rows.add_metric([channel, key], value)
            delivered.add_metric([channel], acc["sent"])
            failures.add_metric([channel], acc["failed"])
        yield rows
        yield delivered
        yield failures
        yield GaugeMetricFamily("bangfu_outbox_oldest_pending_seconds",
                                "Age of the oldest pending notification",
                                value=status.oldest_pending_seconds or 0.0)
        transitions = CounterMetricFamily("bangfu_transitions", "History rows per trigger",
                                          labels=["trigger"])
        for trigger, n in sorted(operations.transition_counts(self.database).items()):
            transitions.add_metric([trigger], n)
        yield transitions
        run = last_run(self.database, "sweep") or {}
        yield GaugeMetricFamily("bangfu_sweep_last_seconds", "Duration of the last sweep",
                                value=float(run.get("seconds", 0.0)))
        yield GaugeMetricFamily("bangfu_sweep_last_rows", "Notifications the last sweep wrote",
                                value=float(run.get("rows", 0)))


class RequestTiming:
    """Each request's latency into ``histogram`` by method and route (a plain ASGI middleware:
    Starlette's ``BaseHTTPMiddleware`` cost every request a task and a memory stream)."""

    def __init__(self, app: ASGIApp, *, histogram: Histogram) -> None:
        self.app, self.histogram = app, histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            self.histogram.labels(scope["method"], getattr(route, "path", "unmatched")).observe(
                time.perf_counter() - started)


def install(app: FastAPI) -> None:
    """Add ``/readyz``, ``/metrics`` and the request-latency middleware to ``app``."""
    registry = CollectorRegistry()
    registry.register(OutboxCollector(app.state.database))
    latency = Histogram("bangfu_request_seconds", "Request latency", ["method", "route"],
                        registry=registry)
    app.state.metrics_registry = registry

    app.add_middleware(RequestTiming, histogram=latency)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if not metrics_allowed(request, request.app.state.settings):
            log.warning("metrics: refused a scrape from %s", client_ip(request))
            return Response("forbidden\n", status_code=403, media_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    app.include_router(outbox_page.router)  # the admins' outbox page
