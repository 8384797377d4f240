"""Two `whatsapp_worker` processes against PostgreSQL + Redis share the companies, never run one
company twice, route commands to the owner, and take over a dead worker's companies."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import USES_POSTGRES, USES_REDIS, wait_for
from tests.whatsapp.worker.helpers import ROOT, worker_env
from whatsapp.models import Company, SessionStatus, WhatsAppSession
from whatsapp.sandbox import phone
from whatsapp.sandbox.models import Device, LoginWindow
from whatsapp.selectors import live_workers
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.services.state import session_get

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not (USES_POSTGRES and USES_REDIS),
        reason="needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL (CI does)",
    ),
]

COMPANIES = 10


@pytest.fixture
def two_workers(tmp_path, settings):
    settings.WHATSAPP_WORKER_MODE = "external"
    settings.WHATSAPP_LEASE_TTL = 2.0
    settings.WHATSAPP_SANDBOX_SPEED = 1.0
    processes = {}
    for name in ("w1", "w2"):
        log = open(tmp_path / f"{name}.log", "w")
        processes[name] = subprocess.Popen(
            [sys.executable, "manage.py", "whatsapp_worker", "--worker-id", name],
            cwd=ROOT,
            env=worker_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: live_workers().count() == 2, timeout=30, what="two live workers")
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        for name in processes:
            sys.stdout.write((tmp_path / f"{name}.log").read_text()[-3000:])


def open_windows_per_company() -> dict[int, int]:
    counts = {}
    for session in WhatsAppSession.objects.all():
        counts[session.company_id] = LoginWindow.objects.filter(
            client_uuid=str(session.client_uuid), state=LoginWindow.State.OPEN
        ).count()
    return counts


def test_two_workers_share_companies_each_owned_by_exactly_one(two_workers):
    companies = [
        Company.objects.create(slug=f"c{i}", name=f"Company {i}") for i in range(COMPANIES)
    ]
    for company in companies:
        # As the web side leaves a session it wants running before any worker has it.
        WhatsAppSession.objects.filter(pk=session_get(company).pk).update(
            wants_running=True, status=SessionStatus.CONNECTING
        )

    def all_showing_qr():
        return WhatsAppSession.objects.filter(status=SessionStatus.QR_READY).count() == COMPANIES

    wait_for(all_showing_qr, timeout=30, what="every company showing a QR")
    owners = dict(WhatsAppSession.objects.values_list("company_id", "owner"))
    assert set(owners.values()) == {"w1", "w2"}
    assert sorted(list(owners.values()).count(w) for w in ("w1", "w2")) == [5, 5]
    for _ in range(5):  # over a few heartbeats, never two clients for one company
        assert set(open_windows_per_company().values()) == {1}
        time.sleep(0.3)

    # A command reaches the owner, whichever worker it lands on first.
    target = companies[3]
    code = linking.pairing_code_request(company=target, phone_number="+79001234567", actor=SYSTEM)
    phone.link_with_code("+79001234567", code.pairing_code)
    wait_for(lambda: session_get(target).status == SessionStatus.CONNECTED, what="connected")
    assert session_get(target).owner == owners[target.pk]

    # One worker dies without a word: the other takes its companies over after the lease.
    dead = owners[target.pk]
    stream_before = Device.objects.get(phone="79001234567").connection_token
    two_workers[dead].kill()
    survivor = ({"w1", "w2"} - {dead}).pop()
    wait_for(
        lambda: set(WhatsAppSession.objects.values_list("owner", flat=True)) == {survivor},
        timeout=20,
        what="every company moved to the surviving worker",
    )
    wait_for(
        lambda: Device.objects.get(phone="79001234567").connection_token not in ("", stream_before)
        and session_get(target).status == SessionStatus.CONNECTED,
        timeout=10,
        what="the linked company reconnected on the survivor",
    )
    wait_for(lambda: set(open_windows_per_company().values()) <= {0, 1}, what="one window each")
