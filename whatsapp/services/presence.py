"""Who is watching a company: its WebSocket subscribers, and the attempts they abandon
(docs/design.md, "Linking rules", "Abandoned attempts").

A QR attempt that a socket started is cancelled when no subscriber has been connected for a grace
period (`WHATSAPP_ABANDON_GRACE`); a pairing-code attempt is never cancelled this way: a phone
browser drops its socket while the user switches to WhatsApp to type the code.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache

from whatsapp.errors import ServiceError, report_unexpected
from whatsapp.models import Company
from whatsapp.services import linking
from whatsapp.services.state import session_get

logger = logging.getLogger(__name__)

SUBSCRIBERS_TTL = 24 * 3600


def _subscribers_key(company_id: int) -> str:
    return f"ws:subscribers:{company_id}"


def _left_key(company_id: int) -> str:
    return f"ws:last-left:{company_id}"


# Each socket is an entry {channel name: last seen} that it refreshes while it lives. A web
# process that dies cannot count its sockets out, but their entries go stale and stop counting,
# so its companies' socket-started attempts are still cancelled when abandoned. Two sockets
# writing at once may lose one entry; the next refresh puts it back well inside the grace period.
SUBSCRIBER_REFRESH = 10.0
SUBSCRIBER_STALE = 3 * SUBSCRIBER_REFRESH


def _fresh_subscribers(company_id: int, now: float) -> dict[str, float]:
    entries = cache.get(_subscribers_key(company_id)) or {}
    return {channel: seen for channel, seen in entries.items() if now - seen < SUBSCRIBER_STALE}


def subscriber_seen(company_id: int, channel: str) -> None:
    """A socket joined, or is still there (best effort: a cache in trouble only delays the
    cancelling of abandoned attempts, it must not break the socket)."""
    try:
        _subscriber_seen(company_id, channel)
    except Exception as error:
        logger.warning("presence of a socket of company %s not recorded: %r", company_id, error)


def _subscriber_seen(company_id: int, channel: str) -> None:
    now = time.time()
    entries = _fresh_subscribers(company_id, now)
    entries[channel] = now
    cache.set(_subscribers_key(company_id), entries, timeout=SUBSCRIBERS_TTL)
    cache.delete(_left_key(company_id))


def subscriber_left(company_id: int, channel: str) -> str | None:
    """Count a socket out; returns a token when it was the company's last subscriber (None also
    when the cache is in trouble: the attempt then runs until its window ends)."""
    try:
        return _subscriber_left(company_id, channel)
    except Exception as error:
        logger.warning("a socket of company %s left unrecorded: %r", company_id, error)
        return None


def _subscriber_left(company_id: int, channel: str) -> str | None:
    entries = _fresh_subscribers(company_id, time.time())
    entries.pop(channel, None)
    cache.set(_subscribers_key(company_id), entries, timeout=SUBSCRIBERS_TTL)
    if entries:
        return None
    token = uuid.uuid4().hex
    cache.set(_left_key(company_id), token, timeout=SUBSCRIBERS_TTL)
    return token


def subscribers_count(company_id: int) -> int:
    return len(_fresh_subscribers(company_id, time.time()))


def attempt_cancel_if_abandoned(*, company: Company, token: str) -> bool:
    """Cancel the live attempt a socket started, if nobody came back since `token` was issued."""
    if subscribers_count(company.pk) > 0 or cache.get(_left_key(company.pk)) != token:
        return False
    attempt = session_get(company).current_attempt
    if attempt is None or not attempt.via_socket or not attempt.is_open:
        return False
    cancelled = linking.attempt_cancel(
        company=company,
        attempt_id=attempt.pk,
        reason="abandoned: the last WebSocket subscriber left",
    )
    if cancelled:
        logger.info(
            "attempt %s of company %s cancelled: abandoned by its sockets", attempt.pk, company.pk
        )
    return cancelled


async def cancel_when_abandoned(company: Company, token: str) -> None:
    """After the grace period, cancel the attempt if the company's sockets did not come back."""
    await asyncio.sleep(settings.WHATSAPP_ABANDON_GRACE)
    try:
        await database_sync_to_async(attempt_cancel_if_abandoned)(company=company, token=token)
    except ServiceError as error:
        logger.warning(
            "could not cancel the abandoned attempt of company %s (%s)", company.pk, error.code
        )
    except Exception as error:
        report_unexpected(error, where="abandoned-attempt")


# --- the socket's side -------------------------------------------------------------------------

_background: set[asyncio.Task] = set()


async def keep_seen(company_id: int, channel: str) -> None:
    """Run beside a live socket: refresh its entry until cancelled."""
    while True:
        await asyncio.sleep(SUBSCRIBER_REFRESH)
        await sync_to_async(subscriber_seen)(company_id, channel)  # never raises


async def socket_left(company: Company, channel: str) -> None:
    """Count a closed socket out; if it was the last one, watch for an abandoned attempt."""
    token = await sync_to_async(subscriber_left)(company.pk, channel)
    if token is None:
        return
    task = asyncio.get_running_loop().create_task(cancel_when_abandoned(company, token))
    _background.add(task)
    task.add_done_callback(_background.discard)
