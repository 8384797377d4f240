"""NeonizeBackend against the real library, offline: neonize runs in a host process.

No test reaches WhatsApp (there is no network here or in CI): connect() fails on the DNS lookup,
which is exactly the path an unreachable WhatsApp takes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.whatsapp.backends.neonize.helpers import StoreDB, recorded_client
from whatsapp.backends import base
from whatsapp.backends.neonize import store
from whatsapp.backends.neonize.backend import NeonizeBackend, run_db
from whatsapp.errors import ConnectionClosed, ValidationFailed

from .helpers import EventRecorder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ALICE_DEVICE = "15550000001:12@s.whatsapp.net"


@pytest.fixture
async def backend(shared_sqlite_store: Path) -> AsyncIterator[NeonizeBackend]:
    backend = NeonizeBackend(debug_commands=True)
    await backend.start()
    yield backend
    await backend.shutdown()


async def test_an_offline_connect_reports_whatsapp_unavailable_within_5_seconds(
    backend: NeonizeBackend,
) -> None:
    client, recorder = recorded_client(backend)

    started = time.monotonic()
    await client.connect()
    error = await recorder.next_of(base.ConnectError, within=5)

    assert time.monotonic() - started < 5
    assert error.error_code == "WHATSAPP_UNAVAILABLE"
    assert "dial" in error.message  # neonize's own text: the real library was reached
    [host] = backend.hosts
    assert host.pid != os.getpid()


async def test_many_clients_connecting_at_once_do_not_crash_the_host(
    backend: NeonizeBackend,
) -> None:
    """neonize registers clients in Go maps without a lock; simultaneous connects once aborted
    the whole host in CI. The host lets one client set up at a time."""
    recorders = [EventRecorder() for _ in range(8)]
    clients = [
        backend.create_client(client_uuid=f"c{index}", device_jid=None, on_event=recorder)
        for index, recorder in enumerate(recorders)
    ]
    await asyncio.gather(*(client.connect() for client in clients))
    for recorder in recorders:
        assert (
            await recorder.next_of(base.ConnectError, within=30)
        ).error_code == "WHATSAPP_UNAVAILABLE"
        assert not any(isinstance(event, base.ClientCrashed) for event in recorder.events)
    [host] = backend.hosts
    assert not host.dead


async def test_a_go_panic_kills_only_the_host_and_the_next_command_gets_a_new_one(
    backend: NeonizeBackend,
) -> None:
    alice, bob = EventRecorder(), EventRecorder()
    alice_client = backend.create_client(client_uuid="alice", device_jid=None, on_event=alice)
    bob_client = backend.create_client(client_uuid="bob", device_jid=None, on_event=bob)
    await alice_client.connect()
    await bob_client.connect()
    await alice.next_of(base.ConnectError)
    await bob.next_of(base.ConnectError)
    [crashed_host] = backend.hosts
    store_name = await run_db(store.store_name)

    # get_me() before connect(): a real Go nil-pointer panic. The request waiting on the host
    # fails instead of hanging.
    with pytest.raises(ConnectionClosed):
        await crashed_host.request("debug_panic", within=10, store=store_name)

    await asyncio.wait_for(crashed_host.exited.wait(), 5)
    assert crashed_host.returncode in (-6, 134)  # SIGABRT, as the shell shows it: 134
    for recorder in (alice, bob):
        crash = await recorder.next_of(base.ClientCrashed)
        assert "panic" in crash.message
    assert backend.hosts == []

    seen = len(alice.events)
    await alice_client.connect()
    error = await alice.next_of(base.ConnectError, after=seen)

    assert error.error_code == "WHATSAPP_UNAVAILABLE"
    [new_host] = backend.hosts
    assert new_host.pid != crashed_host.pid


async def test_a_killed_host_is_a_crash_too(backend: NeonizeBackend) -> None:
    client, recorder = recorded_client(backend)
    await client.connect()
    await recorder.next_of(base.ConnectError)
    [host] = backend.hosts

    os.kill(host.pid, signal.SIGKILL)

    crash = await recorder.next_of(base.ClientCrashed)
    assert str(-signal.SIGKILL) in crash.message
    seen = len(recorder.events)
    await client.connect()
    assert (await recorder.next_of(base.ConnectError, after=seen)).error_code == (
        "WHATSAPP_UNAVAILABLE"
    )


async def test_a_device_missing_from_the_store_is_logged_out_without_starting_neonize(
    backend: NeonizeBackend,
) -> None:
    client, recorder = recorded_client(backend, device_jid=ALICE_DEVICE)

    await client.connect()

    assert await recorder.next_of(base.LoggedOut) == base.LoggedOut(
        reason="device missing from store"
    )
    [host] = backend.hosts  # started by start(); it never saw the JID (Go would panic on it)
    assert host.clients == {} and host.connects == 0


async def test_a_stored_device_is_resumed_with_its_full_jid(
    backend: NeonizeBackend, store_db: StoreDB
) -> None:
    # Django's database may be the store (PostgreSQL): no sync queries on the event loop.
    await run_db(store_db.insert_device, jid=ALICE_DEVICE)
    try:
        client, recorder = recorded_client(backend, device_jid=ALICE_DEVICE)

        await client.connect()
        error = await recorder.next_of(base.ConnectError)

        # whatsmeow found the device row (a wrong JID panics) and went on to dial.
        assert error.error_code == "WHATSAPP_UNAVAILABLE"
        assert not any(isinstance(e, base.ClientCrashed) for e in recorder.events)
    finally:
        await run_db(store.credentials_delete, device_jid=ALICE_DEVICE)


async def test_pair_phone_without_an_open_connection_is_connection_closed(
    backend: NeonizeBackend,
) -> None:
    client, recorder = recorded_client(backend)
    await client.connect()
    await recorder.next_of(base.ConnectError)

    with pytest.raises(ConnectionClosed):
        await client.pair_phone("15551234567")


async def test_disconnect_and_logout_of_a_failed_client_are_harmless(
    backend: NeonizeBackend,
) -> None:
    client, recorder = recorded_client(backend)
    await client.connect()
    await recorder.next_of(base.ConnectError)

    await client.disconnect()
    await client.logout()
    await client.disconnect()

    assert [type(e) for e in recorder.events] == [base.ConnectError]


async def test_the_login_window_closing_is_reported_once_the_refs_run_out() -> None:
    client, recorder = recorded_client(NeonizeBackend())
    now = datetime.now(UTC)
    qr = base.QRCode(
        code="2@ref",
        index=0,
        expires_at=now + timedelta(seconds=0.2),
        window_expires_at=now + timedelta(seconds=0.2),
    )

    client.emit(qr)  # as the host would deliver the first QR

    assert await recorder.next_of(base.PairingWindowClosed, within=3) == base.PairingWindowClosed()
    assert recorder.events == [qr, base.PairingWindowClosed()]


async def test_a_link_inside_the_window_cancels_the_window_timer() -> None:
    client, recorder = recorded_client(NeonizeBackend())
    now = datetime.now(UTC)
    client.emit(
        base.QRCode(
            code="2@ref", index=0, expires_at=now, window_expires_at=now + timedelta(seconds=0.2)
        )
    )

    client.emit(base.PairSuccess(jid=ALICE_DEVICE, phone="15550000001"))
    await asyncio.sleep(0.4)

    assert not any(isinstance(e, base.PairingWindowClosed) for e in recorder.events)


async def test_hosts_are_recycled_after_max_connects_and_retired_hosts_exit(
    backend: NeonizeBackend, settings
) -> None:
    settings.NEONIZE_HOST_MAX_CONNECTS = 3
    client, recorder = recorded_client(backend)
    hosts: list[Any] = []

    for _attempt in range(7):
        seen = len(recorder.events)
        await client.connect()
        await recorder.next_of(base.ConnectError, after=seen)
        hosts.extend(h for h in backend.hosts if h not in hosts)

    assert [h.connects for h in hosts] == [3, 3, 1]
    for retired in hosts[:2]:
        await asyncio.wait_for(retired.exited.wait(), 5)
        assert retired.returncode == 0
        with pytest.raises(ProcessLookupError):
            os.kill(retired.pid, 0)


async def test_the_panic_command_exists_only_for_tests(shared_sqlite_store: Path) -> None:
    backend = NeonizeBackend()  # as the worker builds it
    await backend.start()
    try:
        [host] = backend.hosts
        store_name = await run_db(store.store_name)

        with pytest.raises(ValidationFailed):
            await host.request("debug_panic", within=10, store=store_name)

        assert (await host.request("ping", within=10))["pid"] == host.pid
    finally:
        await backend.shutdown()
