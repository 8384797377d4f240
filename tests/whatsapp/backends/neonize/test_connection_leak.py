"""whatsmeow keeps one database connection per connect() until its process exits.

A worker retrying an unreachable WhatsApp would exhaust PostgreSQL's max_connections. The backend
recycles its shared neonize host every NEONIZE_HOST_MAX_CONNECTS connects, and stops a linking
attempt's own host when the attempt ends; these drive 50 real failed connects of a linked device,
and 20 failed linking attempts, against PostgreSQL and count the connections whatsmeow holds in
pg_stat_activity.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psycopg
import pytest
from django.db import connections

from tests.helpers import figure
from tests.whatsapp.backends.neonize.helpers import StoreDB, needs_postgres, recorded_client
from whatsapp.backends import base
from whatsapp.backends.neonize import store
from whatsapp.backends.neonize.backend import NeonizeBackend, run_db

MAX_CONNECTS = 10
RETRIES = 50
# One host's worth, plus a little slack: a PostgreSQL backend process lingers for a few
# milliseconds after its client process exited.
BOUND = MAX_CONNECTS + 2

pytestmark = [
    needs_postgres,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def whatsmeow_connections(monitor: psycopg.Connection) -> int:
    row = monitor.execute(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
        [store.APPLICATION_NAME, connections["default"].settings_dict["NAME"]],
    ).fetchone()
    assert row is not None
    return int(row[0])


DEVICE = "15550000009:3@s.whatsapp.net"


def monitor_connection() -> psycopg.Connection:
    url = store.postgres_url(connections["default"].settings_dict).split("?")[0]
    return psycopg.connect(url + "?application_name=leak-monitor", autocommit=True)


async def test_failed_connect_retries_hold_a_bounded_number_of_connections(settings) -> None:
    settings.NEONIZE_HOST_MAX_CONNECTS = MAX_CONNECTS
    monitor = monitor_connection()
    backend = NeonizeBackend()
    await backend.start()
    await run_db(StoreDB().insert_device, jid=DEVICE)
    client, recorder = recorded_client(backend, device_jid=DEVICE)
    hosts: list[Any] = []
    samples = []
    try:
        for _ in range(RETRIES):
            seen = len(recorder.events)
            await client.connect()  # what the runner's retry loop does, minus the backoff
            error = await recorder.next_of(base.ConnectError, after=seen)
            assert error.error_code == "WHATSAPP_UNAVAILABLE"
            hosts.extend(h for h in backend.hosts if h not in hosts)
            samples.append(whatsmeow_connections(monitor))
    finally:
        await backend.shutdown()
        await run_db(store.credentials_delete, device_jid=DEVICE)

    figure(f"whatsmeow connections after each of {RETRIES} connects: {samples}")
    assert max(samples) <= BOUND, samples
    assert max(samples) >= MAX_CONNECTS - 1  # the leak is real, and counted
    assert [h.connects for h in hosts] == [MAX_CONNECTS] * (RETRIES // MAX_CONNECTS)
    for host in hosts:
        assert host.exited.is_set() and host.returncode == 0
        with pytest.raises(ProcessLookupError):
            os.kill(host.pid, 0)
    # Once the hosts are gone, PostgreSQL gets every connection back.
    deadline = time.monotonic() + 5
    remaining = whatsmeow_connections(monitor)
    while remaining and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        remaining = whatsmeow_connections(monitor)
    assert remaining == 0
    monitor.close()


async def test_failed_linking_attempts_leave_no_connection_behind(settings) -> None:
    monitor = monitor_connection()
    backend = NeonizeBackend()
    await backend.start()
    client, recorder = recorded_client(backend)
    before = whatsmeow_connections(monitor)
    try:
        for _ in range(20):
            seen = len(recorder.events)
            await client.connect()
            await recorder.next_of(base.ConnectError, after=seen)
            await client.disconnect()  # what the runner does when an attempt fails
        deadline = time.monotonic() + 5
        after = whatsmeow_connections(monitor)
        while after > before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            after = whatsmeow_connections(monitor)
        linking = [host for host in backend.hosts if host.kind == "linking"]
    finally:
        await backend.shutdown()
        monitor.close()
    figure(f"whatsmeow connections before / after 20 failed linking attempts: {before} / {after}")
    assert linking == []
    assert after <= before
