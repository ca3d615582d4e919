"""Body bytes ⇄ typed bodies, with every schema rule of protocol §Bodies.

Decoding is strict and total: any input either becomes a :data:`Body` or raises
:class:`~hotline.errors.Rejected` with code ``bad_frame`` (not a MessagePack map
with unique string keys) or ``schema`` with the dotted path of the offending
field (``track.lat``). Unknown fields are refused, so two verifiers can never
disagree about what a signed body says.

Encoding writes the common header first (``t, id, from, ts, seq, kid``), then
the type's fields in declaration order, leaving out absent optional fields. It
checks the same rules, so nothing invalid is ever signed.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

import msgpack

from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import (
    ALL_RECIPIENTS,
    AcceptedBody,
    Body,
    CancelBody,
    CapArea,
    CapInfo,
    CapOrigin,
    LinkTestBody,
    Predicted,
    ReceiptBody,
    Recipients,
    RefusedBody,
    RelayCheckpoint,
    SeenCheckpoint,
    TextBody,
    Track,
    UpdateBody,
    WarningBody,
)
from hotline.protocol.ids import ID_SIZE, is_uuid7
from hotline.protocol.keys import KID_SIZE
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
    "HASH_SIZE",
    "MAX_PATH",
    "MAX_RECIPIENTS",
    "MAX_TEXT",
    "OPERATOR_NAME",
    "PARTY_ID",
    "body_to_map",
    "decode_body",
    "encode_body",
    "map_to_body",
    "unpack_map",
    "visible",
]

HASH_SIZE: Final = 32
MAX_TEXT: Final = 4000
MAX_NOTE: Final = 1000
MAX_SHORT: Final = 64
MAX_RECIPIENTS: Final = 64
MAX_TIME_MS: Final = (1 << 48) - 1
MAX_SEQ: Final = (1 << 63) - 1
PARTY_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,31}")
OPERATOR_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f]")
# Characters that make text read otherwise than it is: DEL and the C1 controls, the bidi
# marks, embeddings, overrides and isolates, and the zero-width characters.
_DECEPTIVE: Final = re.compile(
    "[\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_LANG: Final = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")



def visible(text: str, limit: int = 200) -> str:
    """Unchecked text (an unsigned relay sentence) made safe to show: control, bidi and
    zero-width characters written as ``\\uXXXX``, and at most ``limit`` characters."""
    shown = text[:limit] + ("…" if len(text) > limit else "")
    for pattern in (_CONTROL, _DECEPTIVE):
        shown = pattern.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)
    return shown


E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def _schema(path: str, sentence: str) -> Rejected:
    return Rejected(RejectCode.SCHEMA, sentence, path)


# ----------------------------------------------------------------------------- decoding


def _no_duplicates(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[Any] = set()
        for key, _ in pairs:
            if key in seen:
                raise Rejected(RejectCode.BAD_FRAME, f"the map repeats the key {key!r}")
            seen.add(key)
    return out


def unpack_map(data: bytes, *, what: str = "body") -> dict[str, Any]:
    """One MessagePack map with unique string keys, nothing after it."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            object_pairs_hook=_no_duplicates,
        )
    except Rejected:
        raise
    except Exception as exc:
        raise Rejected(
            RejectCode.BAD_FRAME, f"the {what} is not valid MessagePack ({type(exc).__name__})"
        ) from exc
    if not isinstance(value, dict):
        raise Rejected(RejectCode.BAD_FRAME, f"the {what} is not a MessagePack map")
    if not all(isinstance(k, str) for k in value):
        raise Rejected(RejectCode.BAD_FRAME, f"the {what} has a key that is not a string")
    return value


class _Reader:
    """Takes fields out of one decoded map, naming the path of any bad one."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self._data = dict(data)
        self._prefix = prefix

    def path(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def _take(self, key: str, required: bool) -> object:
        if key not in self._data:
            if required:
                raise _schema(self.path(key), "is required")
            return None
        value = self._data.pop(key)
        if value is None:
            raise _schema(self.path(key), "must be left out rather than set to nil")
        return value

    def finish(self) -> None:
        if self._data:
            key = min(map(str, self._data))  # keys of a nested map may mix bytes and str
            raise _schema(self.path(key), "is not a field of this body")

    def opt(self, key: str, check: Callable[[str, object], T]) -> T | None:
        value = self._take(key, required=False)
        return None if value is None else check(self.path(key), value)

    def req(self, key: str, check: Callable[[str, object], T]) -> T:
        return check(self.path(key), self._take(key, required=True))

    def sub(self, key: str) -> _Reader:
        value = self._take(key, required=True)
        if not isinstance(value, dict):
            raise _schema(self.path(key), "must be a map")
        return _Reader(value, self.path(key) + ".")

    def opt_sub(self, key: str) -> _Reader | None:
        return self.sub(key) if key in self._data else None


def _int(lo: int, hi: int) -> Callable[[str, object], int]:
    def check(path: str, value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _schema(path, "must be an integer")
        if not lo <= value <= hi:
            raise _schema(path, f"must be between {lo} and {hi}")
        return value

    return check


def _float(lo: float, hi: float, *, hi_open: bool = False) -> Callable[[str, object], float]:
    def check(path: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _schema(path, "must be a number")
        number = float(value)
        if not math.isfinite(number):
            raise _schema(path, "must be a finite number")
        if number < lo or number > hi or (hi_open and number == hi):
            upper = f"below {hi:g}" if hi_open else f"{hi:g}"
            raise _schema(path, f"must be between {lo:g} and {upper}")
        return number

    return check


def _text(limit: int, *, minimum: int = 0) -> Callable[[str, object], str]:
    def check(path: str, value: object) -> str:
        if not isinstance(value, str):
            raise _schema(path, "must be a string")
        if len(value) < minimum:
            raise _schema(path, "must not be empty")
        if len(value) > limit:
            raise _schema(path, f"must be at most {limit} characters")
        if _CONTROL.search(value):
            raise _schema(path, "must not contain control characters")
        deceptive = _DECEPTIVE.search(value)
        if deceptive is not None:
            char = deceptive.group()
            name = unicodedata.name(char, "a control character")
            raise _schema(path, f"must not contain U+{ord(char):04X} ({name}) at position "
                                f"{deceptive.start()}: invisible and direction-changing "
                                "characters can make text read otherwise than it is")
        return value

    return check


def _bin(size: int, what: str) -> Callable[[str, object], bytes]:
    def check(path: str, value: object) -> bytes:
        if not isinstance(value, bytes) or len(value) != size:
            raise _schema(path, f"must be {what} ({size} bytes of bin)")
        return value

    return check


def _uuid7(path: str, value: object) -> bytes:
    raw = _bin(ID_SIZE, "a UUIDv7")(path, value)
    if not is_uuid7(raw):
        raise _schema(path, "must be a UUIDv7 (version 7, RFC 9562 variant)")
    return raw


def _enum(kind: type[E]) -> Callable[[str, object], E]:
    allowed = ", ".join(m.value for m in kind)
    members: dict[str, E] = {m.value: m for m in kind}

    def check(path: str, value: object) -> E:
        member = members.get(value) if isinstance(value, str) else None
        if member is None:
            raise _schema(path, f"must be one of {allowed}")
        return member

    return check


_OBJECTKIND: Final = _enum(ObjectKind)
_SOURCE: Final = _enum(Source)
_ALTREF: Final = _enum(AltRef)
_STATUS: Final = _enum(Status)
_PRECEDENCE: Final = _enum(Precedence)
_ADVICE: Final = _enum(Advice)
_CANCELREASON: Final = _enum(CancelReason)
_STAGE: Final = _enum(Stage)
_ACTION: Final = _enum(AckAction)
_BODYTYPE: Final = _enum(BodyType)
_REJECTCODE: Final = _enum(RejectCode)
MAX_PATH: Final = 200


def _party(path: str, value: object) -> str:
    if not isinstance(value, str) or not PARTY_ID.fullmatch(value):
        raise _schema(path, "must be an endpoint id (letters, digits, _ and .; at most 32)")
    return value


def _operator(path: str, value: object) -> str:
    if not isinstance(value, str) or not OPERATOR_NAME.fullmatch(value):
        raise _schema(path, "must be an operator name (1 to 32 letters, digits, '.', '_' or "
                            "'-', starting with a letter or digit)")
    return value


def _lang(path: str, value: object) -> str:
    if not isinstance(value, str) or not _LANG.fullmatch(value) or len(value) > 35:
        raise _schema(path, "must be a BCP 47 language tag such as en or lt")
    return value


def _border(path: str, value: object) -> str:
    if not isinstance(value, str) or value.count("-") != 1:
        raise _schema(path, "must name two endpoints joined by '-', such as BY-LT")
    for side in value.split("-"):
        _party(path, side)
    return value


def _recipients(path: str, value: object) -> Recipients:
    if value == ALL_RECIPIENTS:
        return ALL_RECIPIENTS
    if not isinstance(value, list) or not value:
        raise _schema(path, "must be '*' or a non-empty list of endpoint ids")
    if len(value) > MAX_RECIPIENTS:
        raise _schema(path, f"must list at most {MAX_RECIPIENTS} endpoints")
    ids = tuple(_party(f"{path}[{i}]", v) for i, v in enumerate(value))
    if len(set(ids)) != len(ids):
        raise _schema(path, "must not name an endpoint twice")
    return ids


def _single_recipient(path: str, value: object) -> tuple[str, ...]:
    recipients = _recipients(path, value)
    if recipients == ALL_RECIPIENTS or len(recipients) != 1:
        raise _schema(path, "must name exactly one endpoint")
    return recipients


_TIME = _int(0, MAX_TIME_MS)


def _read_track(r: _Reader) -> Track:
    track = Track(
        lat=r.req("lat", _float(-90, 90)),
        lon=r.req("lon", _float(-180, 180)),
        observed_at=r.req("observed_at", _TIME),
        object=r.req("object", _OBJECTKIND),
        confidence=r.req("confidence", _float(0, 1)),
        source=r.req("source", _SOURCE),
        pos_err_m=r.opt("pos_err_m", _float(0, 1e6)),
        alt_m=r.opt("alt_m", _float(-1000, 1e6)),
        alt_ref=r.opt("alt_ref", _ALTREF),
        heading_deg=r.opt("heading_deg", _float(0, 360, hi_open=True)),
        speed_mps=r.opt("speed_mps", _float(0, 1e4)),
        vrate_mps=r.opt("vrate_mps", _float(-1e4, 1e4)),
        count=r.opt("count", _int(1, 100_000)),
        sensor_id=r.opt("sensor_id", _text(MAX_SHORT)),
    )
    r.finish()
    if (track.alt_m is None) != (track.alt_ref is None):
        raise _schema(r.path("alt_ref"), "must be given together with alt_m")
    return track


def _read_predicted(r: _Reader) -> Predicted:
    predicted = Predicted(
        border=r.req("border", _border),
        crossing_at=r.req("crossing_at", _TIME),
        crossing_lat=r.opt("crossing_lat", _float(-90, 90)),
        crossing_lon=r.opt("crossing_lon", _float(-180, 180)),
        probability=r.opt("probability", _float(0, 1)),
    )
    r.finish()
    return predicted


# ----------------------------------------------------------------------------- cap (§3.10)

MAX_CAP_INFOS: Final = 4
MAX_CAP_AREAS: Final = 16
MAX_CAP_SHAPES: Final = 8
_CAP_NAME: Final = re.compile(r"[^\s,<&]{1,255}")


def _cap_name(path: str, value: object) -> str:
    if not isinstance(value, str) or not _CAP_NAME.fullmatch(value):
        raise _schema(path, "must be 1 to 255 characters without spaces, commas, < or &")
    return _text(255)(path, value)  # no control, bidi or zero-width character in a name


def _list_of(
    limit: int, item: Callable[[str, object], T]
) -> Callable[[str, object], tuple[T, ...]]:
    def check(path: str, value: object) -> tuple[T, ...]:
        if not isinstance(value, list) or not value:
            raise _schema(path, "must be a non-empty array")
        if len(value) > limit:
            raise _schema(path, f"must hold at most {limit} items")
        return tuple(item(f"{path}[{i}]", v) for i, v in enumerate(value))

    return check


def _map_of(read: Callable[[_Reader], T]) -> Callable[[str, object], T]:
    def check(path: str, value: object) -> T:
        if not isinstance(value, dict):
            raise _schema(path, "must be a map")
        return read(_Reader(value, path + "."))

    return check


def _read_cap_area(r: _Reader) -> CapArea:
    area = CapArea(
        desc=r.req("desc", _text(MAX_NOTE)),
        polygon=r.opt("polygon", _list_of(MAX_CAP_SHAPES, _text(MAX_TEXT, minimum=1))),
        circle=r.opt("circle", _list_of(MAX_CAP_SHAPES, _text(MAX_SHORT * 2, minimum=1))),
        altitude=r.opt("altitude", _float(-1e7, 1e7)),
        ceiling=r.opt("ceiling", _float(-1e7, 1e7)),
    )
    r.finish()
    if area.ceiling is not None and area.altitude is None:
        raise _schema(r.path("ceiling"), "needs an altitude")
    return area


def _read_cap_info(r: _Reader) -> CapInfo:
    info = CapInfo(
        lang=r.opt("lang", _lang),
        event=r.opt("event", _text(MAX_NOTE)),
        headline=r.opt("headline", _text(MAX_NOTE)),
        description=r.opt("description", _text(MAX_TEXT)),
        area=r.opt("area", _list_of(MAX_CAP_AREAS, _map_of(_read_cap_area))),
    )
    r.finish()
    return info


def _read_cap(r: _Reader) -> CapOrigin:
    origin = CapOrigin(
        sender=r.req("sender", _cap_name),
        identifier=r.req("identifier", _cap_name),
        sent=r.req("sent", _TIME),
        info=r.opt("info", _list_of(MAX_CAP_INFOS, _map_of(_read_cap_info))),
    )
    r.finish()
    return origin


def _opt_cap(r: _Reader) -> CapOrigin | None:
    return r.opt("cap", _map_of(_read_cap))


def _header(r: _Reader) -> dict[str, Any]:
    return {
        "id": r.req("id", _uuid7),
        "sender": r.req("from", _party),
        "ts": r.req("ts", _TIME),
        "seq": r.req("seq", _int(0, MAX_SEQ)),
        "kid": r.req("kid", _bin(KID_SIZE, "a key id")),
    }


def _read_seen(r: _Reader) -> SeenCheckpoint:
    seen = SeenCheckpoint(
        size=r.req("size", _int(1, MAX_SEQ)),
        root=r.req("root", _bin(HASH_SIZE, "a SHA-256 hash")),
    )
    r.finish()
    return seen


MAX_CPS: Final = 8  # relays named in one ``cps`` (network.MAX_RELAYS)


def _read_cps(path: str, value: object) -> tuple[RelayCheckpoint, ...]:
    if not isinstance(value, dict) or not value:
        raise _schema(path, "must be a non-empty map from relay id to {size, root}")
    if len(value) > MAX_CPS:
        raise _schema(path, f"must name at most {MAX_CPS} relays")
    for relay in value:  # every key checked before they are ordered: bytes and str do not sort
        if not isinstance(relay, str):
            raise _schema(path, "must have relay ids as its keys")
    entries = []
    for relay, seen in sorted(value.items()):
        _party(f"{path}.{relay}", relay)
        if not isinstance(seen, dict):
            raise _schema(f"{path}.{relay}", "must be a map")
        one = _read_seen(_Reader(seen, f"{path}.{relay}."))
        entries.append(RelayCheckpoint(relay=relay, size=one.size, root=one.root))
    return tuple(entries)


def _endpoint_header(r: _Reader) -> dict[str, Any]:
    """The header of a body an endpoint signs: the common fields, ``cp`` or ``cps``."""
    head = _header(r)
    seen = r.opt_sub("cp")
    if seen is not None:
        head["cp"] = _read_seen(seen)
    cps = r.opt("cps", _read_cps)
    if cps is not None:
        if seen is not None:
            raise _schema(r.path("cps"), "cannot be given with cp: one relay's view or each's")
        head["cps"] = cps
    return head


def _text_and_lang(r: _Reader, body: dict[str, Any], *, required: bool) -> None:
    if required:
        body["text"] = r.req("text", _text(MAX_TEXT, minimum=1))
        body["lang"] = r.req("lang", _lang)
        return
    body["text"] = r.opt("text", _text(MAX_TEXT))
    body["lang"] = r.opt("lang", _lang)
    if (body["text"] is None) != (body["lang"] is None):
        raise _schema(r.path("lang"), "must be given together with text")


def _read_warning(r: _Reader, head: dict[str, Any], *, update: bool) -> WarningBody:
    body = dict(head)
    body["to"] = r.req("to", _recipients)
    body["status"] = r.req("status", _STATUS)
    body["precedence"] = r.req("precedence", _PRECEDENCE)
    body["incident"] = r.req("incident", _uuid7)
    body["expires"] = r.req("expires", _TIME)
    body["track"] = _read_track(r.sub("track"))
    predicted = r.opt_sub("predicted")
    body["predicted"] = None if predicted is None else _read_predicted(predicted)
    body["advice"] = r.opt("advice", _ADVICE)
    _text_and_lang(r, body, required=False)
    body["cap"] = _opt_cap(r)
    body["operator"] = r.opt("operator", _operator)
    if body["expires"] <= body["ts"]:
        raise _schema(r.path("expires"), "must be later than ts")
    if update:
        body["ref"] = r.req("ref", _uuid7)
        return UpdateBody(**body)
    return WarningBody(**body)


def _read_cancel(r: _Reader, head: dict[str, Any]) -> CancelBody:
    body = dict(head)
    body["to"] = r.req("to", _recipients)
    body["status"] = r.req("status", _STATUS)
    body["precedence"] = r.req("precedence", _PRECEDENCE)
    body["incident"] = r.req("incident", _uuid7)
    body["ref"] = r.req("ref", _uuid7)
    body["reason"] = r.req("reason", _CANCELREASON)
    _text_and_lang(r, body, required=False)
    body["cap"] = _opt_cap(r)
    body["operator"] = r.opt("operator", _operator)
    return CancelBody(**body)


def _read_text(r: _Reader, head: dict[str, Any]) -> TextBody:
    body = dict(head)
    body["to"] = r.req("to", _recipients)
    body["status"] = r.req("status", _STATUS)
    body["precedence"] = r.req("precedence", _PRECEDENCE)
    _text_and_lang(r, body, required=True)
    body["incident"] = r.opt("incident", _uuid7)
    body["operator"] = r.opt("operator", _operator)
    return TextBody(**body)


def _read_receipt(r: _Reader, head: dict[str, Any]) -> ReceiptBody:
    receipt = ReceiptBody(
        **head,
        ref=r.req("ref", _uuid7),
        hash=r.req("hash", _bin(HASH_SIZE, "a SHA-256 hash")),
        stage=r.req("stage", _STAGE),
        action=r.opt("action", _ACTION),
        note=r.opt("note", _text(MAX_NOTE)),
        reason=r.opt("reason", _text(MAX_NOTE)),
        operator=r.opt("operator", _operator),
        via=r.opt("via", _party),
    )
    if receipt.via is not None and receipt.stage is not Stage.DELIVERED:
        raise _schema(r.path("via"), "belongs only to a delivered receipt")
    if receipt.action is not None and receipt.stage is not Stage.ACKNOWLEDGED:
        raise _schema(r.path("action"), "belongs only to an acknowledged receipt")
    if (receipt.stage is Stage.REJECTED) != (receipt.reason is not None):
        raise _schema(r.path("reason"), "is given for, and only for, a rejected receipt")
    if receipt.operator is not None and receipt.stage is not Stage.ACKNOWLEDGED:
        raise _schema(r.path("operator"), "belongs only to an acknowledged receipt")
    return receipt


def _read_refused(r: _Reader, head: dict[str, Any]) -> RefusedBody:
    refused = RefusedBody(
        **head,
        ref=r.opt("ref", _uuid7),
        hash=r.opt("hash", _bin(HASH_SIZE, "a SHA-256 hash")),
        frame_hash=r.req("frame_hash", _bin(HASH_SIZE, "a SHA-256 hash")),
        code=r.req("code", _REJECTCODE),
        sentence=r.req("sentence", _text(MAX_NOTE, minimum=1)),
        path=r.opt("path", _text(MAX_PATH)),
        retry_after_ms=r.opt("retry_after_ms", _int(0, MAX_TIME_MS)),
    )
    if refused.path is not None and refused.code is not RejectCode.SCHEMA:
        raise _schema(r.path("path"), "is given only for a schema refusal")
    if refused.code.temporary != (refused.retry_after_ms is not None):
        raise _schema(
            r.path("retry_after_ms"),
            "is given for, and only for, a temporary refusal (rate_limited, busy)",
        )
    return refused


def map_to_body(data: Mapping[str, Any]) -> Body:
    """A typed body from a decoded map, or ``Rejected`` naming the first bad field."""
    r = _Reader(data)
    kind = r.req("t", _BODYTYPE)
    relay_only = kind in (BodyType.TEST, BodyType.ACCEPTED)
    head = _header(r) if relay_only else _endpoint_header(r)
    body: Body
    if kind is BodyType.WARNING:
        body = _read_warning(r, head, update=False)
    elif kind is BodyType.UPDATE:
        body = _read_warning(r, head, update=True)
    elif kind is BodyType.CANCEL:
        body = _read_cancel(r, head)
    elif kind is BodyType.TEXT:
        body = _read_text(r, head)
    elif kind is BodyType.RECEIPT:
        body = _read_receipt(r, head)
    elif kind is BodyType.TEST:
        body = LinkTestBody(**head, to=r.req("to", _single_recipient))
    elif kind is BodyType.REFUSED:
        body = _read_refused(r, head)
    else:
        body = AcceptedBody(
            **head,
            ref=r.req("ref", _uuid7),
            hash=r.req("hash", _bin(HASH_SIZE, "a SHA-256 hash")),
            index=r.req("index", _int(0, MAX_SEQ)),
        )
    r.finish()
    return body


def decode_body(data: bytes) -> Body:
    """Decode and validate body bytes (``bad_frame`` or ``schema`` on failure)."""
    return map_to_body(unpack_map(data))


# ----------------------------------------------------------------------------- encoding


def _plain(value: object) -> object:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in fields(value)
            if getattr(value, f.name) is not None
        }
    return value


def body_to_map(body: Body) -> dict[str, object]:
    """The wire map of a body: header first, then fields in declaration order."""
    out: dict[str, object] = {
        "t": body.type.value,
        "id": body.id,
        "from": body.sender,
        "ts": body.ts,
        "seq": body.seq,
        "kid": body.kid,
    }
    for f in fields(body):
        if f.name in ("id", "sender", "ts", "seq", "kid"):
            continue
        value = getattr(body, f.name)
        if f.name == "cps" and value is not None:
            out["cps"] = {e.relay: {"size": e.size, "root": e.root} for e in value}
        elif value is not None:
            out[f.name] = _plain(value)
    return out


def encode_body(body: Body) -> bytes:
    """The MessagePack bytes of a body, after checking it against the schema."""
    data: bytes = msgpack.packb(body_to_map(body), use_bin_type=True)
    decoded = decode_body(data)
    if decoded != body:
        raise Rejected(RejectCode.SCHEMA, "the body does not survive encoding unchanged", "")
    return data

