"""What the real neonize costs on the emulator, and that the cost stays bounded
(docs/whatsapp.md, "Database connections" and "Linking connects never return").

- 50 linked clients reach PostgreSQL through PgBouncer in transaction mode: whatever the number
  of clients, the server connections stay within the pool.
- 20 linking attempts in a row whose windows expire leave no process, thread or connection
  behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connections

from emulator import pgbouncer
from emulator.certs import RootKey
from emulator.control import Emulator
from emulator.fleet import EventLog, link_fleet, processes_cost
from emulator.neonize_copy import client_env
from tests.helpers import USES_POSTGRES, figure
from whatsapp.backends.neonize import store
from whatsapp.backends.neonize.backend import NeonizeBackend, run_db

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FLEET = 50
POOL = 8


@pytest.fixture
async def emulated(
    settings: Any, emulator_root: RootKey, patched_neonize_path: Path
) -> AsyncIterator[Emulator]:
    emulator = await asyncio.to_thread(Emulator(speed=200.0, root=emulator_root).start)
    settings.WHATSAPP_BACKEND = "neonize"
    settings.NEONIZE_HOST_EXTRA_ENV = client_env(
        {}, pythonpath=patched_neonize_path, proxy_url=emulator.proxy_url, ca_file=emulator.ca_file
    )
    yield emulator
    await asyncio.to_thread(emulator.stop)
    for jid in await run_db(store.device_jids):
        await run_db(store.credentials_delete, device_jid=jid)


def whatsmeow_server_connections() -> int:
    """Connections whatsmeow holds on the PostgreSQL server (its application_name)."""
    settings_dict = connections["default"].settings_dict
    url = store.postgres_url(settings_dict).split("?")[0]
    with psycopg.connect(url + "?application_name=cost-monitor", autocommit=True) as monitor:
        row = monitor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [settings_dict["NAME"], store.APPLICATION_NAME],
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.skipif(not USES_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL (CI does)")
@pytest.mark.skipif(not pgbouncer.available(), reason="needs pgbouncer: apt-get install pgbouncer")
async def test_fifty_linked_clients_hold_a_bounded_number_of_server_connections(
    settings: Any, emulated: Emulator
) -> None:
    database = connections["default"].settings_dict["NAME"]
    with pgbouncer.PgBouncer(pool_size=POOL) as bouncer:
        settings.NEONIZE_STORE_URL = bouncer.url(database)
        backend = NeonizeBackend()
        await backend.start()
        try:
            linked = await link_fleet(backend, emulated, FLEET)
            await asyncio.sleep(2)  # let post-login work (prekeys, presence) settle
            servers = await asyncio.to_thread(bouncer.server_connections, database)
            clients = await asyncio.to_thread(bouncer.client_connections, database)
            shared = [host for host in backend.hosts if host.kind == "shared"]
            cost = processes_cost([host.pid for host in shared])
            still_connected = sum(
                1 for member in linked if type(member.log.events[-1]).__name__ == "Connected"
            )
        finally:
            await backend.shutdown()
    figure(
        f"{FLEET} linked clients through PgBouncer (pool {POOL}): {servers} PostgreSQL server "
        f"connections for {clients} client connections; shared host: {cost.rss_kib / 1024:.0f} "
        f"MiB RSS, {cost.threads} threads, {cost.fds} fds"
    )
    assert still_connected == FLEET
    assert len(await run_db(store.device_jids)) == FLEET
    assert clients >= FLEET  # every client has its own pool ...
    assert servers <= POOL  # ... and PgBouncer bounds what they cost the server


async def test_twenty_expired_linking_attempts_leave_nothing_behind(
    settings: Any, emulated: Emulator
) -> None:
    backend = NeonizeBackend()
    await backend.start()
    try:
        [shared] = backend.hosts
        before = processes_cost([shared.pid])
        connections_before = (
            await asyncio.to_thread(whatsmeow_server_connections) if USES_POSTGRES else 0
        )
        log = EventLog()
        client = backend.create_client(client_uuid="expiring", device_jid=None, on_event=log)
        for _ in range(20):
            seen = len(log.events)
            await client.connect()
            # A real expiry: whatsmeow's login status "timeout" (the window is 0.8 s here).
            await log.next("PairingWindowClosed", within=30, after=seen)
            assert client.host is not None and client.host.kind == "linking"
            attempt_host = processes_cost([client.host.pid])  # its connect() is stuck in Go
            await client.disconnect()  # what the runner does when an attempt ends
        linking = [host for host in backend.hosts if host.kind == "linking"]
        after = processes_cost([shared.pid])
        connections_after = (
            await asyncio.to_thread(whatsmeow_server_connections) if USES_POSTGRES else 0
        )
    finally:
        await backend.shutdown()
    figure(
        f"20 expired linking attempts: each attempt's host had {attempt_host.threads} threads "
        f"and {attempt_host.fds} fds when its window expired; linking hosts left "
        f"{len(linking)}; shared host threads "
        f"{before.threads} -> {after.threads}, fds {before.fds} -> {after.fds}; whatsmeow "
        f"server connections {connections_before} -> {connections_after}"
    )
    assert linking == []
    assert after.threads <= before.threads + 2
    assert after.fds <= before.fds + 2
    assert connections_after <= connections_before
