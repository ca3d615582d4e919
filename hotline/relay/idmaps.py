"""What the relay core remembers per logged id, behind a small interface.

:class:`~hotline.relay.core.RelayCore` looks ids up in three maps: the
envelopes it has logged (``accepted``: id → index, relay time, body hash, to
answer a resend with its original receipt), who sent each logged message or
link test (``origins``: to route a receipt back), and the body hash of every
id logged or being logged (``seen``: admission's duplicate and replay rule).
They are mapping-shaped so plain dicts serve in tests and in memory;
:class:`hotline.relay.idindex.IdIndex` keeps them on disk so that the relay's
memory does not grow with its log. Pure: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hotline.protocol.admission import SeenIds

__all__ = ["Accepted", "AcceptedIds", "IdMaps", "Origins", "SeenIds"]

Accepted = tuple[int, int, bytes]
"""A logged envelope's index, the relay time it was logged at, and its body hash."""


class AcceptedIds(Protocol):
    def get(self, key: bytes, /) -> Accepted | None: ...

    def __getitem__(self, key: bytes, /) -> Accepted: ...

    def __setitem__(self, key: bytes, value: Accepted, /) -> None: ...


class Origins(Protocol):
    def get(self, key: bytes, /) -> str | None: ...

    def __setitem__(self, key: bytes, value: str, /) -> None: ...


@dataclass(frozen=True, slots=True)
class IdMaps:
    """The three maps a relay core keeps its per-id state in."""

    accepted: AcceptedIds
    origins: Origins
    seen: SeenIds

    @classmethod
    def in_memory(cls) -> IdMaps:
        """Plain dicts: memory grows with every id logged (tests, short-lived cores)."""
        accepted: dict[bytes, Accepted] = {}
        origins: dict[bytes, str] = {}
        seen: dict[bytes, bytes] = {}
        return cls(accepted, origins, seen)
