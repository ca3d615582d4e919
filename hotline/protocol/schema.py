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


_IS_STR: Final = str.__instancecheck__  # isinstance(key, str), mapped over keys in C


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
    if not all(map(_IS_STR, value)):
        raise Rejected(RejectCode.BAD_FRAME, f"the {what} has a key that is not a string")
    return value


class _Bad(Exception):
    """A value breaks a rule: ``path`` says where, relative to the value checked.

    Checks raise it without building any path; each enclosing map or array puts
    its key or index in front on the way out, and :func:`map_to_body` turns it
    into ``Rejected(schema, sentence, path)``. Nothing is built for a good value.
    """

    def __init__(self, sentence: str, path: str = "") -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.path = path


_Check = Callable[[object], T]

_NIL: Final = "must be left out rather than set to nil"


class _Reader:
    """Reads the fields of one decoded map; a bad one raises :class:`_Bad` naming its key."""

    __slots__ = ("_data", "_seen")

    def __init__(self, data: Mapping[Any, Any]) -> None:
        self._data = data
        self._seen: set[str] = set()  # the keys read (all in data): any other is unknown

    def req(self, key: str, check: _Check[T]) -> T:
        value = self._data.get(key)
        if value is None:
            raise _Bad(_NIL if key in self._data else "is required", key)
        return self._checked(key, value, check)

    def opt(self, key: str, check: _Check[T]) -> T | None:
        value = self._data.get(key)
        if value is None:
            if key in self._data:
                raise _Bad(_NIL, key)
            return None
        return self._checked(key, value, check)

    def _checked(self, key: str, value: object, check: _Check[T]) -> T:
        """``value`` of field ``key`` through ``check``; a bad one names its path from here."""
        self._seen.add(key)
        try:
            return check(value)
        except _Bad as bad:
            bad.path = key + bad.path
            raise

    def finish(self) -> None:
        if len(self._seen) != len(self._data):
            # keys of a nested map may mix bytes and str
            key = min(str(k) for k in self._data if k not in self._seen)
            raise _Bad("is not a field of this body", key)


def _int(lo: int, hi: int) -> _Check[int]:
    def check(value: object) -> int:
        if type(value) is int and lo <= value <= hi:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Bad("must be an integer")
        if not lo <= value <= hi:
            raise _Bad(f"must be between {lo} and {hi}")
        return value

    return check


def _float(lo: float, hi: float, *, hi_open: bool = False) -> _Check[float]:
    def check(value: object) -> float:
        if type(value) is float and lo <= value <= hi and not (hi_open and value == hi):
            return value  # the common case: finite, as NaN compares false and hi is finite
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad("must be a number")
        number = float(value)
        if not math.isfinite(number):
            raise _Bad("must be a finite number")
        if number < lo or number > hi or (hi_open and number == hi):
            upper = f"below {hi:g}" if hi_open else f"{hi:g}"
            raise _Bad(f"must be between {lo:g} and {upper}")
        return number

    return check


_UNSAFE_TEXT: Final = re.compile(f"{_CONTROL.pattern}|{_DECEPTIVE.pattern}")


def _text(limit: int, *, minimum: int = 0) -> _Check[str]:
    def check(value: object) -> str:
        if (
            type(value) is str
            and minimum <= len(value) <= limit
            and _UNSAFE_TEXT.search(value) is None
        ):
            return value
        if not isinstance(value, str):
            raise _Bad("must be a string")
        if len(value) < minimum:
            raise _Bad("must not be empty")
        if len(value) > limit:
            raise _Bad(f"must be at most {limit} characters")
        if _CONTROL.search(value):
            raise _Bad("must not contain control characters")
        deceptive = _DECEPTIVE.search(value)
        if deceptive is not None:
            char = deceptive.group()
            name = unicodedata.name(char, "a control character")
            raise _Bad(f"must not contain U+{ord(char):04X} ({name}) at position "
                       f"{deceptive.start()}: invisible and direction-changing "
                       "characters can make text read otherwise than it is")
        return value

    return check


def _bin(size: int, what: str) -> _Check[bytes]:
    sentence = f"must be {what} ({size} bytes of bin)"

    def check(value: object) -> bytes:
        if not isinstance(value, bytes) or len(value) != size:
            raise _Bad(sentence)
        return value

    return check


_ID_BYTES: Final = _bin(ID_SIZE, "a UUIDv7")


def _uuid7(value: object) -> bytes:
    raw = _ID_BYTES(value)
    if not is_uuid7(raw):
        raise _Bad("must be a UUIDv7 (version 7, RFC 9562 variant)")
    return raw


def _enum(kind: type[E]) -> _Check[E]:
    sentence = f"must be one of {', '.join(m.value for m in kind)}"
    members: dict[str, E] = {m.value: m for m in kind}

    def check(value: object) -> E:
        member = members.get(value) if isinstance(value, str) else None
        if member is None:
            raise _Bad(sentence)
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


def _party(value: object) -> str:
    if not isinstance(value, str) or not PARTY_ID.fullmatch(value):
        raise _Bad("must be an endpoint id (letters, digits, _ and .; at most 32)")
    return value


def _operator(value: object) -> str:
    if not isinstance(value, str) or not OPERATOR_NAME.fullmatch(value):
        raise _Bad("must be an operator name (1 to 32 letters, digits, '.', '_' or "
                   "'-', starting with a letter or digit)")
    return value


def _lang(value: object) -> str:
    if not isinstance(value, str) or not _LANG.fullmatch(value) or len(value) > 35:
        raise _Bad("must be a BCP 47 language tag such as en or lt")
    return value


def _border(value: object) -> str:
    if not isinstance(value, str) or value.count("-") != 1:
        raise _Bad("must name two endpoints joined by '-', such as BY-LT")
    for side in value.split("-"):
        _party(side)
    return value


def _items(values: list[Any], item: _Check[T]) -> tuple[T, ...]:
    """``item`` of every element, a bad one named by its index (``[2]``)."""
    out = []
    for i, value in enumerate(values):
        try:
            out.append(item(value))
        except _Bad as bad:
            bad.path = f"[{i}]{bad.path}"
            raise
    return tuple(out)


def _recipients(value: object) -> Recipients:
    if value == ALL_RECIPIENTS:
        return ALL_RECIPIENTS
    if not isinstance(value, list) or not value:
        raise _Bad("must be '*' or a non-empty list of endpoint ids")
    if len(value) > MAX_RECIPIENTS:
        raise _Bad(f"must list at most {MAX_RECIPIENTS} endpoints")
    ids = _items(value, _party)
    if len(set(ids)) != len(ids):
        raise _Bad("must not name an endpoint twice")
    return ids


def _single_recipient(value: object) -> tuple[str, ...]:
    recipients = _recipients(value)
    if recipients == ALL_RECIPIENTS or len(recipients) != 1:
        raise _Bad("must name exactly one endpoint")
    return recipients


def _map_of(read: Callable[[_Reader], T]) -> _Check[T]:
    """A nested map read by ``read``; its fields are named after a dot (``track.lat``)."""

    def check(value: object) -> T:
        if not isinstance(value, dict):
            raise _Bad("must be a map")
        try:
            return read(_Reader(value))
        except _Bad as bad:
            bad.path = "." + bad.path
            raise

    return check


_TIME: Final = _int(0, MAX_TIME_MS)
_SEQ: Final = _int(0, MAX_SEQ)
_KID: Final = _bin(KID_SIZE, "a key id")
_HASH: Final = _bin(HASH_SIZE, "a SHA-256 hash")
_LAT: Final = _float(-90, 90)
_LON: Final = _float(-180, 180)
_UNIT: Final = _float(0, 1)
_SHORT: Final = _text(MAX_SHORT)
_NOTE: Final = _text(MAX_NOTE)
_TEXT: Final = _text(MAX_TEXT)
_SOME_TEXT: Final = _text(MAX_TEXT, minimum=1)
_POS_ERR: Final = _float(0, 1e6)
_ALT: Final = _float(-1000, 1e6)
_HEADING: Final = _float(0, 360, hi_open=True)
_SPEED: Final = _float(0, 1e4)
_VRATE: Final = _float(-1e4, 1e4)
_COUNT: Final = _int(1, 100_000)


def _read_track(r: _Reader) -> Track:
    track = Track(
        lat=r.req("lat", _LAT),
        lon=r.req("lon", _LON),
        observed_at=r.req("observed_at", _TIME),
        object=r.req("object", _OBJECTKIND),
        confidence=r.req("confidence", _UNIT),
        source=r.req("source", _SOURCE),
        pos_err_m=r.opt("pos_err_m", _POS_ERR),
        alt_m=r.opt("alt_m", _ALT),
        alt_ref=r.opt("alt_ref", _ALTREF),
        heading_deg=r.opt("heading_deg", _HEADING),
        speed_mps=r.opt("speed_mps", _SPEED),
        vrate_mps=r.opt("vrate_mps", _VRATE),
        count=r.opt("count", _COUNT),
        sensor_id=r.opt("sensor_id", _SHORT),
    )
    r.finish()
    if (track.alt_m is None) != (track.alt_ref is None):
        raise _Bad("must be given together with alt_m", "alt_ref")
    return track


def _read_predicted(r: _Reader) -> Predicted:
    predicted = Predicted(
        border=r.req("border", _border),
        crossing_at=r.req("crossing_at", _TIME),
        crossing_lat=r.opt("crossing_lat", _LAT),
        crossing_lon=r.opt("crossing_lon", _LON),
        probability=r.opt("probability", _UNIT),
    )
    r.finish()
    return predicted


_TRACK: Final = _map_of(_read_track)
_PREDICTED: Final = _map_of(_read_predicted)

# ----------------------------------------------------------------------------- cap (§3.10)

MAX_CAP_INFOS: Final = 4
MAX_CAP_AREAS: Final = 16
MAX_CAP_SHAPES: Final = 8
_CAP_NAME: Final = re.compile(r"[^\s,<&]{1,255}")
_CAP_NAME_TEXT: Final = _text(255)


def _cap_name(value: object) -> str:
    if not isinstance(value, str) or not _CAP_NAME.fullmatch(value):
        raise _Bad("must be 1 to 255 characters without spaces, commas, < or &")
    return _CAP_NAME_TEXT(value)  # no control, bidi or zero-width character in a name


def _list_of(limit: int, item: _Check[T]) -> _Check[tuple[T, ...]]:
    def check(value: object) -> tuple[T, ...]:
        if not isinstance(value, list) or not value:
            raise _Bad("must be a non-empty array")
        if len(value) > limit:
            raise _Bad(f"must hold at most {limit} items")
        return _items(value, item)

    return check


_CAP_FLOAT: Final = _float(-1e7, 1e7)
_SHAPES: Final = _list_of(MAX_CAP_SHAPES, _SOME_TEXT)
_CIRCLES: Final = _list_of(MAX_CAP_SHAPES, _text(MAX_SHORT * 2, minimum=1))


def _read_cap_area(r: _Reader) -> CapArea:
    area = CapArea(
        desc=r.req("desc", _NOTE),
        polygon=r.opt("polygon", _SHAPES),
        circle=r.opt("circle", _CIRCLES),
        altitude=r.opt("altitude", _CAP_FLOAT),
        ceiling=r.opt("ceiling", _CAP_FLOAT),
    )
    r.finish()
    if area.ceiling is not None and area.altitude is None:
        raise _Bad("needs an altitude", "ceiling")
    return area


_AREAS: Final = _list_of(MAX_CAP_AREAS, _map_of(_read_cap_area))


def _read_cap_info(r: _Reader) -> CapInfo:
    info = CapInfo(
        lang=r.opt("lang", _lang),
        event=r.opt("event", _NOTE),
        headline=r.opt("headline", _NOTE),
        description=r.opt("description", _TEXT),
        area=r.opt("area", _AREAS),
    )
    r.finish()
    return info


_INFOS: Final = _list_of(MAX_CAP_INFOS, _map_of(_read_cap_info))


def _read_cap(r: _Reader) -> CapOrigin:
    origin = CapOrigin(
        sender=r.req("sender", _cap_name),
        identifier=r.req("identifier", _cap_name),
        sent=r.req("sent", _TIME),
        info=r.opt("info", _INFOS),
    )
    r.finish()
    return origin


_CAP: Final = _map_of(_read_cap)


def _header(r: _Reader) -> dict[str, Any]:
    return {
        "id": r.req("id", _uuid7),
        "sender": r.req("from", _party),
        "ts": r.req("ts", _TIME),
        "seq": r.req("seq", _SEQ),
        "kid": r.req("kid", _KID),
    }


_SIZE: Final = _int(1, MAX_SEQ)


def _read_seen(r: _Reader) -> SeenCheckpoint:
    seen = SeenCheckpoint(
        size=r.req("size", _SIZE),
        root=r.req("root", _HASH),
    )
    r.finish()
    return seen


MAX_CPS: Final = 8  # relays named in one ``cps`` (network.MAX_RELAYS)
_SEEN: Final = _map_of(_read_seen)


def _read_cps(value: object) -> tuple[RelayCheckpoint, ...]:
    if not isinstance(value, dict) or not value:
        raise _Bad("must be a non-empty map from relay id to {size, root}")
    if len(value) > MAX_CPS:
        raise _Bad(f"must name at most {MAX_CPS} relays")
    for relay in value:  # every key checked before they are ordered: bytes and str do not sort
        if not isinstance(relay, str):
            raise _Bad("must have relay ids as its keys")
    entries = []
    for relay, seen in sorted(value.items()):
        try:
            _party(relay)
            one = _SEEN(seen)
        except _Bad as bad:
            bad.path = f".{relay}{bad.path}"
            raise
        entries.append(RelayCheckpoint(relay=relay, size=one.size, root=one.root))
    return tuple(entries)


def _endpoint_header(r: _Reader) -> dict[str, Any]:
    """The header of a body an endpoint signs: the common fields, ``cp`` or ``cps``."""
    head = _header(r)
    seen = r.opt("cp", _SEEN)
    if seen is not None:
        head["cp"] = seen
    cps = r.opt("cps", _read_cps)
    if cps is not None:
        if seen is not None:
            raise _Bad("cannot be given with cp: one relay's view or each's", "cps")
        head["cps"] = cps
    return head


def _text_and_lang(r: _Reader, body: dict[str, Any], *, required: bool) -> None:
    if required:
        body["text"] = r.req("text", _SOME_TEXT)
        body["lang"] = r.req("lang", _lang)
        return
    body["text"] = r.opt("text", _TEXT)
    body["lang"] = r.opt("lang", _lang)
    if (body["text"] is None) != (body["lang"] is None):
        raise _Bad("must be given together with text", "lang")


def _read_warning(r: _Reader, head: dict[str, Any], *, update: bool) -> WarningBody:
    body = head
    body["to"] = r.req("to", _recipients)
    body["status"] = r.req("status", _STATUS)
    body["precedence"] = r.req("precedence", _PRECEDENCE)
    body["incident"] = r.req("incident", _uuid7)
    body["expires"] = r.req("expires", _TIME)
    body["track"] = r.req("track", _TRACK)
    body["predicted"] = r.opt("predicted", _PREDICTED)
    body["advice"] = r.opt("advice", _ADVICE)
    _text_and_lang(r, body, required=False)
    body["cap"] = r.opt("cap", _CAP)
    body["operator"] = r.opt("operator", _operator)
    if body["expires"] <= body["ts"]:
        raise _Bad("must be later than ts", "expires")
    if update:
        body["ref"] = r.req("ref", _uuid7)
        return UpdateBody(**body)
    return WarningBody(**body)


def _read_cancel(r: _Reader, head: dict[str, Any]) -> CancelBody:
    body = head
    body["to"] = r.req("to", _recipients)
    body["status"] = r.req("status", _STATUS)
    body["precedence"] = r.req("precedence", _PRECEDENCE)
    body["incident"] = r.req("incident", _uuid7)
    body["ref"] = r.req("ref", _uuid7)
    body["reason"] = r.req("reason", _CANCELREASON)
    _text_and_lang(r, body, required=False)
    body["cap"] = r.opt("cap", _CAP)
    body["operator"] = r.opt("operator", _operator)
    return CancelBody(**body)


def _read_text(r: _Reader, head: dict[str, Any]) -> TextBody:
    body = head
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
        hash=r.req("hash", _HASH),
        stage=r.req("stage", _STAGE),
        action=r.opt("action", _ACTION),
        note=r.opt("note", _NOTE),
        reason=r.opt("reason", _NOTE),
        operator=r.opt("operator", _operator),
        via=r.opt("via", _party),
    )
    if receipt.via is not None and receipt.stage is not Stage.DELIVERED:
        raise _Bad("belongs only to a delivered receipt", "via")
    if receipt.action is not None and receipt.stage is not Stage.ACKNOWLEDGED:
        raise _Bad("belongs only to an acknowledged receipt", "action")
    if (receipt.stage is Stage.REJECTED) != (receipt.reason is not None):
        raise _Bad("is given for, and only for, a rejected receipt", "reason")
    if receipt.operator is not None and receipt.stage is not Stage.ACKNOWLEDGED:
        raise _Bad("belongs only to an acknowledged receipt", "operator")
    return receipt


_SENTENCE: Final = _text(MAX_NOTE, minimum=1)
_PATH: Final = _text(MAX_PATH)


def _read_refused(r: _Reader, head: dict[str, Any]) -> RefusedBody:
    refused = RefusedBody(
        **head,
        ref=r.opt("ref", _uuid7),
        hash=r.opt("hash", _HASH),
        frame_hash=r.req("frame_hash", _HASH),
        code=r.req("code", _REJECTCODE),
        sentence=r.req("sentence", _SENTENCE),
        path=r.opt("path", _PATH),
        retry_after_ms=r.opt("retry_after_ms", _TIME),
    )
    if refused.path is not None and refused.code is not RejectCode.SCHEMA:
        raise _Bad("is given only for a schema refusal", "path")
    if refused.code.temporary != (refused.retry_after_ms is not None):
        raise _Bad("is given for, and only for, a temporary refusal (rate_limited, busy)",
                   "retry_after_ms")
    return refused


def _read_body(r: _Reader) -> Body:
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
            hash=r.req("hash", _HASH),
            index=r.req("index", _SEQ),
        )
    r.finish()
    return body


def map_to_body(data: Mapping[str, Any]) -> Body:
    """A typed body from a decoded map, or ``Rejected`` naming the first bad field."""
    try:
        return _read_body(_Reader(data))
    except _Bad as bad:
        raise _schema(bad.path, bad.sentence) from None


def decode_body(data: bytes) -> Body:
    """Decode and validate body bytes (``bad_frame`` or ``schema`` on failure)."""
    return map_to_body(unpack_map(data))


# ----------------------------------------------------------------------------- encoding


_ATOMS: Final = frozenset({str, int, float, bytes, bool})
_NAMES: dict[type, tuple[str, ...]] = {}
_BODY_NAMES: dict[type, tuple[str, ...]] = {}
_HEADER_NAMES: Final = ("id", "sender", "ts", "seq", "kid")


def _names(kind: type) -> tuple[str, ...]:
    """The field names of a dataclass, in declaration order (looked up once per class)."""
    names = _NAMES.get(kind)
    if names is None:
        names = _NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


def _body_names(kind: type) -> tuple[str, ...]:
    """The field names of a body class after the common header ones."""
    names = _BODY_NAMES.get(kind)
    if names is None:
        names = _BODY_NAMES[kind] = tuple(
            f.name for f in fields(kind) if f.name not in _HEADER_NAMES
        )
    return names


def _plain(value: object) -> object:
    if type(value) in _ATOMS:
        return value
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for name in _names(type(value)):
            inner = getattr(value, name)
            if inner is not None:
                out[name] = _plain(inner)
        return out
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
    for name in _body_names(type(body)):
        value = getattr(body, name)
        if value is None:
            continue
        if name == "cps":
            out["cps"] = {e.relay: {"size": e.size, "root": e.root} for e in value}
        else:
            out[name] = _plain(value)
    return out


def _accepted_bytes(body: AcceptedBody) -> bytes | None:
    """The bytes of a relay's ``accepted`` receipt, without reading them back; ``None`` for
    anything short of the plainest case, which :func:`encode_body` then checks the long way.

    The plainest case: an :class:`AcceptedBody` itself (no subclass) with no ``cp``/``cps``,
    each field of exactly ``bytes``, ``str`` or ``int`` and passing the check
    :func:`map_to_body` applies to it (an accepted body has no rule across fields). The map
    is then the one :func:`body_to_map` builds, in its order, and reading its bytes back
    gives the same body, so the long way would return the very same bytes.
    ``tests/protocol/test_fast_encode.py`` holds the two to that over generated bodies.
    """
    if type(body) is not AcceptedBody or body.cp is not None or body.cps is not None:
        return None
    ident, sender, ts, seq, kid = body.id, body.sender, body.ts, body.seq, body.kid
    ref, digest, index = body.ref, body.hash, body.index
    if not (
        type(ident) is bytes and type(sender) is str and type(ts) is int and type(seq) is int
        and type(kid) is bytes and type(ref) is bytes and type(digest) is bytes
        and type(index) is int
    ):
        return None
    try:
        wire = {
            "t": "accepted",
            "id": _uuid7(ident),
            "from": _party(sender),
            "ts": _TIME(ts),
            "seq": _SEQ(seq),
            "kid": _KID(kid),
            "ref": _uuid7(ref),
            "hash": _HASH(digest),
            "index": _SEQ(index),
        }
    except _Bad:
        return None
    data: bytes = msgpack.packb(wire, use_bin_type=True)
    return data


def _encode_checked(body: Body) -> bytes:
    """Encode, read back and compare: what :func:`encode_body` does for any body."""
    data: bytes = msgpack.packb(body_to_map(body), use_bin_type=True)
    decoded = decode_body(data)
    if decoded != body:
        raise Rejected(RejectCode.SCHEMA, "the body does not survive encoding unchanged", "")
    return data


def encode_body(body: Body) -> bytes:
    """The MessagePack bytes of a body, after checking it against the schema.

    A body is encoded, decoded again and compared, so that nothing is signed
    that a verifier would refuse or read otherwise. The relay's ``accepted``
    receipts, one per message, take a shorter way to the same bytes when every
    field is plainly valid (:func:`_accepted_bytes`).
    """
    if type(body) is AcceptedBody:
        data = _accepted_bytes(body)
        if data is not None:
            return data
    return _encode_checked(body)
