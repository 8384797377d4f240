"""`/metrics` for Prometheus (docs/design.md, "Topology and ownership").

What every process shares is read from the database at scrape time, so any web process answers
for the whole service: the linking funnel (attempts by method and outcome, time to link, QR
expiries, code failures by error code, logouts soon after linking), sessions by status, live
workers and their leases. What only a web process sees, how long its commands to the workers
took, is a histogram of that process.

The endpoint answers loopback callers, addresses in `METRICS_ALLOWED_IPS`, and callers that send
`Authorization: Bearer <METRICS_TOKEN>`; everyone else gets 404.
"""

from __future__ import annotations

import hmac
import ipaddress
import statistics
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils import timezone
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=False)

COMMAND_SECONDS = Histogram(
    "pairing_command_seconds",
    "Time from a web process sending a command to a worker until its answer.",
    ["op", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30),
    registry=REGISTRY,
)

# How far back the slower figures (time to link, early logouts) look.
RECENT = timedelta(days=7)
EARLY_LOGOUT = timedelta(seconds=60)


class StateCollector(Collector):
    """Figures of the stored state, computed when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        from whatsapp.models import PairingAttempt, WhatsAppSession
        from whatsapp.selectors import worker_leases

        sessions = GaugeMetricFamily(
            "pairing_sessions", "Companies' WhatsApp sessions by status.", labels=["status"]
        )
        for status, count in (
            WhatsAppSession.objects.values_list("status").annotate(n=Count("id")).order_by()
        ):
            sessions.add_metric([status], count)
        yield sessions

        attempts = GaugeMetricFamily(
            "pairing_attempts",
            "Linking attempts recorded, by method and outcome (outcome '' = still running).",
            labels=["method", "outcome"],
        )
        rows = PairingAttempt.objects.values_list("method", "outcome").annotate(n=Count("id"))
        for method, outcome, count in rows.order_by():
            attempts.add_metric([method, outcome], count)
        yield attempts

        failures = GaugeMetricFamily(
            "pairing_code_failures",
            "Failed pairing-code attempts by error code.",
            labels=["error_code"],
        )
        codes = PairingAttempt.objects.filter(method="code", outcome="failed")
        for code, count in codes.values_list("error_code").annotate(n=Count("id")).order_by():
            failures.add_metric([code or "UNKNOWN"], count)
        yield failures

        yield from self._time_to_link()
        yield from self._early_logouts()

        leases = GaugeMetricFamily(
            "pairing_worker_leases", "Sessions each live worker owns.", labels=["worker"]
        )
        owned = worker_leases()
        for worker_id, count in owned.items():
            leases.add_metric([worker_id], count)
        yield leases
        yield GaugeMetricFamily("pairing_live_workers", "Live WhatsApp workers.", value=len(owned))

    def _time_to_link(self) -> Iterator[Metric]:
        from whatsapp.models import PairingAttempt

        linked = PairingAttempt.objects.filter(
            outcome="linked", finished_at__isnull=False, started_at__gte=timezone.now() - RECENT
        ).values_list("started_at", "finished_at")
        seconds = sorted(
            (end - start).total_seconds() for start, end in linked[:5000] if end is not None
        )
        family = GaugeMetricFamily(
            "pairing_time_to_link_seconds",
            "Seconds from starting an attempt to the phone linking, over the last 7 days.",
            labels=["quantile"],
        )
        if seconds:
            for quantile in (0.5, 0.9, 0.99):
                family.add_metric([str(quantile)], _quantile(seconds, quantile))
        yield family

    def _early_logouts(self) -> Iterator[Metric]:
        """Links the phone removed within a minute: a sign of a bad link, not of a user."""
        from whatsapp.models import PairingAttempt

        since = timezone.now() - RECENT
        logouts = PairingAttempt.objects.filter(
            method="reset", started_by="whatsapp", started_at__gte=since
        ).values_list("company_id", "started_at")
        linked: dict[int, list] = {}
        for company_id, finished_at in PairingAttempt.objects.filter(
            outcome="linked", finished_at__gte=since - EARLY_LOGOUT
        ).values_list("company_id", "finished_at"):
            linked.setdefault(company_id, []).append(finished_at)
        early = sum(
            1
            for company_id, at in logouts
            if any(timedelta(0) <= at - link <= EARLY_LOGOUT for link in linked.get(company_id, []))
        )
        yield GaugeMetricFamily(
            "pairing_early_logouts",
            "Devices logged out by the phone within 60 s of linking, over the last 7 days.",
            value=early,
        )


def _quantile(ordered: list[float], share: float) -> float:
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(share * 100) - 1]


REGISTRY.register(StateCollector())


def allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.is_loopback:
        return True
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponseNotFound()
    response = HttpResponse(
        generate_latest(REGISTRY), content_type="text/plain; version=0.0.4; charset=utf-8"
    )
    response["Cache-Control"] = "no-store"
    return response
