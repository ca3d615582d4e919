"""Message ids: 16-byte UUIDv7 (RFC 9562 §5.7), made from a time and random bytes.

Pure: the caller passes the time in milliseconds and 10 random bytes, so tests
can make ids deterministically. ``is_uuid7`` checks the version and variant bits.
"""

from __future__ import annotations

import uuid
from typing import Final

__all__ = ["ID_SIZE", "format_id", "is_uuid7", "make_id", "parse_id", "uuid7_time_ms"]

ID_SIZE: Final = 16
_RANDOM_SIZE: Final = 10
_MAX_MS: Final = (1 << 48) - 1


def make_id(now_ms: int, random: bytes) -> bytes:
    """A UUIDv7: 48-bit Unix milliseconds, version 7, variant 0b10, 74 random bits."""
    if not 0 <= now_ms <= _MAX_MS:
        raise ValueError(f"time {now_ms} ms does not fit the 48 bits of a UUIDv7")
    if len(random) != _RANDOM_SIZE:
        raise ValueError(f"a UUIDv7 takes {_RANDOM_SIZE} random bytes, not {len(random)}")
    raw = bytearray(now_ms.to_bytes(6, "big") + random)
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return bytes(raw)


def is_uuid7(raw: bytes) -> bool:
    return len(raw) == ID_SIZE and raw[6] >> 4 == 7 and raw[8] >> 6 == 0b10


def uuid7_time_ms(raw: bytes) -> int:
    return int.from_bytes(raw[:6], "big")


def format_id(raw: bytes) -> str:
    """The canonical text form, ``0190f1c2-…``."""
    return str(uuid.UUID(bytes=raw))


def parse_id(text: str) -> bytes:
    """The 16 bytes of a UUID written in canonical text form; ValueError otherwise."""
    if len(text) != 36:
        raise ValueError("an id is written as 36 characters, 8-4-4-4-12 hex digits")
    return uuid.UUID(text).bytes
