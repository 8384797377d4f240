"""Key material for the emulated phone and server: Curve25519 key pairs, XEdDSA signatures
(through the `xeddsa` package), and the derivations of WhatsApp's two linking methods (ADV
HMAC for QR and code linking; PBKDF2 + AES-CTR wrapping, HKDF and AES-GCM for code linking).

Written from whatsmeow's `pair.go` and `pair-code.go`: the formulas are the protocol's, the code
is ours. No curve arithmetic is done here by hand."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

import xeddsa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

XEdDSAException = xeddsa.XEdDSAException

# ADV signature prefixes (whatsmeow pair.go): account signs with 6,0; the device with 6,1.
ACCOUNT_SIGNATURE_PREFIX = bytes([6, 0])
DEVICE_SIGNATURE_PREFIX = bytes([6, 1])

# Pairing-code alphabet (Crockford-like base32 without 0, O, I, U).
CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
CODE_PBKDF2_ROUNDS = 2 << 16
KEY_BUNDLE_INFO = b"link_code_pairing_key_bundle_encryption_key"
ADV_SECRET_INFO = b"adv_secret"


def _clamp(raw: bytes) -> bytes:
    key = bytearray(raw)
    key[0] &= 248
    key[31] &= 127
    key[31] |= 64
    return bytes(key)


@dataclass(frozen=True)
class KeyPair:
    """A Curve25519 key pair as whatsmeow keeps them: 32-byte clamped private, 32-byte public."""

    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_private(os.urandom(32))

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        clamped = _clamp(private)
        return cls(private=clamped, public=bytes(xeddsa.priv_to_curve25519_pub(clamped)))

    def dh(self, public: bytes) -> bytes:
        """The X25519 shared secret with a peer's 32-byte public key."""
        return bytes(xeddsa.x25519(self.private, public))

    shared = dh

    def sign(self, message: bytes) -> bytes:
        return xeddsa_sign(self.private, message)


def xeddsa_sign(private: bytes, message: bytes) -> bytes:
    """A 64-byte XEdDSA signature that libsignal's VerifySignature accepts."""
    forced = xeddsa.priv_force_sign(private, False)
    return bytes(xeddsa.ed25519_priv_sign(forced, message))


def xeddsa_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """libsignal's rule: the Edwards sign bit travels in the signature's last byte."""
    if len(public) != 32 or len(signature) != 64:
        return False
    sign_bit = bool(signature[63] & 0x80)
    cleaned = signature[:63] + bytes([signature[63] & 0x7F])
    try:
        ed_public = xeddsa.curve25519_pub_to_ed25519_pub(public, sign_bit)
        return bool(xeddsa.ed25519_verify(cleaned, ed_public, message))
    except xeddsa.XEdDSAException:
        return False


def hmac_sha256(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def hkdf_sha256(key: bytes, salt: bytes | None, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def code_key(code: str, salt: bytes) -> bytes:
    """The AES key a pairing code wraps ephemeral keys with (code without the dash)."""
    return hashlib.pbkdf2_hmac("sha256", code.encode(), salt, CODE_PBKDF2_ROUNDS, 32)


def wrap_with_code(code: str, public: bytes) -> bytes:
    """salt(32) | iv(16) | AES-CTR(PBKDF2(code, salt), iv, public): 80 bytes."""
    salt, iv = os.urandom(32), os.urandom(16)
    return salt + iv + aes_ctr(code_key(code, salt), iv, public)


def unwrap_with_code(code: str, wrapped: bytes) -> bytes:
    if len(wrapped) < 80:
        raise ValueError(f"wrapped key is {len(wrapped)} bytes, expected 80")
    salt, iv, encrypted = wrapped[:32], wrapped[32:48], wrapped[48:80]
    return aes_ctr(code_key(code, salt), iv, encrypted)


def open_key_bundle(ephemeral_shared: bytes, wrapped: bytes) -> bytes:
    """Decrypt the companion's key bundle: salt(32) | nonce(12) | AES-GCM ciphertext."""
    salt, nonce, encrypted = wrapped[:32], wrapped[32:44], wrapped[44:]
    key = hkdf_sha256(ephemeral_shared, salt, KEY_BUNDLE_INFO)
    return AESGCM(key).decrypt(nonce, encrypted, None)


def code_adv_secret(ephemeral_shared: bytes, identity_shared: bytes, adv_random: bytes) -> bytes:
    return hkdf_sha256(ephemeral_shared + identity_shared + adv_random, None, ADV_SECRET_INFO)


def normalise_code(code: str) -> str:
    """`ABCD-EFGH` or `abcdefgh` -> `ABCDEFGH`."""
    return code.replace("-", "").replace(" ", "").upper()


def is_valid_code(code: str) -> bool:
    cleaned = normalise_code(code)
    return len(cleaned) == 8 and all(ch in CODE_ALPHABET for ch in cleaned)
