"""The coded vocabulary of the wire format: every enumerated field value.

Values are the exact strings that travel on the wire and are signed; the
console translates them for display without ever changing them.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "AckAction",
    "Advice",
    "AltRef",
    "BodyType",
    "CancelReason",
    "ObjectKind",
    "Precedence",
    "Source",
    "Stage",
    "Status",
]


class BodyType(enum.StrEnum):
    WARNING = "warning"
    UPDATE = "update"
    CANCEL = "cancel"
    TEXT = "text"
    RECEIPT = "receipt"
    TEST = "test"
    ACCEPTED = "accepted"
    REFUSED = "refused"


class Status(enum.StrEnum):
    ACTUAL = "actual"
    EXERCISE = "exercise"
    TEST = "test"


class Precedence(enum.StrEnum):
    """Ordered from most to least urgent; ``rank`` 0 is the most urgent."""

    FLASH = "flash"
    IMMEDIATE = "immediate"
    PRIORITY = "priority"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS: Final = {precedence: rank for rank, precedence in enumerate(Precedence)}


class AltRef(enum.StrEnum):
    MSL = "msl"
    AGL = "agl"
    HAE = "hae"


class ObjectKind(enum.StrEnum):
    UAV = "uav"
    FIXED_WING = "fixed_wing"
    ROTARY = "rotary"
    BALLOON = "balloon"
    MISSILE = "missile"
    MANNED = "manned"
    BIRD = "bird"
    UNKNOWN = "unknown"


class Source(enum.StrEnum):
    RADAR = "radar"
    RF = "rf"
    EO_IR = "eo_ir"
    ACOUSTIC = "acoustic"
    VISUAL = "visual"
    REMOTE_ID = "remote_id"
    FUSED = "fused"


class Advice(enum.StrEnum):
    MONITOR = "monitor"
    PREPARE = "prepare"
    AVOID = "avoid"
    ALL_CLEAR = "all_clear"


class CancelReason(enum.StrEnum):
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"
    LEFT_AREA = "left_area"
    LANDED = "landed"
    LOST_CONTACT = "lost_contact"
    OTHER = "other"


class Stage(enum.StrEnum):
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"


class AckAction(enum.StrEnum):
    MONITORING = "monitoring"
    INTERCEPTING = "intercepting"
    NO_ACTION = "no_action"
    FORWARDED = "forwarded"
    OTHER = "other"
