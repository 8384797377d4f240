"""The one publisher of WebSocket events (docs/design.md, "Events"): one group per company.

Payloads are built here from the persisted session, so what a subscriber receives is exactly
what `GET .../session/` would say at that moment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from whatsapp.models import SessionStatus, WhatsAppSession
from whatsapp.qr import qr_png_data_url

logger = logging.getLogger(__name__)

EVENT_MESSAGE_TYPE = "whatsapp.event"

# Set by the in-process worker: sync code publishes through that loop, where consumers listen
# on the in-memory channel layer.
_home_loop: asyncio.AbstractEventLoop | None = None
_home_thread: int | None = None


def set_home_loop(loop: asyncio.AbstractEventLoop | None, thread_id: int | None = None) -> None:
    global _home_loop, _home_thread
    _home_loop, _home_thread = loop, thread_id


def company_group(company_id: int) -> str:
    return f"company.{company_id}"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def status_event(session: WhatsAppSession) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "status",
        "status": session.status,
        "linked_phone": session.linked_phone or None,
    }
    if session.last_error_code:
        event["error_code"] = session.last_error_code
        event["error"] = session.last_error_message
    return event


def qr_event(session: WhatsAppSession) -> dict[str, Any]:
    return {
        "type": "qr",
        "qr": session.qr_code,
        "image": qr_png_data_url(session.qr_code),
        "expires_at": _iso(session.qr_expires_at),
    }


def pairing_code_event(session: WhatsAppSession) -> dict[str, Any]:
    return {
        "type": "pairing_code",
        "pairing_code": session.pairing_code,
        "phone_number": session.pairing_phone,
        "expires_at": _iso(session.pairing_expires_at),
    }


def connected_event(session: WhatsAppSession) -> dict[str, Any]:
    return {"type": "connected", "phone_number": session.linked_phone or None}


def disconnected_event(reason: str) -> dict[str, Any]:
    return {"type": "disconnected", "reason": reason}


def error_event(error) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "error", "error_code": error.code, "error": error.message}
    if error.retry_after is not None:
        event["retry_after"] = error.retry_after
    if error.details:
        event["details"] = error.details
    return event


def credentials_reset_event() -> dict[str, Any]:
    return {"type": "credentials_reset"}


def snapshot_events(session: WhatsAppSession) -> list[dict[str, Any]]:
    """What a subscriber gets on connect: the status, and the live QR or code if any."""
    events = [status_event(session)]
    if session.is_pairing and session.qr_code and session.status == SessionStatus.QR_READY:
        events.append(qr_event(session))
    if session.status == SessionStatus.CODE_READY and session.pairing_code:
        events.append(pairing_code_event(session))
        if session.qr_code:
            events.append(qr_event(session))
    return events


async def apublish(company_id: int, events: list[dict[str, Any]]) -> None:
    layer = get_channel_layer()
    if layer is None or not events:
        return
    group = company_group(company_id)
    for event in events:
        try:
            await layer.group_send(group, {"type": EVENT_MESSAGE_TYPE, "event": event})
        except Exception:  # a full or unreachable layer must not break a state change
            logger.exception("could not publish %s to %s", event.get("type"), group)


def publish(company_id: int, events: list[dict[str, Any]]) -> None:
    if not events:
        return
    loop = _home_loop
    if loop is not None and loop.is_running() and threading.get_ident() != _home_thread:
        future = asyncio.run_coroutine_threadsafe(apublish(company_id, events), loop)
        try:
            future.result(timeout=5)
        except Exception:
            logger.exception("publishing to company %s timed out", company_id)
        return
    async_to_sync(apublish)(company_id, events)
