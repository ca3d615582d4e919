"""The timeline of a log: one row per entry, for people reading what happened.

Rows come from entries in log order. A receipt's recipient is the sender of
the message it refers to, so the timeline keeps a small index of message ids
(sender, recipients, incident). Filters select rows by link (either direction),
incident and time; they never change a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hotline.auditlog.leaf import EntryKind, decode_entry
from hotline.network import Network
from hotline.protocol.admission import recipients_of
from hotline.protocol.bodies import (
    AcceptedBody,
    Body,
    CancelBody,
    LinkTestBody,
    ReceiptBody,
    TextBody,
    UpdateBody,
    WarningBody,
)
from hotline.protocol.envelope import open_envelope
from hotline.protocol.ids import format_id
from hotline.protocol.timetext import format_utc_ms

__all__ = ["TimelineFilter", "TimelineRow", "timeline"]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    index: int
    relay_ts: int
    kind: str
    sender: str
    recipients: tuple[str, ...]
    id: str
    ref: str
    incident: str
    precedence: str
    status: str
    stage: str
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "relay_ts": self.relay_ts,
            "kind": self.kind,
            "from": self.sender,
            "to": list(self.recipients),
            "id": self.id,
            "ref": self.ref,
            "incident": self.incident,
            "precedence": self.precedence,
            "status": self.status,
            "stage": self.stage,
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class TimelineFilter:
    link: tuple[str, str] | None = None
    incident: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def admits(self, row: TimelineRow) -> bool:
        if self.since_ms is not None and row.relay_ts < self.since_ms:
            return False
        if self.until_ms is not None and row.relay_ts > self.until_ms:
            return False
        if self.incident is not None and row.incident != self.incident:
            return False
        if self.link is not None:
            a, b = self.link
            forward = row.sender == a and b in row.recipients
            backward = row.sender == b and a in row.recipients
            if not (forward or backward):
                return False
        return True


@dataclass(frozen=True, slots=True)
class _Known:
    sender: str
    recipients: tuple[str, ...]
    incident: str


def _summary(body: Body) -> str:
    if isinstance(body, WarningBody):
        track = body.track
        where = f"{track.lat:.4f},{track.lon:.4f}"
        crossing = f" crossing {body.predicted.border}" if body.predicted else ""
        return f"{track.object} x{track.count or 1} at {where} by {track.source}{crossing}"
    if isinstance(body, CancelBody):
        return f"cancel: {body.reason}"
    if isinstance(body, TextBody):
        return body.text.replace("\n", " ")[:120]
    if isinstance(body, ReceiptBody):
        extra = f" {body.action}" if body.action else ""
        return f"{body.stage}{extra}" + (f": {body.note}" if body.note else "")
    if isinstance(body, LinkTestBody):
        return "link test"
    return "accepted"


def _row(
    index: int, relay_ts: int, body: Body, known: dict[bytes, _Known], net: Network
) -> TimelineRow:
    recipients: tuple[str, ...] = ()
    incident = ""
    ref = ""
    precedence = status = stage = ""
    if isinstance(body, WarningBody | CancelBody | TextBody):
        recipients = recipients_of(net, body.sender, body.to)
        incident = format_id(body.incident) if body.incident else ""
        precedence, status = body.precedence.value, body.status.value
        if isinstance(body, UpdateBody | CancelBody):
            ref = format_id(body.ref)
        known[body.id] = _Known(body.sender, recipients, incident)
    elif isinstance(body, LinkTestBody):
        recipients = body.to
        known[body.id] = _Known(body.sender, recipients, "")
    elif isinstance(body, ReceiptBody | AcceptedBody):
        ref = format_id(body.ref)
        origin = known.get(body.ref)
        if origin is not None:
            recipients = (origin.sender,)
            incident = origin.incident
        if isinstance(body, ReceiptBody):
            stage = body.stage.value
    kind = "update" if isinstance(body, UpdateBody) else body.type.value
    return TimelineRow(
        index, relay_ts, kind, body.sender, recipients, format_id(body.id), ref, incident,
        precedence, status, stage, _summary(body),
    )


def _field_text(key: str, value: object) -> str:
    """``key=value``; a SHA-256 as its first 8 bytes in hex, enough to tell two configs apart."""
    if isinstance(value, bytes):
        return f"{key}={value[:8].hex()}"
    return f"{key}={value}"


def _event_row(index: int, relay_ts: int, kind: str, fields: Mapping[str, Any]) -> TimelineRow:
    party = str(fields.get("party", fields.get("recipient", "")))
    sender = str(fields.get("sender", ""))
    ref = fields.get("ref")
    if kind == EntryKind.KEYS_CHANGED.value:
        summary = _keys_summary(fields.get("keys"))
    else:
        summary = ", ".join(_field_text(k, v) for k, v in fields.items()
                            if not isinstance(v, bytes) or k.endswith("sha256"))
    return TimelineRow(
        index, relay_ts, kind, sender, (party,) if party else (), "",
        format_id(ref) if isinstance(ref, bytes) and len(ref) == 16 else "",
        "", "", "", str(fields.get("stage", "")), summary,
    )


def _keys_summary(rows: object) -> str:
    """``LT 1a2b3c4d5e6f7a8b from 2026-03-01T10:00:00Z; …``: each key with its period."""
    parts: list[str] = []
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, dict):
            continue
        kid = row.get("kid")
        text = f"{row.get('party', '?')} {kid.hex() if isinstance(kid, bytes) else '?'}"
        for bound, word in (("not_before", "from"), ("not_after", "until")):
            value = row.get(bound)
            if isinstance(value, int) and not isinstance(value, bool):
                text += f" {word} {format_utc_ms(value)}"
        parts.append(text)
    return "keys: " + "; ".join(parts)


def timeline(
    entries: Iterable[tuple[int, bytes]], network: Network, filters: TimelineFilter
) -> Iterator[TimelineRow]:
    """Rows for the entries that pass ``filters``, in log order."""
    known: dict[bytes, _Known] = {}
    for index, data in entries:
        entry = decode_entry(data)
        if entry.envelope is not None:
            body = open_envelope(entry.envelope, network).body
            row = _row(index, entry.relay_ts, body, known, network)
        else:
            assert entry.event is not None
            row = _event_row(index, entry.relay_ts, entry.kind.value, entry.event.fields)
        if filters.admits(row):
            yield row
