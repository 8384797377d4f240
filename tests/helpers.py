"""Small helpers shared by tests."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings as django_settings

T = TypeVar("T")

USES_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
USES_REDIS = bool(os.environ.get("REDIS_URL"))

# Alice's phone as a person types it and as we store it; another phone for conflicts.
ALICE_PHONE = "+7 900 123-45-67"
ALICE_E164 = "+79001234567"
OTHER_E164 = "+79007654321"


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


def session_of(company):
    from whatsapp.models import WhatsAppSession

    return WhatsAppSession.objects.get(company=company)


def wait_status(company, *statuses: str, timeout: float = 10.0):
    return wait_for(
        lambda: (s := session_of(company)).status in statuses and s,
        timeout,
        what=f"status in {statuses}",
    )


def link(company: Any, phone_number: str = ALICE_E164) -> Any:
    """Link `company` through the linking service and the sandbox's simulated phone (a worker
    must be running); returns the connected session."""
    from whatsapp.models import SessionStatus
    from whatsapp.sandbox import phone
    from whatsapp.services import linking
    from whatsapp.services.actors import SYSTEM

    code = linking.pairing_code_request(company=company, phone_number=phone_number, actor=SYSTEM)
    phone.link_with_code(phone_number, code.pairing_code)
    return wait_status(company, SessionStatus.CONNECTED)


FIGURES: list[str] = []


def figure(text: str) -> None:
    """A drill's measured figure: fault drills and capacity tests report what they measured, and
    the run lists them all at its end (`pytest_terminal_summary` in tests/conftest.py), so CI
    logs keep them even though pytest captures the tests' output."""
    FIGURES.append(text)
    print(text)  # also in the test's own captured output
