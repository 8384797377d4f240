"""The protocol between `NeonizeBackend` and its host process: one JSON object per line.

backend -> host   {"id": 7, "cmd": "connect", "client": "<uuid>", ...}
host -> backend   {"reply": 7, "ok": true, "result": {...}}
                  {"reply": 7, "ok": false, "code": "RATE_LIMITED", "message": "..."}
                  {"event": {"type": "QRCode", ...}, "client": "<uuid>"}
                  {"state": "running" | "done", "client": "<uuid>", "connects": 3}

Events travel as base.py dataclasses flattened to dicts, so the backend never imports neonize.
This module must stay importable without neonize or Django settings.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from whatsapp.backends import base

_EVENT_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        base.QRCode,
        base.PairingWindowClosed,
        base.PairSuccess,
        base.PairError,
        base.Connected,
        base.LoggedOut,
        base.StreamReplaced,
        base.TemporaryBan,
        base.ClientOutdated,
        base.ConnectFailure,
        base.Disconnected,
        base.KeepAliveTimeout,
        base.KeepAliveRestored,
        base.PasskeyRequired,
        base.ConnectError,
        base.ClientCrashed,
    )
}


def encode_event(event: base.BackendEvent) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type(event).__name__}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        data[field.name] = value.isoformat() if isinstance(value, datetime) else value
    return data


def decode_event(data: dict[str, Any]) -> base.BackendEvent:
    fields = dict(data)
    cls = _EVENT_CLASSES[fields.pop("type")]
    for name, value in fields.items():
        # Only QRCode carries datetimes, all named *_at.
        if name.endswith("_at") and isinstance(value, str):
            fields[name] = datetime.fromisoformat(value)
    return cls(**fields)


def dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def loads(line: bytes) -> dict[str, Any]:
    return json.loads(line)
