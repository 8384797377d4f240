"""Helpers for the emulator's tests: neonize child processes and what they report."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EnvFactory = Callable[..., dict[str, str]]


@dataclass
class NeonizeChild:
    """A child process running `neonize_child.py` (a new device that connects and waits)."""

    process: subprocess.Popen[bytes]
    status_file: Path
    log_file: Path
    store: Path

    def status(self) -> list[str]:
        """The lines the child wrote so far ("loaded <path>", "qr <code>", "error <text>")."""
        if not self.status_file.exists():
            return []
        return self.status_file.read_text(errors="replace").splitlines()

    def log(self) -> str:
        """Everything neonize printed (for failure messages)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def wait_status(self, prefix: str, timeout: float = 15.0) -> str:
        """Blocks until a status line starts with `prefix` (use from a thread in async tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.status():
                if line.startswith(prefix):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} status in {timeout}s; log:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


ChildFactory = Callable[..., NeonizeChild]


class ProtocolChild:
    """A `protocol_child.py` process; its JSON lines collected by a reader thread."""

    def __init__(self, process: subprocess.Popen[bytes], log_file: Path, store: Path) -> None:
        self.process = process
        self.log_file = log_file
        self.store = store
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self.events.append({"event": "exited"})
            self._changed.notify_all()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def mark(self) -> int:
        with self._changed:
            return len(self.events)

    def seen(self, name: str, since: int = 0) -> list[dict[str, Any]]:
        with self._changed:
            return [event for event in self.events[since:] if event["event"] == name]

    def wait(
        self, name: str, timeout: float = 30.0, *, since: int = 0, **match: Any
    ) -> dict[str, Any]:
        """The first `name` line at or after index `since` whose fields equal `match`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            index = since
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if event["event"] == name and all(
                        event.get(key) == value for key, value in match.items()
                    ):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            lines = "\n".join(json.dumps(event) for event in self.events)
        raise AssertionError(
            f"no {name} {match or ''} within {timeout} s; events:\n{lines}\n"
            f"log:\n{self.log()[-4000:]}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                assert self.process.stdin is not None
                self.process.stdin.close()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


ProtocolChildFactory = Callable[..., ProtocolChild]
