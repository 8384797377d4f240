"""Failover (docs/design.md, "Topology and ownership"): kill -9 of the worker that runs most of 50
linked sessions, and every session is connected on the other within the lease TTL + 10 s, with no
stream replaced; then, with every worker killed, a linking request answers 503 in under 2 s.
Real worker processes, PostgreSQL and the test's own Redis."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from typing import Any

import pytest

from tests.helpers import figure, wait_for
from tests.whatsapp.worker.helpers import DRILL, link_companies
from whatsapp.errors import WorkerUnavailable
from whatsapp.models import SessionStatus, WhatsAppSession
from whatsapp.selectors import live_workers
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM

pytestmark = DRILL

COMPANIES = 50
LEASE_TTL = 2.0  # the workers' (tests/whatsapp/worker/helpers.py)


def connected_on_live_workers() -> int:
    live = set(live_workers().values_list("worker_id", flat=True))
    return WhatsAppSession.objects.filter(status=SessionStatus.CONNECTED, owner__in=live).count()


def test_kill_9_of_a_worker_running_fifty_links(start_worker: Any) -> None:
    processes = {name: start_worker(name) for name in ("w1", "w2")}
    companies = link_companies(COMPANIES, first_number=5000)
    wait_for(
        lambda: connected_on_live_workers() == COMPANIES or None, timeout=60, what="all linked"
    )

    owners = Counter(WhatsAppSession.objects.values_list("owner", flat=True))
    victim = max(processes, key=lambda name: owners.get(name, 0))
    survivor = "w2" if victim == "w1" else "w1"
    os.kill(processes[victim].pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(
        lambda: not live_workers().filter(worker_id=victim).exists() or None,
        timeout=5,
        interval=0.01,
        what="the victim known dead",
    )
    wait_for(
        lambda: connected_on_live_workers() == COMPANIES or None,
        timeout=LEASE_TTL + 10,
        interval=0.05,
        what="all connected on the survivor",
    )
    seconds = time.monotonic() - killed
    replaced = WhatsAppSession.objects.filter(last_error_code="STREAM_REPLACED").count()
    figure(
        f"kill -9 of {victim} running {owners[victim]} of {COMPANIES} links: all connected on "
        f"{survivor} after {seconds:.1f} s, {replaced} stream replaced"
    )
    assert replaced == 0

    os.kill(processes[survivor].pid, signal.SIGKILL)
    wait_for(lambda: not live_workers().exists() or None, timeout=5, interval=0.02, what="dead")
    started = time.monotonic()
    with pytest.raises(WorkerUnavailable):
        linking.pairing_code_request(
            company=companies[0], phone_number="+79119990001", actor=SYSTEM, replace_existing=True
        )
    answered = time.monotonic() - started
    figure(f"every worker killed: a pairing-code request answered 503 in {answered:.2f} s")
    assert answered < 2
