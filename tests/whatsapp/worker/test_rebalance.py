"""A worker that joins takes its share (docs/design.md, "Topology and ownership"): the busy one
hands linked, idle sessions over a few at a time, and every session stays linked. Real worker
processes, PostgreSQL and the test's own Redis."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from tests.helpers import figure, wait_for
from tests.whatsapp.worker.helpers import DRILL, link_companies
from whatsapp.models import SessionStatus, WhatsAppSession

pytestmark = DRILL

COMPANIES = 12


def test_a_joining_worker_ends_with_a_share_of_the_sessions(start_worker: Any) -> None:
    start_worker("w1")
    link_companies(COMPANIES, first_number=4000)
    wait_for(
        lambda: WhatsAppSession.objects.filter(owner="w1", status=SessionStatus.CONNECTED).count()
        == COMPANIES
        or None,
        timeout=30,
        what="all linked on w1",
    )

    start_worker("w2")
    joined = time.monotonic()

    def balanced() -> bool | None:
        owners = Counter(
            WhatsAppSession.objects.filter(status=SessionStatus.CONNECTED).values_list(
                "owner", flat=True
            )
        )
        return (sum(owners.values()) == COMPANIES and owners["w2"] >= COMPANIES // 2 - 1) or None

    wait_for(balanced, timeout=30, what="w2 running its share")
    seconds = time.monotonic() - joined
    owners = Counter(WhatsAppSession.objects.values_list("owner", flat=True))
    failed = WhatsAppSession.objects.exclude(status=SessionStatus.CONNECTED).count()
    figure(
        f"a joining worker had its share after {seconds:.1f} s: {dict(owners)}; {failed} not connected"
    )
    assert failed == 0
