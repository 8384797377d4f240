"""The simulated phone: what a user does in WhatsApp on their phone, against the sandbox.

Plain synchronous functions over the sandbox's tables, so a web view, `manage.py sandbox_phone`
or a test can act as the phone from any process; the client in the worker notices by polling.
Every function takes the phone number in any common international form and raises
`SandboxPhoneError` with a message meant for a human when the phone cannot do what was asked.
See `whatsapp/sandbox/rules.py` (or README.md) for the magic numbers.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from whatsapp.sandbox import rules
from whatsapp.sandbox.models import Device, LoginRefusal, LoginWindow, PhoneAccount


class SandboxPhoneError(Exception):
    """The simulated phone refused the action; the message says why."""


@dataclass(frozen=True)
class LinkedDevice:
    jid: str
    phone: str  # digits only
    client_uuid: str
    online: bool  # a client is connected with these keys right now
    banned_until: datetime | None = None


@dataclass(frozen=True)
class OpenWindow:
    client_uuid: str
    closes_at: datetime
    refs_issued: int
    qr: str
    qr_expires_at: datetime | None
    pairing_code: str
    code_phone: str
    code_requested_at: datetime | None


def link_with_code(phone_number: str, pairing_code: str) -> LinkedDevice:
    """Enter `pairing_code` under Linked devices -> Link with phone number instead."""
    digits = _digits(phone_number)
    code = rules.pairing_code_normalised(pairing_code)
    if code is None:
        raise SandboxPhoneError(
            f"{pairing_code!r} is not a pairing code: expected 8 characters like ABCD-EFGH"
        )
    _refuse_unregistered(digits)
    # Only the latest code requested for this phone counts, whichever window asked for it.
    window = (
        LoginWindow.objects.filter(
            code_phone=digits, state=LoginWindow.State.OPEN, closes_at__gt=timezone.now()
        )
        .order_by("-code_requested_at")
        .first()
    )
    if window is None:
        raise SandboxPhoneError(
            f"no pairing code is pending for +{digits}: none was requested, or its login window "
            "has closed"
        )
    if window.code != code:
        raise SandboxPhoneError("this code is not valid (expired or superseded)")
    return _link(window, digits)


def link_with_qr(phone_number: str, qr: str) -> LinkedDevice:
    """Scan `qr` under Linked devices -> Link a device."""
    digits = _digits(phone_number)
    _refuse_unregistered(digits)
    ref = rules.qr_ref(qr)
    now = timezone.now()
    candidates = LoginWindow.objects.filter(
        state=LoginWindow.State.OPEN, closes_at__gt=now, current_qr_expires_at__gt=now
    ).only("pk", "client_uuid", "current_qr")
    for window in candidates:
        if ref and rules.qr_ref(window.current_qr) == ref:
            return _link(window, digits)
    raise SandboxPhoneError(
        "this QR code is not valid (expired, replaced by a newer one, or unknown)"
    )


def unlink(phone_number: str, *, jid: str | None = None) -> list[str]:
    """Log out linked devices from the phone (all of this number's, or just `jid`).

    The clients get LoggedOut; their device rows are gone, as whatsmeow deletes its store.
    """
    devices = _devices(phone_number, jid)
    jids = list(devices.values_list("jid", flat=True))
    devices.delete()
    return jids


def drop_connection(phone_number: str, *, jid: str | None = None) -> list[str]:
    """Make the server drop the live connections; each client reconnects by itself."""
    devices = _devices(phone_number, jid)
    jids = list(devices.values_list("jid", flat=True))
    devices.update(drops=F("drops") + 1)
    return jids


def ban(phone_number: str, *, jid: str | None = None, seconds: float | None = None) -> list[str]:
    """Temporarily ban the linked devices: the live client gets TemporaryBan, reconnects too."""
    devices = _devices(phone_number, jid)
    if seconds is None:
        seconds = rules.BAN_SECONDS / settings.WHATSAPP_SANDBOX_SPEED
    jids = list(devices.values_list("jid", flat=True))
    devices.update(banned_until=timezone.now() + timedelta(seconds=seconds))
    return jids


def take_over(phone_number: str, *, jid: str | None = None) -> list[str]:
    """Another client connects with the same keys: the live one gets StreamReplaced."""
    devices = _devices(phone_number, jid)
    jids = list(devices.values_list("jid", flat=True))
    devices.update(connection_token=secrets.token_hex(8))
    return jids


def refuse_next_login(kind: str, *, client_uuid: str = "") -> None:
    """WhatsApp refuses the next login socket (of `client_uuid`, or of any client):
    "client_outdated" (405 before any QR) or "passkey" (a passkey request after the first QR)."""
    if kind not in LoginRefusal.Kind.values:
        raise SandboxPhoneError(f"kind must be one of {', '.join(LoginRefusal.Kind.values)}")
    LoginRefusal.objects.create(kind=kind, client_uuid=client_uuid)


def open_windows() -> list[OpenWindow]:
    """Login windows that a phone could link to right now, newest first."""
    windows = LoginWindow.objects.filter(
        state=LoginWindow.State.OPEN, closes_at__gt=timezone.now()
    ).order_by("-opened_at")
    return [
        OpenWindow(
            client_uuid=w.client_uuid,
            closes_at=w.closes_at,
            refs_issued=w.refs_issued,
            qr=w.current_qr,
            qr_expires_at=w.current_qr_expires_at,
            pairing_code=w.code,
            code_phone=w.code_phone,
            code_requested_at=w.code_requested_at,
        )
        for w in windows
    ]


def linked_devices(phone_number: str | None = None) -> list[LinkedDevice]:
    devices = Device.objects.order_by("phone", "created_at")
    if phone_number is not None:
        devices = devices.filter(phone=_digits(phone_number))
    return [_linked_device(d) for d in devices]


def _link(window: LoginWindow, digits: str) -> LinkedDevice:
    for _ in range(3):
        try:
            return _link_once(window, digits)
        except IntegrityError:
            # Two links for one number raced for a device number; the loser takes the next one.
            continue
    raise SandboxPhoneError("the link failed; try again")


@transaction.atomic
def _link_once(window: LoginWindow, digits: str) -> LinkedDevice:
    account, _ = PhoneAccount.objects.get_or_create(phone=digits)
    PhoneAccount.objects.filter(pk=account.pk).update(
        last_device_number=F("last_device_number") + 1
    )
    number = PhoneAccount.objects.values_list("last_device_number", flat=True).get(pk=account.pk)
    jid = f"{digits}:{number}@s.whatsapp.net"
    # Conditional update: the window may have closed since we read it.
    linked = LoginWindow.objects.filter(
        pk=window.pk, state=LoginWindow.State.OPEN, closes_at__gt=timezone.now()
    ).update(state=LoginWindow.State.LINKED, linked_phone=digits, linked_jid=jid)
    if not linked:
        raise SandboxPhoneError("the login window closed before the link completed")
    device = Device.objects.create(jid=jid, client_uuid=window.client_uuid, phone=digits)
    return _linked_device(device)


def _devices(phone_number: str, jid: str | None):
    digits = _digits(phone_number)
    devices = Device.objects.filter(phone=digits)
    if jid is not None:
        devices = devices.filter(jid=jid)
    if not devices.exists():
        which = f"device {jid}" if jid else "device"
        raise SandboxPhoneError(f"no {which} is linked to +{digits}")
    return devices


def _digits(phone_number: str) -> str:
    try:
        return rules.phone_digits(phone_number)
    except ValueError as exc:
        raise SandboxPhoneError(str(exc)) from None


def _refuse_unregistered(digits: str) -> None:
    if rules.magic(digits) == rules.NOT_ON_WHATSAPP:
        raise SandboxPhoneError(f"+{digits} is not registered on WhatsApp (a sandbox magic number)")


def _linked_device(device: Device) -> LinkedDevice:
    return LinkedDevice(
        jid=device.jid,
        phone=device.phone,
        client_uuid=device.client_uuid,
        online=bool(device.connection_token),
        banned_until=device.banned_until,
    )
