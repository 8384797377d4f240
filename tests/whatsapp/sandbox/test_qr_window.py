"""The login window: QR refs rotate on WhatsApp's timings (60 s, then 20 s five times)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.whatsapp.sandbox.helpers import ALICE, EventLog, on_phone, open_window
from whatsapp.backends.base import PairingWindowClosed, QRCode
from whatsapp.errors import ConnectionClosed
from whatsapp.sandbox.backend import SandboxBackend
from whatsapp.sandbox.models import LoginWindow

pytestmark = pytest.mark.django_db(transaction=True)


async def test_refs_rotate_60_s_then_20_s_five_times_then_the_window_closes(fast_backend):
    # Speed 200: 60 s -> 0.3 s, 20 s -> 0.1 s, the window 0.8 s.
    client, log, _ = await open_window(fast_backend)
    await log.wait_for(PairingWindowClosed, within=3)
    closed_at = log.events[-1][0]

    qrs = log.of(QRCode)
    assert [qr.index for qr in qrs] == [0, 1, 2, 3, 4, 5]
    assert len({qr.code for qr in qrs}) == 6
    assert {qr.window_expires_at for qr in qrs} == {qrs[0].window_expires_at}
    assert qrs[0].window_expires_at - qrs[0].expires_at == timedelta(seconds=0.5)
    for before, after in zip(qrs, qrs[1:], strict=False):
        assert after.expires_at - before.expires_at == timedelta(seconds=0.1)
    assert qrs[-1].expires_at == qrs[-1].window_expires_at

    # Each ref is replaced when the previous one expires: never early, and late only by the
    # polling step (a loaded machine may add some).
    arrivals = [at for at, event in log.events if isinstance(event, QRCode)]
    for previous, arrived in zip(qrs, arrivals[1:], strict=False):
        assert timedelta(0) <= arrived - previous.expires_at < timedelta(seconds=0.25)
    assert timedelta(0) <= closed_at - qrs[-1].window_expires_at < timedelta(seconds=0.25)
    assert log.kinds()[-1] == "PairingWindowClosed"


async def test_at_real_speed_the_first_ref_lives_60_s_and_the_window_160_s():
    backend = SandboxBackend(speed=1, poll_interval=0.05)
    try:
        client, log, qr = await open_window(backend)
        window = await on_phone(LoginWindow.objects.get, client_uuid=ALICE)
        started = window.opened_at
        assert qr.expires_at - started == timedelta(seconds=60)
        assert qr.window_expires_at - started == timedelta(seconds=160)
        await client.disconnect()
    finally:
        await backend.shutdown()


async def test_after_the_window_closes_a_new_connect_opens_a_new_one(fast_backend):
    client, log, first = await open_window(fast_backend)
    await log.wait_for(PairingWindowClosed, within=3)
    with pytest.raises(ConnectionClosed, match="websocket not connected"):
        await client.pair_phone("79001234567")

    await client.connect()
    again = await log.wait_for(QRCode, nth=7)
    assert again.index == 0
    assert again.window_expires_at > first.window_expires_at
    await client.disconnect()


async def test_pair_phone_needs_the_first_qr(backend):
    log = EventLog()
    client = backend.create_client(client_uuid=ALICE, device_jid=None, on_event=log)
    with pytest.raises(ConnectionClosed, match="websocket not connected"):
        await client.pair_phone("79001234567")  # never connected
    await client.connect()
    with pytest.raises(ConnectionClosed):
        await client.pair_phone("79001234567")  # still dialling, no QR yet
    await log.wait_for(QRCode)
    assert await client.pair_phone("79001234567")
    await client.disconnect()


async def test_disconnect_closes_the_window_silently(backend):
    client, log, _ = await open_window(backend)
    await client.disconnect()
    assert not client.running
    window = await on_phone(LoginWindow.objects.get, client_uuid=ALICE)
    assert window.state == "closed"
    assert log.kinds() == ["QRCode"]
    with pytest.raises(ConnectionClosed):
        await client.pair_phone("79001234567")
