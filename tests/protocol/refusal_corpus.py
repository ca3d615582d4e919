"""A corpus of bad bodies, control maps and frames, and the refusal each must draw.

Run as ``.venv/bin/python -m tests.protocol.refusal_corpus`` to rewrite
``refusals.json`` next to this file from the decoders as they are; the test
``test_refusal_corpus.py`` checks that they still give every case exactly the
recorded verdict: ``[code, sentence, path]``, or ``"ok"`` and a digest of what
was read.

The cases are built deterministically (a seeded generator, no clock): valid
maps of every body type, each field and nested field dropped, set to nil or to
values of the wrong type or range, unknown keys added at every level, pairs of
faults (so the order in which rules are checked is pinned too), and raw
MessagePack that a map cannot express: repeated keys at the top and nested,
truncations, trailing bytes, keys that are not strings.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Final

import msgpack

from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import (
    AcceptedBody,
    Body,
    CancelBody,
    CapArea,
    CapInfo,
    CapOrigin,
    LinkTestBody,
    ReceiptBody,
    RefusedBody,
    RelayCheckpoint,
    SeenCheckpoint,
    TextBody,
    UpdateBody,
)
from hotline.protocol.envelope import VERSION, read_envelope
from hotline.protocol.ids import make_id
from hotline.protocol.keys import KeyPeriod, SigningKey
from hotline.protocol.schema import body_to_map, decode_body
from hotline.protocol.session import decode_control
from hotline.protocol.vocab import AckAction, Advice, CancelReason, Precedence, Stage, Status
from tests.protocol.strategies import KID, sample_warning

__all__ = ["CORPUS_FILE", "Case", "cases", "verdict"]

CORPUS_FILE: Final = Path(__file__).resolve().parent / "refusals.json"
SEED: Final = 20261203
T0: Final = 1_764_000_000_000
ROOT: Final = bytes(range(32))

Case = tuple[str, str, bytes]
"""(name, what the bytes are: ``body``, ``control`` or ``frame``, the bytes)."""


class Pairs(list[tuple[Any, Any]]):
    """A map written pair by pair: it may repeat a key, which a dict cannot."""


def pack(value: Any) -> bytes:
    """MessagePack of ``value``, with :class:`Pairs` written as maps exactly as listed."""
    if isinstance(value, Pairs):
        n = len(value)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(v) for k, v in value)
    if isinstance(value, list):
        n = len(value)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(pack(v) for v in value)
    if isinstance(value, dict):
        return pack(Pairs(value.items()))
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def _id(n: int) -> bytes:
    return make_id(T0 + n, bytes([n]) * 10)


def _head(n: int, sender: str = "BY") -> dict[str, Any]:
    return {"id": _id(n), "sender": sender, "ts": T0 + n, "seq": n, "kid": KID}


CAP: Final = CapOrigin(
    sender="ops@by", identifier="A-1", sent=T0,
    info=(CapInfo(lang="en", event="UAV", headline="h", description="d",
                  area=(CapArea(desc="zone", polygon=("54,25 55,26 54,26 54,25",),
                                circle=("54.1,25.2 1.5",), altitude=100.0, ceiling=200.0),)),),
)


def _bases() -> dict[str, dict[str, Any]]:
    """Valid wire maps of every body type, with their optional parts filled in."""
    warning = sample_warning()
    full = replace(warning, cp=SeenCheckpoint(size=5, root=ROOT), advice=Advice.AVOID,
                   text="seen", lang="en", cap=CAP, operator="duty-1")
    bodies: dict[str, Body] = {
        "warning": warning,
        "warning_full": full,
        "warning_cps": replace(warning, cps=(RelayCheckpoint(relay="by", size=3, root=ROOT),
                                             RelayCheckpoint(relay="osce", size=9, root=ROOT))),
        "update": UpdateBody(**{**_fields(warning), "ref": _id(2)}),
        "cancel": CancelBody(**_head(3), to="*", status=Status.ACTUAL,
                             precedence=Precedence.ROUTINE, incident=_id(1), ref=_id(2),
                             reason=CancelReason.LANDED, text="over", lang="en", cap=CAP),
        "text": TextBody(**_head(4), to=("LT", "LV"), status=Status.EXERCISE,
                         precedence=Precedence.PRIORITY, text="hello", lang="en",
                         incident=_id(1), operator="duty-1"),
        "delivered": ReceiptBody(**_head(5, "LT"), ref=_id(1), hash=ROOT,
                                 stage=Stage.DELIVERED, via="osce"),
        "acknowledged": ReceiptBody(**_head(6, "LT"), ref=_id(1), hash=ROOT,
                                    stage=Stage.ACKNOWLEDGED, action=AckAction.MONITORING,
                                    note="ok", operator="duty-2",
                                    cp=SeenCheckpoint(size=5, root=ROOT)),
        "rejected": ReceiptBody(**_head(7, "LT"), ref=_id(1), hash=ROOT,
                                stage=Stage.REJECTED, reason="unreadable"),
        "test": LinkTestBody(**_head(8, "relay"), to=("LT",)),
        "accepted": AcceptedBody(**_head(9, "relay"), ref=_id(1), hash=ROOT, index=41),
        "refused": RefusedBody(**_head(10, "relay"), ref=_id(1), hash=ROOT, frame_hash=ROOT,
                               code=RejectCode.SCHEMA, sentence="is required", path="track"),
        "refused_busy": RefusedBody(**_head(11, "relay"), frame_hash=ROOT,
                                    code=RejectCode.BUSY, sentence="busy",
                                    retry_after_ms=500),
    }
    return {name: body_to_map(body) for name, body in bodies.items()}


def _fields(body: Any) -> dict[str, Any]:
    return {f.name: getattr(body, f.name) for f in fields(body)}


WRONG: Final[Sequence[Any]] = (
    True, 0, -1, 1, 1.5, -200.0, 2**64 - 1, -(2**63), float("nan"), float("inf"), 1e300,
    "", "x", "LT", "*", "a b", "en", "x" * 4001, "bad\x01", "bi\u202edi", "ok\u200b",
    b"", b"\x00" * 8, b"\x00" * 16, b"\x00" * 32, _id(12), [], ["LT"], ["LT", "LT"],
    ["L T"], [1], {}, {"size": 1, "root": ROOT}, {"desc": "d"}, "BY-LT", "monitoring",
    "delivered", "schema", "busy", "uav", "radar", "msl", "flash", "exercise",
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position inside a wire map: keys of maps at any depth and items of arrays."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield (*prefix, i)
            yield from _paths(inner, (*prefix, i))


def _maps(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The positions of every map (the top one is ``()``)."""
    if isinstance(value, dict):
        yield prefix
        for key, inner in value.items():
            yield from _maps(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _maps(inner, (*prefix, i))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


_DROP: Final = object()


def _changed(base: dict[str, Any], *edits: tuple[tuple[Any, ...], Any]) -> dict[str, Any]:
    out: dict[str, Any] = _copy(base)
    for path, new in edits:
        target: Any = out
        for step in path[:-1]:
            target = target[step]
        if new is _DROP:
            if isinstance(target, dict):
                target.pop(path[-1], None)
            else:
                del target[path[-1]]
        else:
            target[path[-1]] = new
    return out


def _show(path: tuple[Any, ...]) -> str:
    return ".".join(map(str, path)) or "(top)"


def _body_cases(rng: random.Random) -> Iterator[Case]:
    bases = _bases()
    for name, base in bases.items():
        yield f"{name}/valid", "body", pack(base)
        paths = list(_paths(base))
        for path in paths:
            yield f"{name}/{_show(path)}=drop", "body", pack(_changed(base, (path, _DROP)))
            yield f"{name}/{_show(path)}=nil", "body", pack(_changed(base, (path, None)))
            for n in rng.sample(range(len(WRONG)), 5):
                edited = _changed(base, (path, WRONG[n]))
                yield f"{name}/{_show(path)}=wrong{n}", "body", pack(edited)
        for at in _maps(base):
            for key in ("zz", "a", b"k", 3):
                yield (f"{name}/{_show(at)}+{key!r}", "body",
                       pack(_changed(base, ((*at, key), 1))))
        for n in range(12):
            one, two = rng.sample(paths, 2)
            first = rng.choice((_DROP, None, *WRONG))
            second = rng.choice((_DROP, None, *WRONG))
            try:
                edited = _changed(base, (one, first), (two, second))
            except (KeyError, IndexError, TypeError):
                continue
            yield f"{name}/pair{n}", "body", pack(edited)
    yield from _raw_cases(bases)


def _pairs(value: Any) -> Any:
    if isinstance(value, dict):
        return Pairs((k, _pairs(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_pairs(v) for v in value]
    return value


def _raw_cases(bases: dict[str, dict[str, Any]]) -> Iterator[Case]:
    """Bytes that no dict encodes: repeated keys, cut or padded MessagePack, odd keys."""
    for name, base in bases.items():
        for at in _maps(base):
            tree = _pairs(base)
            target = tree
            for step in at:
                target = dict(target)[step] if isinstance(target, Pairs) else target[step]
            first_key, first_value = target[0]
            target.append((first_key, first_value))
            yield f"{name}/{_show(at)}:repeat-first", "body", pack(tree)
            target[-1] = (target[-2][0], 7)
            yield f"{name}/{_show(at)}:repeat-last", "body", pack(tree)
            data = pack(tree)
            yield f"{name}/{_show(at)}:repeat-cut", "body", data[:-1]
            yield f"{name}/{_show(at)}:repeat-padded", "body", data + b"\xc0"
        data = pack(base)
        for cut in sorted({1, 2, len(data) // 2, len(data) - 1}):
            yield f"{name}/cut{cut}", "body", data[:cut]
        yield f"{name}/padded", "body", data + b"\x00"
        yield f"{name}/as-array", "body", pack(list(base.values()))
        yield f"{name}/float-key", "body", pack(Pairs([(1.5, 1), *base.items()]))
        yield f"{name}/bin-key", "body", pack(Pairs([(b"t", 1), *base.items()]))
        yield f"{name}/nil-key", "body", pack(Pairs([(None, 1), *base.items()]))
        yield f"{name}/array-key", "body", b"\x81\x90\x01" + data
    yield "empty", "body", b""
    yield "nil", "body", b"\xc0"
    yield "reserved-byte", "body", b"\xc1"
    yield "empty-map", "body", b"\x80"
    yield "two-maps", "body", b"\x80\x80"


CONTROLS: Final[Sequence[dict[str, Any]]] = (
    {"t": "challenge", "nonce": b"\x01" * 32, "relay": "relay", "ts": T0},
    {"t": "auth", "id": "LT", "sig": b"\x02" * 64, "since": 41},
    {"t": "auth", "id": "LT", "sig": b"\x02" * 64},
    {"t": "welcome", "id": "LT", "size": 12},
    {"t": "deliver", "index": 7, "frame": b"\x93frame"},
    {"t": "accepted", "frame": b"\x93accepted"},
    {"t": "rejected", "ref": b"", "code": "stale", "sentence": "old", "path": "",
     "frame": b"\x93f"},
    {"t": "rejected", "ref": b"", "code": "stale", "sentence": "old", "path": ""},
    {"t": "checkpoint", "note": b"note\n"},
    {"t": "cosign", "line": "- LT abc="},
)


def _control_cases(rng: random.Random) -> Iterator[Case]:
    for number, base in enumerate(CONTROLS):
        name = f"control{number}:{base['t']}"
        yield f"{name}/valid", "control", pack(base)
        for key in base:
            yield f"{name}/{key}=drop", "control", pack(_changed(base, ((key,), _DROP)))
            yield f"{name}/{key}=nil", "control", pack(_changed(base, ((key,), None)))
            for n in rng.sample(range(len(WRONG)), 4):
                yield f"{name}/{key}=wrong{n}", "control", pack(_changed(base, ((key,), WRONG[n])))
        yield f"{name}/+zz", "control", pack({**base, "zz": 1})
        yield f"{name}/+bin", "control", pack(Pairs([*base.items(), (b"zz", 1)]))
        yield f"{name}/repeat", "control", pack(Pairs([*base.items(), ("t", base["t"])]))
        yield f"{name}/padded", "control", pack(base) + b"\x00"
        yield f"{name}/cut", "control", pack(base)[:-1]
    yield "control/array", "control", pack([1, 2])
    yield "control/empty", "control", b""


class _Directory:
    """BY and relay sign with one key each; BY's key has a period."""

    def __init__(self) -> None:
        self._by = (KeyPeriod(KEY.public, not_before=T0, not_after=T0 + 1000),)
        self._relay = (KeyPeriod(KEY.public),)

    def periods_of(self, party: str) -> Sequence[KeyPeriod] | None:
        return {"BY": self._by, "relay": self._relay}.get(party)


KEY: Final = SigningKey.from_seed(bytes(32))
DIRECTORY: Final = _Directory()


def _frame_cases() -> Iterator[Case]:
    sig = b"\x05" * 64
    body = body_to_map(replace(sample_warning(), kid=KEY.public.kid, ts=T0 + 10))
    good = pack(body)
    outer: list[tuple[str, Any]] = [
        ("valid", [VERSION, good, sig]),
        ("version2", [2, good, sig]),
        ("version-true", [True, good, sig]),
        ("version-float", [1.0, good, sig]),
        ("two-items", [VERSION, good]),
        ("four-items", [VERSION, good, sig, b""]),
        ("body-str", [VERSION, "body", sig]),
        ("short-sig", [VERSION, good, sig[:63]]),
        ("sig-str", [VERSION, good, "x" * 64]),
        ("a-map", {"v": 1}),
        ("stranger", [VERSION, pack({**body, "from": "XX"}), sig]),
        ("from-int", [VERSION, pack({**body, "from": 5}), sig]),
        ("no-kid", [VERSION, pack({k: v for k, v in body.items() if k != "kid"}), sig]),
        ("other-kid", [VERSION, pack({**body, "kid": b"\x09" * 8}), sig]),
        ("early", [VERSION, pack({**body, "ts": T0 - 1}), sig]),
        ("late", [VERSION, pack({**body, "ts": T0 + 1000}), sig]),
        ("ts-str", [VERSION, pack({**body, "ts": "now"}), sig]),
        ("relay-unbounded", [VERSION, pack({**body, "from": "relay", "ts": "now"}), sig]),
        ("body-repeats", [VERSION, pack(Pairs([*body.items(), ("t", "warning")])), sig]),
        ("body-not-map", [VERSION, pack([1]), sig]),
    ]
    for name, value in outer:
        yield f"frame/{name}", "frame", pack(value)
    yield "frame/too-large", "frame", b"\x93" + b"\x00" * 70_000
    yield "frame/padded", "frame", pack([VERSION, good, sig]) + b"\x00"
    yield "frame/cut", "frame", pack([VERSION, good, sig])[:-3]


def cases() -> list[Case]:
    rng = random.Random(SEED)
    return [*_body_cases(rng), *_control_cases(rng), *_frame_cases()]


READERS: Final[dict[str, Callable[[bytes], object]]] = {
    "body": decode_body,
    "control": decode_control,
    "frame": lambda data: read_envelope(data, DIRECTORY),
}


def verdict(kind: str, data: bytes) -> str | list[str]:
    """The refusal as ``[code, sentence, path]``, or ``"ok <digest>"``: the start of SHA-256 of
    the ``repr`` of what was read, so that what an accepted input means is pinned too."""
    try:
        value = READERS[kind](data)
    except Rejected as exc:
        return [exc.code.value, exc.sentence, exc.path]
    return "ok " + hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def render() -> str:
    """The corpus file: one case a line, ``"name": verdict``."""
    lines = (f"{json.dumps(name)}: {json.dumps(verdict(kind, data), ensure_ascii=False)}"
             for name, kind, data in cases())
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    CORPUS_FILE.write_text(render(), encoding="utf-8")
    sys.exit(0)
