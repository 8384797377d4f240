"""A test copy of the installed neonize package that trusts the emulator's root key instead of
WhatsApp's, and the environment that points a child process at it and at the emulator.

The copy differs from the installed package in 32 bytes of its Go library: whatsmeow's
`WACertPubKey` (the root its Noise handshake checks the server's certificate chain against).
Production never loads the copy; it lives in a test's temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

# whatsmeow's root key (handshake.go, WACertPubKey).
WHATSAPP_ROOT_KEY = bytes.fromhex(
    "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b"
)
_MARKER = ".emulator-root"
_LIBRARY_SUFFIXES = (".so", ".dylib", ".dll")
_lock = threading.Lock()


def installed_neonize() -> Path:
    """The folder of the installed neonize package (found without importing it)."""
    spec = importlib.util.find_spec("neonize")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("neonize is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def go_libraries(package: Path) -> list[Path]:
    """neonize's bundled Go library (one per platform that happens to be present)."""
    return sorted(
        path
        for path in package.iterdir()
        if path.name.startswith("neonize-") and path.suffix in _LIBRARY_SUFFIXES
    )


def patch_root_key(library: Path, root_public: bytes) -> None:
    """Replaces whatsmeow's root key in one Go library, in place."""
    if len(root_public) != 32:
        raise ValueError("the root public key has 32 bytes")
    data = library.read_bytes()
    count = data.count(WHATSAPP_ROOT_KEY)
    if count != 1:
        raise RuntimeError(f"{library.name}: expected WACertPubKey exactly once, found {count}")
    library.write_bytes(data.replace(WHATSAPP_ROOT_KEY, root_public))


def patched_neonize(dest: Path, root_public: bytes) -> Path:
    """Copies the installed neonize into `dest/neonize` with its root key replaced by
    `root_public`, and returns `dest` (the folder to put first on the child's PYTHONPATH).
    A copy already made there for the same key is reused."""
    package = dest / "neonize"
    marker = package / _MARKER
    with _lock:
        if marker.exists() and marker.read_text().strip() == root_public.hex():
            return dest
        if package.exists():
            shutil.rmtree(package)
        dest.mkdir(parents=True, exist_ok=True)
        staging = dest / ".neonize-copying"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(installed_neonize(), staging, ignore=shutil.ignore_patterns("__pycache__"))
        libraries = go_libraries(staging)
        if not libraries:
            raise RuntimeError("the installed neonize has no Go library")
        for library in libraries:
            patch_root_key(library, root_public)
        (staging / _MARKER).write_text(root_public.hex() + "\n")
        staging.rename(package)
    return dest


def client_env(
    base_env: Mapping[str, str], *, pythonpath: Path | str, proxy_url: str, ca_file: Path | str
) -> dict[str, str]:
    """The environment of a process running the patched neonize against the emulator: the copy
    first on PYTHONPATH, every HTTPS request through the emulator's CONNECT proxy, and the
    emulator's test CA as Go's (and OpenSSL's) root certificate file."""
    env = {
        key: value
        for key, value in base_env.items()
        if key.lower() not in ("no_proxy", "https_proxy", "http_proxy", "all_proxy")
    }
    paths = [str(pythonpath)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["HTTPS_PROXY"] = proxy_url
    env["https_proxy"] = proxy_url
    env["SSL_CERT_FILE"] = str(ca_file)
    return env
