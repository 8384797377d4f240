"""A per-company mutex that holds across processes.

It is a claim on the session row (`filter(...).update(...)` that changes one row or none), so it
works the same on SQLite and PostgreSQL and needs nothing else running. The claim expires by
itself, so a process that dies holding it blocks the company for one lock TTL at most.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from whatsapp.errors import OperationTimeout
from whatsapp.models import WhatsAppSession

POLL_SECONDS = 0.05


def lock_ttl() -> timedelta:
    # Longer than any bounded operation, so a live holder never loses the lock mid-operation.
    return timedelta(seconds=settings.WHATSAPP_OPERATION_TIMEOUT * 2 + 5)


@contextmanager
def company_lock(*, session_id: int, deadline: float) -> Iterator[str]:
    """Hold the company's lock; raise OperationTimeout if it is not ours by `deadline`
    (a time.monotonic() value). The lock is released however the block ends."""
    token = uuid.uuid4().hex
    while True:
        now = timezone.now()
        claimed = (
            WhatsAppSession.objects.filter(pk=session_id)
            .filter(Q(lock_token="") | Q(lock_expires_at__lt=now))
            .update(lock_token=token, lock_expires_at=now + lock_ttl())
        )
        if claimed:
            if remaining(deadline) < _least_time_to_work():
                # Won the lock with almost no time left: starting now would supersede or tear
                # down state and then time out half-way. Give it back and say so.
                _release(session_id, token)
                raise OperationTimeout(
                    "Another operation on this company took most of the time allowed. Try again."
                )
            break
        if time.monotonic() >= deadline:
            raise OperationTimeout(
                "Another operation on this company is still running and did not finish in time. "
                "Try again in a moment."
            )
        time.sleep(POLL_SECONDS)
    try:
        yield token
    finally:
        _release(session_id, token)


def _release(session_id: int, token: str) -> None:
    WhatsAppSession.objects.filter(pk=session_id, lock_token=token).update(
        lock_token="", lock_expires_at=None
    )


def _least_time_to_work() -> float:
    return min(2.0, settings.WHATSAPP_OPERATION_TIMEOUT * 0.25)


def deadline_in(seconds: float | None = None) -> float:
    return time.monotonic() + (settings.WHATSAPP_OPERATION_TIMEOUT if seconds is None else seconds)


def remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
