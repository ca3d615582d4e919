"""Ed25519 keys: signing, verification and key ids.

Signing goes through ``cryptography`` (which also reads and writes the PEM
PKCS#8 key files); verification goes through libsodium (PyNaCl), which checks
signatures about twice as fast as OpenSSL on the machines hotline runs on and
releases the GIL while it works, so several threads verify in parallel.

Invariants: a :class:`PublicKey` always holds exactly 32 bytes; ``verify``
never raises for a bad signature, it answers ``False``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Final

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from hotline.errors import ConfigError

__all__ = [
    "KID_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "KeyPeriod",
    "PublicKey",
    "SigningKey",
    "key_id",
]

PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
KID_SIZE: Final = 8


def key_id(public_key: bytes) -> bytes:
    """The envelope key id: the first 8 bytes of SHA-256 of the raw public key."""
    return hashlib.sha256(public_key).digest()[:KID_SIZE]


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A raw 32-byte Ed25519 public key."""

    raw: bytes
    kid: bytes = field(repr=False, compare=False, hash=False)
    _verifier: nacl.signing.VerifyKey = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_raw(cls, raw: bytes) -> PublicKey:
        if len(raw) != PUBLIC_KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
        raw = bytes(raw)
        return cls(raw, key_id(raw), nacl.signing.VerifyKey(raw))

    @classmethod
    def from_base64(cls, text: str, *, where: str = "public key") -> PublicKey:
        """Parse standard base64 of the raw 32 bytes, naming ``where`` on error."""
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"{where} is not valid base64") from exc
        if len(raw) != PUBLIC_KEY_SIZE:
            raise ConfigError(f"{where} must be 32 bytes of base64, not {len(raw)}")
        return cls.from_raw(raw)

    def to_base64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is a valid Ed25519 signature of ``message``."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self._verifier.verify(message, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class KeyPeriod:
    """A party's public key and when it may sign: ``not_before <= ts < not_after``.

    Times are milliseconds since the epoch; ``None`` leaves that side open. A
    key rotated out keeps its period, so what it signed while it was valid
    still verifies afterwards.
    """

    key: PublicKey
    not_before: int | None = None
    not_after: int | None = None

    def covers(self, ms: int) -> bool:
        """True if the key may sign something dated ``ms``."""
        if self.not_before is not None and ms < self.not_before:
            return False
        return self.not_after is None or ms < self.not_after

    @property
    def bounded(self) -> bool:
        return self.not_before is not None or self.not_after is not None


class SigningKey:
    """An Ed25519 private key; ``sign`` returns the 64-byte signature."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key: Final = key
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public: Final = PublicKey.from_raw(raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """A key from its 32-byte seed (for test vectors and fixtures)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("not an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def public_key_object(self) -> Ed25519PublicKey:
        return self._key.public_key()
