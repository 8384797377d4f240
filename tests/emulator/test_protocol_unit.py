"""The protocol layer without neonize: the server against an in-memory connection, the phone's
crypto, the control API over HTTP and `python -m emulator`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from emulator import crypto
from emulator.binary import JID, Node
from emulator.certs import RootKey
from emulator.control import Emulator
from emulator.phone import PhoneError, Phones, parse_qr
from emulator.server import SERVER_JID, Server, display_name_ok
from emulator.transport import ConnectionClosedError

PHONE = "4915100000001"


class FakeConnection:
    """Both ends of a connection in memory: the server reads `to_server`, writes `to_client`."""

    def __init__(self, payload: Any, static: bytes | None = None) -> None:
        self.client_payload = payload
        self.client_static = static or os.urandom(32)
        self.to_server: asyncio.Queue[Node | None] = asyncio.Queue()
        self.to_client: asyncio.Queue[Node | None] = asyncio.Queue()
        self.closed = False

    async def recv_node(self) -> Node:
        if self.closed:
            raise ConnectionClosedError("closed")
        node = await self.to_server.get()
        if node is None:
            raise ConnectionClosedError("closed")
        return node

    async def send_node(self, node: Node) -> None:
        if self.closed:
            raise ConnectionClosedError("closed")
        await self.to_client.put(node)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.to_server.put_nowait(None)
            self.to_client.put_nowait(None)

    async def receive(self) -> Node | None:
        """The next node the server sent within 3 s (None once it closed the connection)."""
        return await asyncio.wait_for(self.to_client.get(), 3.0)

    async def iq(self, xmlns: str, kind: str, content: list[Node] | None, iq_id: str) -> Node:
        await self.to_server.put(
            Node("iq", {"id": iq_id, "xmlns": xmlns, "type": kind, "to": SERVER_JID}, content)
        )
        answer = await self.receive()
        assert answer is not None and answer.attrs["id"] == iq_id
        return answer


def registration_payload(os_name: str = "Pairing Service", platform: str = "CHROME") -> Any:
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
    from neonize.proto.waWa6.WAWebProtobufsWa6_pb2 import ClientPayload

    payload = ClientPayload(passive=False)
    payload.userAgent.platform = ClientPayload.UserAgent.WEB
    payload.devicePairingData.eIdent = os.urandom(32)
    payload.devicePairingData.eRegid = (1234).to_bytes(4, "big")
    payload.devicePairingData.deviceProps = DeviceProps(
        os=os_name, platformType=DeviceProps.PlatformType.Value(platform)
    ).SerializeToString()
    return payload


def login_payload(user: str, device: int) -> Any:
    from neonize.proto.waWa6.WAWebProtobufsWa6_pb2 import ClientPayload

    return ClientPayload(username=int(user), device=device, passive=True)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    yield Server(Phones())


def link(server: Server, phone: str = PHONE) -> tuple[bytes, str]:
    """A device linked directly in the store; returns (its noise key, its JID)."""
    account = server.phones.account(phone)
    number = server.phones.reserve_device_number(account)
    noise = os.urandom(32)
    device = server.phones.add_device(
        account,
        noise_public=noise,
        identity_public=os.urandom(32),
        key_index=1,
        method="qr",
        name="Test",
        platform_type="CHROME",
        device=number,
    )
    return noise, str(device.jid)


async def start(server: Server, conn: FakeConnection) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(server.handle(conn))
    await asyncio.sleep(0)
    return task


async def test_unknown_device_gets_401(server: Server) -> None:
    conn = FakeConnection(login_payload(PHONE, 3))
    task = await start(server, conn)
    failure = await conn.receive()
    assert failure is not None and failure.tag == "failure" and failure.attrs["reason"] == "401"
    await asyncio.wait_for(task, 5)
    assert conn.closed
    assert server.records[0].outcome == "failure-401"


async def test_login_success_keepalive_and_prekeys(server: Server) -> None:
    noise, jid = link(server)
    conn = FakeConnection(login_payload(PHONE, 1), noise)
    task = await start(server, conn)
    success = await conn.receive()
    assert success is not None and success.tag == "success"
    assert isinstance(success.attrs["lid"], JID) and success.attrs["lid"].server == "lid"

    count = await conn.iq("encrypt", "get", [Node("count")], "1")
    assert count.content and isinstance(count.content, list)
    assert count.content[0].attrs["value"] == "0"
    keys = [Node("key", {}, [Node("id", {}, b"\0\0\1")]) for _ in range(30)]
    await conn.iq(
        "encrypt", "set", [Node("registration", {}, b"1234"), Node("list", {}, keys)], "2"
    )
    count = await conn.iq("encrypt", "get", [Node("count")], "3")
    assert isinstance(count.content, list) and count.content[0].attrs["value"] == "30"
    await conn.iq("passive", "set", [Node("active")], "4")
    offline = await conn.receive()
    assert offline is not None and offline.tag == "ib"
    pong = await conn.iq("w:p", "get", None, "5")
    assert pong.attrs["type"] == "result"

    assert server.records[0].keepalives == 1 and server.records[0].state == "active"
    assert [e["kind"] for e in server.events][-2:] == ["active", "keepalive"]
    await conn.close()
    await asyncio.wait_for(task, 5)


async def test_unknown_iqs_are_answered_and_logged(server: Server) -> None:
    noise, _ = link(server)
    conn = FakeConnection(login_payload(PHONE, 1), noise)
    task = await start(server, conn)
    await conn.receive()
    get = await conn.iq("usync", "get", [Node("usync")], "a")
    assert get.attrs["type"] == "error"
    assert isinstance(get.content, list) and get.content[0].attrs["code"] == "501"
    put = await conn.iq("privacy", "set", [Node("privacy")], "b")
    assert put.attrs["type"] == "result"
    assert server.records[0].unknown_iqs == ["usync/get/usync", "privacy/set/privacy"]
    await conn.close()
    await asyncio.wait_for(task, 5)


async def test_second_login_replaces_first(server: Server) -> None:
    noise, _ = link(server)
    first = FakeConnection(login_payload(PHONE, 1), noise)
    first_task = await start(server, first)
    await first.receive()
    second = FakeConnection(login_payload(PHONE, 1), noise)
    second_task = await start(server, second)
    conflict = await first.receive()
    assert conflict is not None and conflict.tag == "stream:error"
    assert isinstance(conflict.content, list) and conflict.content[0].attrs["type"] == "replaced"
    success = await second.receive()
    assert success is not None and success.tag == "success"
    await asyncio.wait_for(first_task, 5)
    assert server.records[0].outcome == "replaced"
    await second.close()
    await asyncio.wait_for(second_task, 5)


async def test_unlink_then_login_is_refused(server: Server) -> None:
    noise, jid = link(server)
    conn = FakeConnection(login_payload(PHONE, 1), noise)
    task = await start(server, conn)
    await conn.receive()
    await server.unlink(PHONE, 1)
    error = await conn.receive()
    assert error is not None and error.tag == "stream:error" and error.attrs["code"] == "401"
    assert isinstance(error.content, list) and error.content[0].attrs["type"] == "device_removed"
    await asyncio.wait_for(task, 5)
    again = FakeConnection(login_payload(PHONE, 1), noise)
    task = await start(server, again)
    failure = await again.receive()
    assert failure is not None and failure.attrs["reason"] == "401"
    await asyncio.wait_for(task, 5)


async def test_a_foreign_noise_key_is_refused(server: Server) -> None:
    link(server)
    conn = FakeConnection(login_payload(PHONE, 1), os.urandom(32))
    task = await start(server, conn)
    failure = await conn.receive()
    assert failure is not None and failure.attrs["reason"] == "401"
    await asyncio.wait_for(task, 5)


async def test_scripted_ban_carries_code_and_expiry(server: Server) -> None:
    from emulator.server import FailureRule

    noise, _ = link(server)
    server.failures.append(FailureRule(402, phone=PHONE, code=103, expire=600))
    conn = FakeConnection(login_payload(PHONE, 1), noise)
    task = await start(server, conn)
    failure = await conn.receive()
    assert failure is not None and failure.tag == "failure"
    assert (failure.attrs["reason"], failure.attrs["code"], failure.attrs["expire"]) == (
        "402",
        "103",
        "600",
    )
    await asyncio.wait_for(task, 5)
    assert server.failures == []  # used up


async def test_login_window_refs_and_expiry(server: Server) -> None:
    server.speed = 160  # 1 s
    conn = FakeConnection(registration_payload())
    task = await start(server, conn)
    pair = await conn.receive()
    assert pair is not None and pair.attrs["xmlns"] == "md" and pair.attrs["from"] == SERVER_JID
    assert isinstance(pair.content, list) and pair.content[0].tag == "pair-device"
    refs = pair.content[0].content
    assert isinstance(refs, list) and len(refs) == 6
    windows = server.open_windows()
    first = refs[0].content
    assert isinstance(first, bytes) and windows[0]["current_ref"] == first.decode()
    assert windows[0]["client"]["device_props"]["os"] == "Pairing Service"
    await asyncio.wait_for(task, 3)
    assert server.records[0].outcome == "qr-timeout"
    assert server.open_windows() == []


def companion_hello(phone: str, display: str, static: bytes) -> Node:
    return Node(
        "link_code_companion_reg",
        {"jid": JID(phone, "s.whatsapp.net"), "stage": "companion_hello"},
        [
            Node("link_code_pairing_wrapped_companion_ephemeral_pub", {}, os.urandom(80)),
            Node("companion_server_auth_key_pub", {}, static),
            Node("companion_platform_id", {}, b"1"),
            Node("companion_platform_display", {}, display.encode()),
            Node("link_code_pairing_nonce", {}, b"\0"),
        ],
    )


@pytest.mark.parametrize(
    ("rule", "display", "expected"),
    [
        (None, "Chrome (Linux)", None),
        (None, "Neonize", ("400", "bad-request")),
        ("rate-overlimit", "Chrome (Linux)", ("429", "rate-overlimit")),
        ("not-on-whatsapp", "Chrome (Linux)", ("404", "item-not-found")),
    ],
)
async def test_code_requests(
    server: Server, rule: str | None, display: str, expected: tuple[str, str] | None
) -> None:
    from emulator.server import CodeFailure

    if rule:
        server.code_failures.append(CodeFailure(PHONE, rule))
    conn = FakeConnection(registration_payload())
    task = await start(server, conn)
    await conn.receive()  # pair-device
    answer = await conn.iq(
        "md", "set", [companion_hello(PHONE, display, conn.client_static)], "code-1"
    )
    if expected is None:
        assert answer.attrs["type"] == "result"
        assert isinstance(answer.content, list)
        ref = answer.content[0].content
        assert isinstance(ref, list) and ref[0].tag == "link_code_pairing_ref"
        assert server.open_windows()[0]["code"]["platform_display"] == display
    else:
        assert answer.attrs["type"] == "error"
        assert isinstance(answer.content, list)
        error = answer.content[0]
        assert (error.attrs["code"], error.attrs["text"]) == expected
    assert server.records[0].pair_code is not None
    assert server.records[0].pair_code["platform_display"] == display
    await conn.close()
    await asyncio.wait_for(task, 5)


def test_display_names() -> None:
    assert display_name_ok("Chrome (Linux)")
    assert display_name_ok("CHROME (Windows Nt)")
    assert display_name_ok("Firefox (Mac OS)")
    assert not display_name_ok("Unknown (Linux)")
    assert not display_name_ok("Pairing Service")
    assert not display_name_ok("Chrome (Amiga)")


def test_crypto_round_trips() -> None:
    keys = crypto.KeyPair.generate()
    signature = keys.sign(b"hello")
    assert crypto.xeddsa_verify(keys.public, b"hello", signature)
    assert not crypto.xeddsa_verify(keys.public, b"hellO", signature)
    other = crypto.KeyPair.generate()
    assert keys.shared(other.public) == other.shared(keys.public)
    wrapped = crypto.wrap_with_code("ABCD2345", keys.public)
    assert len(wrapped) == 80
    assert crypto.unwrap_with_code("ABCD2345", wrapped) == keys.public
    assert crypto.unwrap_with_code("ABCD2346", wrapped) != keys.public
    assert crypto.is_valid_code("abcd-2345") and not crypto.is_valid_code("ABCD-0000")


def test_parse_qr() -> None:
    keys = [base64.b64encode(os.urandom(32)).decode() for _ in range(3)]
    data = parse_qr("https://wa.me/settings/linked_devices#2@abc," + ",".join(keys) + ",1")
    assert data.ref == "2@abc" and data.platform == "1"
    assert data.adv_secret == base64.b64decode(keys[2])
    assert parse_qr("2@abc," + ",".join(keys)).platform == ""
    with pytest.raises(PhoneError):
        parse_qr("2@abc,not,keys,here")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_http_control(emulator_root: RootKey) -> None:
    with Emulator(root=emulator_root, speed=4) as emu:
        url = emu.start_control()
        status = _get(url + "/status")
        assert status["proxy_url"] == emu.proxy_url and status["speed"] == 4
        assert status["root_public"] == emulator_root.public.hex()
        assert (
            _post(url + "/fail_next_login", {"reason": 402, "phone": "+49 151", "code": 104})[0]
            == 200
        )
        assert (
            _post(url + "/fail_code_requests", {"phone": PHONE, "kind": "rate-overlimit"})[0] == 200
        )
        failures = _get(url + "/failures")
        assert failures["login"][0]["reason"] == 402 and failures["login"][0]["phone"] == "49151"
        assert failures["code"] == [{"phone": PHONE, "kind": "rate-overlimit", "times": None}]
        assert _post(url + "/fail_next_login", {"reason": 999})[0] == 400
        code, answer = _post(url + "/scan_qr", {"phone": PHONE, "qr": "2@nothing,a,b,c"})
        assert code == 409 and "QR" in answer["error"]
        assert _post(url + "/speed", {"speed": 8})[1] == {"speed": 8.0}
        assert (
            _post(url + "/account", {"phone": PHONE, "platform": "iphone"})[1]["platform"]
            == "iphone"
        )
        assert _get(url + "/windows") == [] and _get(url + "/devices") == []
        assert _post(url + "/clear_failures", {})[0] == 200
        assert _get(url + "/failures") == {"login": [], "code": []}
        assert _post(url + "/nope", {})[0] == 404
        code, timed_out = _post(url + "/wait_for", {"kind": "paired", "timeout": 0.2})
        assert code == 409


def test_python_m_emulator(tmp_path: Any) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--stdin",
            "--speed",
            "10",
            "--root-file",
            str(tmp_path / "root"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["proxy_url"].startswith("http://127.0.0.1:")
        assert os.path.exists(info["ca_file"])
        assert info["root_public"] == RootKey.load_or_create(tmp_path / "root").public.hex()
        assert _get(info["control_url"] + "/status")["speed"] == 10
    finally:
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(15) == 0
