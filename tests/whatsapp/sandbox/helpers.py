"""Sandbox test helpers: an event recorder, a phone acting from another thread, linking steps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.db import connections
from django.utils import timezone

from tests.helpers import ALICE_PHONE
from whatsapp.backends.base import BackendEvent, Connected, PairSuccess, QRCode
from whatsapp.sandbox import phone
from whatsapp.sandbox.backend import SandboxBackend, SandboxClient

E = TypeVar("E")

ALICE = "alice-0001"  # company uuids; Charlie must never see anything of Alice's
BOB = "bob-0002"
CHARLIE = "charlie-0003"
ALICE_DIGITS = "79001234567"


class EventLog:
    """Records a client's events with the wall-clock time they arrived at."""

    def __init__(self) -> None:
        self.events: list[tuple[datetime, BackendEvent]] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: BackendEvent) -> None:
        self.events.append((timezone.now(), event))
        self._changed.set()

    def of(self, kind: type[E]) -> list[E]:
        return [event for _, event in self.events if isinstance(event, kind)]

    def kinds(self) -> list[str]:
        return [type(event).__name__ for _, event in self.events]

    async def wait_for(self, kind: type[E], *, nth: int = 1, within: float = 5.0) -> E:
        try:
            async with asyncio.timeout(within):
                while len(self.of(kind)) < nth:
                    self._changed.clear()
                    await self._changed.wait()
                return self.of(kind)[nth - 1]
        except TimeoutError:
            raise AssertionError(f"no {kind.__name__} #{nth}; got {self.kinds()}") from None


async def on_phone(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a phone action on another thread, as another process would, closing its connection."""

    def call() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


async def open_window(
    backend: SandboxBackend,
    client_uuid: str = ALICE,
) -> tuple[SandboxClient, EventLog, QRCode]:
    log = EventLog()
    client = backend.create_client(client_uuid=client_uuid, device_jid=None, on_event=log)
    await client.connect()
    qr = await log.wait_for(QRCode)
    return client, log, qr


async def link_by_code(
    backend: SandboxBackend, number: str = ALICE_PHONE, client_uuid: str = ALICE
) -> tuple[SandboxClient, EventLog, str]:
    """A new link by pairing code, up to the first Connected; returns the device JID."""
    client, log, _ = await open_window(backend, client_uuid)
    code = await client.pair_phone("".join(ch for ch in number if ch.isdigit()))
    await on_phone(phone.link_with_code, number, code)
    success = await log.wait_for(PairSuccess)
    return client, log, success.jid


async def link_and_connect(
    backend: SandboxBackend, number: str = ALICE_PHONE, client_uuid: str = ALICE
) -> tuple[SandboxClient, EventLog, str]:
    client, log, jid = await link_by_code(backend, number, client_uuid)
    await log.wait_for(Connected)
    return client, log, jid
