"""The emulated phones: WhatsApp accounts (a phone number, an identity key pair, a LID) and the
companion devices linked to each, which is also the store the server checks at login.

The phone's side of linking lives here too: reading a scanned QR string, signing the new
device's identity (ADV, whatsmeow `pair.go`), and the primary's half of code linking
(`pair-code.go`: the primary_hello keys, opening the companion's key bundle, the ADV secret).
The server (`emulator/server.py`) moves these over the wire; nothing here does I/O.
"""

from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag

from emulator import crypto
from emulator.binary import JID

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"


class PhoneError(Exception):
    """A phone-side action cannot be done (bad QR, wrong code, no such device...)."""


def digits(phone: str) -> str:
    """`+49 151-234` -> `49151234`, as whatsmeow strips a number."""
    return re.sub(r"[^0-9]", "", phone)


@dataclass(frozen=True)
class QRData:
    ref: str
    noise_public: bytes
    identity_public: bytes
    adv_secret: bytes
    platform: str


def parse_qr(qr: str | bytes) -> QRData:
    """Read the string a client shows as QR: `[https://wa.me/settings/linked_devices#]ref,noise,
    identity,adv[,platform]` (keys in standard base64)."""
    text = qr.decode() if isinstance(qr, bytes) else qr
    text = text.strip()
    if "#" in text:
        text = text.split("#", 1)[1]
    parts = text.split(",")
    if len(parts) < 4:
        raise PhoneError(f"not a WhatsApp linking QR: {text[:40]!r}")
    try:
        noise, identity, adv = (base64.b64decode(part, validate=True) for part in parts[1:4])
    except ValueError as error:
        raise PhoneError(f"QR keys are not base64: {error}") from None
    if len(noise) != 32 or len(identity) != 32 or len(adv) != 32:
        raise PhoneError("QR keys have the wrong length")
    return QRData(
        ref=parts[0],
        noise_public=noise,
        identity_public=identity,
        adv_secret=adv,
        platform=parts[4] if len(parts) > 4 else "",
    )


@dataclass
class LinkedDevice:
    """A companion device as the phone and the server know it."""

    jid: JID
    lid: JID
    noise_public: bytes
    identity_public: bytes
    key_index: int
    method: str  # "qr" | "code"
    name: str  # what the phone's "Linked devices" list shows
    platform_type: str  # DeviceProps platform type name (CHROME, SAFARI...)
    linked_at: float = field(default_factory=time.time)
    prekeys: int = 0
    removed_at: float | None = None

    @property
    def active(self) -> bool:
        return self.removed_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "jid": str(self.jid),
            "lid": str(self.lid),
            "phone": self.jid.user,
            "device": self.jid.device,
            "method": self.method,
            "name": self.name,
            "platform_type": self.platform_type,
            "key_index": self.key_index,
            "linked_at": self.linked_at,
            "prekeys": self.prekeys,
            "removed_at": self.removed_at,
            "active": self.active,
        }


@dataclass
class PairingSignature:
    """What the phone hands the server for a pair-success."""

    device_identity: bytes  # ADVSignedDeviceIdentityHMAC
    details: bytes  # ADVDeviceIdentity, signed
    account_signature_key: bytes
    key_index: int


@dataclass
class Account:
    phone: str
    identity: crypto.KeyPair
    lid_user: str
    platform: str = "android"  # pair-success <platform name=...>
    business_name: str = ""
    devices: dict[int, LinkedDevice] = field(default_factory=dict)
    next_device: int = 1
    key_index: int = 0

    def user_jid(self, device: int = 0) -> JID:
        return JID(self.phone, USER_SERVER, device=device)

    def lid_jid(self, device: int = 0) -> JID:
        return JID(self.lid_user, LID_SERVER, device=device)

    def active_devices(self) -> list[LinkedDevice]:
        return [device for device in self.devices.values() if device.active]

    def to_dict(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "lid": str(self.lid_jid()),
            "platform": self.platform,
            "business_name": self.business_name,
            "identity_public": base64.b64encode(self.identity.public).decode(),
            "devices": [device.to_dict() for device in self.devices.values()],
        }

    # --- ADV: the account signs a new companion ----------------------------------------

    def sign_companion(
        self, companion_identity: bytes, adv_secret: bytes, device: int
    ) -> PairingSignature:
        from neonize.proto.waAdv import WAAdv_pb2 as adv

        self.key_index += 1
        details = adv.ADVDeviceIdentity(
            rawID=int.from_bytes(os.urandom(4), "big"),
            timestamp=int(time.time()),
            keyIndex=self.key_index,
            accountType=adv.E2EE,
            deviceType=adv.E2EE,
        ).SerializeToString()
        signature = self.identity.sign(
            crypto.ACCOUNT_SIGNATURE_PREFIX + details + companion_identity
        )
        signed = adv.ADVSignedDeviceIdentity(
            details=details,
            accountSignatureKey=self.identity.public,
            accountSignature=signature,
        ).SerializeToString()
        container = adv.ADVSignedDeviceIdentityHMAC(
            details=signed, HMAC=crypto.hmac_sha256(adv_secret, signed)
        ).SerializeToString()
        return PairingSignature(
            device_identity=container,
            details=details,
            account_signature_key=self.identity.public,
            key_index=self.key_index,
        )

    def check_device_signature(
        self, signature: PairingSignature, companion_identity: bytes, self_signed: bytes
    ) -> bool:
        """The companion's pair-device-sign reply: its XEdDSA over prefix 6,1 + details + its
        identity key + the account's key."""
        from neonize.proto.waAdv import WAAdv_pb2 as adv

        try:
            identity = adv.ADVSignedDeviceIdentity.FromString(self_signed)
        except Exception:
            return False
        if identity.details != signature.details:
            return False
        message = (
            crypto.DEVICE_SIGNATURE_PREFIX
            + signature.details
            + companion_identity
            + signature.account_signature_key
        )
        return crypto.xeddsa_verify(companion_identity, message, identity.deviceSignature)


@dataclass
class PrimaryHello:
    """The phone's half of code linking, between primary_hello and companion_finish."""

    code: str
    ephemeral: crypto.KeyPair
    companion_ephemeral: bytes
    wrapped_primary_ephemeral: bytes


def primary_hello(code: str, wrapped_companion_ephemeral: bytes) -> PrimaryHello:
    """The user typed `code`: unwrap the companion's ephemeral key with it, wrap ours."""
    cleaned = crypto.normalise_code(code)
    if not crypto.is_valid_code(cleaned):
        raise PhoneError(f"not a pairing code: {code!r}")
    ephemeral = crypto.KeyPair.generate()
    return PrimaryHello(
        code=cleaned,
        ephemeral=ephemeral,
        companion_ephemeral=crypto.unwrap_with_code(cleaned, wrapped_companion_ephemeral),
        wrapped_primary_ephemeral=crypto.wrap_with_code(cleaned, ephemeral.public),
    )


def finish_code_pairing(
    account: Account, hello: PrimaryHello, wrapped_bundle: bytes
) -> tuple[bytes, bytes]:
    """Open the companion's key bundle; returns (companion identity key, ADV secret).
    A wrong code shows here: the bundle does not decrypt."""
    try:
        ephemeral_shared = hello.ephemeral.shared(hello.companion_ephemeral)
        bundle = crypto.open_key_bundle(ephemeral_shared, wrapped_bundle)
    except (InvalidTag, ValueError, crypto.XEdDSAException) as error:
        raise PhoneError(f"wrong pairing code ({type(error).__name__})") from None
    if len(bundle) != 96:
        raise PhoneError(f"key bundle is {len(bundle)} bytes, expected 96")
    companion_identity, primary_identity, adv_random = bundle[:32], bundle[32:64], bundle[64:]
    if primary_identity != account.identity.public:
        raise PhoneError("key bundle names another primary identity")
    identity_shared = account.identity.shared(companion_identity)
    secret = crypto.code_adv_secret(ephemeral_shared, identity_shared, adv_random)
    return companion_identity, secret


class Phones:
    """Every account the emulator knows. Any number is "on WhatsApp" and gets an account the
    first time it is used, unless a failure rule says otherwise."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}

    def account(self, phone: str, *, create: bool = True) -> Account:
        number = digits(phone)
        if not number:
            raise PhoneError(f"not a phone number: {phone!r}")
        existing = self.accounts.get(number)
        if existing is not None:
            return existing
        if not create:
            raise PhoneError(f"no account for {number}")
        account = Account(
            phone=number,
            identity=crypto.KeyPair.generate(),
            lid_user=str(100_000_000_000_000 + int.from_bytes(os.urandom(6), "big") % 10**14),
        )
        self.accounts[number] = account
        return account

    def find_device(self, user: str, device: int) -> LinkedDevice | None:
        account = self.accounts.get(user)
        if account is None:
            return None
        linked = account.devices.get(device)
        if linked is None or not linked.active:
            return None
        return linked

    def add_device(
        self,
        account: Account,
        *,
        noise_public: bytes,
        identity_public: bytes,
        key_index: int,
        method: str,
        name: str,
        platform_type: str,
        device: int,
    ) -> LinkedDevice:
        linked = LinkedDevice(
            jid=account.user_jid(device),
            lid=account.lid_jid(device),
            noise_public=noise_public,
            identity_public=identity_public,
            key_index=key_index,
            method=method,
            name=name,
            platform_type=platform_type,
        )
        account.devices[device] = linked
        return linked

    def reserve_device_number(self, account: Account) -> int:
        number = account.next_device
        account.next_device += 1
        return number

    def remove_device(self, user: str, device: int) -> LinkedDevice | None:
        linked = self.find_device(user, device)
        if linked is not None:
            linked.removed_at = time.time()
        return linked

    def devices(self) -> list[LinkedDevice]:
        return [device for account in self.accounts.values() for device in account.devices.values()]
