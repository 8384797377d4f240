"""Helpers for tests with real worker processes: their environment, and a Redis of the test's own
that it may freeze or stop (never the machine's)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from emulator.pgbouncer import free_port
from tests.helpers import USES_POSTGRES
from whatsapp.models import Company
from whatsapp.sandbox import phone
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.services.state import session_get
from whatsapp.worker.commands import layer_prefix

ROOT = Path(__file__).resolve().parents[3]


def _redis_server_installed() -> bool:
    return shutil.which("redis-server") is not None


# The marks of a drill with real worker processes: PostgreSQL shared with them, and a Redis of
# the test's own that it may freeze or stop.
DRILL = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not USES_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL (CI does)"),
    pytest.mark.skipif(
        not _redis_server_installed(), reason="needs redis-server (Debian: redis-server)"
    ),
]


def link_companies(count: int, *, first_number: int) -> list[Company]:
    """`count` companies, each linked through the services and the sandbox's simulated phone
    (numbers +7911555<first_number + index>, clear of the sandbox's magic endings)."""
    companies = []
    for index in range(count):
        company = Company.objects.create(slug=f"c{index}", name=f"Company {index}")
        session_get(company)
        number = f"+7911555{first_number + index}"
        code = linking.pairing_code_request(company=company, phone_number=number, actor=SYSTEM)
        phone.link_with_code(number, code.pairing_code)
        companies.append(company)
    return companies


def worker_env(*, redis_url: str | None = None) -> dict[str, str]:
    """A `manage.py whatsapp_worker` process on this test's PostgreSQL database."""
    db = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        WHATSAPP_BACKEND="sandbox",
        WHATSAPP_WORKER_MODE="external",
        WHATSAPP_SANDBOX_SPEED="1",
        WHATSAPP_HEARTBEAT_INTERVAL="0.3",
        WHATSAPP_LEASE_TTL="2",
        SECRET_KEY=settings.SECRET_KEY,
        CHANNEL_LAYER_PREFIX=layer_prefix(),
    )
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


class OwnRedis:
    """A `redis-server` on a free port, for tests that freeze (SIGSTOP) or stop Redis."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    available = staticmethod(_redis_server_installed)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the test's redis-server did not start")

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
