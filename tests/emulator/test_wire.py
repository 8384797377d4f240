"""The emulator's wire layer: certificate chain, CONNECT proxy + TLS + WebSocket + Noise, first
against a small Python client (fast, precise), then against the real neonize/whatsmeow."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from neonize.proto.waCompanionReg import WACompanionReg_pb2
from neonize.proto.waWa6 import WAWebProtobufsWa6_pb2 as waWa6
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from emulator.binary import JID, Node, decode, encode
from emulator.certs import ChainError, KeyPair, RootKey, verify_chain, xeddsa_sign, xeddsa_verify
from emulator.transport import (
    WA_HEADER,
    Connection,
    ConnectionClosedError,
    NoiseState,
    Transport,
)
from tests.emulator.helpers import ChildFactory, EnvFactory

SERVER = JID("", "s.whatsapp.net")
Handler = Callable[[Connection], Awaitable[None]]


# ---------------------------------------------------------------------------------------------
# Certificates


def test_chain_passes_whatsmeows_checks(emulator_root: RootKey) -> None:
    static = KeyPair.generate()
    verify_chain(emulator_root.issue_chain(static.public), static.public, emulator_root.public)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"not_after": int(time.time()) - 10}, "expired"),
        ({"not_before": int(time.time()) + 3600}, "not valid yet"),
        ({"intermediate_issuer_serial": 7}, "intermediate issuer serial"),
        ({"leaf_issuer_serial": 9}, "leaf issuer serial"),
        ({"leaf_key": b"\x01" * 32}, "static key"),
    ],
)
def test_chain_refusals(emulator_root: RootKey, kwargs: dict[str, int], message: str) -> None:
    static = KeyPair.generate()
    with pytest.raises(ChainError, match=message):
        verify_chain(
            emulator_root.issue_chain(static.public, **kwargs),  # type: ignore[arg-type]
            static.public,
            emulator_root.public,
        )


def test_chain_from_another_root_is_refused(emulator_root: RootKey) -> None:
    static = KeyPair.generate()
    chain = RootKey.generate().issue_chain(static.public)
    with pytest.raises(ChainError, match="root key"):
        verify_chain(chain, static.public, emulator_root.public)


def test_xeddsa_signatures() -> None:
    keys, other = KeyPair.generate(), KeyPair.generate()
    for message in (b"", b"details", bytes(range(256))):
        signature = xeddsa_sign(keys.private, message)
        assert len(signature) == 64 and not signature[63] & 0x80
        assert xeddsa_verify(keys.public, message, signature)
        assert not xeddsa_verify(other.public, message, signature)
        assert not xeddsa_verify(keys.public, message + b"x", signature)


# ---------------------------------------------------------------------------------------------
# A small Python client (the client half of handshake.go), for fast, exact transport tests


class PyClient:
    def __init__(self, ws: ClientConnection, write_key: bytes, read_key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.ws = ws
        self.write = AESGCM(write_key)
        self.read = AESGCM(read_key)
        self.write_counter = self.read_counter = 0
        self.buffer = bytearray()

    @staticmethod
    def _iv(counter: int) -> bytes:
        return b"\x00" * 8 + counter.to_bytes(4, "big")

    def seal(self, node: Node) -> bytes:
        data = self.write.encrypt(self._iv(self.write_counter), encode(node), None)
        self.write_counter += 1
        return len(data).to_bytes(3, "big") + data

    async def send(self, *nodes: Node) -> None:
        await self.ws.send(b"".join(self.seal(n) for n in nodes))

    async def recv(self) -> Node:
        frame = await _read_frame(self.ws, self.buffer)
        plain = self.read.decrypt(self._iv(self.read_counter), frame, None)
        self.read_counter += 1
        return decode(plain)


def _client_tls(transport: Transport) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=transport.ca_file)


async def _read_frame(ws: ClientConnection, buffer: bytearray) -> bytes:
    while len(buffer) < 3 or len(buffer) < 3 + int.from_bytes(buffer[:3]):
        message = await ws.recv()
        assert isinstance(message, bytes)
        buffer += message
    length = int.from_bytes(buffer[:3])
    frame = bytes(buffer[3 : 3 + length])
    del buffer[: 3 + length]
    return frame


async def py_handshake(
    ws: ClientConnection, root_public: bytes, payload: waWa6.ClientPayload, static: KeyPair
) -> PyClient:
    noise = NoiseState(WA_HEADER)
    ephemeral = KeyPair.generate()
    noise.authenticate(ephemeral.public)
    hello = waWa6.HandshakeMessage()
    hello.clientHello.ephemeral = ephemeral.public
    raw = hello.SerializeToString()
    await ws.send(WA_HEADER + len(raw).to_bytes(3, "big") + raw)

    reply = waWa6.HandshakeMessage()
    reply.ParseFromString(await _read_frame(ws, bytearray()))
    server_hello = reply.serverHello
    noise.authenticate(server_hello.ephemeral)
    noise.mix_dh(ephemeral, server_hello.ephemeral)
    server_static = noise.decrypt(server_hello.static)
    noise.mix_dh(ephemeral, server_static)
    verify_chain(noise.decrypt(server_hello.payload), server_static, root_public)

    finish = waWa6.HandshakeMessage()
    finish.clientFinish.static = noise.encrypt(static.public)
    noise.mix_dh(static, server_hello.ephemeral)
    finish.clientFinish.payload = noise.encrypt(payload.SerializeToString())
    raw = finish.SerializeToString()
    await ws.send(len(raw).to_bytes(3, "big") + raw)
    write_key, read_key = noise.split()
    return PyClient(ws, write_key, read_key)


def _payload(username: int = 0) -> waWa6.ClientPayload:
    payload = waWa6.ClientPayload()
    if username:
        payload.username = username
    payload.userAgent.device = "PyClient"
    payload.passive = False
    return payload


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Handler, RootKey], Awaitable[Transport]]]:
    transports: list[Transport] = []

    async def start(handler: Handler, root: RootKey) -> Transport:
        transport = Transport(handler, root)
        await transport.start()
        transports.append(transport)
        return transport

    yield start
    for transport in transports:
        await transport.stop()


def _ws(transport: Transport, **kwargs: object) -> connect:
    return connect(
        "wss://web.whatsapp.com/ws/chat",
        proxy=transport.proxy_url,
        ssl=_client_tls(transport),
        origin="https://web.whatsapp.com",  # type: ignore[arg-type]
        max_size=None,
        ping_interval=None,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_python_client_through_proxy_tls_and_noise(
    emulator_root: RootKey, running: Callable[[Handler, RootKey], Awaitable[Transport]]
) -> None:
    seen: asyncio.Queue[Connection] = asyncio.Queue()

    async def echo(conn: Connection) -> None:
        await seen.put(conn)
        while True:
            node = await conn.recv_node()
            if node.tag == "bye":
                return  # the transport closes the socket
            await conn.send_node(Node("echo", {"n": node.attrs.get("n", "")}, [node]))

    transport = await running(echo, emulator_root)
    static = KeyPair.generate()
    async with _ws(transport, compression="deflate") as ws:
        client = await py_handshake(ws, emulator_root.public, _payload(15550001), static)
        conn = await asyncio.wait_for(seen.get(), 5)
        assert conn.client_static == static.public
        assert conn.client_payload.username == 15550001
        assert conn.client_payload.userAgent.device == "PyClient"
        assert conn.header == WA_HEADER and conn.target == "web.whatsapp.com:443"
        assert conn.request_headers["origin"] == "https://web.whatsapp.com"

        # One node per message, several frames in one message, one frame split over two
        # messages, and a frame big enough for 64-bit WebSocket lengths.
        big = Node("blob", {"n": "big"}, bytes(range(256)) * 1200)
        await client.send(Node("ping", {"n": "1"}))
        await client.send(Node("ping", {"n": "2"}), Node("ping", {"n": "3"}))
        sealed = client.seal(Node("ping", {"n": "4", "jid": JID("1555", "lid", 3)}))
        await ws.send(sealed[:5])
        await ws.send(sealed[5:])
        await client.send(big)
        echoes = [await client.recv() for _ in range(5)]
        assert [e.attrs["n"] for e in echoes] == ["1", "2", "3", "4", "big"]
        assert echoes[3].children()[0].attrs["jid"] == JID("1555", "lid", 3)
        assert echoes[4].children()[0] == big

        await client.send(Node("bye"))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ("handshake", "") in transport.events


async def test_client_drop_ends_recv_node(
    emulator_root: RootKey, running: Callable[[Handler, RootKey], Awaitable[Transport]]
) -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handler(conn: Connection) -> None:
        try:
            await conn.recv_node()
        except ConnectionClosedError as exc:
            outcome.set_result(exc)
            assert conn.closed
        else:
            outcome.set_result(None)

    transport = await running(handler, emulator_root)
    async with _ws(transport) as ws:
        await py_handshake(ws, emulator_root.public, _payload(), KeyPair.generate())
    assert isinstance(await asyncio.wait_for(outcome, 5), ConnectionClosedError)


async def test_client_close_is_seen_without_reading(
    emulator_root: RootKey, running: Callable[[Handler, RootKey], Awaitable[Transport]]
) -> None:
    ended = asyncio.Event()
    reasons: list[str] = []

    async def handler(conn: Connection) -> None:
        await conn.wait_closed()  # nobody calls recv_node
        reasons.append(conn.close_reason)
        ended.set()

    transport = await running(handler, emulator_root)
    started = time.monotonic()
    async with _ws(transport, close_timeout=5) as ws:
        await py_handshake(ws, emulator_root.public, _payload(), KeyPair.generate())
    await asyncio.wait_for(ended.wait(), 5)
    assert time.monotonic() - started < 2  # our close answer came at once
    assert "1000" in reasons[0]


async def test_server_close_reaches_the_client(
    emulator_root: RootKey, running: Callable[[Handler, RootKey], Awaitable[Transport]]
) -> None:
    async def handler(conn: Connection) -> None:
        await conn.send_node(Node("stream:error", {"code": "515"}))
        await conn.close()
        assert conn.closed
        with pytest.raises(ConnectionClosedError):
            await conn.send_node(Node("late"))

    transport = await running(handler, emulator_root)
    async with _ws(transport) as ws:
        client = await py_handshake(ws, emulator_root.public, _payload(), KeyPair.generate())
        assert await asyncio.wait_for(client.recv(), 5) == Node("stream:error", {"code": "515"})
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_wrong_root_is_refused_by_python_client(
    emulator_root: RootKey, running: Callable[[Handler, RootKey], Awaitable[Transport]]
) -> None:
    async def never(conn: Connection) -> None:
        raise AssertionError("handler must not run")

    transport = await running(never, RootKey.generate())
    async with _ws(transport) as ws:
        with pytest.raises(ChainError):
            await py_handshake(ws, emulator_root.public, _payload(), KeyPair.generate())
    await asyncio.sleep(0.2)
    assert ("client_hello", "") in transport.events
    assert not any(kind == "handshake" for kind, _ in transport.events)


async def test_proxy_refuses_plain_requests(
    emulator_root: RootKey, running: Callable[[Handler, RootKey], Awaitable[Transport]]
) -> None:
    async def never(conn: Connection) -> None:
        raise AssertionError("handler must not run")

    transport = await running(never, emulator_root)
    host, port = transport.proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET http://web.whatsapp.com/ HTTP/1.1\r\nHost: web.whatsapp.com\r\n\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 405")
    writer.close()


# ---------------------------------------------------------------------------------------------
# The real neonize (whatsmeow in Go) against the emulator


async def _wait_connection(
    queue: asyncio.Queue[Connection], child_log: Callable[[], str]
) -> Connection:
    try:
        return await asyncio.wait_for(queue.get(), 15)
    except TimeoutError:
        pytest.fail("no handshake within 15 s; neonize log:\n" + child_log()[-3000:])


@pytest.mark.slow
async def test_real_neonize_completes_the_handshake(
    emulator_root: RootKey,
    running: Callable[[Handler, RootKey], Awaitable[Transport]],
    emulator_env: EnvFactory,
    neonize_child: ChildFactory,
) -> None:
    connections: asyncio.Queue[Connection] = asyncio.Queue()
    frames: asyncio.Queue[bytes] = asyncio.Queue()
    release = asyncio.Event()

    async def handler(conn: Connection) -> None:
        await connections.put(conn)
        # A pair-device request with one ref: the client acknowledges it and shows a QR.
        await conn.send_node(
            Node(
                "iq",
                {"from": SERVER, "type": "set", "id": "wire-1", "xmlns": "md"},
                [Node("pair-device", {}, [Node("ref", {}, b"wire-test-ref")])],
            )
        )
        await frames.put(await conn.recv_frame())
        await release.wait()

    transport = await running(handler, emulator_root)
    child = neonize_child(emulator_env(transport))
    try:
        conn = await _wait_connection(connections, child.log)
        payload = conn.client_payload
        # A new device: no username, registration data instead.
        assert not payload.HasField("username")
        assert payload.HasField("devicePairingData")
        pairing = payload.devicePairingData
        assert len(pairing.eRegid) == 4 and pairing.eKeytype == b"\x05"
        assert len(pairing.eIdent) == 32 and len(pairing.eSkeyVal) == 32
        assert len(pairing.eSkeySig) == 64 and len(pairing.eSkeyID) == 3
        assert payload.userAgent.platform == waWa6.ClientPayload.UserAgent.WEB
        assert payload.webInfo.webSubPlatform == waWa6.ClientPayload.WebInfo.WEB_BROWSER
        assert payload.connectReason == waWa6.ClientPayload.USER_ACTIVATED
        props = WACompanionReg_pb2.DeviceProps()
        props.ParseFromString(pairing.deviceProps)
        assert props.os == "Neonize"
        assert props.platformType == WACompanionReg_pb2.DeviceProps.SAFARI
        assert conn.target == "web.whatsapp.com:443"
        assert conn.request_headers["origin"] == "https://web.whatsapp.com"
        assert conn.header == WA_HEADER

        # Bytes produced by the real client decode: the acknowledgement of pair-device.
        raw = await asyncio.wait_for(frames.get(), 10)
        ack = decode(raw)
        assert ack == Node("iq", {"to": SERVER, "id": "wire-1", "type": "result"})
        assert encode(ack) == raw

        # The QR the client shows carries our ref and its own Noise and identity keys.
        line = await asyncio.to_thread(child.wait_status, "qr ", 10)
        prefix = "qr https://wa.me/settings/linked_devices#"
        assert line.startswith(prefix), line
        ref, noise_pub, identity, adv_secret, client_type = line.removeprefix(prefix).split(",")
        assert client_type == "6"  # whatsmeow's PairClientSafari, from the device props
        assert ref == "wire-test-ref"
        assert base64.b64decode(noise_pub) == conn.client_static
        assert base64.b64decode(identity) == pairing.eIdent
        assert len(base64.b64decode(adv_secret)) == 32
    finally:
        release.set()
        child.kill()


@pytest.mark.slow
async def test_unpatched_neonize_refuses_the_emulator(
    emulator_root: RootKey,
    running: Callable[[Handler, RootKey], Awaitable[Transport]],
    emulator_env: EnvFactory,
    neonize_child: ChildFactory,
) -> None:
    called = False

    async def handler(conn: Connection) -> None:
        nonlocal called
        called = True

    transport = await running(handler, emulator_root)
    child = neonize_child(emulator_env(transport, patched=False))
    try:
        loaded = await asyncio.to_thread(child.wait_status, "loaded ", 15)
        assert "neonize-copy" not in loaded  # the installed package, with WhatsApp's root
        deadline = time.monotonic() + 15
        while not any(kind == "handshake_failed" for kind, _ in transport.events):
            assert time.monotonic() < deadline, f"events: {transport.events}\n{child.log()[-3000:]}"
            await asyncio.sleep(0.1)
        assert ("client_hello", "") in transport.events
        error = await asyncio.to_thread(child.wait_status, "error ", 15)
        assert "failed to verify server cert" in error
        assert "failed to verify intermediate cert signature" in error
        assert not called
    finally:
        child.kill()


@pytest.mark.slow
async def test_patched_neonize_refuses_an_expired_chain(
    emulator_root: RootKey,
    running: Callable[[Handler, RootKey], Awaitable[Transport]],
    emulator_env: EnvFactory,
    neonize_child: ChildFactory,
) -> None:
    called = False

    async def handler(conn: Connection) -> None:
        nonlocal called
        called = True

    transport = await running(handler, emulator_root)
    transport.cert_chain = emulator_root.issue_chain(
        transport.static.public, not_after=int(time.time()) - 60
    )
    child = neonize_child(emulator_env(transport))
    try:
        deadline = time.monotonic() + 15
        while not any(kind == "handshake_failed" for kind, _ in transport.events):
            assert time.monotonic() < deadline, f"events: {transport.events}\n{child.log()[-3000:]}"
            await asyncio.sleep(0.1)
        error = await asyncio.to_thread(child.wait_status, "error ", 15)
        assert "intermediate cert certificate expired" in error
        assert not called
    finally:
        child.kill()
