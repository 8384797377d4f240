"""WebSocket fixtures: the real ASGI app, and an in-process worker on the test's own event loop
(with the in-memory channel layer, consumers and the worker must share one loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer

from whatsapp.worker.core import WhatsAppWorker


@pytest.fixture
async def loop_worker(transactional_db) -> AsyncIterator[WhatsAppWorker]:
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):  # never flush a shared Redis
        await layer.flush()
    worker = WhatsAppWorker(inprocess=True)
    await worker.start()
    yield worker
    await worker.stop()
