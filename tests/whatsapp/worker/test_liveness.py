"""A killed worker is known dead at once (docs/design.md, "Topology and ownership"): commands get
503 without waiting for a timeout, health says so, its linked sessions show `reconnecting`, a code
from its window is never handed out again, and another worker takes its sessions without waiting
for their leases to run out. Real worker processes, PostgreSQL and the test's own Redis.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from rest_framework.test import APIClient

from tests.helpers import figure, wait_for
from tests.whatsapp.worker.helpers import DRILL
from whatsapp.models import ApiKey, Company, SessionStatus, WhatsAppSession
from whatsapp.sandbox import phone
from whatsapp.selectors import live_workers
from whatsapp.services.state import session_get

pytestmark = DRILL

SESSION = "/api/v1/companies/alice/session/"
PHONE = "+79001234567"
BOB_PHONE = "+79007654321"
BOB_CODE = "/api/v1/companies/bob/session/pairing-code/"


def test_a_killed_worker_is_known_dead_at_once(start_worker: Any, settings: Any) -> None:
    settings.WHATSAPP_LEASE_TTL = 30.0  # long: nothing below may wait for a lease to run out
    clients = {}
    for slug in ("alice", "bob"):
        company = Company.objects.create(slug=slug, name=slug.title())
        session_get(company)
        clients[slug] = APIClient()
        key = ApiKey.issue(name="t", company=company)[1]
        clients[slug].credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    alice, bob = clients["alice"], clients["bob"]
    w1 = start_worker("w1")
    code = alice.post(f"{SESSION}pairing-code/", {"phone_number": PHONE}, format="json").json()
    phone.link_with_code(PHONE, code["pairing_code"])
    wait_for(lambda: alice.get(SESSION).json()["status"] == "connected", what="connected")
    # Bob has a code from a window that dies with the worker.
    bob_code = bob.post(BOB_CODE, {"phone_number": BOB_PHONE}, format="json")
    assert bob_code.status_code == 200

    os.kill(w1.pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: not live_workers().exists() or None, timeout=5, interval=0.02, what="dead")
    noticed = time.monotonic() - killed

    started = time.monotonic()
    refused = alice.post(f"{SESSION}reconnect/")
    answered = time.monotonic() - started
    again = bob.post(BOB_CODE, {"phone_number": BOB_PHONE}, format="json")
    health = alice.get("/api/v1/health/")
    shown = alice.get(SESSION).json()["status"]
    figure(
        f"worker killed: known dead after {noticed:.2f} s; a command answered "
        f"{refused.status_code} in {answered:.2f} s; the dead window's code asked again: "
        f"{again.status_code}; health {health.status_code}; a linked session shows {shown!r}"
    )
    assert noticed < 2
    assert (refused.status_code, refused.json()["error_code"]) == (503, "WORKER_UNAVAILABLE")
    assert answered < 2
    assert again.status_code == 503  # never the dead window's code
    assert health.status_code == 503 and health.json()["checks"]["workers"]["live"] == 0
    assert shown == "reconnecting"

    start_worker("w2")
    taken = time.monotonic()
    wait_for(
        lambda: WhatsAppSession.objects.filter(owner="w2", status=SessionStatus.CONNECTED).exists()
        or None,
        timeout=15,
        what="w2 running the link",
    )
    figure(f"w2 took the link over {time.monotonic() - taken:.1f} s after it started")
    assert alice.get(SESSION).json()["status"] == "connected"
