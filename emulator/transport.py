"""The emulator's transport: TLS behind a CONNECT proxy, the WebSocket `/ws/chat`, whatsmeow's
frame header, and the Noise XX handshake with the emulator's certificate chain.

Interface (stable: the protocol layer codes against it):

    class Connection:
        client_payload: waWa6.ClientPayload   # decrypted from the client's ClientFinish
        client_static: bytes                  # the client's 32-byte Noise static public key
        async def recv_node(self) -> Node     # raises ConnectionClosedError when the socket ends
        async def send_node(self, node: Node) -> None
        async def close(self) -> None         # close the WebSocket (the client sees a drop)
        closed: bool

    class Transport:
        def __init__(self, handler: Callable[[Connection], Awaitable[None]], root: RootKey) -> None
        async def start(self) -> None         # listens; sets proxy_url and ca_file
        async def stop(self) -> None
        proxy_url: str                        # "http://127.0.0.1:<port>" for HTTPS_PROXY
        ca_file: str                          # PEM of the test CA, for SSL_CERT_FILE

`handler(conn)` runs once per client connection, after a successful handshake, on the
transport's asyncio loop; when it returns the connection is closed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import ssl
import struct
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from neonize.proto.waWa6 import WAWebProtobufsWa6_pb2 as waWa6

from emulator import tokens
from emulator.binary import Node, decode, encode
from emulator.certs import KeyPair, RootKey
from emulator.tls import TestCertificates, make_certificates

log = logging.getLogger(__name__)

NOISE_PATTERN = b"Noise_XX_25519_AESGCM_SHA256\x00\x00\x00\x00"
WA_HEADER = bytes([ord("W"), ord("A"), 6, tokens.DICT_VERSION])
FRAME_MAX = 1 << 24
WS_PATH = "/ws/chat"
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HANDSHAKE_TIMEOUT = 20.0


class ConnectionClosedError(Exception):
    """The client's socket ended (or was closed by us)."""


class HandshakeError(Exception):
    """The client did not complete the Noise handshake (for instance it refused our chain)."""


# ---------------------------------------------------------------------------------------------
# Noise


def _hkdf_pair(salt: bytes, key_material: bytes) -> tuple[bytes, bytes]:
    """HKDF-SHA256 with empty info, 64 bytes, split into two 32-byte keys."""
    prk = hmac.new(salt, key_material, hashlib.sha256).digest()
    first = hmac.new(prk, b"\x01", hashlib.sha256).digest()
    second = hmac.new(prk, first + b"\x02", hashlib.sha256).digest()
    return first, second


def _iv(counter: int) -> bytes:
    return b"\x00" * 8 + struct.pack(">I", counter)


class NoiseState:
    """The symmetric half of WhatsApp's Noise XX handshake (socket/noisehandshake.go), usable
    from either side: both sides run the same mixes in the same order."""

    def __init__(self, header: bytes) -> None:
        self.hash = (
            NOISE_PATTERN if len(NOISE_PATTERN) == 32 else hashlib.sha256(NOISE_PATTERN).digest()
        )
        self.salt = self.hash
        self.key = AESGCM(self.hash)
        self.counter = 0
        self.authenticate(header)

    def authenticate(self, data: bytes) -> None:
        self.hash = hashlib.sha256(self.hash + data).digest()

    def _next_iv(self) -> bytes:
        iv = _iv(self.counter)
        self.counter += 1
        return iv

    def encrypt(self, plaintext: bytes) -> bytes:
        ciphertext = self.key.encrypt(self._next_iv(), plaintext, self.hash)
        self.authenticate(ciphertext)
        return ciphertext

    def decrypt(self, ciphertext: bytes) -> bytes:
        plaintext = self.key.decrypt(self._next_iv(), ciphertext, self.hash)
        self.authenticate(ciphertext)
        return plaintext

    def mix_key(self, material: bytes) -> None:
        self.counter = 0
        self.salt, key = _hkdf_pair(self.salt, material)
        self.key = AESGCM(key)

    def mix_dh(self, keys: KeyPair, peer_public: bytes) -> None:
        self.mix_key(keys.dh(peer_public))

    def split(self) -> tuple[bytes, bytes]:
        """(client write key, client read key): the server reads with the first."""
        return _hkdf_pair(self.salt, b"")


# ---------------------------------------------------------------------------------------------
# WebSocket (RFC 6455, server side, no extensions) over an asyncio stream


class _WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.write_lock = asyncio.Lock()
        self.closed = False

    async def _send(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        if length < 126:
            head = struct.pack(">BB", 0x80 | opcode, length)
        elif length < 1 << 16:
            head = struct.pack(">BBH", 0x80 | opcode, 126, length)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 127, length)
        async with self.write_lock:
            if self.writer.is_closing():
                raise ConnectionClosedError("socket closed")
            self.writer.write(head + payload)
            try:
                await self.writer.drain()
            except (ConnectionError, OSError) as exc:
                raise ConnectionClosedError(str(exc)) from exc

    async def send_binary(self, payload: bytes) -> None:
        if self.closed:
            raise ConnectionClosedError("websocket closed")
        await self._send(0x2, payload)

    async def close(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(ConnectionClosedError, ConnectionError, OSError):
                await self._send(0x8, struct.pack(">H", code))
        self.abort()

    def abort(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
        if length > FRAME_MAX + 16:
            raise ConnectionClosedError(f"websocket frame too large ({length})")
        mask = await self.reader.readexactly(4) if b1 & 0x80 else b""
        payload = await self.reader.readexactly(length)
        if mask:
            key = int.from_bytes(mask * (length // 4 + 1), "big") >> (8 * (4 - length % 4))
            payload = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
        return bool(b0 & 0x80), b0 & 0x0F, payload

    async def recv_binary(self) -> bytes:
        """The next whole data message; answers pings; raises ConnectionClosedError at the end."""
        parts: list[bytes] = []
        while True:
            if self.closed:
                raise ConnectionClosedError("websocket closed")
            try:
                fin, opcode, payload = await self._read_frame()
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
                self.abort()
                raise ConnectionClosedError("client went away") from exc
            if opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                await self.close(1000 if code == 1005 else code)
                raise ConnectionClosedError(f"client closed the websocket ({code})")
            if opcode == 0x9:
                await self._send(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts)


async def _read_http_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


# ---------------------------------------------------------------------------------------------
# Connection


class Connection:
    """One client after a successful Noise handshake.

    A reader task drains the socket from the start (answering pings and the client's close at
    once), decrypts frames in order and queues them for `recv_frame`/`recv_node`."""

    def __init__(
        self,
        ws: _WebSocket,
        *,
        client_payload: waWa6.ClientPayload,
        client_static: bytes,
        read_key: bytes,
        write_key: bytes,
        inbound: bytearray,
        target: str,
        header: bytes,
        request_headers: dict[str, str],
    ) -> None:
        self._ws = ws
        self.client_payload = client_payload
        self.client_static = client_static
        self.target = target  # the CONNECT target, e.g. "web.whatsapp.com:443"
        self.header = header  # the client's connection header: b"WA", 6, dictionary version
        self.request_headers = request_headers  # of the WebSocket upgrade (lower-case names)
        self._read = AESGCM(read_key)
        self._write = AESGCM(write_key)
        self._read_counter = 0
        self._write_counter = 0
        self._inbound = inbound
        self._send_lock = asyncio.Lock()
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.close_reason = ""
        self._reader = asyncio.create_task(self._pump(), name="emulator-connection-reader")

    @property
    def closed(self) -> bool:
        return self._ws.closed

    async def _pump(self) -> None:
        try:
            while True:
                ciphertext = await _next_frame(self._ws, self._inbound)
                iv = _iv(self._read_counter)
                self._read_counter += 1
                try:
                    plaintext = self._read.decrypt(iv, ciphertext, None)
                except Exception:
                    self.close_reason = "a frame failed to decrypt"
                    break
                await self._frames.put(plaintext)
        except ConnectionClosedError as exc:
            self.close_reason = self.close_reason or str(exc)
        except Exception as exc:
            log.exception("emulator connection reader failed")
            self.close_reason = self.close_reason or repr(exc)
        except asyncio.CancelledError:
            self.close_reason = self.close_reason or "closed by the emulator"
            raise
        finally:
            self._ws.abort()
            self._frames.put_nowait(None)

    async def recv_frame(self) -> bytes:
        """The next decrypted frame payload (flags byte included)."""
        frame = await self._frames.get()
        if frame is None:
            self._frames.put_nowait(None)  # every later call ends the same way
            raise ConnectionClosedError(self.close_reason or "connection closed")
        return frame

    async def recv_node(self) -> Node:
        return decode(await self.recv_frame())

    async def send_frame(self, plaintext: bytes) -> None:
        """Encrypts and sends one frame payload (use `send_node` unless testing odd frames)."""
        async with self._send_lock:
            ciphertext = self._write.encrypt(_iv(self._write_counter), plaintext, None)
            self._write_counter += 1
            await self._ws.send_binary(_frame(ciphertext))

    async def send_node(self, node: Node) -> None:
        await self.send_frame(encode(node))

    async def close(self) -> None:
        """Closes the WebSocket normally (close frame, then TCP close)."""
        self.close_reason = self.close_reason or "closed by the emulator"
        await self._ws.close()
        await self._stop_reader()

    def abort(self) -> None:
        """Drops the TCP connection without a WebSocket close frame."""
        self.close_reason = self.close_reason or "dropped by the emulator"
        self._ws.abort()
        self._reader.cancel()

    async def wait_closed(self) -> None:
        """Returns once the socket has ended (either side)."""
        await asyncio.wait({self._reader})

    async def _stop_reader(self) -> None:
        self._reader.cancel()
        await asyncio.wait({self._reader})


def _frame(data: bytes) -> bytes:
    if len(data) >= FRAME_MAX:
        raise ValueError(f"frame too large ({len(data)} bytes)")
    return len(data).to_bytes(3, "big") + data


async def _next_frame(ws: _WebSocket, inbound: bytearray) -> bytes:
    """One length-prefixed frame, gathering WebSocket messages as needed (a frame may span
    messages and a message may hold several frames)."""
    while True:
        if len(inbound) >= 3:
            length = int.from_bytes(inbound[:3], "big")
            if len(inbound) >= 3 + length:
                frame = bytes(inbound[3 : 3 + length])
                del inbound[: 3 + length]
                return frame
        inbound += await ws.recv_binary()


# ---------------------------------------------------------------------------------------------
# Transport


class Transport:
    """The emulator's listening side: an HTTP CONNECT proxy whose tunnels it answers itself."""

    def __init__(self, handler: Callable[[Connection], Awaitable[None]], root: RootKey) -> None:
        self.handler = handler
        self.root = root
        self.static = KeyPair.generate()  # the server's Noise static key
        # The serialized CertChain sent in every ServerHello; replace it to test refusals.
        self.cert_chain: bytes = root.issue_chain(self.static.public)
        self.proxy_url = ""
        self.ca_file = ""
        self.certificates: TestCertificates | None = None
        # What happened, for tests: ("tunnel", target), ("client_hello", ""), ("handshake", ""),
        # ("handshake_failed", reason), ("handler_error", repr).
        self.events: list[tuple[str, str]] = []
        self.connections: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._tls: ssl.SSLContext | None = None

    async def start(self) -> None:
        self._tempdir = tempfile.TemporaryDirectory(prefix="wa-emulator-")
        self.certificates = make_certificates(Path(self._tempdir.name))
        self._tls = self.certificates.server_context()
        self.ca_file = str(self.certificates.ca_file)
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.proxy_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    async def __aenter__(self) -> Transport:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # one client's trouble must not stop the emulator
            log.debug("emulator connection ended: %r", exc)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line, _ = await asyncio.wait_for(_read_http_head(reader), 10)
        method, target, _version = (request_line.split(" ", 2) + ["", ""])[:3]
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        self.events.append(("tunnel", target))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        assert self._tls is not None
        await writer.start_tls(self._tls)

        request_line, headers = await asyncio.wait_for(_read_http_head(reader), 10)
        parts = request_line.split(" ")
        key = headers.get("sec-websocket-key", "")
        if len(parts) < 2 or parts[0] != "GET" or parts[1] != WS_PATH or not key:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        ws = _WebSocket(reader, writer)
        try:
            conn = await asyncio.wait_for(
                self._handshake(ws, target=target, headers=headers), _HANDSHAKE_TIMEOUT
            )
        except Exception as exc:
            self.events.append(("handshake_failed", repr(exc)))
            ws.abort()
            raise
        self.events.append(("handshake", ""))
        self.connections.append(conn)
        try:
            await self.handler(conn)
        except ConnectionClosedError:
            pass
        except Exception as exc:
            log.exception("emulator handler failed")
            self.events.append(("handler_error", repr(exc)))
        finally:
            await conn.close()
            self.connections.remove(conn)

    async def _handshake(
        self, ws: _WebSocket, *, target: str, headers: dict[str, str]
    ) -> Connection:
        inbound = bytearray()
        first = await ws.recv_binary()
        header = first[:4]
        if len(header) < 4 or header[:3] != WA_HEADER[:3]:
            raise HandshakeError(f"unexpected connection header {header!r}")
        inbound += first[4:]
        noise = NoiseState(header)

        hello = waWa6.HandshakeMessage()
        hello.ParseFromString(await _next_frame(ws, inbound))
        client_ephemeral = hello.clientHello.ephemeral
        if len(client_ephemeral) != 32:
            raise HandshakeError("ClientHello without a 32-byte ephemeral key")
        self.events.append(("client_hello", ""))
        noise.authenticate(client_ephemeral)

        ephemeral = KeyPair.generate()
        noise.authenticate(ephemeral.public)
        noise.mix_dh(ephemeral, client_ephemeral)
        reply = waWa6.HandshakeMessage()
        reply.serverHello.ephemeral = ephemeral.public
        reply.serverHello.static = noise.encrypt(self.static.public)
        noise.mix_dh(self.static, client_ephemeral)
        reply.serverHello.payload = noise.encrypt(self.cert_chain)
        await ws.send_binary(_frame(reply.SerializeToString()))

        finish = waWa6.HandshakeMessage()
        finish.ParseFromString(await _next_frame(ws, inbound))
        client_static = noise.decrypt(finish.clientFinish.static)
        if len(client_static) != 32:
            raise HandshakeError("ClientFinish without a 32-byte static key")
        noise.mix_dh(ephemeral, client_static)
        payload = waWa6.ClientPayload()
        payload.ParseFromString(noise.decrypt(finish.clientFinish.payload))
        read_key, write_key = noise.split()
        return Connection(
            ws,
            client_payload=payload,
            client_static=client_static,
            read_key=read_key,
            write_key=write_key,
            inbound=inbound,
            target=target,
            header=header,
            request_headers=headers,
        )
