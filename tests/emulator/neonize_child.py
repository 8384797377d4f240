"""Runs the (patched) neonize as a brand-new device against whatever HTTPS_PROXY points at.

Usage: python neonize_child.py <sqlite path> <status file>. Writes one line per event to the
status file ("qr <data>", "connected", "error <text>"), so the test can follow it; everything
neonize itself prints goes to this process's stdout/stderr (a file, in the tests).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path


def main() -> None:
    store, status_path = sys.argv[1], Path(sys.argv[2])
    status = status_path.open("a", buffering=1)

    def note(line: str) -> None:
        status.write(line + "\n")
        status.flush()

    import neonize

    note(f"loaded {Path(neonize.__file__).parent}")
    from neonize.client import NewClient

    client = NewClient(store, uuid="emulator-child", new_device=True)

    def on_qr(_client: object, data: bytes) -> None:
        note("qr " + data.decode(errors="replace"))

    client.event.qr(on_qr)

    def run() -> None:
        try:
            client.connect()
        except Exception as exc:
            note(f"error {exc!r}")
        note("connect returned")

    threading.Thread(target=run, daemon=True).start()
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 60)


if __name__ == "__main__":
    main()
