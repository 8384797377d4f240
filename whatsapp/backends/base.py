"""The seam between the linking engine and WhatsApp.

A backend creates one client per company. The worker's session runner drives the client and
receives its events (the dataclasses below, already translated from the library's own events);
it never sees neonize or the sandbox directly.

Contract for implementations:
- `connect()` starts connecting and returns quickly; the outcome arrives as events:
  `QRCode` (unlinked, login socket open), `Connected` (linked), or `ConnectError`.
- `pair_phone()` needs an open, unpaired connection that has received its first QR. It raises
  `whatsapp.errors` exceptions only: InvalidPhone, RateLimited (WhatsApp's 429), ConnectionClosed,
  WhatsAppUnavailable, OperationTimeout.
- `on_event` is an async callable; backends call it on the worker's event loop, in order.
- `credentials_delete()` / `credentials_exists()` are plain synchronous database work, callable
  from the web process when no worker runs the company.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QRCode:
    code: str  # the raw QR string to render
    index: int  # 0 for the first ref of this login socket
    expires_at: datetime  # when this ref stops being valid
    window_expires_at: datetime  # when the whole login window (all refs) ends


@dataclass(frozen=True)
class PairingWindowClosed:
    """The refs ran out and the login socket closed; a new connect() opens a new window."""


@dataclass(frozen=True)
class PairSuccess:
    jid: str  # full device JID, e.g. "15551234567:12@s.whatsapp.net"
    phone: str  # digits only


@dataclass(frozen=True)
class PairError:
    message: str


@dataclass(frozen=True)
class Connected:
    jid: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class LoggedOut:
    reason: str = ""
    on_connect: bool = False


@dataclass(frozen=True)
class StreamReplaced:
    pass


@dataclass(frozen=True)
class TemporaryBan:
    code: int = 0
    expire_seconds: int = 0


@dataclass(frozen=True)
class ClientOutdated:
    pass


@dataclass(frozen=True)
class ConnectFailure:
    reason: int  # HTTP-like: 401 logged out, 402 banned, 403 main device gone, 405 outdated, ...
    message: str = ""


@dataclass(frozen=True)
class Disconnected:
    """The server or the network dropped the socket; the client reconnects by itself."""


@dataclass(frozen=True)
class KeepAliveTimeout:
    error_count: int = 0


@dataclass(frozen=True)
class KeepAliveRestored:
    pass


@dataclass(frozen=True)
class PasskeyRequired:
    """WhatsApp asked the phone to confirm the link with a passkey, which this client cannot
    answer: the attempt cannot finish (docs/whatsapp.md, "Passkeys")."""


@dataclass(frozen=True)
class ConnectError:
    """connect() failed: `error_code` is one of our error codes, usually WHATSAPP_UNAVAILABLE."""

    error_code: str
    message: str


@dataclass(frozen=True)
class ClientCrashed:
    """The library died under the client (e.g. a Go panic in the neonize host process)."""

    message: str


BackendEvent = (
    QRCode
    | PairingWindowClosed
    | PairSuccess
    | PairError
    | Connected
    | LoggedOut
    | StreamReplaced
    | TemporaryBan
    | ClientOutdated
    | ConnectFailure
    | Disconnected
    | KeepAliveTimeout
    | KeepAliveRestored
    | PasskeyRequired
    | ConnectError
    | ClientCrashed
)
EventHandler = Callable[[BackendEvent], Awaitable[None]]


class BackendClient(abc.ABC):
    """One company's connection to WhatsApp."""

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def pair_phone(self, phone_digits: str) -> str:
        """Ask WhatsApp for a pairing code for `phone_digits`; returns "ABCD-EFGH"."""

    @abc.abstractmethod
    async def logout(self) -> None:
        """Unlink the device on WhatsApp (the phone's list loses it) and stop."""

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Stop the client without unlinking; credentials stay."""


class Backend(abc.ABC):
    name: str = ""

    async def start(self) -> None:
        """Called once by the worker before any client is created."""

    async def shutdown(self) -> None:
        """Called once by the worker when it stops."""

    @abc.abstractmethod
    def create_client(
        self, *, client_uuid: str, device_jid: str | None, on_event: EventHandler
    ) -> BackendClient:
        """`device_jid` None means a new link (a fresh device); otherwise resume that device."""

    @abc.abstractmethod
    def credentials_exists(self, *, client_uuid: str, device_jid: str | None) -> bool: ...

    @abc.abstractmethod
    def credentials_delete(self, *, client_uuid: str, device_jid: str | None) -> int:
        """Delete the device and everything that cascades from it; returns rows deleted."""
