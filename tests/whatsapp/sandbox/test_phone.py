"""The simulated phone: linking by QR, and the clear errors it gives a human."""

from __future__ import annotations

import pytest

from tests.helpers import ALICE_PHONE
from tests.whatsapp.sandbox.helpers import ALICE_DIGITS, BOB, on_phone, open_window
from whatsapp.backends.base import Connected, PairSuccess, QRCode
from whatsapp.sandbox import phone
from whatsapp.sandbox.phone import SandboxPhoneError

pytestmark = pytest.mark.django_db(transaction=True)


async def test_scanning_the_current_qr_links(backend):
    client, log, qr = await open_window(backend)
    bob, bob_log, _ = await open_window(backend, BOB)

    device = await on_phone(phone.link_with_qr, "+1 415 555 2671", qr.code)

    assert (await log.wait_for(PairSuccess, within=1)).jid == device.jid
    assert (await log.wait_for(Connected, within=1)).phone == "14155552671"
    assert device.jid.startswith("14155552671:")
    assert "PairSuccess" not in bob_log.kinds()
    await client.disconnect()
    await bob.disconnect()


async def test_it_rejects_a_qr_that_was_rotated_away(fast_backend):
    client, log, first = await open_window(fast_backend)
    await log.wait_for(QRCode, nth=2)
    with pytest.raises(SandboxPhoneError, match="QR code is not valid"):
        await on_phone(phone.link_with_qr, ALICE_PHONE, first.code)
    await client.disconnect()


async def test_it_rejects_an_unknown_qr(backend):
    with pytest.raises(SandboxPhoneError, match="QR code is not valid"):
        await on_phone(
            phone.link_with_qr, ALICE_PHONE, "https://wa.me/settings/linked_devices#2@x,a,b,c,1"
        )


async def test_device_numbers_are_never_reused(backend):
    first, _, qr = await open_window(backend)
    one = await on_phone(phone.link_with_qr, ALICE_PHONE, qr.code)
    await first.disconnect()
    await on_phone(phone.unlink, ALICE_PHONE)
    second, _, qr = await open_window(backend)
    two = await on_phone(phone.link_with_qr, ALICE_PHONE, qr.code)
    assert one.jid == f"{ALICE_DIGITS}:1@s.whatsapp.net"
    assert two.jid == f"{ALICE_DIGITS}:2@s.whatsapp.net"
    await second.disconnect()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda: phone.link_with_code("not a phone", "ABCD-EFGH"), "not an international phone"),
        (lambda: phone.link_with_code(ALICE_PHONE, "ABCD"), "not a pairing code"),
        (lambda: phone.link_with_code(ALICE_PHONE, "ABCD-EFGH"), "no pairing code is pending"),
        (lambda: phone.link_with_code("+7 900 123-00-00", "ABCD-EFGH"), "not registered"),
        (lambda: phone.unlink(ALICE_PHONE), "no device is linked"),
        (lambda: phone.drop_connection(ALICE_PHONE), "no device is linked"),
        (lambda: phone.ban(ALICE_PHONE), "no device is linked"),
    ],
)
def test_the_phone_explains_what_it_cannot_do(action, message):
    with pytest.raises(SandboxPhoneError, match=message):
        action()
