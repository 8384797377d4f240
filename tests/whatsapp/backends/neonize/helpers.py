"""Recording a client's events in tests."""

from __future__ import annotations

import asyncio

from whatsapp.backends import base


class EventRecorder:
    """An `on_event` that keeps every event and lets a test wait for the next of a type."""

    def __init__(self) -> None:
        self.events: list[base.BackendEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: base.BackendEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def next_of(self, event_type: type, *, after: int = 0, within: float = 10.0):
        """The first event of `event_type` at position >= `after`."""

        def found():
            return next((e for e in self.events[after:] if isinstance(e, event_type)), None)

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        return found()
