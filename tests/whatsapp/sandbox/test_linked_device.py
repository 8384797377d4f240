"""After linking: logout from the phone, bans, outdated clients, drops, stream-replaced."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import ALICE_PHONE
from tests.whatsapp.sandbox.helpers import ALICE, EventLog, link_and_connect, link_by_code, on_phone
from whatsapp.backends.base import (
    ClientOutdated,
    Connected,
    Disconnected,
    LoggedOut,
    StreamReplaced,
    TemporaryBan,
)
from whatsapp.sandbox import phone
from whatsapp.sandbox.backend import SandboxBackend
from whatsapp.sandbox.models import Device

pytestmark = pytest.mark.django_db(transaction=True)


async def test_logout_from_the_phone_logs_the_client_out_and_deletes_the_device(backend):
    client, log, jid = await link_and_connect(backend)

    assert await on_phone(phone.unlink, ALICE_PHONE) == [jid]

    logged_out = await log.wait_for(LoggedOut, within=1)
    assert not logged_out.on_connect
    assert not await on_phone(backend.credentials_exists, client_uuid=ALICE, device_jid=jid)
    assert not client.running


async def test_resuming_a_device_the_phone_removed_reports_logged_out_on_connect(backend):
    client, _, jid = await link_and_connect(backend)
    await client.disconnect()
    await on_phone(phone.unlink, ALICE_PHONE)

    log = EventLog()
    resumed = backend.create_client(client_uuid=ALICE, device_jid=jid, on_event=log)
    await resumed.connect()
    assert (await log.wait_for(LoggedOut)).on_connect
    assert log.kinds() == ["LoggedOut"]


async def test_a_stored_device_reconnects_after_a_restart(backend):
    client, _, jid = await link_and_connect(backend)
    await client.disconnect()
    assert await on_phone(backend.credentials_exists, client_uuid=ALICE, device_jid=jid)

    log = EventLog()
    resumed = backend.create_client(client_uuid=ALICE, device_jid=jid, on_event=log)
    await resumed.connect()
    assert (await log.wait_for(Connected)).jid == jid
    await resumed.disconnect()


async def test_our_own_logout_unlinks_without_a_logged_out_event(backend):
    client, log, jid = await link_and_connect(backend)
    await client.logout()
    assert not client.running
    assert not await on_phone(backend.credentials_exists, client_uuid=ALICE, device_jid=jid)
    assert "LoggedOut" not in log.kinds()


async def test_the_phone_bans_the_live_client(backend):
    client, log, _ = await link_and_connect(backend)
    await on_phone(phone.ban, ALICE_PHONE, seconds=60)
    ban = await log.wait_for(TemporaryBan, within=1)
    assert ban.code and 50 <= ban.expire_seconds <= 60
    assert not client.running


async def test_magic_0402_links_then_is_refused_as_temporarily_banned(backend):
    client, log, jid = await link_by_code(backend, "+7 900 123-04-02")
    ban = await log.wait_for(TemporaryBan)
    assert ban.expire_seconds == 3600 / 20
    assert log.kinds()[-2:] == ["PairSuccess", "TemporaryBan"]
    assert not client.running
    # Credentials exist, but every reconnect is refused the same way.
    log = EventLog()
    again = backend.create_client(client_uuid=ALICE, device_jid=jid, on_event=log)
    await again.connect()
    await log.wait_for(TemporaryBan)


async def test_magic_0405_links_then_is_refused_as_outdated(backend):
    client, log, _ = await link_by_code(backend, "+7 900 123-04-05")
    await log.wait_for(ClientOutdated)
    assert log.kinds()[-2:] == ["PairSuccess", "ClientOutdated"]
    assert not client.running


async def test_a_dropped_connection_reconnects_by_itself(backend):
    client, log, jid = await link_and_connect(backend)
    await on_phone(phone.drop_connection, ALICE_PHONE)
    await log.wait_for(Disconnected, within=1)
    reconnected = await log.wait_for(Connected, nth=2, within=1)
    assert reconnected.jid == jid
    assert log.kinds()[-2:] == ["Disconnected", "Connected"]
    await client.disconnect()


async def test_a_second_client_on_the_same_device_replaces_the_first(backend):
    first, first_log, jid = await link_and_connect(backend)
    # Another worker process: its own backend instance, same database.
    other_worker = SandboxBackend(speed=20, poll_interval=0.02, linked_poll_interval=0.03)
    try:
        second_log = EventLog()
        second = other_worker.create_client(client_uuid=ALICE, device_jid=jid, on_event=second_log)
        await second.connect()
        await second_log.wait_for(Connected)

        await first_log.wait_for(StreamReplaced, within=1)
        assert not first.running
        assert second.running and "StreamReplaced" not in second_log.kinds()
        device = await on_phone(Device.objects.get, jid=jid)
        assert device.connection_token  # still held by the second client
        await second.disconnect()
    finally:
        await other_worker.shutdown()


async def test_a_client_can_disconnect_from_inside_its_event_handler(backend):
    client, log, jid = await link_and_connect(backend)

    async def stop_on_drop(event):
        await log(event)
        if isinstance(event, Disconnected):
            await client.disconnect()

    client._on_event = stop_on_drop
    await on_phone(phone.drop_connection, ALICE_PHONE)
    await log.wait_for(Disconnected)
    assert client._task is not None
    await asyncio.wait([client._task], timeout=1)
    assert not client.running
    assert log.kinds()[-1] == "Disconnected"  # no reconnect
    assert await on_phone(backend.credentials_exists, client_uuid=ALICE, device_jid=jid)


async def test_the_handler_of_a_final_event_may_connect_again(backend):
    client, log, _ = await link_and_connect(backend)

    async def relink_on_logout(event):
        await log(event)
        if isinstance(event, LoggedOut):
            await client.connect()  # what a runner does after the phone removed the device

    client._on_event = relink_on_logout
    await on_phone(phone.unlink, ALICE_PHONE)
    await log.wait_for(LoggedOut)
    assert (await log.wait_for(LoggedOut, nth=2)).on_connect
