"""Sandbox backends fast enough that WhatsApp's 160 s login window lasts seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from whatsapp.sandbox.backend import SandboxBackend


@pytest.fixture
async def backend() -> AsyncIterator[SandboxBackend]:
    # Speed 20: the 160 s window lasts 8 s, the 1 s reconnect 50 ms.
    sandbox = SandboxBackend(speed=20, poll_interval=0.02, linked_poll_interval=0.03)
    yield sandbox
    await sandbox.shutdown()


@pytest.fixture
async def fast_backend() -> AsyncIterator[SandboxBackend]:
    # Speed 200: the whole login window lasts 0.8 s.
    sandbox = SandboxBackend(speed=200, poll_interval=0.02, linked_poll_interval=0.03)
    yield sandbox
    await sandbox.shutdown()
