"""Fixtures for the neonize backend: a private whatsmeow store per test, and raw access to it
(`helpers.StoreDB`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.whatsapp.backends.neonize.helpers import StoreDB


@pytest.fixture
def sqlite_store(settings: Any, tmp_path: Path) -> Path:
    """A fresh whatsmeow SQLite file for this test (used whenever Django runs on SQLite)."""
    path = tmp_path / "whatsmeow.sqlite3"
    settings.NEONIZE_SQLITE_PATH = str(path)
    return path


@pytest.fixture(scope="session")
def _shared_sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whatsmeow") / "whatsmeow.sqlite3"


@pytest.fixture
def shared_sqlite_store(settings: Any, _shared_sqlite_path: Path) -> Path:
    """One whatsmeow SQLite file for the session: its schema is created once (that takes a
    neonize process), for tests that only need a store to exist and clean up their rows."""
    settings.NEONIZE_SQLITE_PATH = str(_shared_sqlite_path)
    return _shared_sqlite_path


@pytest.fixture
def store_db() -> Iterator[StoreDB]:
    yield StoreDB()
