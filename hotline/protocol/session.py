"""The relay-endpoint session on one WebSocket: control maps beside signed envelopes.

Every WebSocket message is one binary MessagePack value:

- an **array** is a signed envelope ``[1, body, sig]``, exactly the bytes the
  author signed (the relay logs these bytes unchanged);
- a **map** with a ``t`` key is a control message, below.

Relay → endpoint:

=============  ==============================================================
``challenge``  ``nonce`` (32 random bytes), ``relay`` (the relay's id), ``ts``
``welcome``    ``id`` (the endpoint's id), ``size`` (the log's size now)
``deliver``    ``index`` (the entry's log index), ``frame`` (a logged envelope
               for this endpoint: a message to it, a link test, or a receipt
               for one of its messages)
``accepted``   ``frame``: the relay-signed ``accepted`` receipt of a message
               this endpoint sent (not itself logged: it names the log index)
``rejected``   ``frame``: the relay-signed ``refused`` body of the refusal
               (protocol version 2); and, repeating it for version 1
               readers, ``ref`` (the refused message's id, or empty),
               ``code``, ``sentence``, ``path``. A version 1 relay sends no
               ``frame`` (decoded as empty bytes)
``checkpoint`` ``note``: a newly signed checkpoint (C2SP signed note bytes)
=============  ==============================================================

Endpoint → relay:

=============  ==============================================================
``auth``       ``id``, ``sig``: Ed25519 over ``AUTH_TAG + challenge bytes +
               id`` (the challenge exactly as received), and ``since``: the
               highest ``deliver`` index of a receipt the endpoint has stored
               (receipts after it are sent again), or -1
``cosign``     ``line``: a C2SP cosignature line on the latest checkpoint,
               without its final newline
=============  ==============================================================

Before ``welcome`` only ``auth`` is accepted; a failed ``auth`` closes the
socket with code 4401 and the reason ``<code>: <sentence>``. An endpoint that
stops reading is closed with 4408 (``slow_reader: …``); what it was owed stays
queued at the relay and is delivered when it connects again. An endpoint that
draws signed refusals faster than the relay signs them is closed with 4429
(``refused_flood: …``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast

import msgpack

from hotline.errors import RejectCode, Rejected
from hotline.protocol.envelope import AUTH_TAG
from hotline.protocol.keys import PublicKey, SigningKey
from hotline.protocol.schema import unpack_map

__all__ = [
    "AUTH_FAILED_CLOSE",
    "NONCE_SIZE",
    "REFUSAL_FLOOD_CLOSE",
    "SLOW_READER_CLOSE",
    "Accepted",
    "Auth",
    "Challenge",
    "CheckpointNote",
    "Control",
    "Cosign",
    "Deliver",
    "RejectedNotice",
    "Welcome",
    "auth_signature",
    "decode_control",
    "encode_control",
    "is_envelope",
    "verify_auth",
]

NONCE_SIZE: Final = 32
AUTH_FAILED_CLOSE: Final = 4401
PROTOCOL_ERROR_CLOSE: Final = 4400
SLOW_READER_CLOSE: Final = 4408
"""The relay closes a session whose endpoint stopped reading (its send queue stalled)."""
REFUSAL_FLOOD_CLOSE: Final = 4429
"""The relay closes a session that drew signed refusals faster than its budget."""


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: bytes
    relay: str
    ts: int


@dataclass(frozen=True, slots=True)
class Auth:
    id: str
    sig: bytes
    since: int = -1


@dataclass(frozen=True, slots=True)
class Welcome:
    id: str
    size: int


@dataclass(frozen=True, slots=True)
class Deliver:
    index: int
    frame: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    frame: bytes


@dataclass(frozen=True, slots=True)
class RejectedNotice:
    """A refusal; ``frame`` is the relay-signed ``refused`` envelope (empty from a v1 relay)."""

    ref: bytes
    code: str
    sentence: str
    path: str = ""
    frame: bytes = b""


@dataclass(frozen=True, slots=True)
class CheckpointNote:
    note: bytes


@dataclass(frozen=True, slots=True)
class Cosign:
    line: str


Control = Challenge | Auth | Welcome | Deliver | Accepted | RejectedNotice | CheckpointNote | Cosign

_NAMES: Final[dict[type, str]] = {
    Challenge: "challenge",
    Auth: "auth",
    Welcome: "welcome",
    Deliver: "deliver",
    Accepted: "accepted",
    RejectedNotice: "rejected",
    CheckpointNote: "checkpoint",
    Cosign: "cosign",
}
_TYPES: Final = {name: kind for kind, name in _NAMES.items()}
_OPTIONAL: Final[dict[tuple[str, str], object]] = {
    ("auth", "since"): -1,
    ("rejected", "frame"): b"",  # a version 1 relay sends none
}
_FIELDS: Final[dict[str, dict[str, type]]] = {
    "challenge": {"nonce": bytes, "relay": str, "ts": int},
    "auth": {"id": str, "sig": bytes, "since": int},
    "welcome": {"id": str, "size": int},
    "deliver": {"index": int, "frame": bytes},
    "accepted": {"frame": bytes},
    "rejected": {"ref": bytes, "code": str, "sentence": str, "path": str, "frame": bytes},
    "checkpoint": {"note": bytes},
    "cosign": {"line": str},
}


def is_envelope(message: bytes) -> bool:
    """True if the message is a MessagePack array (an envelope), by its first byte."""
    if not message:
        return False
    first = message[0]
    return 0x90 <= first <= 0x9F or first in (0xDC, 0xDD)


def encode_control(message: Control) -> bytes:
    kind = type(message)
    fields: dict[str, Any]
    if kind is Deliver:  # the two a relay sends for every message, written directly
        deliver = cast(Deliver, message)
        fields = {"t": "deliver", "index": deliver.index, "frame": deliver.frame}
    elif kind is Accepted:
        fields = {"t": "accepted", "frame": cast(Accepted, message).frame}
    else:
        fields = _fields_of(message)
    data: bytes = msgpack.packb(fields, use_bin_type=True)
    return data


def _fields_of(message: Control) -> dict[str, Any]:
    name = _NAMES[type(message)]
    fields: dict[str, Any] = {"t": name}
    for key in _FIELDS[name]:
        value = getattr(message, key)
        if name == "rejected" and key == "frame" and not value:
            continue  # an unsigned notice (as a version 1 relay sends) has no frame
        fields[key] = value
    return fields


def decode_control(data: bytes) -> Control:
    """A control map, or Rejected(bad_frame/schema) naming what is wrong."""
    fields = unpack_map(data, what="control message")
    name = fields.pop("t", None)
    if not isinstance(name, str) or name not in _TYPES:
        raise Rejected(RejectCode.SCHEMA, "is not a known control message", "t")
    expected = _FIELDS[name]
    for key, kind in expected.items():
        value = fields.get(key)
        if value is None and (name, key) in _OPTIONAL:
            fields[key] = _OPTIONAL[name, key]
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Rejected(RejectCode.SCHEMA, f"must be {kind.__name__}", key)
    # every expected key is in fields by now (or the loop refused), so more keys means unknown
    if len(fields) != len(expected):
        unknown = set(fields) - set(expected)
        raise Rejected(RejectCode.SCHEMA, "is not a field of this message", min(map(str, unknown)))
    result: Control = _TYPES[name](**fields)
    return result


def auth_signature(challenge: bytes, endpoint: str, key: SigningKey) -> bytes:
    """The endpoint's answer to a challenge, exactly as the challenge bytes arrived."""
    return key.sign(AUTH_TAG + challenge + endpoint.encode("utf-8"))


def verify_auth(challenge: bytes, auth: Auth, key: PublicKey) -> None:
    if not key.verify(auth.sig, AUTH_TAG + challenge + auth.id.encode("utf-8")):
        raise Rejected(RejectCode.BAD_SIGNATURE, f"the answer to the challenge is not {auth.id}'s")
