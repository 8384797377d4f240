"""The emulator's stand-in for WhatsApp's Noise certificate authority: a Curve25519 root key
and the two-certificate chain (intermediate, leaf) the server sends in its ServerHello.

whatsmeow (handshake.go, verifyServerCert) checks, in this order: both certificates have
`details` and a 64-byte `signature`; the intermediate's details are signed by the root key
(`WACertPubKey`, compiled into the client) and name issuer serial 0; the intermediate's key is
32 bytes and signs the leaf's details; the intermediate is within notBefore..notAfter; the leaf
names the intermediate's serial as its issuer, its key is the server's Noise static key, and it
is within its validity window too. Signatures are XEdDSA (libsignal's flavour) over Curve25519.
"""

from __future__ import annotations

import time
from pathlib import Path

from neonize.proto.waCert import WACert_pb2

from emulator.crypto import KeyPair, xeddsa_sign, xeddsa_verify

__all__ = ["KeyPair", "RootKey", "xeddsa_sign", "xeddsa_verify"]

# The intermediate's issuer serial that whatsmeow requires (WACertIssuerSerial).
ROOT_SERIAL = 0
INTERMEDIATE_SERIAL = 1
LEAF_SERIAL = 2


class RootKey:
    """The key the emulator's certificate chain hangs from. A test copy of neonize whose
    `WACertPubKey` is replaced by `public` trusts it (emulator.neonize_copy)."""

    def __init__(self, keys: KeyPair) -> None:
        self.keys = keys

    @property
    def private(self) -> bytes:
        return self.keys.private

    @property
    def public(self) -> bytes:
        return self.keys.public

    @classmethod
    def generate(cls) -> RootKey:
        return cls(KeyPair.generate())

    @classmethod
    def from_private(cls, private: bytes) -> RootKey:
        return cls(KeyPair.from_private(private))

    @classmethod
    def load_or_create(cls, path: Path) -> RootKey:
        """The key stored (raw 32 bytes) at `path`, creating it on first use."""
        if path.exists():
            return cls.from_private(path.read_bytes())
        root = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(root.private)
        return root

    def issue_chain(
        self,
        server_static: bytes,
        *,
        not_before: int | None = None,
        not_after: int | None = None,
        intermediate_serial: int = INTERMEDIATE_SERIAL,
        intermediate_issuer_serial: int = ROOT_SERIAL,
        leaf_serial: int = LEAF_SERIAL,
        leaf_issuer_serial: int | None = None,
        leaf_key: bytes | None = None,
    ) -> bytes:
        """The serialized `CertChain` vouching for `server_static` (the server's Noise static
        public key). Keyword arguments exist to build chains the client must refuse."""
        now = int(time.time())
        window = (now - 3600 if not_before is None else not_before, now + 86400 * 365)
        if not_after is not None:
            window = (window[0], not_after)
        intermediate_keys = KeyPair.generate()
        intermediate = _certificate(
            self.keys,
            serial=intermediate_serial,
            issuer_serial=intermediate_issuer_serial,
            key=intermediate_keys.public,
            window=window,
        )
        leaf = _certificate(
            intermediate_keys,
            serial=leaf_serial,
            issuer_serial=intermediate_serial if leaf_issuer_serial is None else leaf_issuer_serial,
            key=server_static if leaf_key is None else leaf_key,
            window=window,
        )
        chain = WACert_pb2.CertChain()
        chain.intermediate.CopyFrom(intermediate)
        chain.leaf.CopyFrom(leaf)
        return chain.SerializeToString()


def _certificate(
    issuer: KeyPair, *, serial: int, issuer_serial: int, key: bytes, window: tuple[int, int]
) -> WACert_pb2.CertChain.NoiseCertificate:
    details = WACert_pb2.CertChain.NoiseCertificate.Details()
    details.serial = serial
    details.issuerSerial = issuer_serial
    details.key = key
    details.notBefore = window[0]
    details.notAfter = window[1]
    raw = details.SerializeToString()
    cert = WACert_pb2.CertChain.NoiseCertificate()
    cert.details = raw
    cert.signature = issuer.sign(raw)
    return cert


class ChainError(ValueError):
    """A certificate chain the client would refuse."""


def verify_chain(
    chain_bytes: bytes, server_static: bytes, root_public: bytes, *, now: float | None = None
) -> None:
    """Checks a serialized CertChain the way whatsmeow's client does (see the module
    docstring); raises ChainError naming the first check that fails."""
    chain = WACert_pb2.CertChain()
    chain.ParseFromString(chain_bytes)
    intermediate, leaf = chain.intermediate, chain.leaf
    if not (intermediate.details and intermediate.signature and leaf.details and leaf.signature):
        raise ChainError("missing parts of the certificate chain")
    if len(intermediate.signature) != 64 or len(leaf.signature) != 64:
        raise ChainError("signatures must have 64 bytes")
    if not xeddsa_verify(root_public, intermediate.details, intermediate.signature):
        raise ChainError("intermediate not signed by the root key")
    inter = WACert_pb2.CertChain.NoiseCertificate.Details()
    inter.ParseFromString(intermediate.details)
    if inter.issuerSerial != ROOT_SERIAL:
        raise ChainError(f"intermediate issuer serial {inter.issuerSerial}, not {ROOT_SERIAL}")
    if len(inter.key) != 32:
        raise ChainError("intermediate key is not 32 bytes")
    if not xeddsa_verify(inter.key, leaf.details, leaf.signature):
        raise ChainError("leaf not signed by the intermediate")
    moment = time.time() if now is None else now
    _check_window(inter, moment, "intermediate")
    details = WACert_pb2.CertChain.NoiseCertificate.Details()
    details.ParseFromString(leaf.details)
    if details.issuerSerial != inter.serial:
        raise ChainError(f"leaf issuer serial {details.issuerSerial}, not {inter.serial}")
    if details.key != server_static:
        raise ChainError("leaf key is not the server's static key")
    _check_window(details, moment, "leaf")


def _check_window(
    details: WACert_pb2.CertChain.NoiseCertificate.Details, now: float, name: str
) -> None:
    if now < details.notBefore:
        raise ChainError(f"{name} certificate not valid yet")
    if now > details.notAfter:
        raise ChainError(f"{name} certificate expired")
