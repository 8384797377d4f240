"""PostgreSQL connections cut under the workers' feet (docs/design.md, "Topology and ownership"):
after three rounds of terminated connections, every linked session is really online again, not
just in its status: the simulated phone drops each connection, and a live client comes back with
a new one. Real worker processes, PostgreSQL and the test's own Redis.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection

from tests.helpers import figure, wait_for
from tests.whatsapp.worker.helpers import DRILL, link_companies
from whatsapp.models import SessionStatus, WhatsAppSession
from whatsapp.sandbox import phone
from whatsapp.sandbox.models import Device

pytestmark = DRILL

COMPANIES = 8
NUMBERS = [f"+7911555{3000 + index}" for index in range(COMPANIES)]


def terminate_other_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def tokens() -> dict[str, str]:
    return dict(Device.objects.values_list("phone", "connection_token"))


def test_terminated_connections_leave_every_session_really_online(start_worker: Any) -> None:
    start_worker("w1")
    start_worker("w2")
    link_companies(COMPANIES, first_number=3000)
    wait_for(
        lambda: WhatsAppSession.objects.filter(status=SessionStatus.CONNECTED).count() == COMPANIES
        or None,
        timeout=30,
        what="all linked",
    )

    killed = []
    for _ in range(3):
        killed.append(terminate_other_connections())
        time.sleep(1.5)

    # Really online: each live client notices a drop and comes back with a new connection.
    wait_for(
        lambda: WhatsAppSession.objects.filter(status=SessionStatus.CONNECTED).count() == COMPANIES
        or None,
        timeout=20,
        what="all connected again",
    )
    before = tokens()
    for number in NUMBERS:
        phone.drop_connection(number)
    started = time.monotonic()

    def all_back() -> bool | None:
        now = tokens()
        return all(now[key] and now[key] != before[key] for key in before) or None

    wait_for(all_back, timeout=20, what="every device online again on a new connection")
    figure(
        f"terminated {killed} connections in 3 rounds; every linked session came back online "
        f"{time.monotonic() - started:.1f} s after a drop"
    )
    assert WhatsAppSession.objects.filter(status=SessionStatus.CONNECTED).count() == COMPANIES
