"""Fixtures for tests with real worker processes on PostgreSQL and a Redis of the test's own."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.whatsapp.worker.helpers import ROOT, OwnRedis, worker_env
from whatsapp.selectors import live_workers
from whatsapp.worker import commands


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path).start()
    yield redis
    redis.stop()


@pytest.fixture
def external(settings: Any, own_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a web process of the production topology, on the test's own Redis."""
    settings.REDIS_URL = own_redis.url
    settings.WHATSAPP_WORKER_MODE = "external"
    settings.WHATSAPP_LEASE_TTL = 2.0
    settings.WHATSAPP_OPERATION_TIMEOUT = 10.0
    timeouts = {
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
    }
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": own_redis.url,
            "OPTIONS": timeouts,
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": own_redis.url,
                        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
                    }
                ],
                "prefix": commands.layer_prefix(),
            },
        }
    }
    monkeypatch.setattr(commands, "_channel_bus", None)


WorkerFactory = Callable[[str], subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(external: None, own_redis: OwnRedis, tmp_path: Path) -> Iterator[WorkerFactory]:
    """`start_worker("w1")`: a `manage.py whatsapp_worker` process on the test's PostgreSQL and
    Redis, live when returned; stopped (SIGTERM, else SIGKILL) at teardown."""
    started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "whatsapp_worker", "--worker-id", name],
                cwd=ROOT,
                env=worker_env(redis_url=own_redis.url),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append((name, process))
        wait_for(
            lambda: live_workers().filter(worker_id=name).exists(),
            timeout=30,
            what=f"worker {name} live",
        )
        return process

    yield start
    for name, process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        sys.stdout.write((tmp_path / f"{name}.log").read_text(errors="replace")[-2000:])


@pytest.fixture
def worker_process(start_worker: WorkerFactory) -> subprocess.Popen[bytes]:
    return start_worker("w1")
