"""The one publisher of WebSocket events (docs/design.md, "Events"): one group per company.

Payloads are built here from the persisted session, so what a subscriber receives is exactly
what `GET .../session/` would say at that moment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from typing import Literal, NotRequired, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from whatsapp.errors import ServiceError, error_payload
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- payloads: what subscribers receive (docs/design.md, "Events") ----------------------------


class StatusEvent(TypedDict):
    type: Literal["status"]
    status: str
    linked_phone: str | None
    error_code: NotRequired[str]
    error: NotRequired[str]


class QrEvent(TypedDict):
    type: Literal["qr"]
    qr: str
    image: str
    expires_at: str | None


class PairingCodeEvent(TypedDict):
    type: Literal["pairing_code"]
    pairing_code: str
    phone_number: str
    expires_at: str | None


class ConnectedEvent(TypedDict):
    type: Literal["connected"]
    phone_number: str | None


class DisconnectedEvent(TypedDict):
    type: Literal["disconnected"]
    reason: str


class CredentialsResetEvent(TypedDict):
    type: Literal["credentials_reset"]


class ErrorEvent(TypedDict):
    """`error_payload` of the error, plus the type (and, on a socket, the request's id)."""

    type: Literal["error"]
    error_code: str
    error: str
    details: NotRequired[dict]
    retry_after: NotRequired[int]
    request_id: NotRequired[str | int]


Event = (
    StatusEvent
    | QrEvent
    | PairingCodeEvent
    | ConnectedEvent
    | DisconnectedEvent
    | CredentialsResetEvent
    | ErrorEvent
)


def status_event(session: WhatsAppSession) -> StatusEvent:
    event = StatusEvent(
        type="status", status=session.status, linked_phone=session.linked_phone or None
    )
    if session.last_error_code:
        event["error_code"] = session.last_error_code
        event["error"] = session.last_error_message
    return event


def qr_event(session: WhatsAppSession) -> QrEvent:
    return QrEvent(
        type="qr",
        qr=session.qr_code,
        image=qr_png_data_url(session.qr_code),
        expires_at=_iso(session.qr_expires_at),
    )


def pairing_code_event(
    pairing_code: str, phone_number: str, expires_at: datetime | None
) -> PairingCodeEvent:
    return PairingCodeEvent(
        type="pairing_code",
        pairing_code=pairing_code,
        phone_number=phone_number,
        expires_at=_iso(expires_at),
    )


def session_pairing_code_event(session: WhatsAppSession) -> PairingCodeEvent:
    return pairing_code_event(
        session.pairing_code, session.pairing_phone, session.pairing_expires_at
    )


def connected_event(session: WhatsAppSession) -> ConnectedEvent:
    return ConnectedEvent(type="connected", phone_number=session.linked_phone or None)


def disconnected_event(reason: str) -> DisconnectedEvent:
    return DisconnectedEvent(type="disconnected", reason=reason)


def error_event(error: ServiceError, request_id: str | int | None = None) -> ErrorEvent:
    event = ErrorEvent(type="error", **error_payload(error))
    if request_id is not None:
        event["request_id"] = request_id
    return event


def credentials_reset_event() -> CredentialsResetEvent:
    return CredentialsResetEvent(type="credentials_reset")


def snapshot_events(session: WhatsAppSession) -> list[Event]:
    """What a subscriber gets on connect: the status, and the live QR or code if any."""
    events: list[Event] = [status_event(session)]
    if session.is_pairing and session.qr_code and session.status == SessionStatus.QR_READY:
        events.append(qr_event(session))
    if session.status == SessionStatus.CODE_READY and session.pairing_code:
        events.append(session_pairing_code_event(session))
        if session.qr_code:
            events.append(qr_event(session))
    return events


# Longest a state change waits for the channel layer: a frozen Redis must not hold up the
# request or the worker that changed the state (subscribers then read the state on reconnect).
PUBLISH_TIMEOUT = 2.0


async def apublish(company_id: int, events: list[Event]) -> None:
    layer = get_channel_layer()
    if layer is None or not events:
        return
    group = company_group(company_id)
    for event in events:
        try:
            await asyncio.wait_for(
                layer.group_send(group, {"type": EVENT_MESSAGE_TYPE, "event": event}),
                PUBLISH_TIMEOUT,
            )
        except Exception as error:  # a full or unreachable layer must not break a state change
            logger.warning("could not publish %s to %s: %r", event.get("type"), group, error)
            return  # the layer is in trouble: the rest would wait the same


def publish(company_id: int, events: list[Event]) -> None:
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
