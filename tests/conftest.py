"""Shared fixtures. Tenants follow STYLE.md: Alice and Bob are separate companies; Charlie must
see nothing of theirs."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from emulator.certs import RootKey
from emulator.neonize_copy import patched_neonize
from tests.helpers import FIGURES, USES_POSTGRES, USES_REDIS
from whatsapp.models import Company
from whatsapp.services.state import session_get


def pytest_report_header(config):
    db = "PostgreSQL" if USES_POSTGRES else "SQLite"
    redis = "Redis" if USES_REDIS else "no Redis (REDIS_URL unset: Redis tests are skipped)"
    return [f"database: {db}; channel layer: {redis}"]


@pytest.fixture(autouse=True)
def _engine_defaults(settings, tmp_path):
    """Unless a test says otherwise: in-process worker, sandbox backend, fast sandbox clock."""
    settings.WHATSAPP_WORKER_MODE = "inprocess"
    settings.WHATSAPP_BACKEND = "sandbox"
    settings.WHATSAPP_SANDBOX_SPEED = 20.0
    settings.WHATSAPP_MIN_CODE_LIFETIME = 0.5
    settings.WHATSAPP_OPERATION_TIMEOUT = 10.0
    settings.WHATSAPP_HEARTBEAT_INTERVAL = 0.2
    settings.WHATSAPP_LEASE_TTL = 3.0
    settings.NEONIZE_SQLITE_PATH = str(tmp_path / "whatsmeow.sqlite3")
    from whatsapp.backends import reset_backends

    reset_backends()
    yield
    reset_backends()


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Every test gets empty rate-limit windows and subscriber counts: its own key prefix (never
    `cache.clear()`, which would flush a shared Redis)."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}"}
        for name, config in settings.CACHES.items()
    }


def _company(slug: str, name: str) -> Company:
    company = Company.objects.create(slug=slug, name=name)
    session_get(company)
    return company


@pytest.fixture
def alice(db) -> Company:
    return _company("alice", "Alice's Salon")


@pytest.fixture
def bob(db) -> Company:
    return _company("bob", "Bob's Barbers")


@pytest.fixture
def charlie(db) -> Company:
    return _company("charlie", "Charlie's Cafe")


@pytest.fixture
def alice_key(alice: Company) -> str:
    """A raw API key scoped to Alice's company."""
    from whatsapp.models import ApiKey

    return ApiKey.issue(name="alice-integration", company=alice)[1]


@pytest.fixture
def bob_key(bob: Company) -> str:
    from whatsapp.models import ApiKey

    return ApiKey.issue(name="bob-integration", company=bob)[1]


@pytest.fixture
def worker(transactional_db):
    """An in-process worker on its own thread, running the sandbox backend."""
    from whatsapp.worker.inprocess import ThreadedWorker

    threaded = ThreadedWorker()
    threaded.start()
    yield threaded
    threaded.stop()


def pytest_unconfigure(config):
    """SQLite leaves its -wal/-shm files next to the per-run test database; remove ours."""
    name = django_settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and not USES_POSTGRES:
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(f"{name}{suffix}")
            except OSError:
                pass


# --- the WhatsApp emulator: one root key and one trusting neonize copy per test session --------


@pytest.fixture(scope="session")
def emulator_root() -> RootKey:
    """The root key of this test session's emulator certificate chains."""
    return RootKey.generate()


@pytest.fixture(scope="session")
def patched_neonize_path(tmp_path_factory: pytest.TempPathFactory, emulator_root: RootKey) -> Path:
    """A folder holding a neonize copy that trusts `emulator_root` (for PYTHONPATH)."""
    return patched_neonize(tmp_path_factory.mktemp("neonize-copy"), emulator_root.public)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the drills measured (tests.helpers.figure), after the results."""
    if FIGURES:
        terminalreporter.section("figures measured by the drills")
        for text in FIGURES:
            terminalreporter.write_line(text)
