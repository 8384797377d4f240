"""The neonize host: a child process that runs every neonize client of one worker.

    python -m whatsapp.backends.neonize.host [--debug-commands]
    python -m whatsapp.backends.neonize.host --ensure-schema   (store name on stdin)

Why a separate process: several neonize calls abort the whole process with a Go panic (exit
134), and every `connect()` leaks a database connection until the process exits. Here a panic
kills only this process, and the backend can retire it to give the connections back.

Channel: commands arrive as JSON lines on stdin; replies and events leave as JSON lines on the
process's original stdout. At start that stdout is moved to a private descriptor and fd 1 is
pointed at stderr, so nothing neonize or Go prints can corrupt the channel. EOF on stdin means
the backend is gone: stop everything and exit.

Threads: `connect()` blocks until the client stops, so each client connects on its own thread;
every command runs on a short-lived thread too, so a slow PairPhone never holds up a disconnect.
Go calls the event and QR handlers on its own threads; they only map and write one line.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from whatsapp.backends import base
from whatsapp.backends.neonize import failures, wire
from whatsapp.errors import ConnectionClosed, OperationTimeout, ServiceError, ValidationFailed

log = logging.getLogger("whatsapp.neonize.host")

STOP_JOIN_SECONDS = 3.0
# Longest a starting connect() keeps the next one waiting if Go never reports back.
GO_SETUP_SECONDS = 5.0
DEFAULT_DEVICE_NAME = "Pairing Service"


@dataclass
class HostedClient:
    uuid: str
    client: Any  # neonize.client.NewClient
    running: bool = False
    connected: bool = False
    stopping: bool = False
    connect_started: bool = False
    qr_index: int = 0
    first_qr_at: datetime | None = None
    qr_seen: threading.Event = field(default_factory=threading.Event)
    # Set once Go has registered the client (its first event, or connect() returning).
    set_up: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None


class Host:
    def __init__(self, channel: IO[bytes], *, debug_commands: bool) -> None:
        self._channel = channel
        self._write_lock = threading.Lock()
        self._clients: dict[str, HostedClient] = {}
        self._clients_lock = threading.Lock()
        self._go_setup = threading.Lock()
        self._debug_commands = debug_commands
        self.connects = 0

    # --- channel -------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        data = wire.dumps(message)
        with self._write_lock:
            try:
                self._channel.write(data)
                self._channel.flush()
            except (BrokenPipeError, ValueError):
                # The backend is gone; nobody is left to serve.
                os._exit(0)

    def emit(self, uuid: str, event: base.BackendEvent) -> None:
        self.send({"event": wire.encode_event(event), "client": uuid})

    def serve(self, commands: IO[bytes]) -> None:
        for line in commands:
            if not line.strip():
                continue
            request = wire.loads(line)
            threading.Thread(target=self._handle, args=(request,), daemon=True).start()
        self.shutdown()

    def _handle(self, request: dict[str, Any]) -> None:
        request_id = request.get("id")
        try:
            handler = getattr(self, f"cmd_{request['cmd']}", None)
            if handler is None or (
                request["cmd"].startswith("debug_") and not self._debug_commands
            ):
                raise ValidationFailed(f"unknown host command {request['cmd']!r}")
            result = handler(request)
        except ServiceError as error:
            self.send(
                {
                    "reply": request_id,
                    "ok": False,
                    "code": error.code,
                    "message": error.message,
                    "details": error.details,
                }
            )
        except Exception as error:  # a bug here must not kill the other clients' host
            log.exception("host command %s failed", request.get("cmd"))
            self.send(
                {
                    "reply": request_id,
                    "ok": False,
                    "code": "INTERNAL_ERROR",
                    "message": f"{type(error).__name__}: {error}",
                }
            )
        else:
            self.send({"reply": request_id, "ok": True, "result": result or {}})

    # --- commands ------------------------------------------------------------------------

    def cmd_ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "connects": self.connects}

    def cmd_create(self, request: dict[str, Any]) -> dict[str, Any]:
        uuid = request["client"]
        with self._clients_lock:
            existing = self._clients.get(uuid)
            if existing is not None:
                return {"created": False}
            hosted = HostedClient(
                uuid=uuid,
                client=_new_client(
                    request["store"],
                    uuid,
                    request.get("jid"),
                    device_name=request.get("device_name") or DEFAULT_DEVICE_NAME,
                ),
            )
            self._clients[uuid] = hosted
        self._subscribe(hosted)
        return {"created": True}

    def cmd_connect(self, request: dict[str, Any]) -> dict[str, Any]:
        hosted = self._client(request["client"])
        with hosted.lock:
            if hosted.running:
                return {"already_running": True, "connects": self.connects}
            hosted.running = True
            hosted.stopping = False
            hosted.connected = False
            hosted.connect_started = True
            hosted.qr_index = 0
            hosted.first_qr_at = None
            hosted.qr_seen.clear()
            self.connects += 1
        # Sent before the thread starts so the backend always sees "running" before "done".
        self.send({"state": "running", "client": hosted.uuid, "connects": self.connects})
        hosted.thread = threading.Thread(
            target=self._connect, args=(hosted,), name=f"connect-{hosted.uuid}", daemon=True
        )
        hosted.thread.start()
        return {"connects": self.connects}

    def cmd_pair_phone(self, request: dict[str, Any]) -> dict[str, Any]:
        from neonize.exc import PairPhoneError
        from neonize.utils.enum import ClientName, ClientType

        hosted = self._client(request["client"])
        wait = float(request.get("wait", 20.0))
        if not hosted.running:
            raise ConnectionClosed("The WhatsApp connection is not open; start linking again.")
        # PairPhone needs the login socket that has shown its first QR; before that whatsmeow
        # answers "websocket not connected".
        if not hosted.qr_seen.wait(wait):
            if not hosted.running:
                raise ConnectionClosed("The WhatsApp connection closed before it showed a QR.")
            raise OperationTimeout("WhatsApp did not open a login window in time.")
        try:
            # client_type explicit: neonize would derive it from the device props, wrongly.
            code = hosted.client.PairPhone(
                request["phone"], True, client_name=ClientName.LINUX, client_type=ClientType.CHROME
            )
        except PairPhoneError as error:
            raise failures.pair_phone_error(str(error)) from None
        return {"code": code}

    def cmd_logout(self, request: dict[str, Any]) -> dict[str, Any]:
        from neonize.exc import NeonizeError

        hosted = self._client(request["client"])
        unlinked = False
        if hosted.connected:
            try:
                hosted.client.logout()
                unlinked = True
            except NeonizeError as error:
                log.warning("logout of %s failed: %s", hosted.uuid, error)
        self._stop(hosted, forget=True)
        return {"unlinked": unlinked}

    def cmd_disconnect(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._clients_lock:
            hosted = self._clients.get(request["client"])
        if hosted is not None:
            self._stop(hosted, forget=bool(request.get("forget", True)))
        return {}

    def cmd_shutdown(self, request: dict[str, Any]) -> dict[str, Any]:
        # Reply first (the backend waits for it), then exit from another thread.
        threading.Timer(0.05, self.shutdown).start()
        return {}

    def cmd_debug_panic(self, request: dict[str, Any]) -> dict[str, Any]:
        """Tests only: get_me() on a client that never connected is a real Go panic (exit 134)."""
        from neonize.client import NewClient

        victim = NewClient(request["store"], uuid=f"debug-panic-{os.getpid()}", new_device=True)
        victim.get_me()
        return {}

    # --- client life -----------------------------------------------------------------------

    def _client(self, uuid: str) -> HostedClient:
        with self._clients_lock:
            hosted = self._clients.get(uuid)
        if hosted is None:
            raise ConnectionClosed("This client does not exist in the neonize host.")
        return hosted

    def _connect(self, hosted: HostedClient) -> None:
        failure: str | None = None
        # neonize's Go side keeps its clients in global maps written without a lock at the start
        # of connect(): two connects starting together abort the whole host (seen in CI). One
        # client sets up at a time; the lock passes on once this one is registered.
        hosted.set_up.clear()
        self._go_setup.acquire()
        threading.Thread(target=self._release_after_setup, args=(hosted,), daemon=True).start()
        try:
            hosted.client.connect()
        except Exception as error:
            failure = str(error)
        finally:
            hosted.set_up.set()
            with hosted.lock:
                hosted.running = False
                hosted.connected = False
            hosted.qr_seen.set()  # wake a waiting pair_phone: it sees running=False
            # "done" goes before the ConnectError: a runner that reconnects on that event
            # must find the client stopped, not still "running".
            self.send({"state": "done", "client": hosted.uuid, "connects": self.connects})
        if failure is not None and not hosted.stopping:
            self.emit(
                hosted.uuid,
                base.ConnectError(error_code=failures.connect_error_code(failure), message=failure),
            )

    def _release_after_setup(self, hosted: HostedClient) -> None:
        hosted.set_up.wait(GO_SETUP_SECONDS)
        self._go_setup.release()

    def _stop(self, hosted: HostedClient, *, forget: bool, wait: bool = True) -> None:
        hosted.stopping = True
        # Stop on a client that never called connect() is pointless; after one it cancels the
        # Go context so the blocked connect() returns. It edits the same Go maps as a starting
        # connect, so it waits for that one's set-up.
        if hosted.connect_started:
            with self._go_setup:
                hosted.client.stop()
        thread = hosted.thread
        if wait and thread is not None and thread is not threading.current_thread():
            # Let connect() return before replying: the backend may create a client with the
            # same uuid next, and Go keys its clients by uuid; "done" also reaches the backend
            # before this reply, so it never mistakes the new client for the old one.
            thread.join(STOP_JOIN_SECONDS)
            if thread.is_alive():
                log.warning("connect() of %s did not return after stop", hosted.uuid)
        if forget:
            with self._clients_lock:
                if self._clients.get(hosted.uuid) is hosted:
                    del self._clients[hosted.uuid]

    def shutdown(self) -> None:
        with self._clients_lock:
            clients = list(self._clients.values())
        for hosted in clients:
            try:
                self._stop(hosted, forget=True, wait=False)
            except Exception:
                log.exception("stopping %s failed", hosted.uuid)
        # Connect threads may still sit in Go; exiting the process is what frees their
        # database connections, so do not wait for them.
        os._exit(0)

    def _subscribe(self, hosted: HostedClient) -> None:
        from whatsapp.backends.neonize import mapping

        def on_qr(_client: Any, data: bytes) -> None:
            hosted.set_up.set()
            now = datetime.now(UTC)
            if hosted.first_qr_at is None:
                hosted.first_qr_at = now
            event = mapping.qr_event(data.decode(), hosted.qr_index, hosted.first_qr_at, now)
            hosted.qr_index += 1
            self.emit(hosted.uuid, event)
            hosted.qr_seen.set()

        def on_event(_client: Any, message: Any) -> None:
            hosted.set_up.set()
            if isinstance(message, mapping.Connected):
                hosted.connected = True
                # neonize fills `client.me` from FetchMe before ConnectedEv; get_me() would read
                # Go's client map without a lock and can abort the host when a stop races it.
                self.emit(hosted.uuid, mapping.connected_event(hosted.client.me))
                return
            event = mapping.event_from_proto(message)
            if event is not None:
                self.emit(hosted.uuid, event)

        def on_login_status(status: str) -> None:
            hosted.set_up.set()
            log.info("login status of %s: %s", hosted.uuid, status)
            event = mapping.login_status_event(status)
            if event is not None and not hosted.stopping:
                self.emit(hosted.uuid, event)

        hosted.client.on_login_status = on_login_status
        hosted.client.event.qr(on_qr)
        for event_class in mapping.SUBSCRIBED_EVENTS:
            hosted.client.event(event_class)(on_event)


@functools.cache
def _client_class() -> type:
    """neonize's NewClient, reading the login status neonize itself only prints."""
    from neonize.client import NewClient

    class StatusClient(NewClient):
        on_login_status: Callable[[str], None] | None = None

        # neonize calls `self.__onLoginStatus`, i.e. this name, with a C string's address.
        def _NewClient__onLoginStatus(self, uuid: int, status: int) -> None:
            text = ctypes.string_at(status).decode(errors="replace") if status else ""
            if self.on_login_status is not None:
                self.on_login_status(text)

    return StatusClient


def _new_client(store: str, uuid: str, jid: str | None, *, device_name: str) -> Any:
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

    from whatsapp.backends.neonize import mapping

    # Our name in the phone's list of linked devices, never neonize's default "Neonize"; the
    # pairing code's display name is separate and stays a real "Chrome (Linux)".
    props = DeviceProps(os=device_name, platformType=DeviceProps.CHROME)
    # Built with our uuid and without jid: neonize would key the client by jid.User (the phone),
    # and two companies may link the same phone. The JID is only read by connect().
    client = _client_class()(store, props=props, uuid=uuid, new_device=jid is None)
    if jid is not None:
        client.jid = mapping.jid_from_string(jid)
    # The finalizer calls Stop(uuid) whenever this object is collected, which could stop a later
    # client with the same uuid; this host stops its clients itself.
    client._stop_finalizer.detach()
    return client


def _take_channel() -> IO[bytes]:
    """Keep the real stdout for the protocol, and send everything else printed to stderr."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return channel


def ensure_schema() -> int:
    """Open the store once so whatsmeow creates or upgrades its tables, then exit."""
    from neonize.client import ClientFactory

    name = sys.stdin.read().strip()
    ClientFactory.get_all_devices_from_db(name)
    return 0


def main(argv: list[str]) -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("NEONIZE_HOST_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if "--ensure-schema" in argv:
        return ensure_schema()
    channel = _take_channel()
    host = Host(channel, debug_commands="--debug-commands" in argv)
    host.send({"ready": True, "pid": os.getpid()})
    host.serve(sys.stdin.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
