"""Many companies linked at once, for capacity tests and benchmarks: drives clients of a
backend (the product's `NeonizeBackend`, duck-typed: `create_client(client_uuid=, device_jid=,
on_event=)`) until the emulator's phones have linked them all, and measures what processes cost.

Events are recognised by their class name (`QRCode`, `Connected`), so this module imports
nothing of the product.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.control import Emulator


class EventLog:
    """An `on_event` that keeps every event and lets a caller wait for the next of a kind."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: Any) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def next(self, kind: str, *, within: float = 60.0, after: int = 0) -> Any:
        def found() -> Any:
            return next(
                (e for e in self.events[after:] if type(e).__name__ == kind),
                None,
            )

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), within)
            except TimeoutError:
                kinds = [type(e).__name__ for e in self.events]
                raise TimeoutError(f"no {kind} within {within} s; got {kinds}") from None
            return found()


@dataclass
class Linked:
    client: Any
    log: EventLog
    phone: str


def fleet_phone(index: int) -> str:
    return f"+1555{index:07d}"


async def link_fleet(
    backend: Any,
    emulator: Emulator,
    count: int,
    *,
    concurrency: int = 6,
    prefix: str = "fleet",
    progress: Callable[[int], None] | None = None,
) -> list[Linked]:
    """Link `count` new clients, `concurrency` at a time; returns them connected."""
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(index: int) -> Linked:
        nonlocal done
        async with gate:
            log = EventLog()
            client = backend.create_client(
                client_uuid=f"{prefix}-{index}", device_jid=None, on_event=log
            )
            await client.connect()
            qr = await log.next("QRCode")
            phone = fleet_phone(index)
            await asyncio.to_thread(emulator.scan_qr, phone, qr.code)
            await log.next("Connected")
            done += 1
            if progress is not None:
                progress(done)
            return Linked(client, log, phone)

    return list(await asyncio.gather(*(one(index) for index in range(count))))


@dataclass(frozen=True)
class ProcessCost:
    rss_kib: int
    threads: int
    fds: int


def process_cost(pid: int) -> ProcessCost:
    """Resident memory, threads and open file descriptors of a live process (Linux /proc)."""
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return ProcessCost(
        rss_kib=int(fields["VmRSS"].split()[0]),
        threads=int(fields["Threads"]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
    )


def processes_cost(pids: list[int]) -> ProcessCost:
    costs = [process_cost(pid) for pid in pids]
    return ProcessCost(
        rss_kib=sum(c.rss_kib for c in costs),
        threads=sum(c.threads for c in costs),
        fds=sum(c.fds for c in costs),
    )
