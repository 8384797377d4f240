"""`manage.py sandbox_phone`: the simulated phone from a terminal."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.helpers import ALICE_PHONE
from tests.whatsapp.sandbox.helpers import ALICE, ALICE_DIGITS, on_phone, open_window
from whatsapp.backends.base import (
    Connected,
    Disconnected,
    LoggedOut,
    StreamReplaced,
    TemporaryBan,
)
from whatsapp.management.commands.sandbox_phone import Command

pytestmark = pytest.mark.django_db(transaction=True)


def sandbox_phone(*args: str) -> str:
    out = StringIO()
    call_command("sandbox_phone", *args, stdout=out)
    return out.getvalue()


async def test_it_lists_windows_then_links_drops_bans_and_unlinks(backend):
    client, log, qr = await open_window(backend)
    code = await client.pair_phone(ALICE_DIGITS)

    listing = await on_phone(sandbox_phone, "list")
    assert f"client {ALICE}" in listing and code in listing and f"+{ALICE_DIGITS}" in listing
    assert qr.code in listing

    out = await on_phone(sandbox_phone, "link", "--phone", ALICE_PHONE, "--code", code)
    assert f"Linked +{ALICE_DIGITS} as {ALICE_DIGITS}:" in out
    await log.wait_for(Connected)
    assert "online" in await on_phone(sandbox_phone, "list")

    await on_phone(sandbox_phone, "drop", "--phone", ALICE_PHONE)
    await log.wait_for(Disconnected)
    await log.wait_for(Connected, nth=2)
    await on_phone(sandbox_phone, "ban", "--phone", ALICE_PHONE)
    await log.wait_for(TemporaryBan)
    assert "Unlinked" in await on_phone(sandbox_phone, "unlink", "--phone", ALICE_PHONE)
    assert "LoggedOut" not in log.kinds()  # the ban had already stopped the client
    assert not await on_phone(backend.credentials_exists, client_uuid=ALICE, device_jid=None)


async def test_unlink_logs_the_live_client_out(backend):
    client, log, qr = await open_window(backend)
    await on_phone(sandbox_phone, "link", "--phone", ALICE_PHONE, "--qr", qr.code)
    await log.wait_for(Connected)
    await on_phone(sandbox_phone, "unlink", "--phone", ALICE_PHONE)
    await log.wait_for(LoggedOut)


def test_it_fails_with_the_phones_reason():
    with pytest.raises(CommandError, match=r"not valid \(expired or superseded\)|no pairing code"):
        sandbox_phone("link", "--phone", ALICE_PHONE, "--code", "ABCD-EFGH")


def test_from_a_terminal_an_error_exits_non_zero(capsys):
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "sandbox_phone", "unlink", "--phone", ALICE_PHONE])
    assert exited.value.code == 1
    assert f"no device is linked to +{ALICE_DIGITS}" in capsys.readouterr().err


def test_link_needs_a_code_or_a_qr():
    with pytest.raises(CommandError, match="one of the arguments --code --qr is required"):
        sandbox_phone("link", "--phone", ALICE_PHONE)


async def test_it_takes_over_a_device_and_refuses_the_next_login(backend):
    client, log, _ = await open_window(backend)
    code = await client.pair_phone(ALICE_DIGITS)
    await on_phone(sandbox_phone, "link", "--phone", ALICE_PHONE, "--code", code)
    await log.wait_for(Connected)

    out = await on_phone(sandbox_phone, "take-over", "--phone", ALICE_PHONE)

    assert f"Took over the keys of {ALICE_DIGITS}:" in out
    await log.wait_for(StreamReplaced)
    out = await on_phone(sandbox_phone, "refuse-next-login", "client_outdated")
    assert "client_outdated" in out
    assert await on_phone(phone_refusals) == ["client_outdated"]


def phone_refusals() -> list[str]:
    from whatsapp.sandbox.models import LoginRefusal

    return list(LoginRefusal.objects.values_list("kind", flat=True))
