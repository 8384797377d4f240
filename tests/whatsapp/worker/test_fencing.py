"""Fenced ownership (docs/design.md, "Topology and ownership"): a worker frozen past its leases
(SIGSTOP: a long GC, a VM stall) and then thawed never runs a session next to its new owner. It
stops its clients by its own clock, its late writes are refused by the lease in the row, and it
opens nothing it does not own. Real worker processes, PostgreSQL and the test's own Redis.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

from tests.helpers import figure, wait_for
from tests.whatsapp.worker.helpers import DRILL, link_companies
from whatsapp.models import SessionStatus, WhatsAppSession
from whatsapp.selectors import live_workers

pytestmark = DRILL

COMPANIES = 10
ROUNDS = 5
STALL = 4.0  # seconds: twice the workers' lease TTL (2 s in worker_env)


def all_connected_and_owned_by_live_workers() -> bool | None:
    live = set(live_workers().values_list("worker_id", flat=True))
    rows = list(WhatsAppSession.objects.values_list("status", "owner"))
    return (
        all(status == SessionStatus.CONNECTED and owner in live for status, owner in rows) or None
    )


def test_a_worker_frozen_past_its_leases_never_runs_a_session_twice(start_worker: Any) -> None:
    processes = {name: start_worker(name) for name in ("w1", "w2")}
    link_companies(COMPANIES, first_number=2000)
    wait_for(all_connected_and_owned_by_live_workers, timeout=30, what="all linked")

    recoveries = []
    for _ in range(ROUNDS):
        owners = Counter(WhatsAppSession.objects.values_list("owner", flat=True))
        owner = max(processes, key=lambda name: owners.get(name, 0))
        claimer = "w2" if owner == "w1" else "w1"
        # The owner stalls; the other worker claims its sessions, and stalls right after
        # claiming, while the first one wakes up and takes them back.
        processes[owner].send_signal(signal.SIGSTOP)
        before = owners[claimer]

        def claimed(claimer: str = claimer, before: int = before) -> bool | None:
            return WhatsAppSession.objects.filter(owner=claimer).count() > before or None

        wait_for(claimed, timeout=30, interval=0.01, what="the other worker claiming")
        processes[claimer].send_signal(signal.SIGSTOP)
        processes[owner].send_signal(signal.SIGCONT)
        time.sleep(STALL)
        processes[claimer].send_signal(signal.SIGCONT)
        thawed = time.monotonic()
        wait_for(all_connected_and_owned_by_live_workers, timeout=30, what="all connected again")
        recoveries.append(round(time.monotonic() - thawed, 1))
        time.sleep(1)  # a late write or a second client would show by now
        assert not WhatsAppSession.objects.exclude(status=SessionStatus.CONNECTED).exists()

    failed = WhatsAppSession.objects.filter(status=SessionStatus.FAILED).count()
    replaced = WhatsAppSession.objects.filter(last_error_code="STREAM_REPLACED").count()
    owners = Counter(WhatsAppSession.objects.values_list("owner", flat=True))
    figure(
        f"{ROUNDS} stalls of {STALL:g} s: {failed} failed, {replaced} stream replaced, "
        f"all connected again {recoveries} s after each thaw; owners now {dict(owners)}"
    )
    assert failed == 0 and replaced == 0
    assert sum(owners.values()) == COMPANIES and "" not in owners
