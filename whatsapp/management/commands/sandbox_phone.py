"""Act as the sandbox's simulated phone from a terminal.

    manage.py sandbox_phone link --phone +79001234567 --code ABCD-EFGH
    manage.py sandbox_phone link --phone +79001234567 --qr 'https://wa.me/settings/linked_devices#...'
    manage.py sandbox_phone unlink --phone +79001234567
    manage.py sandbox_phone drop --phone +79001234567
    manage.py sandbox_phone ban --phone +79001234567
    manage.py sandbox_phone take-over --phone +79001234567
    manage.py sandbox_phone refuse-next-login client_outdated | passkey
    manage.py sandbox_phone list

Sandbox numbers are fake, so they are printed in full.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from whatsapp.sandbox import phone
from whatsapp.sandbox.phone import SandboxPhoneError


class Command(BaseCommand):
    help = "Act as the simulated phone of the WhatsApp sandbox (link, unlink, drop, ban, list)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        link = actions.add_parser("link", help="link a device by pairing code or QR")
        link.add_argument("--phone", required=True, help="the phone's number, e.g. +79001234567")
        how = link.add_mutually_exclusive_group(required=True)
        how.add_argument("--code", help="the pairing code shown by the service, ABCD-EFGH")
        how.add_argument("--qr", help="the raw QR string shown by the service")
        for name, text in (
            ("unlink", "log out this number's linked devices (the phone removes them)"),
            ("drop", "drop the live connections; clients reconnect by themselves"),
            ("ban", "temporarily ban this number's linked devices"),
            ("take-over", "connect elsewhere with the same keys (the live one: stream replaced)"),
        ):
            sub = actions.add_parser(name, help=text)
            sub.add_argument("--phone", required=True)
            sub.add_argument("--jid", help="only this device (default: all of the number's)")
        refuse = actions.add_parser(
            "refuse-next-login",
            help="WhatsApp refuses the next login socket: 405 before any QR, or a passkey request",
        )
        refuse.add_argument("kind", choices=["client_outdated", "passkey"])
        actions.add_parser("list", help="open login windows and linked devices")

    def handle(self, *args, action: str, **options) -> None:
        try:
            if action == "link":
                self._link(options["phone"], code=options["code"], qr=options["qr"])
            elif action == "list":
                self._list()
            elif action == "refuse-next-login":
                phone.refuse_next_login(options["kind"])
                self.stdout.write(
                    self.style.SUCCESS(f"The next login will be refused: {options['kind']}")
                )
            else:
                self._on_devices(action, options["phone"], options["jid"])
        except SandboxPhoneError as exc:
            raise CommandError(str(exc)) from exc

    def _link(self, number: str, *, code: str | None, qr: str | None) -> None:
        if code is not None:
            device = phone.link_with_code(number, code)
        else:
            device = phone.link_with_qr(number, qr or "")
        self.stdout.write(
            self.style.SUCCESS(
                f"Linked +{device.phone} as {device.jid} (client {device.client_uuid})"
            )
        )

    def _on_devices(self, action: str, number: str, jid: str | None) -> None:
        actions: dict[str, Callable[..., list[str]]] = {
            "unlink": phone.unlink,
            "drop": phone.drop_connection,
            "ban": phone.ban,
            "take-over": phone.take_over,
        }
        act = actions[action]
        done = {
            "unlink": "Unlinked",
            "drop": "Dropped the connection of",
            "ban": "Banned",
            "take-over": "Took over the keys of",
        }[action]
        for device_jid in act(number, jid=jid):
            self.stdout.write(self.style.SUCCESS(f"{done} {device_jid}"))

    def _list(self) -> None:
        windows = phone.open_windows()
        self.stdout.write(f"Open login windows: {len(windows)}")
        for window in windows:
            code = (
                f"code {window.pairing_code} for +{window.code_phone}"
                if window.pairing_code
                else "no code requested"
            )
            self.stdout.write(
                f"  client {window.client_uuid}: closes in {_seconds_left(window.closes_at)}, "
                f"{code}, QR ref {window.refs_issued} expires in "
                f"{_seconds_left(window.qr_expires_at)}"
            )
            if window.qr:
                self.stdout.write(f"    qr: {window.qr}")
        devices = phone.linked_devices()
        self.stdout.write(f"Linked devices: {len(devices)}")
        for device in devices:
            flags = ["online" if device.online else "offline"]
            if device.banned_until and device.banned_until > timezone.now():
                flags.append(f"banned for {_seconds_left(device.banned_until)}")
            self.stdout.write(f"  {device.jid} (client {device.client_uuid}): {', '.join(flags)}")


def _seconds_left(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return f"{max(0.0, (moment - timezone.now()).total_seconds()):.0f} s"
