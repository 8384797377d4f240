"""Two WhatsApps behind one interface, so each linking scenario is written once.

- `SandboxWorld`: our simulated WhatsApp (`WHATSAPP_BACKEND=sandbox`), its phone in the database.
- `EmulatorWorld`: the real neonize (whatsmeow) in the backend's host processes, talking to the
  WhatsApp emulator (`emulator/`) through its proxy and test CA, with a library copy that trusts
  the emulator's root key.

Both play the sandbox's magic numbers (README, "Trying it with the sandbox"): a number ending in
`0000` is not on WhatsApp, one ending in `0429` gets WhatsApp's 429 for codes.
"""

from __future__ import annotations

from typing import Any, Protocol

from emulator.control import Emulator
from whatsapp.sandbox import phone as sandbox_phone
from whatsapp.sandbox.models import Device

NOT_ON_WHATSAPP = "+79001230000"
RATE_LIMITED = "+79001230429"


class World(Protocol):
    name: str

    def scan(self, phone: str, qr: str) -> None: ...
    def enter_code(self, phone: str, code: str) -> None: ...
    def unlink(self, phone: str) -> None: ...
    def drop(self, phone: str) -> None: ...
    def take_over(self, phone: str) -> None: ...
    def ban(self, phone: str, seconds: int) -> None: ...
    def refuse_next_login_as_outdated(self) -> None: ...
    def arm_passkey(self) -> None: ...
    def trigger_passkey(self) -> None: ...
    def devices(self, phone: str) -> list[str]:
        """The JIDs the phone lists under Linked devices."""
        ...

    def live_connection(self, phone: str) -> str | None:
        """Which connection the phone's device is online with (None: offline)."""
        ...


class SandboxWorld:
    name = "sandbox"

    def scan(self, phone: str, qr: str) -> None:
        sandbox_phone.link_with_qr(phone, qr)

    def enter_code(self, phone: str, code: str) -> None:
        sandbox_phone.link_with_code(phone, code)

    def unlink(self, phone: str) -> None:
        sandbox_phone.unlink(phone)

    def drop(self, phone: str) -> None:
        sandbox_phone.drop_connection(phone)

    def take_over(self, phone: str) -> None:
        sandbox_phone.take_over(phone)

    def ban(self, phone: str, seconds: int) -> None:
        sandbox_phone.ban(phone, seconds=seconds)

    def refuse_next_login_as_outdated(self) -> None:
        sandbox_phone.refuse_next_login("client_outdated")

    def arm_passkey(self) -> None:
        sandbox_phone.refuse_next_login("passkey")

    def trigger_passkey(self) -> None:
        pass  # armed: the sandbox asks right after its first QR

    def devices(self, phone: str) -> list[str]:
        digits = phone.lstrip("+")
        return list(Device.objects.filter(phone=digits).values_list("jid", flat=True))

    def live_connection(self, phone: str) -> str | None:
        tokens = Device.objects.filter(phone=phone.lstrip("+")).values_list(
            "connection_token", flat=True
        )
        return next((token for token in tokens if token), None)


class EmulatorWorld:
    name = "emulator"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        emulator.fail_code_requests(NOT_ON_WHATSAPP, "not-on-whatsapp")
        emulator.fail_code_requests(RATE_LIMITED, "rate-overlimit")

    def scan(self, phone: str, qr: str) -> None:
        self.emulator.scan_qr(phone, qr)

    def enter_code(self, phone: str, code: str) -> None:
        self.emulator.enter_code(phone, code)

    def unlink(self, phone: str) -> None:
        for device in self._active(phone):
            self.emulator.unlink(phone, device["device"])

    def drop(self, phone: str) -> None:
        assert self.emulator.drop(phone.lstrip("+")) > 0, "no live connection to drop"

    def take_over(self, phone: str) -> None:
        assert self.emulator.replace(phone.lstrip("+")) > 0, "no live connection to replace"

    def ban(self, phone: str, seconds: int) -> None:
        # WhatsApp bans at login: refuse the next login with 402, then drop the live socket.
        self.emulator.fail_next_login(402, phone=phone, code=102, expire=seconds, times=None)
        self.drop(phone)

    def refuse_next_login_as_outdated(self) -> None:
        self.emulator.fail_next_login(405, linking=True)

    def arm_passkey(self) -> None:
        pass  # WhatsApp asks during the login window: see trigger_passkey

    def trigger_passkey(self) -> None:
        self.emulator.request_passkey()

    def devices(self, phone: str) -> list[str]:
        return [device["jid"] for device in self._active(phone)]

    def live_connection(self, phone: str) -> str | None:
        jids = set(self.devices(phone))
        for connection in self.emulator.connections():
            if connection["jid"] in jids and connection["state"] == "active":
                return str(connection["id"])
        return None

    def device_names(self) -> list[Any]:
        return [device["name"] for device in self.emulator.devices()]

    def code_display_names(self) -> list[str]:
        return [
            connection["pair_code"]["platform_display"]
            for connection in self.emulator.connections()
            if connection.get("pair_code")
        ]

    def _active(self, phone: str) -> list[dict[str, Any]]:
        return [device for device in self.emulator.devices(phone) if device["active"]]
