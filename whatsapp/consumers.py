"""WebSocket consumers (docs/design.md, "Events"): authenticate, check the tenant, join the company's group,
send the current state at once, forward events, and turn client messages into service calls.

- `/ws/v1/companies/{slug}/`: staff session (same-origin only), `Authorization: Bearer <key>`
  on the handshake, or `?token=<key>` (never logged).
- `/ws/v1/pair/{link_token}/`: an end user holding a signed pairing link; may start linking and
  ask for a code, never reset.

Refused connections are closed before `accept()`, so the handshake fails (HTTP 403) and nothing
is sent; the close code says why: 4401 no or bad credentials (or an invalid, expired or revoked
link), 4403 a session from a foreign origin, 4404 a company the caller may not see.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from whatsapp import events
from whatsapp.errors import (
    CompanyNotFound,
    InternalError,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
    ServiceError,
    ValidationFailed,
    report_unexpected,
)
from whatsapp.models import Company
from whatsapp.selectors import company_visible
from whatsapp.services import linking, presence
from whatsapp.services.actors import Actor, actor_still_valid
from whatsapp.services.api_keys import api_key_find, key_from_authorization
from whatsapp.services.links import LinkInvalid, pairing_link_resolve
from whatsapp.services.rates import WRITE, rate_hit
from whatsapp.services.state import session_get

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
# Service calls run beside the socket (pings stay answered meanwhile), a few at a time.
MAX_CALLS_IN_FLIGHT = 3


class Refused(Exception):
    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(code)


# --- the consumers -------------------------------------------------------------------------


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def _origin_allowed(scope: dict) -> bool:
    """Cookies ride along on cross-site sockets too: a session socket must come from our pages."""
    origin = _header(scope, b"origin")
    if not origin:
        return False
    origin_text = origin.decode("latin-1")
    if origin_text in settings.CSRF_TRUSTED_ORIGINS:
        return True
    # Same host as the handshake itself (not merely any of ALLOWED_HOSTS, which may be "*").
    host = (_header(scope, b"host") or b"").decode("latin-1").lower()
    return bool(host) and urlsplit(origin_text).netloc.lower() == host


class CompanyEventsConsumer(AsyncWebsocketConsumer):
    """One company's live events, for staff and integrators."""

    actions = ("start", "request_pairing_code", "reset_credentials")

    company: Company | None = None
    actor: Actor | None = None

    async def authorize(self) -> tuple[Company, Actor]:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        raw_key = key_from_authorization(_header(self.scope, b"authorization"))
        if raw_key is None:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            if "token" in query:
                raw_key = query["token"][0]
        if raw_key is not None:
            key = await database_sync_to_async(api_key_find)(raw_key) if raw_key else None
            if key is None:
                raise Refused(CLOSE_UNAUTHENTICATED)
            actor, company_id = Actor.for_api_key(key), key.company_id
        else:
            user = self.scope.get("user")
            if not (user and user.is_authenticated and user.is_active and user.is_staff):
                raise Refused(CLOSE_UNAUTHENTICATED)
            if not _origin_allowed(self.scope):
                raise Refused(CLOSE_FORBIDDEN)
            actor, company_id = Actor.for_user(user), None
        try:
            company = await database_sync_to_async(company_visible)(
                slug=slug, company_id=company_id
            )
        except CompanyNotFound:
            raise Refused(CLOSE_NOT_FOUND) from None
        return company, actor

    async def still_allowed(self) -> None:
        """Checked before every action: a key revoked or a user disabled after the handshake
        loses its power on the sockets it already opened."""
        if self.actor is None or not await database_sync_to_async(actor_still_valid)(self.actor):
            raise NotAuthenticated(
                "These credentials are no longer valid; reconnect with valid ones."
            )

    @property
    def principal(self) -> tuple[Company, Actor]:
        """The company and actor of an accepted socket (actions run only after `accept()`)."""
        assert self.company is not None and self.actor is not None, "socket not accepted"
        return self.company, self.actor

    # --- life cycle ------------------------------------------------------------------------

    async def connect(self) -> None:
        self._calls: set[asyncio.Task] = set()
        self._counted = False
        try:
            company, self.actor = await self.authorize()
        except Refused as refused:
            await self.close(code=refused.code)
            return
        self.company = company
        self.group = events.company_group(company.pk)
        # Join before reading the snapshot: an event in between is sent twice, never lost.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await sync_to_async(presence.subscriber_seen)(company.pk, self.channel_name)
        self._counted = True
        self._presence = asyncio.get_running_loop().create_task(
            presence.keep_seen(company.pk, self.channel_name)
        )
        session = await database_sync_to_async(session_get)(company)
        for event in events.snapshot_events(session):
            await self.send_json(event)

    async def disconnect(self, code: int) -> None:
        for task in list(getattr(self, "_calls", ())):
            task.cancel()
        if self.company is None:
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "_presence", None) is not None:
            self._presence.cancel()
        if getattr(self, "_counted", False):
            self._counted = False
            await presence.socket_left(self.company, self.channel_name)

    # --- server -> client ------------------------------------------------------------------

    async def send_json(self, data: Mapping[str, Any]) -> None:
        await self.send(text_data=json.dumps(data))

    async def send_error(self, error: ServiceError, request_id: str | int | None = None) -> None:
        await self.send_json(events.error_event(error, request_id))

    async def whatsapp_event(self, message: dict) -> None:
        """A group event from `whatsapp.events.publish`."""
        await self.send_json(message["event"])

    # --- client -> server ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw: str | bytes = text_data if text_data is not None else (bytes_data or b"")
        size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
        limit = settings.WEBSOCKET_MAX_FRAME_BYTES
        if size > limit:
            await self.send_error(
                ValidationFailed(f"The message is too large ({size} bytes; at most {limit}).")
            )
            return
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            await self.send_error(ValidationFailed('Messages must be JSON objects with a "type".'))
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.send_error(ValidationFailed('Messages must be JSON objects with a "type".'))
            return
        request_id = message.get("request_id")
        if (
            not isinstance(request_id, str | int)
            or isinstance(request_id, bool)
            or len(str(request_id)) > 100
        ):
            request_id = None
        kind = message["type"]
        if kind == "ping":
            await self.send_json(
                {"type": "pong", **({"request_id": request_id} if request_id is not None else {})}
            )
            return
        if kind not in self.actions:
            names = ", ".join(("ping", *self.actions))
            await self.send_error(
                ValidationFailed(f"Unknown message type {kind[:40]!r}; use one of: {names}."),
                request_id,
            )
            return
        if len(self._calls) >= MAX_CALLS_IN_FLIGHT:
            await self.send_error(
                RateLimited(
                    "Too many requests are running on this socket; wait for their answers.",
                    retry_after=1,
                ),
                request_id,
            )
            return
        task = asyncio.get_running_loop().create_task(self._act(kind, message, request_id))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _act(self, kind: str, message: dict, request_id: Any) -> None:
        try:
            await self.still_allowed()
            company, _ = self.principal
            wait = await sync_to_async(rate_hit)(kind=WRITE, ident=f"company:{company.pk}")
            if wait is not None:
                raise RateLimited(
                    f"Too many requests for this company. Try again in {wait} seconds.",
                    retry_after=wait,
                )
            await getattr(self, f"act_{kind}")(message, request_id)
        except NotAuthenticated as error:
            await self.send_error(error, request_id)
            await self.close(code=CLOSE_UNAUTHENTICATED)
        except ServiceError as error:
            await self.send_error(error, request_id)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            report_unexpected(error, where=f"websocket:{kind}")
            await self.send_error(InternalError(), request_id)

    async def act_start(self, message: dict, request_id: Any) -> None:
        # What changed reaches every subscriber through the group (status, then qr).
        company, actor = self.principal
        await database_sync_to_async(linking.session_start)(
            company=company, actor=actor, via_socket=True
        )

    async def act_request_pairing_code(self, message: dict, request_id: Any) -> None:
        phone_number = message.get("phone_number")
        replace_existing = message.get("replace_existing", False)
        if not isinstance(replace_existing, bool):
            raise ValidationFailed("replace_existing must be true or false.")
        if phone_number is None:
            raise ValidationFailed("phone_number is required.")
        company, actor = self.principal
        code = await database_sync_to_async(linking.pairing_code_request)(
            company=company,
            actor=actor,
            phone_number=phone_number,
            replace_existing=replace_existing,
            via_socket=True,
        )
        if code.reused:
            # A repeat inside the live window: nothing was published, so answer this socket.
            await self.send_json(
                events.pairing_code_event(code.pairing_code, code.phone_number, code.expires_at)
            )

    async def act_reset_credentials(self, message: dict, request_id: Any) -> None:
        company, actor = self.principal
        if not actor.may_reset:
            raise PermissionDenied(
                "A pairing link cannot reset credentials; ask your administrator."
            )
        await database_sync_to_async(linking.credentials_reset)(company=company, actor=actor)


class PairLinkConsumer(CompanyEventsConsumer):
    """The end-user page's socket: the signed pairing link is the credential."""

    async def authorize(self) -> tuple[Company, Actor]:
        token = self.scope["url_route"]["kwargs"]["link_token"]
        try:
            link = await database_sync_to_async(pairing_link_resolve)(token)
        except LinkInvalid:
            raise Refused(CLOSE_UNAUTHENTICATED) from None
        return link.company, Actor.for_link(company_id=link.company.pk, link_id=link.link_id)

    async def still_allowed(self) -> None:
        token = self.scope["url_route"]["kwargs"]["link_token"]
        try:
            await database_sync_to_async(pairing_link_resolve)(token)
        except LinkInvalid as invalid:
            raise PermissionDenied(
                f"This pairing link is {invalid.reason}; ask for a new one."
            ) from None


class NoSuchSocket(AsyncWebsocketConsumer):
    """Unknown WebSocket paths (a typo, a missing trailing slash): refused with 4404."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_NOT_FOUND)
