"""Redis in trouble, with a real worker process (docs/design.md, "Topology and ownership"):
frozen, every API call still answers within the bound and never 500; stopped, linking answers
503 WORKER_UNAVAILABLE at once and leaves no phantom attempt; back, everything works again
without restarting anything. Redis here is the test's own `redis-server`, never the machine's.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from rest_framework.test import APIClient

from tests.helpers import figure, wait_for
from tests.whatsapp.worker.helpers import DRILL, OwnRedis
from whatsapp.models import ApiKey, AttemptOutcome, Company, PairingAttempt, WhatsAppSession
from whatsapp.services.state import session_get

pytestmark = DRILL

BOUND = 22.0
SESSION = "/api/v1/companies/alice/session/"


def timed(call: Any) -> tuple[int, float]:
    started = time.monotonic()
    response = call()
    return response.status_code, time.monotonic() - started


def test_frozen_stopped_and_returning_redis(
    worker_process: subprocess.Popen[bytes], own_redis: OwnRedis
) -> None:
    alice = Company.objects.create(slug="alice", name="Alice's Salon")
    session_get(alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(name='t', company=alice)[1]}")
    start = lambda: client.post(f"{SESSION}start/")  # noqa: E731
    code = lambda: client.post(  # noqa: E731
        f"{SESSION}pairing-code/", {"phone_number": "+79001234567"}, format="json"
    )
    read = lambda: client.get(SESSION)  # noqa: E731

    # Frozen: answers within the bound, never 500.
    own_redis.freeze()
    try:
        frozen = {
            name: timed(call) for name, call in (("read", read), ("start", start), ("code", code))
        }
    finally:
        own_redis.thaw()
    figure(f"Redis frozen: {frozen}")
    for status, seconds in frozen.values():
        assert seconds < BOUND and status != 500

    # Stopped: linking is 503 at once, and leaves nothing that wants to run.
    wait_for(
        lambda: not WhatsAppSession.objects.filter(wants_running=True).exists() or None,
        timeout=15,
        what="the frozen attempts wound up",
    )
    client.delete("/api/v1/companies/alice/credentials/")
    own_redis.stop()
    stopped = {
        name: timed(call) for name, call in (("start", start), ("code", code), ("read", read))
    }
    figure(f"Redis stopped: {stopped}")
    assert stopped["start"][0] == 503 and stopped["code"][0] == 503
    assert stopped["read"][0] == 200
    assert all(seconds < 5 for _, seconds in stopped.values())
    session = WhatsAppSession.objects.get(company=alice)
    assert not session.wants_running  # no phantom attempt for a worker to open later
    failed = PairingAttempt.objects.filter(company=alice, outcome=AttemptOutcome.FAILED)
    assert failed.filter(error_code="WORKER_UNAVAILABLE").exists()

    # Back: the same processes work again, without a restart.
    own_redis.start()
    returned = time.monotonic()

    def linking_works() -> bool | None:
        status, _ = timed(start)
        return status == 202 or None

    wait_for(linking_works, timeout=10, interval=0.5, what="linking working again")
    figure(f"Redis back: linking works again after {time.monotonic() - returned:.1f} s")
    assert worker_process.poll() is None
