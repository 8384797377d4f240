"""Driving the emulator: `Emulator` runs the transport and the server on an asyncio loop in a
background thread, and offers the phone's actions, scripted failures and waits as plain
(blocking, thread-safe) Python methods; `ControlServer` mirrors them as JSON over HTTP on
127.0.0.1 for other processes (`python -m emulator`).

From async code, call the blocking methods through `asyncio.to_thread` (never from the
emulator's own loop)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from emulator import phone as phones_mod
from emulator.binary import JID
from emulator.certs import RootKey
from emulator.phone import PhoneError, Phones
from emulator.server import (
    CODE_FAILURES,
    DROP,
    FAILURE_REASONS,
    CodeFailure,
    EmulatorError,
    FailureRule,
    Server,
    parse_device,
)
from emulator.transport import Transport

log = logging.getLogger("emulator.control")

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


class Emulator:
    """A local WhatsApp web server with scriptable phones.

    emu = Emulator(speed=20).start()
    env = emu.client_env(os.environ, pythonpath=patched_copy)   # for a neonize child
    window = emu.wait_for_window()
    emu.scan_qr("4915112345678", qr_string)
    emu.stop()
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        root: RootKey | None = None,
        root_file: Path | str | None = None,
    ) -> None:
        if root is None:
            root = RootKey.load_or_create(Path(root_file)) if root_file else RootKey.generate()
        self.root = root
        self.phones = Phones()
        self.server = Server(self.phones, speed=speed)
        self.transport: Transport | None = None
        self.control: ControlServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- life -----------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self.transport = Transport(self.server.handle, self.root)
                loop.run_until_complete(self.transport.start())
            except BaseException as error:  # report it to start()'s caller
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="whatsapp-emulator", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
            self.control = None
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = None
        self._thread = None

    async def _shutdown(self) -> None:
        if self.transport is not None:
            await self.transport.stop()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- where clients connect ------------------------------------------------------------

    @property
    def proxy_url(self) -> str:
        return self._transport().proxy_url

    @property
    def ca_file(self) -> str:
        return self._transport().ca_file

    @property
    def root_public(self) -> bytes:
        return self.root.public

    @property
    def speed(self) -> float:
        return self.server.speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value <= 0:
            raise ValueError("speed must be positive")
        self.server.speed = value

    def client_env(
        self, base_env: dict[str, str] | Any, *, pythonpath: Path | str
    ) -> dict[str, str]:
        """The environment for a child running the patched neonize copy at `pythonpath`."""
        from emulator.neonize_copy import client_env

        return client_env(
            base_env, pythonpath=pythonpath, proxy_url=self.proxy_url, ca_file=self.ca_file
        )

    # --- the phone ------------------------------------------------------------------------

    def scan_qr(
        self, phone: str, qr: str | bytes, *, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """The phone of `phone` scans a QR string (`https://wa.me/...#ref,...` or `ref,...`);
        returns the linked device once the client has confirmed."""
        text = qr.decode() if isinstance(qr, bytes) else qr
        device = self._call(self.server.scan_qr(phone, text), timeout)
        return device.to_dict()

    def enter_code(self, phone: str, code: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """The phone of `phone` types a pairing code (`ABCD-EFGH`)."""
        device = self._call(self.server.enter_code(phone, code), timeout)
        return device.to_dict()

    def unlink(self, phone: str, device: int | str) -> dict[str, Any]:
        """The phone removes a linked device: the live connection gets
        `<stream:error code="401"><conflict type="device_removed"/>`, later logins 401."""
        number = device if isinstance(device, int) else parse_device(str(device))[1]
        removed = self._call(self.server.unlink(phone, number))
        return removed.to_dict()

    def account(
        self, phone: str, *, platform: str | None = None, business_name: str | None = None
    ) -> dict[str, Any]:
        """The account of `phone` (created on first use), optionally changing what pair-success
        reports about it (`platform` "android"/"iphone"/"smbi"..., a business name)."""

        async def get() -> dict[str, Any]:
            account = self.phones.account(phone)
            if platform is not None:
                account.platform = platform
            if business_name is not None:
                account.business_name = business_name
            return account.to_dict()

        return self._call(get())

    # --- the operator ---------------------------------------------------------------------

    def drop(self, target: str | int) -> int:
        """Close sockets without a word (a device JID, a phone number, or a connection id):
        a linked client reconnects by itself; a login window ends as a QR timeout."""
        return self._call(self.server.drop(target))

    def replace(self, target: str | int) -> int:
        """Another client takes over the device's keys: its live connection is replaced."""
        return self._call(self.server.replace(target))

    def stream_error(self, target: str | int, code: str = "503") -> int:
        return self._call(self.server.stream_error(target, code))

    def request_passkey(self, connection: int | None = None) -> int:
        """Ask a login window's client for a passkey (whatsmeow's `passkey-request`)."""
        return self._call(self.server.request_passkey(connection))

    def fail_next_login(
        self,
        reason: int,
        *,
        phone: str | None = None,
        device: int | str | None = None,
        linking: bool | None = None,
        code: int | None = None,
        expire: int | None = None,
        times: int | None = 1,
        message: str | None = None,
    ) -> None:
        """The next matching connection gets `<failure reason=...>` right after the handshake.
        402 carries `code` (default 101) and `expire` seconds (default 3600). `linking=True`
        only hits new devices (e.g. 405 before any QR), False only logins. `times=None`:
        until `clear_failures()`."""
        if reason not in FAILURE_REASONS:
            raise ValueError(f"reason must be one of {sorted(FAILURE_REASONS)}")
        if isinstance(device, str):
            user, device = parse_device(device)
            phone = phone or user
        rule = FailureRule(
            reason=reason,
            phone=phones_mod.digits(phone) if phone else None,
            device=device,
            linking=linking,
            code=code,
            expire=expire,
            times=times,
            message=message,
        )

        async def add() -> None:
            self.server.failures.append(rule)

        self._call(add())

    def drop_next(
        self,
        *,
        phone: str | None = None,
        device: int | str | None = None,
        linking: bool | None = None,
        times: int | None = 1,
    ) -> None:
        """The next matching connection is closed right after the handshake, without a word
        (WhatsApp unreachable for a moment: whatsmeow retries with backoff)."""
        self.fail_next_login(DROP, phone=phone, device=device, linking=linking, times=times)

    def fail_code_requests(self, phone: str, kind: str | None, *, times: int | None = None) -> None:
        """Pairing-code requests for `phone` ("*": any) fail: "rate-overlimit" (IQ error 429),
        "not-on-whatsapp" (404 item-not-found), "bad-request" (400), "timeout" (no answer).
        `kind=None` clears the rules of that phone."""
        if kind is not None and kind not in CODE_FAILURES:
            raise ValueError(f"kind must be one of {sorted(CODE_FAILURES)}")
        number = phone if phone == "*" else phones_mod.digits(phone)

        async def change() -> None:
            self.server.code_failures = [r for r in self.server.code_failures if r.phone != number]
            if kind is not None:
                self.server.code_failures.append(CodeFailure(number, kind, times))

        self._call(change())

    def clear_failures(self) -> None:
        async def clear() -> None:
            self.server.failures.clear()
            self.server.code_failures.clear()

        self._call(clear())

    def failures(self) -> dict[str, list[dict[str, Any]]]:
        async def get() -> dict[str, list[dict[str, Any]]]:
            return {
                "login": [rule.to_dict() for rule in self.server.failures],
                "code": [rule.to_dict() for rule in self.server.code_failures],
            }

        return self._call(get())

    # --- what is going on -----------------------------------------------------------------

    def open_windows(self) -> list[dict[str, Any]]:
        """Login windows still open: refs, the current ref, seconds left, the pending code."""

        async def get() -> list[dict[str, Any]]:
            return self.server.open_windows()

        return self._call(get())

    def devices(self, phone: str | None = None) -> list[dict[str, Any]]:
        async def get() -> list[dict[str, Any]]:
            return [
                device.to_dict()
                for device in self.phones.devices()
                if phone is None or device.jid.user == phones_mod.digits(phone)
            ]

        return self._call(get())

    def accounts(self) -> list[dict[str, Any]]:
        async def get() -> list[dict[str, Any]]:
            return [account.to_dict() for account in self.phones.accounts.values()]

        return self._call(get())

    def connections(self) -> list[dict[str, Any]]:
        """Every connection so far: what the client sent (user agent, device props, pair-code
        display name and platform id), its device JID, keepalives, IQs and outcome."""

        async def get() -> list[dict[str, Any]]:
            return self.server.connections()

        return self._call(get())

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        with self.server.changed:
            return [dict(event) for event in self.server.events[since:]]

    def mark(self) -> int:
        """The sequence number the next event will get: `wait_for(..., since=mark)`."""
        with self.server.changed:
            return len(self.server.events)

    def wait_for(
        self,
        kind: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        since: int = 0,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        **match: Any,
    ) -> dict[str, Any]:
        """The first event of `kind` (at or after `since`) whose fields equal `match`.
        Kinds: connection-opened, window-opened, window-expired, code-requested, code-refused,
        code-entered, paired, pair-error, login-success, login-failure, active (the client
        finished logging in: Connected), keepalive, replaced, unlinked, dropped,
        passkey-requested, unknown-iq, prekeys-uploaded, connection-closed."""
        deadline = time.monotonic() + timeout
        with self.server.changed:
            index = since
            while True:
                events = self.server.events
                while index < len(events):
                    event = events[index]
                    index += 1
                    if event["kind"] != kind:
                        continue
                    if any(event.get(key) != value for key, value in match.items()):
                        continue
                    if predicate is not None and not predicate(event):
                        continue
                    return dict(event)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} event {match or ''} within {timeout} s")
                self.server.changed.wait(left)

    def wait_for_window(
        self, *, timeout: float = DEFAULT_TIMEOUT, since: int = 0
    ) -> dict[str, Any]:
        return self.wait_for("window-opened", timeout=timeout, since=since)

    def wait_for_connected(
        self, jid: str, *, timeout: float = DEFAULT_TIMEOUT, since: int = 0
    ) -> dict[str, Any]:
        """The device (`user:device@s.whatsapp.net`) logged in and went active (Connected)."""
        user, device = parse_device(jid)
        full = str(JID(user, "s.whatsapp.net", device))
        return self.wait_for("active", timeout=timeout, since=since, jid=full)

    # --- HTTP -----------------------------------------------------------------------------

    def start_control(self, port: int = 0) -> str:
        """Serve the JSON control API on 127.0.0.1:`port` (0: any); returns its base URL."""
        if self.control is None:
            self.control = ControlServer(self, port)
            self.control.start()
        return self.control.url

    @property
    def control_url(self) -> str | None:
        return self.control.url if self.control else None

    def status(self) -> dict[str, Any]:
        return {
            "proxy_url": self.proxy_url,
            "ca_file": self.ca_file,
            "root_public": self.root_public.hex(),
            "control_url": self.control_url,
            "speed": self.speed,
        }

    # --- plumbing -------------------------------------------------------------------------

    def _transport(self) -> Transport:
        if self.transport is None:
            raise RuntimeError("the emulator is not started")
        return self.transport

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the emulator is not started")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coroutine.close()
            raise RuntimeError("blocking emulator call from the emulator's own loop")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise


# --- HTTP control server ------------------------------------------------------------------


class ControlServer:
    """JSON over HTTP on 127.0.0.1. GET: /status /windows /devices /accounts /connections
    /failures /events?since=N. POST (JSON body): /scan_qr {phone, qr}, /enter_code {phone,
    code}, /unlink {phone, device}, /drop {target}, /stream_error {target, code},
    /fail_next_login {reason, phone, device, linking, code, expire, times, message},
    /drop_next {phone, device, linking, times}, /fail_code_requests {phone, kind, times},
    /clear_failures, /request_passkey {connection},
    /speed {speed}, /account {phone, platform, business_name}, /wait_for {kind, timeout,
    since, match}. Errors answer 400 (bad command) or 409 (the emulator refused) with
    {"error": text}."""

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        self.emulator = emulator
        handler = _make_handler(emulator)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="emulator-control", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)


def _make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    gets: dict[str, Callable[[dict[str, list[str]]], Any]] = {
        "/status": lambda q: emulator.status(),
        "/windows": lambda q: emulator.open_windows(),
        "/devices": lambda q: emulator.devices(q.get("phone", [None])[0]),
        "/accounts": lambda q: emulator.accounts(),
        "/connections": lambda q: emulator.connections(),
        "/failures": lambda q: emulator.failures(),
        "/events": lambda q: emulator.events(int(q.get("since", ["0"])[0])),
    }

    def set_speed(body: dict[str, Any]) -> dict[str, Any]:
        emulator.speed = float(body["speed"])
        return {"speed": emulator.speed}

    def wait_for(body: dict[str, Any]) -> dict[str, Any]:
        return emulator.wait_for(
            body["kind"],
            timeout=float(body.get("timeout", DEFAULT_TIMEOUT)),
            since=int(body.get("since", 0)),
            **dict(body.get("match") or {}),
        )

    posts: dict[str, Callable[[dict[str, Any]], Any]] = {
        "/scan_qr": lambda b: emulator.scan_qr(b["phone"], b["qr"]),
        "/enter_code": lambda b: emulator.enter_code(b["phone"], b["code"]),
        "/unlink": lambda b: emulator.unlink(b["phone"], b["device"]),
        "/drop": lambda b: {"dropped": emulator.drop(b["target"])},
        "/stream_error": lambda b: {
            "sent": emulator.stream_error(b["target"], str(b.get("code", "503")))
        },
        "/fail_next_login": lambda b: emulator.fail_next_login(
            int(b["reason"]),
            phone=b.get("phone"),
            device=b.get("device"),
            linking=b.get("linking"),
            code=b.get("code"),
            expire=b.get("expire"),
            times=b.get("times", 1),
            message=b.get("message"),
        ),
        "/fail_code_requests": lambda b: emulator.fail_code_requests(
            b["phone"], b.get("kind"), times=b.get("times")
        ),
        "/drop_next": lambda b: emulator.drop_next(
            phone=b.get("phone"),
            device=b.get("device"),
            linking=b.get("linking"),
            times=b.get("times", 1),
        ),
        "/clear_failures": lambda b: emulator.clear_failures(),
        "/request_passkey": lambda b: {"connection": emulator.request_passkey(b.get("connection"))},
        "/speed": set_speed,
        "/account": lambda b: emulator.account(
            b["phone"], platform=b.get("platform"), business_name=b.get("business_name")
        ),
        "/wait_for": wait_for,
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("control: " + format, *args)

        def _reply(self, status: int, data: Any) -> None:
            body = json.dumps(data, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _run(self, action: Callable[[], Any]) -> None:
            try:
                result = action()
            except (KeyError, ValueError, TypeError) as error:
                self._reply(400, {"error": f"{type(error).__name__}: {error}"})
            except (EmulatorError, PhoneError, TimeoutError) as error:
                self._reply(409, {"error": str(error) or type(error).__name__})
            except Exception as error:
                log.exception("control command failed")
                self._reply(500, {"error": f"{type(error).__name__}: {error}"})
            else:
                self._reply(200, {} if result is None else result)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            route = gets.get(url.path)
            if route is None:
                self._reply(404, {"error": f"no such endpoint {url.path}"})
                return
            query = parse_qs(url.query)
            self._run(lambda: route(query))

        def do_POST(self) -> None:
            url = urlparse(self.path)
            route = posts.get(url.path)
            if route is None:
                self._reply(404, {"error": f"no such endpoint {url.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
            except ValueError as error:
                self._reply(400, {"error": f"bad JSON: {error}"})
                return
            self._run(lambda: route(body))

    return Handler
