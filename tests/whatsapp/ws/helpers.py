"""Helpers for socket tests: connecting to the real ASGI app, waiting for a message."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator


def communicator(
    path: str, *, key: str | None = None, headers: list[tuple[bytes, bytes]] | None = None
) -> WebsocketCommunicator:
    from pairing_site.asgi import application

    all_headers = list(headers or [])
    if key is not None:
        all_headers.append((b"authorization", f"Bearer {key}".encode()))
    return WebsocketCommunicator(application, path, headers=all_headers)


async def connected(path: str, **kwargs) -> WebsocketCommunicator:
    socket = communicator(path, **kwargs)
    accepted, code = await socket.connect()
    assert accepted, f"refused with {code}"
    return socket


async def refused_with(path: str, **kwargs) -> int | None:
    socket = communicator(path, **kwargs)
    accepted, code = await socket.connect()
    if accepted:
        await socket.disconnect()
        raise AssertionError("the connection was accepted")
    return code


async def receive_until(
    socket: WebsocketCommunicator, kind: str, *, within: float = 5.0, **match
) -> dict:
    """Skip messages until one of `kind` (and matching fields) arrives."""
    seen = []
    try:
        async with asyncio.timeout(within):
            while True:
                message = await socket.receive_json_from(timeout=within)
                seen.append(message.get("type"))
                if message.get("type") == kind and all(
                    message.get(k) == v for k, v in match.items()
                ):
                    return message
    except TimeoutError:
        raise AssertionError(f"no {kind} {match or ''}; got {seen}") from None


async def db(function, *args, **kwargs):
    return await database_sync_to_async(function)(*args, **kwargs)
