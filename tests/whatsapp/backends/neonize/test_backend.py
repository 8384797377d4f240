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


def linking_hosts(backend: NeonizeBackend) -> list[Any]:
    return [host for host in backend.hosts if host.kind == "linking"]


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
    [linking] = linking_hosts(backend)  # the attempt ran in a process of its own
    assert linking.pid != os.getpid()


async def test_a_linking_attempts_host_exits_when_the_attempt_ends(backend: NeonizeBackend) -> None:
    client, recorder = recorded_client(backend)
    await client.connect()
    await recorder.next_of(base.ConnectError)
    [linking] = linking_hosts(backend)

    await client.disconnect()

    await asyncio.wait_for(linking.exited.wait(), 5)
    assert linking_hosts(backend) == []
    with pytest.raises(ProcessLookupError):
        os.kill(linking.pid, 0)


async def test_each_new_linking_attempt_gets_a_fresh_host(backend: NeonizeBackend) -> None:
    client, recorder = recorded_client(backend)
    pids = []
    for _attempt in range(3):
        seen = len(recorder.events)
        await client.connect()
        await recorder.next_of(base.ConnectError, after=seen)
        [linking] = linking_hosts(backend)  # the previous one was stopped first
        pids.append(linking.pid)
    assert len(set(pids)) == 3


async def test_linking_attempts_are_capped_per_worker(
    backend: NeonizeBackend, settings: Any
) -> None:
    settings.NEONIZE_MAX_LINKING_HOSTS = 1
    alice, alice_events = recorded_client(backend, client_uuid="alice")
    bob, bob_events = recorded_client(backend, client_uuid="bob")
    await alice.connect()
    await alice_events.next_of(base.ConnectError)

    await bob.connect()

    refused = await bob_events.next_of(base.ConnectError)
    assert refused.error_code == "WORKER_UNAVAILABLE"
    assert len(linking_hosts(backend)) == 1


async def test_many_clients_connecting_at_once_do_not_crash_the_host(
    backend: NeonizeBackend, store_db: StoreDB
) -> None:
    """neonize registers clients in Go maps without a lock; simultaneous connects once aborted
    the whole host in CI. The shared host lets one client set up at a time."""
    devices = [f"1555000{index:04d}:1@s.whatsapp.net" for index in range(8)]
    for device in devices:
        await run_db(store_db.insert_device, jid=device)
    recorders = [EventRecorder() for _ in devices]
    clients = [
        backend.create_client(client_uuid=f"c{index}", device_jid=device, on_event=recorder)
        for index, (device, recorder) in enumerate(zip(devices, recorders, strict=True))
    ]
    try:
        await asyncio.gather(*(client.connect() for client in clients))
        for recorder in recorders:
            assert (
                await recorder.next_of(base.ConnectError, within=30)
            ).error_code == "WHATSAPP_UNAVAILABLE"
            assert not any(isinstance(event, base.ClientCrashed) for event in recorder.events)
        [host] = backend.hosts
        assert host.kind == "shared" and not host.dead
    finally:
        for device in devices:
            await run_db(store.credentials_delete, device_jid=device)


async def test_a_go_panic_kills_only_the_host_and_the_next_command_gets_a_new_one(
    backend: NeonizeBackend,
) -> None:
    alice_client, alice = recorded_client(backend, client_uuid="alice")
    bob_client, bob = recorded_client(backend, client_uuid="bob")
    await alice_client.connect()
    await bob_client.connect()
    await alice.next_of(base.ConnectError)
    await bob.next_of(base.ConnectError)
    crashed_host, bobs_host = alice_client.host, bob_client.host
    assert crashed_host is not None and bobs_host is not None
    store_name = await run_db(store.store_name)

    # get_me() before connect(): a real Go nil-pointer panic. The request waiting on the host
    # fails instead of hanging.
    with pytest.raises(ConnectionClosed):
        await crashed_host.request("debug_panic", within=10, store=store_name)

    await asyncio.wait_for(crashed_host.exited.wait(), 5)
    assert crashed_host.returncode in (-6, 134)  # SIGABRT, as the shell shows it: 134
    crash = await alice.next_of(base.ClientCrashed)
    assert "panic" in crash.message
    assert not any(isinstance(event, base.ClientCrashed) for event in bob.events)
    assert not bobs_host.dead

    seen = len(alice.events)
    await alice_client.connect()
    error = await alice.next_of(base.ConnectError, after=seen)

    assert error.error_code == "WHATSAPP_UNAVAILABLE"
    assert alice_client.host is not None and alice_client.host.pid != crashed_host.pid


async def test_a_killed_host_is_a_crash_too(backend: NeonizeBackend) -> None:
    client, recorder = recorded_client(backend)
    await client.connect()
    await recorder.next_of(base.ConnectError)
    host = client.host
    assert host is not None

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


async def test_shared_hosts_are_recycled_after_max_connects_and_retired_hosts_exit(
    backend: NeonizeBackend, settings: Any, store_db: StoreDB
) -> None:
    settings.NEONIZE_HOST_MAX_CONNECTS = 3
    await run_db(store_db.insert_device, jid=ALICE_DEVICE)
    client, recorder = recorded_client(backend, device_jid=ALICE_DEVICE)
    hosts: list[Any] = []

    try:
        for _attempt in range(7):
            seen = len(recorder.events)
            await client.connect()
            await recorder.next_of(base.ConnectError, after=seen)
            hosts.extend(h for h in backend.hosts if h not in hosts)
    finally:
        await run_db(store.credentials_delete, device_jid=ALICE_DEVICE)

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
