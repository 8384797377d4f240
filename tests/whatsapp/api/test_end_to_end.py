"""End to end in production shape: daphne and `manage.py whatsapp_worker` as separate processes
on PostgreSQL and Redis. An integrator asks for a pairing code over HTTP, watches the WebSocket,
the simulated phone enters the code, and `connected` arrives within a second."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from tests.helpers import ALICE_PHONE
from whatsapp.models import ApiKey, Company
from whatsapp.services.state import session_get

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (
            os.environ.get("DATABASE_URL", "").startswith("postgres")
            and os.environ.get("REDIS_URL")
        ),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: web and worker run as separate "
        "processes sharing them",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def http(method: str, url: str, *, key: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Stack:
    def __init__(self, base: str, processes: list[tuple[subprocess.Popen, Path]]) -> None:
        self.base = base
        self.processes = processes

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.processes)


@pytest.fixture
def stack(transactional_db, tmp_path) -> Iterator[Stack]:
    port = _free_port()
    prefix = f"e2e{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "WHATSAPP_BACKEND": "sandbox",
        "WHATSAPP_WORKER_MODE": "external",
        "CHANNEL_LAYER_PREFIX": prefix,
        "CACHE_KEY_PREFIX": prefix,
        "SECRET_KEY": "e2e-secret-key-" + "x" * 40,
        "DATA_DIR": str(tmp_path / "data"),
        "DEBUG": "0",
        "WHATSAPP_HEARTBEAT_INTERVAL": "0.5",
        "WHATSAPP_LEASE_TTL": "5",
        "LOG_LEVEL": "INFO",
    }
    commands = {
        "daphne": [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "pairing_site.asgi:application",
        ],
        "worker": [sys.executable, "manage.py", "whatsapp_worker"],
    }
    processes = []
    for name, command in commands.items():
        log = tmp_path / f"{name}.log"
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )
        processes.append((process, log))
    stack = Stack(f"http://127.0.0.1:{port}", processes)
    try:
        deadline = time.monotonic() + 40
        while True:
            for process, _ in processes:
                assert process.poll() is None, f"a process exited early\n{stack.logs()}"
            try:
                with urllib.request.urlopen(f"{stack.base}/api/v1/health/", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"the stack did not become healthy\n{stack.logs()}"
            time.sleep(0.2)
        yield stack
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _next(ws, kind: str, *, within: float) -> dict:
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


@pytest.fixture
def alice_key(stack) -> str:
    # Seeded from the main thread: a connection left in a helper thread would keep the test
    # database from being dropped at the end of the run.
    company = Company.objects.create(slug="alice", name="Alice's Salon")
    session_get(company)
    return ApiKey.issue(name="e2e", company=company)[1]


@pytest.mark.timeout(120)
async def test_a_code_link_reaches_the_websocket_through_separate_processes(stack, alice_key):
    import websockets

    key = alice_key
    api = f"{stack.base}/api/v1/companies/alice"
    ws_url = stack.base.replace("http://", "ws://") + "/ws/v1/companies/alice/"
    async with websockets.connect(
        ws_url, additional_headers={"Authorization": f"Bearer {key}"}
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "status"

        status, code = await asyncio.to_thread(
            http,
            "POST",
            f"{api}/session/pairing-code/",
            key=key,
            body={"phone_number": ALICE_PHONE},
        )
        assert status == 200, (code, stack.logs())
        event = await _next(ws, "pairing_code", within=5)
        assert event["pairing_code"] == code["pairing_code"]
        assert event["phone_number"] == "+79001234567"

        status, linked = await asyncio.to_thread(
            http,
            "POST",
            f"{stack.base}/api/v1/sandbox/phone/link/",
            key=key,
            body={"phone_number": ALICE_PHONE, "pairing_code": code["pairing_code"]},
        )
        assert status == 200, linked
        started = time.monotonic()
        connected = await _next(ws, "connected", within=1.0)
        assert time.monotonic() - started < 1.0
        assert connected == {"type": "connected", "phone_number": "+79001234567"}

    status, session = await asyncio.to_thread(http, "GET", f"{api}/session/", key=key)
    assert status == 200 and session["status"] == "connected", session
    assert session["linked_phone"] == "+79001234567"

    status, health = await asyncio.to_thread(http, "GET", f"{api}/session/health/", key=key)
    assert health["worker"], health  # owned by the separate worker process
