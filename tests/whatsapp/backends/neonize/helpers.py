"""Helpers for the neonize backend's tests: recording a client's events, PostgreSQL gating, and
raw access to the whatsmeow store (a device with a row in every table that belongs to it)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from typing import Any

import pytest
from django.db import connections

from whatsapp.backends import base
from whatsapp.backends.neonize import store

POSTGRES_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = POSTGRES_URL.startswith(("postgres://", "postgresql://"))
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)"
)


def recorded_client(
    backend: Any, *, device_jid: str | None = None, client_uuid: str = "alice"
) -> tuple[Any, EventRecorder]:
    """A client of `backend` for `client_uuid`, and the recorder of its events."""
    recorder = EventRecorder()
    client = backend.create_client(
        client_uuid=client_uuid, device_jid=device_jid, on_event=recorder
    )
    return client, recorder


class EventRecorder:
    """An `on_event` that keeps every event and lets a test wait for the next of a type."""

    def __init__(self) -> None:
        self.events: list[base.BackendEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: base.BackendEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def next_of(self, event_type: type, *, after: int = 0, within: float = 10.0):
        """The first event of `event_type` at position >= `after`."""

        def found():
            return next((e for e in self.events[after:] if isinstance(e, event_type)), None)

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        return found()


def bytes_of(length: int, seed: str) -> bytes:
    return (seed.encode() * length)[:length]


def device_rows(jid: str) -> dict[str, list[dict[str, Any]]]:
    """One device and one row in every table that belongs to it, valid for whatsmeow's CHECKs."""
    s = jid.split("@")[0]
    return {
        "whatsmeow_device": [
            {
                "jid": jid,
                "registration_id": 1,
                "noise_key": bytes_of(32, s),
                "identity_key": bytes_of(32, s),
                "signed_pre_key": bytes_of(32, s),
                "signed_pre_key_id": 1,
                "signed_pre_key_sig": bytes_of(64, s),
                "adv_key": bytes_of(32, s),
                "adv_details": b"details",
                "adv_account_sig": bytes_of(64, s),
                "adv_account_sig_key": bytes_of(32, s),
                "adv_device_sig": bytes_of(64, s),
            }
        ],
        "whatsmeow_identity_keys": [
            {"our_jid": jid, "their_id": "friend", "identity": bytes_of(32, s)}
        ],
        "whatsmeow_pre_keys": [{"jid": jid, "key_id": 1, "key": bytes_of(32, s), "uploaded": True}],
        "whatsmeow_sessions": [{"our_jid": jid, "their_id": "friend", "session": b"session"}],
        "whatsmeow_sender_keys": [
            {"our_jid": jid, "chat_id": "chat", "sender_id": "friend", "sender_key": b"key"}
        ],
        "whatsmeow_app_state_sync_keys": [
            {"jid": jid, "key_id": b"k1", "key_data": b"data", "timestamp": 1, "fingerprint": b"f"}
        ],
        "whatsmeow_app_state_version": [
            {"jid": jid, "name": "regular", "version": 1, "hash": bytes_of(128, s)}
        ],
        "whatsmeow_app_state_mutation_macs": [
            {
                "jid": jid,
                "name": "regular",
                "version": 1,
                "index_mac": bytes_of(32, s),
                "value_mac": bytes_of(32, s),
            }
        ],
        "whatsmeow_contacts": [{"our_jid": jid, "their_jid": "friend@s.whatsapp.net"}],
        "whatsmeow_chat_settings": [
            {
                "our_jid": jid,
                "chat_jid": "chat@s.whatsapp.net",
                "muted_until": 0,
                "pinned": False,
                "archived": False,
            }
        ],
        "whatsmeow_message_secrets": [
            {
                "our_jid": jid,
                "chat_jid": "chat",
                "sender_jid": "friend",
                "message_id": "m1",
                "key": b"secret",
            }
        ],
        "whatsmeow_nct_salt": [{"our_jid": jid, "salt": b"salt"}],
        "whatsmeow_event_buffer": [
            {
                "our_jid": jid,
                "ciphertext_hash": bytes_of(32, s),
                "plaintext": b"p",
                "server_timestamp": 1,
                "insert_timestamp": 1,
            }
        ],
        "whatsmeow_retry_buffer": [
            {
                "our_jid": jid,
                "chat_jid": "chat",
                "message_id": "m1",
                "format": "f",
                "plaintext": b"p",
                "timestamp": 1,
            }
        ],
        "whatsmeow_privacy_tokens": [
            {"our_jid": jid, "their_jid": "friend@s.whatsapp.net", "token": b"t", "timestamp": 1}
        ],
    }


class StoreDB:
    """Raw SQL on the whatsmeow store the code under test uses (SQLite file or Django's PG)."""

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple]:
        if store.is_postgres():
            with connections["default"].cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), list(params))
                return cursor.fetchall() if cursor.description else []
        db = sqlite3.connect(store.sqlite_path(), isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            return db.execute(sql, list(params)).fetchall()
        finally:
            db.close()

    def insert_device(self, jid: str) -> int:
        count = 0
        for table, rows in device_rows(jid).items():
            for row in rows:
                columns = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                self.execute(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values())
                )
                count += 1
        return count

    def rows_of(self, jid: str) -> dict[str, int]:
        """Rows per table that belong to `jid` (the device's own tables and its tokens)."""
        counts = {
            "whatsmeow_device": self.execute(
                "SELECT COUNT(*) FROM whatsmeow_device WHERE jid = ?", [jid]
            )[0][0]
        }
        for table, column in store.CASCADED_TABLES + store.UNLINKED_TABLES:
            counts[table] = self.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", [jid])[
                0
            ][0]
        return counts
