"""A worker that joins takes its share (docs/design.md, "Topology and ownership"): the busy one
hands linked, idle sessions over a few at a time, and every session stays linked. Real worker
processes, PostgreSQL and the test's own Redis."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.helpers import USES_POSTGRES, figure, wait_for
from tests.whatsapp.worker.helpers import OwnRedis
from whatsapp.models import Company, SessionStatus, WhatsAppSession
from whatsapp.sandbox import phone
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.services.state import session_get

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not USES_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL (CI does)"),
    pytest.mark.skipif(
        not OwnRedis.available(), reason="needs redis-server (Debian: redis-server)"
    ),
]

COMPANIES = 12


def test_a_joining_worker_ends_with_a_share_of_the_sessions(start_worker: Any) -> None:
    start_worker("w1")
    for index in range(COMPANIES):
        company = Company.objects.create(slug=f"c{index}", name=f"Company {index}")
        session_get(company)
        number = f"+7911555{4000 + index}"
        code = linking.pairing_code_request(company=company, phone_number=number, actor=SYSTEM)
        phone.link_with_code(number, code.pairing_code)
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
