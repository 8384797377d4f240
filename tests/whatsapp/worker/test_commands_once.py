"""Commands arrive once in effect (docs/design.md, "Topology and ownership"): each goes to one
worker's own channel, a company nobody runs to the least loaded live worker, and a request id is
served once. Real worker processes, PostgreSQL and the test's own Redis."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections

from tests.helpers import USES_POSTGRES, figure
from tests.whatsapp.worker.helpers import OwnRedis
from whatsapp.errors import ServiceError
from whatsapp.models import AttemptOutcome, Company, PairingAttempt, WhatsAppSession
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.services.state import session_get
from whatsapp.worker.commands import placement
from whatsapp.worker.core import WhatsAppWorker

COMPANIES = 40


def test_a_request_id_is_served_once() -> None:
    worker = WhatsAppWorker(inprocess=True, backend=object())  # type: ignore[arg-type]
    deadline = time.time() + 30
    assert worker._first_delivery("r1", deadline)
    assert not worker._first_delivery("r1", deadline)
    assert worker._first_delivery("r2", deadline)
    assert worker._first_delivery("old", time.time() - 1)  # past deadlines are forgotten
    assert worker._first_delivery("r3", deadline) and "old" not in worker._served


@pytest.mark.django_db
def test_a_company_nobody_runs_goes_to_the_least_loaded_worker(alice: Any, bob: Any) -> None:
    WhatsAppSession.objects.filter(company=alice).update(owner="w1")
    WhatsAppSession.objects.filter(company=bob).update(owner="w1")
    assert placement(["w1", "w2"]) == "w2"
    assert placement(["w1"]) == "w1"


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.skipif(not USES_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL (CI does)")
@pytest.mark.skipif(not OwnRedis.available(), reason="needs redis-server (Debian: redis-server)")
def test_forty_first_pairing_codes_at_once_across_two_workers(start_worker: Any) -> None:
    start_worker("w1")
    start_worker("w2")
    companies = []
    for index in range(COMPANIES):
        company = Company.objects.create(slug=f"c{index}", name=f"Company {index}")
        session_get(company)
        companies.append(company)

    def ask(index: int) -> str:
        try:
            code = linking.pairing_code_request(
                company=companies[index], phone_number=f"+7911555{1000 + index}", actor=SYSTEM
            )
            return code.pairing_code
        except ServiceError as error:
            return error.code
        finally:
            connections.close_all()

    started = time.monotonic()
    with ThreadPoolExecutor(COMPANIES) as pool:
        answers = list(pool.map(ask, range(COMPANIES)))
    seconds = time.monotonic() - started
    codes = [answer for answer in answers if "-" in answer]
    errors = [answer for answer in answers if "-" not in answer]
    owners = list(WhatsAppSession.objects.values_list("owner", flat=True))
    superseded = PairingAttempt.objects.filter(outcome=AttemptOutcome.SUPERSEDED).count()
    figure(
        f"{COMPANIES} first pairing codes at once: {len(codes)} codes, errors {errors}, "
        f"{superseded} superseded, in {seconds:.1f} s; w1 runs {owners.count('w1')}, "
        f"w2 runs {owners.count('w2')}"
    )
    assert len(codes) == COMPANIES and errors == []
    assert superseded == 0
    assert owners.count("w1") > 0 and owners.count("w2") > 0
