"""Redis in trouble, with a real worker process (docs/design.md, "Topology and ownership"):
frozen, every API call still answers within the bound and never 500; stopped, linking answers
503 WORKER_UNAVAILABLE at once and leaves no phantom attempt; back, everything works again
without restarting anything. Redis here is the test's own `redis-server`, never the machine's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.helpers import USES_POSTGRES, wait_for
from tests.whatsapp.worker.helpers import ROOT, OwnRedis, worker_env
from whatsapp.models import ApiKey, AttemptOutcome, Company, PairingAttempt, WhatsAppSession
from whatsapp.selectors import live_workers
from whatsapp.services.state import session_get
from whatsapp.worker import commands

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not USES_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL (CI does)"),
    pytest.mark.skipif(
        not OwnRedis.available(), reason="needs redis-server (Debian: redis-server)"
    ),
]

BOUND = 22.0
SESSION = "/api/v1/companies/alice/session/"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path).start()
    yield redis
    redis.stop()


@pytest.fixture
def external(settings: Any, own_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a web process of the production topology, on the test's own Redis."""
    settings.REDIS_URL = own_redis.url
    settings.WHATSAPP_WORKER_MODE = "external"
    settings.WHATSAPP_LEASE_TTL = 2.0
    settings.WHATSAPP_OPERATION_TIMEOUT = 10.0
    timeouts = {
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
    }
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": own_redis.url,
            "OPTIONS": timeouts,
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": own_redis.url,
                        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
                    }
                ],
                "prefix": commands.layer_prefix(),
            },
        }
    }
    monkeypatch.setattr(commands, "_channel_bus", None)


@pytest.fixture
def worker_process(
    external: None, own_redis: OwnRedis, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "whatsapp_worker", "--worker-id", "w1"],
        cwd=ROOT,
        env=worker_env(redis_url=own_redis.url),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: live_workers().count() == 1, timeout=30, what="a live worker")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        sys.stdout.write((tmp_path / "worker.log").read_text(errors="replace")[-2000:])


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
    print(f"Redis frozen: {frozen}")
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
    print(f"Redis stopped: {stopped}")
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
    print(f"Redis back: linking works again after {time.monotonic() - returned:.1f} s")
    assert worker_process.poll() is None
