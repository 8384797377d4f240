"""The linking scenarios run twice: against the sandbox, and against the real neonize on the
WhatsApp emulator. `world` is parametrized; a test's id says which (`[sandbox]`, `[emulator]`).

Both worlds run the product as users get it: the linking services, an in-process worker, and
the configured backend (`sandbox`, or `neonize` with its host processes pointed at the emulator).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.certs import RootKey
from emulator.control import Emulator
from emulator.neonize_copy import client_env
from tests.scenarios.worlds import EmulatorWorld, SandboxWorld, World
from whatsapp.backends import reset_backends
from whatsapp.backends.neonize import store
from whatsapp.worker.inprocess import ThreadedWorker

# The emulator and the sandbox both run WhatsApp's clock 20 times faster: an 8 s window.
SPEED = 20.0


@pytest.fixture(params=["sandbox", "emulator"])
def world(
    request: pytest.FixtureRequest,
    settings: Any,
    emulator_root: RootKey,
    patched_neonize_path: Path,
) -> Iterator[World]:
    settings.WHATSAPP_SANDBOX_SPEED = SPEED
    settings.WHATSAPP_OPERATION_TIMEOUT = 20.0
    if request.param == "sandbox":
        settings.WHATSAPP_BACKEND = "sandbox"
        reset_backends()
        yield SandboxWorld()
        return
    emulator = Emulator(speed=SPEED, root=emulator_root).start()
    try:
        settings.WHATSAPP_BACKEND = "neonize"
        settings.NEONIZE_FIRST_QR_TIMEOUT = 15.0
        environment = client_env(
            {},
            pythonpath=patched_neonize_path,
            proxy_url=emulator.proxy_url,
            ca_file=emulator.ca_file,
        )
        settings.NEONIZE_HOST_EXTRA_ENV = environment
        reset_backends()
        yield EmulatorWorld(emulator)
    finally:
        emulator.stop()
        # The next test's emulator numbers devices from 1 again; WhatsApp never reuses a
        # device number, so no store may keep rows of this test's devices.
        for jid in store.device_jids():
            store.credentials_delete(device_jid=jid)


@pytest.fixture
def running(world: World, transactional_db: None) -> Iterator[ThreadedWorker]:
    """An in-process worker with the world's backend (stopped, and restartable, by the test)."""
    threaded = ThreadedWorker()
    threaded.start(timeout=60)
    yield threaded
    threaded.stop(timeout=60)
