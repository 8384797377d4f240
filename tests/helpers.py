"""Small helpers shared by tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
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
