"""Log entries (Merkle leaves): MessagePack ``[kind, relay_ts, payload]``.

``kind`` is a short string, ``relay_ts`` the relay's clock in integer
milliseconds when it wrote the entry, and ``payload``:

- ``envelope``: the signed envelope, as ``bin``, byte for byte as received
  (messages, receipts, the relay's link tests);
- every other kind: a map of the event's fields:

  ==================  ======================================================
  ``overdue``         ``ref`` (message id), ``recipient``, ``stage``
                      (delivered or acknowledged), ``deadline`` (relay ms)
  ``redelivered``     ``ref``, ``recipient``, ``attempt`` (2 for the first resend)
  ``connected``       ``party``
  ``disconnected``    ``party``, ``reason``
  ``relay_started``   ``version``, ``network_sha256`` (bin)
  ``relay_stopped``   (nothing)
  ``config_changed``  ``network_sha256``, ``previous_network_sha256`` (bin)
  ``keys_changed``    ``network_sha256`` (bin), ``keys``: one map per key of
                      every party, ``party``, ``kid`` (bin 8), ``public_key``
                      (bin 32), and ``not_before``/``not_after`` (ms) when
                      the key has them; written at a relay start when the
                      key set differs from the last one recorded
  ==================  ======================================================

Pure: bytes in, values out. Decoding is strict (exactly a 3-array, known kind,
the payload type that kind requires) and raises ``EntryError`` with a sentence;
callers that audit turn it into a verification failure naming the index.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import msgpack

from hotline.auditlog.tiles import MAX_ENTRY_SIZE
from hotline.errors import EntryError, UsageError

__all__ = [
    "EntryKind",
    "LogEntry",
    "LogEvent",
    "decode_entry",
    "encode_envelope_entry",
    "encode_event_entry",
]



class EntryKind(enum.StrEnum):
    ENVELOPE = "envelope"
    OVERDUE = "overdue"
    REDELIVERED = "redelivered"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RELAY_STARTED = "relay_started"
    RELAY_STOPPED = "relay_stopped"
    CONFIG_CHANGED = "config_changed"
    KEYS_CHANGED = "keys_changed"


@dataclass(frozen=True, slots=True)
class LogEvent:
    """A relay event: its kind and its fields (string keys, MessagePack values)."""

    kind: EntryKind
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One decoded entry: either an envelope's exact bytes or an event."""

    kind: EntryKind
    relay_ts: int
    envelope: bytes | None = None
    event: LogEvent | None = None


def _entry(kind: EntryKind, relay_ts: int, payload: object) -> bytes:
    data: bytes = msgpack.packb([kind.value, relay_ts, payload], use_bin_type=True)
    if len(data) > MAX_ENTRY_SIZE:
        raise UsageError(f"a log entry is at most {MAX_ENTRY_SIZE} bytes, this one {len(data)}")
    return data


def encode_envelope_entry(relay_ts: int, frame: bytes) -> bytes:
    return _entry(EntryKind.ENVELOPE, relay_ts, frame)


def encode_event_entry(relay_ts: int, event: LogEvent) -> bytes:
    if event.kind is EntryKind.ENVELOPE:
        raise UsageError("envelopes are logged with encode_envelope_entry")
    return _entry(event.kind, relay_ts, event.fields)


def decode_entry(data: bytes) -> LogEntry:
    """The entry's parts, or EntryError saying what is wrong with the bytes."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:
        raise EntryError(f"the entry is not valid MessagePack ({type(exc).__name__})") from exc
    if not isinstance(value, list) or len(value) != 3:
        raise EntryError("the entry is not a 3-element array [kind, relay_ts, payload]")
    kind_text, relay_ts, payload = value
    try:
        kind = EntryKind(kind_text)
    except ValueError:
        raise EntryError(f"the entry kind {kind_text!r} is unknown") from None
    if not isinstance(relay_ts, int) or isinstance(relay_ts, bool) or relay_ts < 0:
        raise EntryError("the entry's relay_ts is not a non-negative integer")
    if kind is EntryKind.ENVELOPE:
        if not isinstance(payload, bytes):
            raise EntryError("an envelope entry's payload is not bin")
        return LogEntry(kind, relay_ts, envelope=payload)
    if not isinstance(payload, dict):
        raise EntryError(f"a {kind} entry's payload is not a map")
    return LogEntry(kind, relay_ts, event=LogEvent(kind, payload))
