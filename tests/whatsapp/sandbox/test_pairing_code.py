"""Pairing codes: format, latest-code-only, WhatsApp's validation and rate-overlimit."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.helpers import ALICE_PHONE
from tests.whatsapp.sandbox.helpers import ALICE_DIGITS, BOB, on_phone, open_window
from whatsapp.backends.base import Connected, PairSuccess
from whatsapp.errors import InvalidPhone, OperationTimeout, RateLimited
from whatsapp.sandbox import phone
from whatsapp.sandbox.phone import SandboxPhoneError

pytestmark = pytest.mark.django_db(transaction=True)

CODE = re.compile(r"^[123456789ABCDEFGHJKLMNPQRSTVWXYZ]{4}-[123456789ABCDEFGHJKLMNPQRSTVWXYZ]{4}$")


async def test_the_phone_links_with_the_code_then_the_client_connects(backend):
    client, log, _ = await open_window(backend)
    code = await client.pair_phone(ALICE_DIGITS)
    assert CODE.match(code)

    device = await on_phone(phone.link_with_code, ALICE_PHONE, code.lower().replace("-", ""))

    success = await log.wait_for(PairSuccess, within=1)
    connected = await log.wait_for(Connected, within=1)
    assert success.phone == connected.phone == ALICE_DIGITS
    assert success.jid == connected.jid == device.jid
    assert re.match(rf"^{ALICE_DIGITS}:\d+@s\.whatsapp\.net$", device.jid)
    assert await on_phone(
        backend.credentials_exists, client_uuid=client.client_uuid, device_jid=device.jid
    )
    assert log.kinds()[-2:] == ["PairSuccess", "Connected"]
    await client.disconnect()


async def test_it_rejects_a_superseded_code(backend):
    client, log, _ = await open_window(backend)
    old = await client.pair_phone(ALICE_DIGITS)
    new = await client.pair_phone(ALICE_DIGITS)
    if new == old:  # one chance in 32**8; ask once more
        new = await client.pair_phone(ALICE_DIGITS)

    with pytest.raises(SandboxPhoneError, match=r"not valid \(expired or superseded\)"):
        await on_phone(phone.link_with_code, ALICE_PHONE, old)
    await on_phone(phone.link_with_code, ALICE_PHONE, new)
    await log.wait_for(Connected)
    await client.disconnect()


async def test_a_code_from_another_window_for_the_same_phone_supersedes_it(backend):
    alice, _, _ = await open_window(backend)
    bob, bob_log, _ = await open_window(backend, BOB)
    alice_code = await alice.pair_phone(ALICE_DIGITS)
    bob_code = await bob.pair_phone(ALICE_DIGITS)

    with pytest.raises(SandboxPhoneError, match="superseded"):
        await on_phone(phone.link_with_code, ALICE_PHONE, alice_code)
    await on_phone(phone.link_with_code, ALICE_PHONE, bob_code)
    await bob_log.wait_for(Connected)
    await alice.disconnect()
    await bob.disconnect()


async def test_it_rejects_a_code_once_the_window_closed(backend):
    client, _, _ = await open_window(backend)
    code = await client.pair_phone(ALICE_DIGITS)
    await client.disconnect()
    with pytest.raises(SandboxPhoneError, match="no pairing code is pending"):
        await on_phone(phone.link_with_code, ALICE_PHONE, code)


@pytest.mark.parametrize(
    ("digits", "message"),
    [
        ("123456", "phone number too short"),
        ("0791234567", "international phone number required"),
        ("79001230000", "This number is not on WhatsApp"),
    ],
)
async def test_whatsapp_refuses_some_numbers(backend, digits, message):
    client, _, _ = await open_window(backend)
    with pytest.raises(InvalidPhone, match=message):
        await client.pair_phone(digits)
    await client.disconnect()


async def test_magic_0429_is_rate_limited_at_once(backend):
    client, _, _ = await open_window(backend)
    with pytest.raises(RateLimited, match="rate-overlimit") as caught:
        await client.pair_phone("79001230429")
    assert caught.value.retry_after == 7200 / 20  # scaled like every other duration
    await client.disconnect()


async def test_the_sixth_request_for_a_phone_in_ten_minutes_is_rate_limited(backend):
    client, _, _ = await open_window(backend)
    for _ in range(5):
        await client.pair_phone(ALICE_DIGITS)
    with pytest.raises(RateLimited):
        await client.pair_phone(ALICE_DIGITS)
    assert await client.pair_phone("79001112233")  # another phone is not affected
    await client.disconnect()


async def test_magic_0075_times_out_after_75_scaled_seconds(fast_backend):
    client, _, _ = await open_window(fast_backend)
    started = asyncio.get_running_loop().time()
    with pytest.raises(OperationTimeout, match="info query timed out"):
        await client.pair_phone("79001230075")
    assert 75 / 200 <= asyncio.get_running_loop().time() - started < 75 / 200 + 0.3
    await client.disconnect()
