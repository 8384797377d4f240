"""Fixtures for tests that run the real neonize (whatsmeow) against the emulator.

Generic parts (wire layer): the emulator's root key, the patched neonize copy (made once per
session), the child environment, and a runner for `neonize_child.py`. Other layers append
their own sections below, each under its own heading; do not rewrite another section.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import pytest

from emulator.certs import RootKey
from emulator.control import Emulator
from emulator.neonize_copy import client_env
from emulator.transport import Transport
from tests.emulator.helpers import (
    ChildFactory,
    EnvFactory,
    NeonizeChild,
    ProtocolChild,
    ProtocolChildFactory,
)

CHILD_SCRIPT = Path(__file__).with_name("neonize_child.py")

# ---------------------------------------------------------------------------------------------
# Wire layer


@pytest.fixture(scope="session")
def emulator_env(patched_neonize_path: Path) -> EnvFactory:
    """`emulator_env(transport, patched=True, base=os.environ)`: the environment of a child
    process that runs neonize against `transport` (the patched copy unless `patched=False`,
    which leaves the installed neonize, trusting only WhatsApp's real root key)."""

    def make(
        transport: Transport, *, patched: bool = True, base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        env = client_env(
            os.environ if base is None else base,
            pythonpath=patched_neonize_path if patched else "",
            proxy_url=transport.proxy_url,
            ca_file=transport.ca_file,
        )
        if not patched:
            env["PYTHONPATH"] = os.pathsep.join(p for p in env["PYTHONPATH"].split(os.pathsep) if p)
        return env

    return make


@pytest.fixture
def neonize_child(tmp_path: Path) -> Iterator[ChildFactory]:
    """`neonize_child(env, lifetime=60.0, name="child")` starts the venv's python on
    `neonize_child.py` with a fresh SQLite store; every child is killed at teardown."""
    children: list[NeonizeChild] = []
    handles: list[BinaryIO] = []

    def start(
        env: Mapping[str, str], *, lifetime: float = 60.0, name: str = "child"
    ) -> NeonizeChild:
        folder = tmp_path / name
        folder.mkdir()
        log_file = folder / "neonize.log"
        handle = log_file.open("wb")
        handles.append(handle)
        child = NeonizeChild(
            process=subprocess.Popen(
                [
                    sys.executable,
                    str(CHILD_SCRIPT),
                    str(folder / "store.sqlite3"),
                    str(folder / "status.txt"),
                    str(lifetime),
                ],
                env=dict(env),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=folder,
            ),
            status_file=folder / "status.txt",
            log_file=log_file,
            store=folder / "store.sqlite3",
        )
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
    for handle in handles:
        handle.close()


# ---------------------------------------------------------------------------------------------
# Protocol layer: an `Emulator` per test and `protocol_child.py` children that report neonize's
# events as JSON lines.


PROTOCOL_CHILD_SCRIPT = Path(__file__).with_name("protocol_child.py")


@pytest.fixture
def emulator(emulator_root: RootKey) -> Iterator[Emulator]:
    """A started `Emulator` (speed 1) trusted by the patched neonize copy."""
    emu = Emulator(root=emulator_root).start()
    yield emu
    emu.stop()


@pytest.fixture
def protocol_child(tmp_path: Path, emulator_env: EnvFactory) -> Iterator[ProtocolChildFactory]:
    """`protocol_child(emu, name="a", store=None, jid=None, pair_phone=None, client_type=1,
    props_os=None, props_platform=None)` starts a neonize client against `emu`; a new device
    unless `jid` is given. Every child is stopped at teardown."""
    children: list[ProtocolChild] = []
    handles: list[BinaryIO] = []

    def start(
        emu: Emulator,
        *,
        name: str = "child",
        store: Path | None = None,
        jid: str | None = None,
        pair_phone: str | None = None,
        client_type: int = 1,
        props_os: str | None = None,
        props_platform: str | None = None,
    ) -> ProtocolChild:
        folder = tmp_path / name
        folder.mkdir()
        store = store or folder / "store.sqlite3"
        command = [
            sys.executable,
            str(PROTOCOL_CHILD_SCRIPT),
            "--store",
            str(store),
            "--uuid",
            f"emu-{name}",
        ]
        if jid:
            command += ["--jid", jid]
        if pair_phone:
            command += ["--pair-phone", pair_phone, "--client-type", str(client_type)]
        if props_os:
            command += ["--props-os", props_os]
        if props_platform:
            command += ["--props-platform", props_platform]
        log_file = folder / "neonize.log"
        handle = log_file.open("wb")
        handles.append(handle)
        assert emu.transport is not None
        child = ProtocolChild(
            subprocess.Popen(
                command,
                env=emulator_env(emu.transport),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=handle,
                cwd=folder,
            ),
            log_file,
            store,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()
    for handle in handles:
        handle.close()
