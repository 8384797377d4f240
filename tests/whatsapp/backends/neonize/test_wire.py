"""Backend events cross the host pipe unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from whatsapp.backends import base
from whatsapp.backends.neonize import wire

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "event",
    [
        base.QRCode(code="2@abc,def", index=2, expires_at=NOW, window_expires_at=NOW),
        base.PairingWindowClosed(),
        base.PairSuccess(jid="1:2@s.whatsapp.net", phone="1"),
        base.PairError(message="x"),
        base.Connected(jid="1:2@s.whatsapp.net", phone="1"),
        base.Connected(),
        base.LoggedOut(reason="logged_out", on_connect=True),
        base.StreamReplaced(),
        base.TemporaryBan(code=101, expire_seconds=60),
        base.ClientOutdated(),
        base.ConnectFailure(reason=401, message="m"),
        base.Disconnected(),
        base.KeepAliveTimeout(error_count=2),
        base.KeepAliveRestored(),
        base.ConnectError(error_code="WHATSAPP_UNAVAILABLE", message="no such host"),
        base.ClientCrashed(message="panic"),
    ],
)
def test_events_round_trip_through_the_wire(event: base.BackendEvent) -> None:
    line = wire.dumps({"event": wire.encode_event(event), "client": "c"})

    assert wire.decode_event(wire.loads(line)["event"]) == event
