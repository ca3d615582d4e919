"""What the protocol needs to know of a network, as a seam: who exists and who is linked.

:class:`hotline.network.Network` (built from ``network.toml``) fits these
protocols; the protocol package depends on them rather than on ``network.py``,
which sits above it (it reads keys and vocabulary from here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from hotline.protocol.keys import KeyPeriod

__all__ = ["AdmissionLimits", "Party", "Topology"]


class AdmissionLimits(Protocol):
    """The limits admission applies (``[limits]`` of ``network.toml``)."""

    @property
    def messages_per_minute(self) -> int: ...

    @property
    def clock_skew_ms(self) -> int: ...

    @property
    def max_age_ms(self) -> int: ...


class Party(Protocol):
    """A party, known by its id."""

    @property
    def id(self) -> str: ...


class Topology(Protocol):
    """The parties of a network, their links and keys, and its admission limits."""

    @property
    def relay(self) -> Party: ...

    @property
    def endpoints(self) -> Mapping[str, object]: ...

    @property
    def limits(self) -> AdmissionLimits: ...

    def period_of(self, party: str, kid: bytes) -> KeyPeriod | None:
        """The key period of ``party``'s key ``kid``, or None if it has no such key."""

    def linked(self, a: str, b: str) -> bool:
        """Whether endpoints ``a`` and ``b`` may send to each other."""

    def peers(self, endpoint: str) -> tuple[str, ...]:
        """Every endpoint linked to ``endpoint``."""
