"""The whatsmeow store: schema created once without racing, and resets that touch one company.

The schema is created by real neonize (whatsmeow's own migrations), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connections

from tests.whatsapp.backends.neonize.helpers import (
    ON_POSTGRES,
    POSTGRES_URL,
    StoreDB,
    needs_postgres,
)
from whatsapp.backends.neonize import store

ALICE = "15550000001:12@s.whatsapp.net"  # company A's linked device
BOB = "15550000002:7@s.whatsapp.net"  # company B's

pytestmark = pytest.mark.django_db

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=needs_postgres),
]


@pytest.fixture(params=STORES)
def whatsmeow_store(
    request: pytest.FixtureRequest, sqlite_store: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A whatsmeow store with its schema created by real neonize.

    "sqlite" runs in every session: when Django itself is on PostgreSQL the store is told it is
    not, which is exactly the code path a SQLite deployment takes.
    """
    if request.param == "sqlite":
        monkeypatch.setattr(store, "is_postgres", lambda: False)
    store.schema_ensure()
    return request.param


def test_schema_ensure_creates_whatsmeows_tables(whatsmeow_store: str, store_db: StoreDB) -> None:
    tables = {name for name, _ in store.CASCADED_TABLES + store.UNLINKED_TABLES}

    assert store.schema_exists()
    for table in tables | {"whatsmeow_device", "whatsmeow_lid_map"}:
        assert store_db.execute(f"SELECT COUNT(*) FROM {table}") == [(0,)], table


def test_reset_deletes_exactly_that_companys_rows(whatsmeow_store: str, store_db: StoreDB) -> None:
    inserted = store_db.insert_device(ALICE)
    store_db.insert_device(BOB)
    store_db.execute("INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ('111', '15550000001')")
    bob_before = store_db.rows_of(BOB)

    deleted = store.credentials_delete(device_jid=ALICE)

    assert deleted == inserted
    assert set(store_db.rows_of(ALICE).values()) == {0}
    assert store_db.rows_of(BOB) == bob_before
    assert set(bob_before.values()) == {1}
    assert store_db.execute("SELECT COUNT(*) FROM whatsmeow_lid_map") == [(1,)]  # shared
    assert store_db.execute("SELECT COUNT(*) FROM whatsmeow_version")[0][0] >= 1


def test_credentials_exists_follows_the_device_row(whatsmeow_store: str, store_db: StoreDB) -> None:
    store_db.insert_device(ALICE)

    assert store.credentials_exists(device_jid=ALICE)
    assert not store.credentials_exists(device_jid=BOB)
    assert not store.credentials_exists(device_jid=None)
    store.credentials_delete(device_jid=ALICE)
    assert not store.credentials_exists(device_jid=ALICE)
    assert store.credentials_delete(device_jid=ALICE) == 0


def test_credentials_work_before_the_sqlite_store_exists(
    sqlite_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "is_postgres", lambda: False)

    assert store.credentials_delete(device_jid=ALICE) == 0
    assert not store.credentials_exists(device_jid=ALICE)
    assert not sqlite_store.exists()  # looking did not create it


def test_the_postgres_url_comes_from_the_django_connection_at_runtime() -> None:
    url = store.postgres_url(
        {
            "NAME": "test_db",
            "USER": "app",
            "PASSWORD": "p@ss word",
            "HOST": "db.internal",
            "PORT": "6543",
            "OPTIONS": {"sslmode": "require"},
        }
    )

    assert url == (
        "postgres://app:p%40ss%20word@db.internal:6543/test_db?sslmode=require"
        "&application_name=whatsmeow"
    )
    assert store.postgres_url({"NAME": "d", "USER": "u", "HOST": "", "PORT": ""}) == (
        "postgres://u@localhost:5432/d?sslmode=disable&application_name=whatsmeow"
    )
    if store.is_postgres():
        assert f"/{connections['default'].settings_dict['NAME']}?" in store.store_name()


# --- two processes create the schema of a fresh store at once ---------------------------------

_ENSURE = "import django; django.setup(); from whatsapp.backends.neonize import store; store.schema_ensure()"


def _ensure_concurrently(env: dict[str, str]) -> list[subprocess.CompletedProcess[bytes]]:
    base_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pairing_site.settings", **env}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _ENSURE],
            env=base_env,
            cwd=store.PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def test_two_processes_create_a_fresh_sqlite_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite3"
    env = {"NEONIZE_SQLITE_PATH": str(path), "DATA_DIR": str(tmp_path)}
    env_without_db = {key: "" for key in ("DATABASE_URL", "REDIS_URL")}

    results = _ensure_concurrently({**env_without_db, **env})

    assert [r.returncode for r in results] == [0, 0], [r.stderr[-500:] for r in results]
    import sqlite3

    tables = (
        sqlite3.connect(path)
        .execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name LIKE 'whatsmeow_%'"
        )
        .fetchone()[0]
    )
    assert tables == 17


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
def test_two_processes_create_a_fresh_postgres_store_at_once(tmp_path: Path) -> None:
    name = f"whatsmeow_race_{uuid.uuid4().hex[:8]}"
    admin = _admin_connection()
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        results = _ensure_concurrently(
            {
                "DATABASE_URL": url,
                "REDIS_URL": "",
                "SECRET_KEY": "x" * 40,
                "DATA_DIR": str(tmp_path),
            }
        )

        assert [r.returncode for r in results] == [0, 0], [r.stderr[-500:] for r in results]
        with psycopg.connect(_url_for(name)) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE 'whatsmeow_%'"
            ).fetchone()
        assert row is not None and row[0] == 17
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def _url_for(database: str) -> str:
    settings_dict: dict[str, Any] = dict(connections["default"].settings_dict)
    settings_dict["NAME"] = database
    return store.postgres_url(settings_dict).split("?")[0]


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(_url_for("postgres"), autocommit=True)
