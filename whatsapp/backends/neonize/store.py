"""The whatsmeow device store, seen from Python.

whatsmeow keeps each linked company as one `whatsmeow_device` row (keyed by the full device JID)
plus rows in tables that cascade from it. It lives in Django's database when that is PostgreSQL
(so one backup holds everything) and in the SQLite file NEONIZE_SQLITE_PATH otherwise (two
SQLite writers in one file would fight over its lock).

Everything here is plain synchronous SQL, usable from the web process while no worker runs the
company. The store name is built from `connections["default"]` on every call, never at import:
pytest-django (and anything else) may point the connection at another database after import.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import connections, transaction

log = logging.getLogger(__name__)

# Shown in pg_stat_activity for every connection whatsmeow opens; ops (and the leak test) count
# the host processes' connections by it.
APPLICATION_NAME = "whatsmeow"

DEVICE_TABLE = "whatsmeow_device"
# (table, column holding our device JID) for every table that cascades from whatsmeow_device,
# directly or (mutation_macs) through app_state_version. Listed to count what a delete removes.
CASCADED_TABLES: tuple[tuple[str, str], ...] = (
    ("whatsmeow_identity_keys", "our_jid"),
    ("whatsmeow_pre_keys", "jid"),
    ("whatsmeow_sessions", "our_jid"),
    ("whatsmeow_sender_keys", "our_jid"),
    ("whatsmeow_app_state_sync_keys", "jid"),
    ("whatsmeow_app_state_version", "jid"),
    ("whatsmeow_app_state_mutation_macs", "jid"),
    ("whatsmeow_contacts", "our_jid"),
    ("whatsmeow_chat_settings", "our_jid"),
    ("whatsmeow_message_secrets", "our_jid"),
    ("whatsmeow_nct_salt", "our_jid"),
    ("whatsmeow_event_buffer", "our_jid"),
    ("whatsmeow_retry_buffer", "our_jid"),
)
# Rows of this device only, without a foreign key: whatsmeow writes our full device JID in
# privacy_tokens.our_jid. lid_map and version are shared by every device and never touched.
UNLINKED_TABLES: tuple[tuple[str, str], ...] = (("whatsmeow_privacy_tokens", "our_jid"),)

# pg_advisory_lock key serialising schema creation/upgrade across every process.
SCHEMA_LOCK_KEY = zlib.crc32(b"whatsapp-pairing:whatsmeow-schema")
SCHEMA_TIMEOUT_SECONDS = 60.0
PROJECT_ROOT = Path(__file__).resolve().parents[3]

# Stores whose schema this process already brought up to date: the installed neonize (and so
# the schema version) cannot change while the process runs.
_schema_ready: set[str] = set()


def is_postgres() -> bool:
    return connections["default"].vendor == "postgresql"


def store_name() -> str:
    """The `name` neonize's NewClient needs: a postgres URL, or the SQLite file path."""
    if is_postgres():
        if settings.NEONIZE_STORE_URL:
            return _with_application_name(settings.NEONIZE_STORE_URL)
        return postgres_url(connections["default"].settings_dict)
    return sqlite_path()


def _with_application_name(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("sslmode", "disable")
    query.setdefault("application_name", APPLICATION_NAME)
    # lib/pq then sends each query in one round trip, which PgBouncer's transaction mode needs.
    query.setdefault("binary_parameters", "yes")
    return urlunsplit(parts._replace(query=urlencode(query)))


def sqlite_path() -> str:
    return str(Path(settings.NEONIZE_SQLITE_PATH).resolve())


def postgres_url(settings_dict: dict[str, Any]) -> str:
    """`postgres://user[:pass]@host:port/dbname?sslmode=...` for lib/pq from a Django entry."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or "5432"
    options = settings_dict.get("OPTIONS") or {}
    query = {"sslmode": options.get("sslmode", "disable"), "application_name": APPLICATION_NAME}
    if host.startswith("/"):
        # A unix socket directory cannot sit in the authority part; lib/pq takes it as a param.
        query["host"] = host
        host = "localhost"
    database = quote(settings_dict["NAME"], safe="")
    return f"postgres://{credentials}{host}:{port}/{database}?{urlencode(query)}"


# --- schema ------------------------------------------------------------------------------------


def schema_ensure(*, timeout: float = SCHEMA_TIMEOUT_SECONDS) -> None:
    """Create or upgrade the whatsmeow tables once, with every other process locked out.

    Two clients upgrading a fresh store at once fail ("failed to add compat column to version
    table"), so this runs before any client starts, under a lock that spans processes. The work
    itself happens in a short-lived neonize process: it opens the store, which makes whatsmeow
    run its migrations, without dialing WhatsApp; the database connection it leaves open dies
    with it.
    """
    name = store_name()
    if name in _schema_ready:
        return
    with _schema_lock():
        _run_schema_process(name, timeout=timeout)
    # neonize logs store errors instead of raising them; check the outcome ourselves.
    if not schema_exists():
        raise RuntimeError("neonize ran but the whatsmeow tables are still missing")
    _schema_ready.add(name)


def schema_exists() -> bool:
    with _store_cursor() as cursor:
        return cursor is not None and DEVICE_TABLE in _existing_tables(cursor, [DEVICE_TABLE])


def _run_schema_process(name: str, *, timeout: float) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "whatsapp.backends.neonize.host", "--ensure-schema"],
        input=name.encode(),
        capture_output=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
        env=host_environment(),
        check=False,
    )
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(
            f"creating the whatsmeow schema failed (exit {result.returncode}): {' | '.join(tail)}"
        )


def host_environment() -> dict[str, str]:
    """Environment for neonize processes: the project importable, Python unbuffered, plus
    NEONIZE_HOST_EXTRA_ENV (tests: a proxy, a CA and a library copy that reach the emulator)."""
    env = dict(os.environ)
    extra = dict(settings.NEONIZE_HOST_EXTRA_ENV)
    paths = [str(PROJECT_ROOT), extra.pop("PYTHONPATH", ""), env.get("PYTHONPATH", "")]
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def _schema_lock() -> Iterator[None]:
    if is_postgres():
        with _postgres_advisory_lock():
            yield
    else:
        with _file_lock(sqlite_path() + ".lock"):
            yield


@contextlib.contextmanager
def _postgres_advisory_lock() -> Iterator[None]:
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [SCHEMA_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SCHEMA_LOCK_KEY])


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- credentials -------------------------------------------------------------------------------


def credentials_exists(*, device_jid: str | None) -> bool:
    """Whether the device row is in the store. Connecting with a JID that is not panics Go."""
    if not device_jid:
        return False
    with _store_cursor() as cursor:
        if cursor is None or DEVICE_TABLE not in _existing_tables(cursor, [DEVICE_TABLE]):
            return False
        cursor.execute(f"SELECT 1 FROM {DEVICE_TABLE} WHERE jid = {_mark()}", [device_jid])
        return cursor.fetchone() is not None


def device_jids() -> list[str]:
    """Every device in the store (all companies'), e.g. to find rows no session knows."""
    with _store_cursor() as cursor:
        if cursor is None or DEVICE_TABLE not in _existing_tables(cursor, [DEVICE_TABLE]):
            return []
        cursor.execute(f"SELECT jid FROM {DEVICE_TABLE} ORDER BY jid")
        return [str(row[0]) for row in cursor.fetchall()]


def credentials_delete(*, device_jid: str | None) -> int:
    """Delete the device, everything that cascades from it and its privacy tokens.

    Returns how many rows went in all (counted before the delete, in the same transaction,
    because a cascading delete reports only the device row).
    """
    if not device_jid:
        return 0
    tables = [DEVICE_TABLE, *(name for name, _ in CASCADED_TABLES + UNLINKED_TABLES)]
    with _store_cursor(write=True) as cursor:
        if cursor is None:
            return 0
        existing = _existing_tables(cursor, tables)
        if DEVICE_TABLE not in existing:
            return 0
        cascaded = sum(
            _count(cursor, table, column, device_jid)
            for table, column in CASCADED_TABLES
            if table in existing
        )
        tokens = 0
        for table, column in UNLINKED_TABLES:
            if table in existing:
                cursor.execute(f"DELETE FROM {table} WHERE {column} = {_mark()}", [device_jid])
                tokens += cursor.rowcount
        cursor.execute(f"DELETE FROM {DEVICE_TABLE} WHERE jid = {_mark()}", [device_jid])
        if cursor.rowcount == 0:
            # Another process deleted the device between our count and our delete.
            return tokens
        return cascaded + cursor.rowcount + tokens


def _count(cursor: Any, table: str, column: str, device_jid: str) -> int:
    cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = {_mark()}", [device_jid])
    return int(cursor.fetchone()[0])


def _existing_tables(cursor: Any, names: Sequence[str]) -> set[str]:
    if is_postgres():
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s)",
            [list(names)],
        )
    else:
        marks = ", ".join("?" for _ in names)
        cursor.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",
            list(names),
        )
    return {row[0] for row in cursor.fetchall()}


def _mark() -> str:
    return "%s" if is_postgres() else "?"


@contextlib.contextmanager
def _store_cursor(*, write: bool = False) -> Iterator[Any]:
    """A cursor on the store, in one transaction; None when the SQLite file does not exist."""
    if is_postgres():
        with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
            yield cursor
        return
    path = sqlite_path()
    if not Path(path).exists():
        yield None
        return
    # whatsmeow's tables rely on ON DELETE CASCADE, which SQLite enforces only with this pragma.
    db = sqlite3.connect(path, timeout=20, isolation_level=None)
    try:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 20000")
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        sqlite_cursor = db.cursor()
        try:
            yield sqlite_cursor
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()
