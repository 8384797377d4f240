"""`NeonizeBackend`: the real WhatsApp backend, with neonize kept in child processes.

The backend runs in the worker's event loop and never imports neonize. It starts a host process
(`whatsapp.backends.neonize.host`) that runs the neonize clients, sends it commands and turns
its replies and events into `whatsapp.errors` exceptions and `base` events.

- A host that dies (a Go panic, a kill) fails the requests waiting on it with ConnectionClosed
  and gives each of its clients `ClientCrashed`; the next command starts a fresh host, and the
  runner reconnects the sessions from their stored device JIDs.
- whatsmeow holds one database connection per `connect()` until its process exits. So connects
  are counted per host; after NEONIZE_HOST_MAX_CONNECTS the host takes no new connects, and it
  is stopped as soon as none of its clients is running (at once if they all failed). With
  failing retries the connections held stay at most NEONIZE_HOST_MAX_CONNECTS.
- A linking `connect()` that ends without a link never returns (neonize waits for an ID that
  never comes), keeping its thread and database connection. So every linking attempt runs in a
  short-lived *linking host* of its own, which is stopped when the attempt ends, whatever the
  outcome. Once linked, the client moves to the shared host: the linking host is stopped and
  the device resumes there by its JID (docs/whatsapp.md, "Linking connects never return").
- Failures on the login socket reach us only through neonize's login-status callback (the host
  reads it); a watchdog fails an attempt that shows no QR within NEONIZE_FIRST_QR_TIMEOUT.
- The calls that panic are guarded: a resumed device must exist in the store (checked here with
  SQL before the host sees the JID), get_me() runs only after ConnectedEv, PairPhone only after
  the first QR of a running connect.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections

from whatsapp.backends import base
from whatsapp.backends.neonize import store, wire
from whatsapp.errors import (
    ConnectionClosed,
    OperationTimeout,
    ServiceError,
    WhatsAppUnavailable,
    WorkerUnavailable,
    error_from_code,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

HOST_MODULE = "whatsapp.backends.neonize.host"
HOST_START_TIMEOUT = 30.0  # importing neonize and starting Go takes about a second
HOST_STOP_TIMEOUT = 5.0
STDERR_TAIL_LINES = 30
# Events that end a login window: after them the window timer must not fire.
_WINDOW_ENDERS = (
    base.PairSuccess,
    base.Connected,
    base.ConnectError,
    base.ClientCrashed,
    base.LoggedOut,
    base.PairingWindowClosed,
)


class _Host:
    """One host process and the bookkeeping the backend keeps about it.

    `kind` is "shared" (linked clients, recycled by connect count) or "linking" (one linking
    attempt, stopped when it ends)."""

    def __init__(
        self, number: int, process: asyncio.subprocess.Process, kind: str = "shared"
    ) -> None:
        self.number = number
        self.kind = kind
        self.process = process
        self.pid = process.pid
        self.clients: dict[str, NeonizeClient] = {}
        self.running: set[str] = set()  # clients whose connect() is in progress in the host
        self.connects = 0
        self.retiring = False  # takes no new connects
        self.closing = False  # we asked it to exit: its end is not a crash
        self.dead = False
        self.exited = asyncio.Event()
        self.returncode: int | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"<neonize {self.kind} host #{self.number} pid={self.pid}>"

    @property
    def idle(self) -> bool:
        return not self.running

    async def request(self, cmd: str, *, within: float, **args: Any) -> dict[str, Any]:
        if self.dead:
            raise ConnectionClosed("The neonize host has stopped; try again.")
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(wire.dumps({"id": request_id, "cmd": cmd, **args}))
            await self.process.stdin.drain()
            reply = await asyncio.wait_for(future, within)
        except (BrokenPipeError, ConnectionResetError):
            raise ConnectionClosed("The neonize host has stopped; try again.") from None
        except TimeoutError:
            raise OperationTimeout() from None
        finally:
            self._pending.pop(request_id, None)
        if not reply["ok"]:
            raise error_from_code(reply["code"], reply.get("message"), details=reply.get("details"))
        return reply["result"]

    def resolve(self, reply: dict[str, Any]) -> None:
        future = self._pending.get(reply["reply"])
        if future is not None and not future.done():
            future.set_result(reply)

    def fail_pending(self, error: ServiceError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    def crash_message(self) -> str:
        panic = next((line for line in self.stderr_tail if line.startswith("panic:")), None)
        detail = panic or (self.stderr_tail[-1] if self.stderr_tail else "no output")
        return f"neonize host (pid {self.pid}) exited with code {self.returncode}: {detail}"


class NeonizeBackend(base.Backend):
    name = "neonize"

    def __init__(
        self,
        *,
        max_connects: int | None = None,
        operation_timeout: float | None = None,
        debug_commands: bool = False,
    ) -> None:
        self._max_connects = max_connects
        self._operation_timeout = operation_timeout
        self._debug_commands = debug_commands  # tests: allows the host's debug_panic command
        self._current: _Host | None = None
        self._hosts: list[_Host] = []  # every host not yet exited, current and retiring
        self._host_lock: asyncio.Lock | None = None
        self._host_count = 0
        self._started = False
        self._start_lock: asyncio.Lock | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # --- settings read at use time, so tests can override them ----------------------------

    @property
    def max_connects(self) -> int:
        return self._max_connects or settings.NEONIZE_HOST_MAX_CONNECTS

    @property
    def operation_timeout(self) -> float:
        return self._operation_timeout or settings.WHATSAPP_OPERATION_TIMEOUT

    # --- Backend ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._ensure_started()

    async def shutdown(self) -> None:
        for host in list(self._hosts):
            await self._stop_host(host)
        for task in list(self._background):
            task.cancel()
        self._current = None

    def create_client(
        self, *, client_uuid: str, device_jid: str | None, on_event: base.EventHandler
    ) -> NeonizeClient:
        return NeonizeClient(
            self, client_uuid=client_uuid, device_jid=device_jid, on_event=on_event
        )

    def credentials_exists(self, *, client_uuid: str, device_jid: str | None) -> bool:
        return store.credentials_exists(device_jid=device_jid)

    def credentials_delete(self, *, client_uuid: str, device_jid: str | None) -> int:
        return store.credentials_delete(device_jid=device_jid)

    # --- hosts -----------------------------------------------------------------------------

    @property
    def hosts(self) -> list[_Host]:
        """Hosts not yet exited (for health checks and tests)."""
        return list(self._hosts)

    async def _ensure_started(self) -> None:
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if not self._started:
                await run_db(store.schema_ensure)
                self._started = True
                # Start the first host now, so the first connect does not wait for it; if it
                # cannot start, connects try again (and report WHATSAPP_UNAVAILABLE).
                async with self._hosts_lock():
                    if self._current is None:
                        try:
                            await self._replace_current()
                        except ServiceError:
                            log.exception("the first neonize host did not start")

    async def connect_client(self, client: NeonizeClient) -> None:
        """Start `client`'s connect(): a linking client on a linking host of its own, a linked
        one on the current shared host (recycling shared hosts as needed).

        Serialised for shared hosts: connect counting, recycling and moves never interleave.
        """
        if client.device_jid is None:
            await self._connect_linking(client)
            return
        async with self._hosts_lock():
            host = self._current
            if host is None or host.dead or host.closing or host.retiring:
                host = await self._replace_current()
            if client.host is not None and client.host is not host:
                if client.uuid in client.host.running:
                    return  # still connecting/connected on a retiring host: leave it there
                await self._move_away(client)
            if client.host is None:
                await host.request(
                    "create",
                    within=self.operation_timeout,
                    client=client.uuid,
                    store=client.store_name,
                    jid=client.device_jid,
                    device_name=settings.WHATSAPP_DEVICE_NAME,
                )
                host.clients[client.uuid] = client
                client.host = host
            if client.uuid in host.running:
                return  # already connecting or connected: a repeated connect() is harmless
            host.connects += 1
            await host.request("connect", within=self.operation_timeout, client=client.uuid)
            # The host announced "running" before its reply, so a retiring host is not idle
            # here; it is stopped when its last running client is done.
            if host.connects >= self.max_connects:
                log.info("%s reached %d connects; retiring it", host, host.connects)
                host.retiring = True
                self._retire_when_idle(host)

    async def _connect_linking(self, client: NeonizeClient) -> None:
        if client.host is not None:
            await self.release(client)
        linking = [h for h in self._hosts if h.kind == "linking" and not h.closing]
        if len(linking) >= settings.NEONIZE_MAX_LINKING_HOSTS:
            raise WorkerUnavailable(
                "Too many linking attempts are running on this worker; try again in a minute."
            )
        host = await self._spawn_host(kind="linking")
        try:
            await host.request(
                "create",
                within=self.operation_timeout,
                client=client.uuid,
                store=client.store_name,
                jid=None,
                device_name=settings.WHATSAPP_DEVICE_NAME,
            )
            host.clients[client.uuid] = client
            client.host = host
            host.connects += 1
            await host.request("connect", within=self.operation_timeout, client=client.uuid)
        except BaseException:
            client._leave(host)
            await self._stop_host(host)
            raise

    async def release(self, client: NeonizeClient, command: str = "disconnect") -> None:
        """Take `client` out of its host: `disconnect` stops it (credentials stay), `logout` also
        unlinks it on WhatsApp. A linking host has nothing left to do then and is stopped: its
        connect() may never return, and only the process's end frees its thread and connection."""
        host = client.host
        if host is None:
            return
        client._leave(host)
        if host.dead:
            return
        try:
            if command == "logout" or host.kind == "shared":
                extra = {"forget": True} if command == "disconnect" else {}
                await host.request(
                    command, within=self.operation_timeout, client=client.uuid, **extra
                )
        finally:
            if host.kind == "linking":
                await self._stop_host(host)
            else:
                self._retire_when_idle(host)

    def _hosts_lock(self) -> asyncio.Lock:
        # Created on first use: the lock belongs to the loop the backend runs on.
        if self._host_lock is None:
            self._host_lock = asyncio.Lock()
        return self._host_lock

    async def _replace_current(self) -> _Host:
        old = self._current
        if old is not None and not old.dead and old.idle:
            # Let the old host exit (and free its database connections) before the new one
            # opens any: the connections held never exceed one host's worth.
            await self._stop_host(old)
        host = await self._spawn_host()
        self._current = host
        return host

    async def _move_away(self, client: NeonizeClient) -> None:
        with contextlib.suppress(ServiceError):
            await self.release(client)

    async def _spawn_host(self, kind: str = "shared") -> _Host:
        self._host_count += 1
        flags = ["--debug-commands"] if self._debug_commands else []
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            HOST_MODULE,
            *flags,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=store.PROJECT_ROOT,
            env=store.host_environment(),
            # Terminal signals (Ctrl+C) go to the worker, which stops the host itself.
            start_new_session=True,
            limit=1 << 20,
        )
        host = _Host(self._host_count, process, kind)
        self._hosts.append(host)
        host._tasks = [
            asyncio.create_task(self._read_channel(host)),
            asyncio.create_task(self._read_stderr(host)),
        ]
        try:
            await asyncio.wait_for(asyncio.shield(host._ready), HOST_START_TIMEOUT)
        except (TimeoutError, ServiceError) as error:
            await self._stop_host(host)
            raise WhatsAppUnavailable(
                f"The neonize host did not start: {host.crash_message()}"
            ) from error
        log.info("started %s", host)
        return host

    def _retire_when_idle(self, host: _Host) -> None:
        if host.retiring and host.idle and not host.closing and not host.dead:
            self._spawn_background(self._stop_host(host))

    async def _stop_host(self, host: _Host) -> None:
        if host.exited.is_set():
            return
        if not host.closing:
            host.closing = True
            log.info("stopping %s after %d connects", host, host.connects)
            with contextlib.suppress(ServiceError):
                await host.request("shutdown", within=HOST_STOP_TIMEOUT)
        try:
            await asyncio.wait_for(host.exited.wait(), HOST_STOP_TIMEOUT)
        except TimeoutError:
            log.warning("%s did not exit; killing it", host)
            with contextlib.suppress(ProcessLookupError):
                host.process.kill()
            await host.exited.wait()

    # --- host output -------------------------------------------------------------------------

    async def _read_channel(self, host: _Host) -> None:
        assert host.process.stdout is not None
        try:
            while line := await _readline(host.process.stdout):
                try:
                    self._dispatch(host, wire.loads(line))
                except Exception:
                    log.exception("bad message from %s: %r", host, line[:200])
        finally:
            await self._host_gone(host)

    async def _read_stderr(self, host: _Host) -> None:
        assert host.process.stderr is not None
        while line := await _readline(host.process.stderr):
            text = line.decode(errors="replace").rstrip()
            host.stderr_tail.append(text)
            log.debug("%s: %s", host, text)

    def _dispatch(self, host: _Host, message: dict[str, Any]) -> None:
        if "reply" in message:
            host.resolve(message)
        elif "event" in message:
            client = host.clients.get(message["client"])
            if client is not None and client.host is host:
                client.emit(wire.decode_event(message["event"]))
        elif "state" in message:
            if message["state"] == "running":
                host.running.add(message["client"])
            else:
                host.running.discard(message["client"])
                self._retire_when_idle(host)
        elif message.get("ready") and not host._ready.done():
            host._ready.set_result(None)

    async def _host_gone(self, host: _Host) -> None:
        host.returncode = await host.process.wait()
        # The stderr reader may still hold the panic text; give it a moment to finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(host._tasks[1]), 1.0)
        host.dead = True
        host.running.clear()
        if self._current is host:
            self._current = None
        if host in self._hosts:
            self._hosts.remove(host)
        if not host._ready.done():
            host._ready.set_exception(ConnectionClosed("The neonize host exited at start."))
            host._ready.exception()  # retrieved here so asyncio does not log it
        crashed = not host.closing
        host.fail_pending(
            ConnectionClosed(
                "The WhatsApp connection ended: the neonize host "
                + ("crashed." if crashed else "stopped.")
            )
        )
        if crashed:
            message = host.crash_message()
            log.error("%s", message)
            for client in list(host.clients.values()):
                if client.host is host:
                    client.host = None
                    client.emit(base.ClientCrashed(message))
        else:
            log.info("%s exited (code %s)", host, host.returncode)
            for client in host.clients.values():
                if client.host is host:
                    client.host = None
        host.clients.clear()
        host.exited.set()

    def _spawn_background(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class NeonizeClient(base.BackendClient):
    def __init__(
        self,
        backend: NeonizeBackend,
        *,
        client_uuid: str,
        device_jid: str | None,
        on_event: base.EventHandler,
    ) -> None:
        self.backend = backend
        self.uuid = client_uuid
        self.device_jid = device_jid
        self.on_event = on_event
        self.host: _Host | None = None
        self.store_name = ""
        self._queue: asyncio.Queue[base.BackendEvent] = asyncio.Queue()
        self._delivery: asyncio.Task[None] | None = None
        self._window_timer: asyncio.TimerHandle | None = None
        self._first_qr_timer: asyncio.TimerHandle | None = None
        self._paired_jid: str | None = None
        self._ended = False  # disconnect() or logout() was asked: nothing may start again

    def __repr__(self) -> str:
        return f"<NeonizeClient {self.uuid}>"

    async def connect(self) -> None:
        backend = self.backend
        self._ended = False
        try:
            await backend._ensure_started()
            if self.device_jid is not None:
                # Go panics on a JID without a device row (e.g. after a reset), so ask first.
                exists = await run_db(store.credentials_exists, device_jid=self.device_jid)
                if not exists:
                    self.emit(base.LoggedOut(reason="device missing from store"))
                    return
            self.store_name = await run_db(store.store_name)
            if self.device_jid is None:
                self._start_first_qr_watchdog()
            await backend.connect_client(self)
        except ServiceError as error:
            self.emit(base.ConnectError(error_code=error.code, message=error.message))
        except Exception as error:  # the outcome of connect() is an event, never an exception
            log.exception("connect of %s failed", self.uuid)
            self.emit(base.ConnectError(error_code="INTERNAL_ERROR", message=str(error)))

    async def pair_phone(self, phone_digits: str) -> str:
        host = self.host
        if host is None or host.dead or self.uuid not in host.running:
            raise ConnectionClosed("The WhatsApp connection is not open; start linking again.")
        timeout = self.backend.operation_timeout
        result = await host.request(
            "pair_phone",
            within=timeout,
            client=self.uuid,
            phone=phone_digits,
            wait=max(timeout - 1.0, 0.1),
        )
        return str(result["code"])

    async def logout(self) -> None:
        await self._end("logout")

    async def disconnect(self) -> None:
        await self._end("disconnect", forget=True)

    async def _end(self, command: str, **arguments: Any) -> None:
        """Stop this client in its host (`logout` also unlinks it on WhatsApp)."""
        self._ended = True
        self._cancel_window()
        self._cancel_first_qr_watchdog()
        await self.backend.release(self, command)

    def _leave(self, host: _Host) -> None:
        self.host = None
        # Another client object with our uuid may have taken the slot; it is not ours to drop.
        if host.clients.get(self.uuid) is self:
            del host.clients[self.uuid]

    # --- events ----------------------------------------------------------------------------

    def emit(self, event: base.BackendEvent) -> None:
        """Queue an event for `on_event`; one delivery task keeps them in order."""
        if isinstance(event, _WINDOW_ENDERS):
            self._cancel_window()
        if not isinstance(event, base.PairingWindowClosed):
            self._cancel_first_qr_watchdog()  # the login socket answered
        if isinstance(event, base.QRCode) and event.index == 0:
            self._start_window(event.window_expires_at)
        if isinstance(event, base.PairSuccess):
            self._paired_jid = event.jid
        if isinstance(event, base.Connected):
            host = self.host
            jid = event.jid or self._paired_jid
            if host is not None and host.kind == "linking" and jid:
                # Linked: "connected" is news once the client runs on the shared host, so that
                # nothing acts on a connection that is about to go.
                self.backend._spawn_background(self._move_to_shared(jid))
                return
        self._queue.put_nowait(event)
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        while not self._queue.empty():
            event = self._queue.get_nowait()
            try:
                await self.on_event(event)
            except Exception:
                log.exception("on_event of %s failed for %s", self.uuid, type(event).__name__)

    async def _move_to_shared(self, jid: str) -> None:
        """Linked on its linking host: stop that host and resume the device on the shared one."""
        try:
            await self.backend.release(self)
            if self._ended:
                return
            self.device_jid = jid
            await self.backend.connect_client(self)
            if self._ended:  # stopped while it was connecting there
                await self.backend.release(self)
        except ServiceError as error:
            self.emit(base.ConnectError(error_code=error.code, message=error.message))

    def _start_first_qr_watchdog(self) -> None:
        self._cancel_first_qr_watchdog()
        seconds = settings.NEONIZE_FIRST_QR_TIMEOUT
        self._first_qr_timer = asyncio.get_running_loop().call_later(
            seconds, self._no_first_qr, seconds
        )

    def _cancel_first_qr_watchdog(self) -> None:
        if self._first_qr_timer is not None:
            self._first_qr_timer.cancel()
            self._first_qr_timer = None

    def _no_first_qr(self, seconds: float) -> None:
        self._first_qr_timer = None
        self.emit(
            base.ConnectError(
                error_code="WHATSAPP_UNAVAILABLE",
                message=f"WhatsApp opened no linking window (no QR code within {seconds:g} s).",
            )
        )

    def _start_window(self, window_expires_at: datetime) -> None:
        # The login socket's terminal "timeout" is not delivered by neonize 0.5.2: infer it.
        self._cancel_window()
        delay = max((window_expires_at - datetime.now(UTC)).total_seconds(), 0.0)
        self._window_timer = asyncio.get_running_loop().call_later(delay, self._window_closed)

    def _cancel_window(self) -> None:
        if self._window_timer is not None:
            self._window_timer.cancel()
            self._window_timer = None

    def _window_closed(self) -> None:
        self._window_timer = None
        self.emit(base.PairingWindowClosed())
        # Online, whatsmeow has closed the login socket, but connect() blocks until stopped.
        host = self.host
        if host is not None and not host.dead:
            self.backend._spawn_background(self._stop_after_window(host))

    async def _stop_after_window(self, host: _Host) -> None:
        if self.host is host:
            with contextlib.suppress(ServiceError):
                await self.backend.release(self)


async def _readline(stream: asyncio.StreamReader) -> bytes:
    """The next line; an overlong one is dropped, never left to block the host on a full pipe."""
    while True:
        try:
            return await stream.readline()
        except ValueError:
            log.warning("dropped an overlong line from the neonize host")


async def run_db(function: Callable[..., T], /, **kwargs: Any) -> T:
    """Run Django database work off the event loop, closing the thread's connection after.

    Worker threads are reused by the executor: a connection left open there would idle forever.
    """

    def call() -> T:
        try:
            return function(**kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)
