"""The body types of a signed envelope, as frozen values (protocol §Bodies).

Every body carries the common header fields (``id``, ``sender`` for the wire's
``from``, ``ts``, ``seq``, ``kid``). Optional wire fields are ``None`` here and
absent on the wire. Units are SI: metres, metres per second, degrees, and
integer milliseconds since the Unix epoch (UTC) for every time.

These classes hold data that already passed :mod:`hotline.protocol.schema`;
they are built either by decoding verified bytes or by a local author about to
sign them (in which case :func:`hotline.protocol.schema.encode_body` checks them
on the way out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final, Literal

from hotline.errors import RejectCode
from hotline.protocol.vocab import (
    AckAction,
    Advice,
    AltRef,
    BodyType,
    CancelReason,
    ObjectKind,
    Precedence,
    Source,
    Stage,
    Status,
)

__all__ = [
    "ALL_RECIPIENTS",
    "AcceptedBody",
    "Body",
    "CancelBody",
    "CapArea",
    "CapInfo",
    "CapOrigin",
    "LinkTestBody",
    "Predicted",
    "ReceiptBody",
    "Recipients",
    "RefusedBody",
    "RelayBody",
    "RoutedBody",
    "SeenCheckpoint",
    "TextBody",
    "Track",
    "UpdateBody",
    "WarningBody",
]

ALL_RECIPIENTS: Final = "*"
Recipients = tuple[str, ...] | Literal["*"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Track:
    """What was seen, where and when (WGS84 degrees, metres, m/s, true heading)."""

    lat: float
    lon: float
    observed_at: int
    object: ObjectKind
    confidence: float
    source: Source
    pos_err_m: float | None = None
    alt_m: float | None = None
    alt_ref: AltRef | None = None
    heading_deg: float | None = None
    speed_mps: float | None = None
    vrate_mps: float | None = None
    count: int | None = None
    sensor_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Predicted:
    """A predicted border crossing: ``border`` such as ``BY-LT``."""

    border: str
    crossing_at: int
    crossing_lat: float | None = None
    crossing_lon: float | None = None
    probability: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CapArea:
    """One CAP ``area`` as its sender wrote it: description, shapes (CAP text), feet."""

    desc: str
    polygon: tuple[str, ...] | None = None
    circle: tuple[str, ...] | None = None
    altitude: float | None = None
    ceiling: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CapInfo:
    """One CAP ``info`` block's fields that have no hotline equivalent."""

    lang: str | None = None
    event: str | None = None
    headline: str | None = None
    description: str | None = None
    area: tuple[CapArea, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CapOrigin:
    """The CAP alert a message was read from: its identity and what hotline has no field for."""

    sender: str
    identifier: str
    sent: int
    info: tuple[CapInfo, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SeenCheckpoint:
    """The latest relay checkpoint the author witnessed when it signed (protocol §3.2).

    Carried inside endpoint-signed bodies so that checkpoints travel end to end
    through the relay itself: a recipient compares it with its own view, and a
    relay showing two histories cannot hide it from the parties it splits.
    """

    size: int
    root: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class _Header:
    id: bytes
    sender: str
    ts: int
    seq: int
    kid: bytes
    cp: SeenCheckpoint | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WarningBody(_Header):
    """A warning of a threat approaching or crossing a border."""

    type: ClassVar[BodyType] = BodyType.WARNING
    to: Recipients
    status: Status
    precedence: Precedence
    incident: bytes
    expires: int
    track: Track
    predicted: Predicted | None = None
    advice: Advice | None = None
    text: str | None = None
    lang: str | None = None
    cap: CapOrigin | None = None
    operator: str | None = None  # who at the sender's console sent it


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateBody(WarningBody):
    """New information on the incident of the warning or update ``ref``."""

    type: ClassVar[BodyType] = BodyType.UPDATE
    ref: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelBody(_Header):
    """The incident of ``ref`` is over, for ``reason``."""

    type: ClassVar[BodyType] = BodyType.CANCEL
    to: Recipients
    status: Status
    precedence: Precedence
    incident: bytes
    ref: bytes
    reason: CancelReason
    text: str | None = None
    lang: str | None = None
    cap: CapOrigin | None = None
    operator: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TextBody(_Header):
    """Free text between duty officers, never translated."""

    type: ClassVar[BodyType] = BodyType.TEXT
    to: Recipients
    status: Status
    precedence: Precedence
    text: str
    lang: str
    incident: bytes | None = None
    operator: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptBody(_Header):
    """An endpoint's signed receipt for the message ``ref`` whose body hashes to ``hash``."""

    type: ClassVar[BodyType] = BodyType.RECEIPT
    ref: bytes
    hash: bytes
    stage: Stage
    action: AckAction | None = None
    note: str | None = None
    reason: str | None = None
    operator: str | None = None  # who acknowledged (acknowledged receipts only)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkTestBody(_Header):
    """A relay's link test, answered by the recipient's ``delivered`` receipt."""

    type: ClassVar[BodyType] = BodyType.TEST
    to: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedBody(_Header):
    """The relay's receipt: the message ``ref`` is durably in the log at ``index``."""

    type: ClassVar[BodyType] = BodyType.ACCEPTED
    ref: bytes
    hash: bytes
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusedBody(_Header):
    """The relay's signed refusal of a frame (never logged; it answers the sender alone).

    ``frame_hash`` is SHA-256 of the whole frame as received; ``ref`` and
    ``hash`` (the refused body's id and SHA-256) are given when its body could
    be read. ``retry_after_ms`` is given for, and only for, temporary codes.
    """

    type: ClassVar[BodyType] = BodyType.REFUSED
    ref: bytes | None = None
    hash: bytes | None = None
    frame_hash: bytes
    code: RejectCode
    sentence: str
    path: str | None = None
    retry_after_ms: int | None = None


RoutedBody = WarningBody | CancelBody | TextBody
Body = (
    WarningBody | CancelBody | TextBody | ReceiptBody | LinkTestBody | AcceptedBody | RefusedBody
)
RelayBody = LinkTestBody | AcceptedBody | RefusedBody
"""The bodies only the relay signs."""
