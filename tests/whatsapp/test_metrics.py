"""`/metrics` (Prometheus) and `manage.py check_health`."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from tests.helpers import link
from whatsapp.models import AttemptMethod, AttemptOutcome, PairingAttempt, SessionStatus
from whatsapp.services.state import session_get

REMOTE = "203.0.113.5"


def scrape(client: Client, **extra: Any) -> tuple[int, str]:
    response = client.get("/metrics", **extra)
    return response.status_code, response.content.decode()


def test_loopback_may_scrape_and_strangers_may_not(db: None, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert scrape(Client())[0] == 200  # the test client is 127.0.0.1
    assert scrape(Client(), REMOTE_ADDR=REMOTE)[0] == 404


def test_a_token_or_an_allowed_network_lets_a_remote_scraper_in(db: None, settings: Any) -> None:
    import ipaddress

    settings.METRICS_TOKEN = "s3cret-token"
    assert scrape(Client(), REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION="Bearer s3cret-token")[0] == 200
    assert scrape(Client(), REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION="Bearer wrong")[0] == 404
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("203.0.113.0/24")]
    assert scrape(Client(), REMOTE_ADDR=REMOTE)[0] == 200


def test_the_linking_funnel_and_the_sessions_are_counted(alice: Any, bob: Any) -> None:
    now = timezone.now()
    session = session_get(alice)
    session.status = SessionStatus.CONNECTED
    session.save()
    PairingAttempt.objects.create(
        company=alice,
        method=AttemptMethod.CODE,
        started_at=now - timedelta(seconds=40),
        finished_at=now - timedelta(seconds=30),
        outcome=AttemptOutcome.LINKED,
    )
    # The phone removed the device 20 s after linking: an early logout.
    PairingAttempt.objects.create(
        company=alice,
        method=AttemptMethod.RESET,
        started_by="whatsapp",
        started_at=now - timedelta(seconds=10),
        outcome=AttemptOutcome.CLEARED,
    )
    PairingAttempt.objects.create(
        company=bob, method=AttemptMethod.CODE, outcome=AttemptOutcome.FAILED, error_code="TIMEOUT"
    )
    PairingAttempt.objects.create(company=bob, method=AttemptMethod.QR, outcome="expired")

    status, body = scrape(Client())

    assert status == 200
    assert 'pairing_sessions{status="connected"} 1.0' in body
    assert 'pairing_sessions{status="disconnected"} 1.0' in body
    assert 'pairing_attempts{method="code",outcome="linked"} 1.0' in body
    assert 'pairing_attempts{method="qr",outcome="expired"} 1.0' in body
    assert 'pairing_code_failures{error_code="TIMEOUT"} 1.0' in body
    assert 'pairing_time_to_link_seconds{quantile="0.5"} 10.0' in body
    assert "pairing_early_logouts 1.0" in body
    assert "pairing_live_workers 0.0" in body


@pytest.mark.django_db(transaction=True)
def test_commands_to_the_worker_are_timed(alice: Any, worker: Any) -> None:
    link(alice)
    status, body = scrape(Client())
    assert status == 200
    assert 'pairing_command_seconds_count{op="pairing_code",outcome="ok"}' in body
    assert 'pairing_worker_leases{worker="' in body


def test_check_health_reports_and_fails_when_unhealthy(db: None, settings: Any) -> None:
    settings.WHATSAPP_WORKER_MODE = "external"
    out = StringIO()
    with pytest.raises(CommandError, match="Unhealthy: workers"):
        call_command("check_health", stdout=out)
    assert "database       ok" in out.getvalue()
    assert "workers        FAILING" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_check_health_lists_the_live_workers_and_their_sessions(alice: Any, worker: Any) -> None:
    link(alice)
    out = StringIO()
    call_command("check_health", stdout=out)
    assert "healthy" in out.getvalue()
    assert f"worker {worker.worker.worker_id}: 1 sessions" in out.getvalue()
