"""Golden envelope vectors: writes ``envelopes.json`` and ``network.toml`` next to this file.

Run as ``.venv/bin/python tests/vectors/generate.py``. The output is byte-stable: keys come
from fixed seeds, times and ids are fixed, Ed25519 signatures are deterministic (RFC 8032),
and nothing reads the clock or a random source. ``tests/test_vectors.py`` checks that a run in
memory reproduces the committed files exactly.

Parties and their 32-byte Ed25519 seeds: party number ``n`` in :data:`PARTIES` has the seed
``bytes(range(32 * n, 32 * n + 32))``, so BY's seed is ``00 01 … 1f`` (the key of the worked
example in ``docs/protocol.md``). ``XX`` signs but is not in the network (``unknown_sender``).

Each case is ``{name, note, envelope_hex, expect, path?, body_json?}``: ``expect`` is ``"ok"``
or the rejection code a verifier must give; ``path`` is the field path of a ``schema``
rejection; ``body_json`` is the JSON view of an accepted body. The vector network sets
``max_frame_bytes = 4096`` so the size limit can be shown at its exact boundary.
"""

from __future__ import annotations

import copy
import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any, Final, NotRequired, TypedDict

import msgpack

from hotline.protocol.envelope import AUTH_TAG, MSG_TAG, seal_bytes
from hotline.protocol.ids import make_id
from hotline.protocol.jsonview import body_to_json
from hotline.protocol.keys import SigningKey
from hotline.protocol.schema import decode_body

__all__ = [
    "ENVELOPES_FILE",
    "MAX_FRAME",
    "NETWORK_FILE",
    "PARTIES",
    "Case",
    "build_cases",
    "doc_example",
    "key_of",
    "network_toml",
    "render",
    "seed_of",
]

HERE: Final = Path(__file__).resolve().parent
ENVELOPES_FILE: Final = "envelopes.json"
NETWORK_FILE: Final = "network.toml"

PARTIES: Final = ("BY", "LT", "LV", "EE", "PL", "relay", "XX")
ENDPOINTS: Final = {
    "BY": ("Belarus", "be"),
    "LT": ("Lithuania", "lt"),
    "LV": ("Latvia", "lv"),
    "EE": ("Estonia", "et"),
    "PL": ("Poland", "pl"),
}
MAX_FRAME: Final = 4096
T0: Final = 1_764_000_000_000  # 2025-11-24T16:00:00Z


class Case(TypedDict):
    name: str
    note: str
    envelope_hex: str
    expect: str
    path: NotRequired[str]
    body_json: NotRequired[dict[str, Any]]


# ----------------------------------------------------------------------------- keys, ids


def seed_of(party: str) -> bytes:
    """The fixed 32-byte seed of a vector party."""
    n = PARTIES.index(party)
    return bytes(range(32 * n, 32 * n + 32))


def key_of(party: str) -> SigningKey:
    return SigningKey.from_seed(seed_of(party))


def kid_of(party: str) -> bytes:
    return key_of(party).public.kid


def uid(n: int, ts: int = T0) -> bytes:
    """A fixed UUIDv7: time ``ts`` and the number ``n`` in place of the random bits."""
    return make_id(ts, n.to_bytes(10, "big"))


def network_toml() -> str:
    """The vector network: five linked endpoints and a relay, keys from the fixed seeds."""
    lines = [
        "# Golden-vector network, written by tests/vectors/generate.py; do not edit.",
        "# Party n of (BY, LT, LV, EE, PL, relay) signs with the Ed25519 seed",
        "# bytes(range(32 * n, 32 * n + 32)).",
        "",
        "[network]",
        'name = "hotline golden vectors"',
        "",
        "[relay]",
        'id = "relay"',
        'origin = "hotline.example/vectors"',
        'url = "ws://127.0.0.1:8700/v1/ws"',
        f'public_key = "{key_of("relay").public.to_base64()}"',
    ]
    for party, (name, language) in ENDPOINTS.items():
        lines += [
            "",
            f"[endpoints.{party}]",
            f'name = "{name}"',
            f'public_key = "{key_of(party).public.to_base64()}"',
            f'language = "{language}"',
        ]
    parties = list(ENDPOINTS)
    for i, a in enumerate(parties):
        for b in parties[i + 1 :]:
            lines += ["", "[[links]]", f'between = ["{a}", "{b}"]']
    lines += ["", "[limits]", f"max_frame_bytes = {MAX_FRAME}", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- bodies


def _header(kind: str, n: int, party: str, seq: int, ts: int = T0) -> dict[str, Any]:
    return {"t": kind, "id": uid(n, ts), "from": party, "ts": ts, "seq": seq, "kid": kid_of(party)}


def doc_example() -> dict[str, Any]:
    """The wire map of the worked example in docs/protocol.md: a text from BY to LT."""
    return {
        **_header("text", 1, "BY", 1),
        "to": ["LT"],
        "status": "exercise",
        "precedence": "routine",
        "text": "Line check, BY to LT.",
        "lang": "en",
    }


def _full_warning() -> dict[str, Any]:
    return {
        **_header("warning", 2, "BY", 2),
        "to": ["LT", "PL"],
        "status": "exercise",
        "precedence": "flash",
        "incident": uid(100),
        "expires": T0 + 3_600_000,
        "track": {
            "lat": 54.3512,
            "lon": 25.9041,
            "observed_at": T0 - 2_000,
            "object": "balloon",
            "confidence": 0.8,
            "source": "radar",
            "pos_err_m": 150.0,
            "alt_m": 3000.0,
            "alt_ref": "msl",
            "heading_deg": 285.0,
            "speed_mps": 9.5,
            "vrate_mps": -0.5,
            "count": 1,
            "sensor_id": "BY-RAD-07",
        },
        "predicted": {
            "border": "BY-LT",
            "crossing_at": T0 + 240_000,
            "crossing_lat": 54.41,
            "crossing_lon": 25.78,
            "probability": 0.7,
        },
        "advice": "monitor",
        "text": "Балон з радыёзондам, дрэйфуе на паўночны захад.",
        "lang": "be",
    }


def _minimal_warning() -> dict[str, Any]:
    return {
        **_header("warning", 3, "LT", 1),
        "to": "*",
        "status": "actual",
        "precedence": "immediate",
        "incident": uid(101),
        "expires": T0 + 600_000,
        "track": {
            "lat": 54.9,
            "lon": 23.9,
            "observed_at": T0 - 1_000,
            "object": "uav",
            "confidence": 0.5,
            "source": "acoustic",
        },
    }


def _update() -> dict[str, Any]:
    warning = _full_warning()
    del warning["predicted"], warning["text"], warning["lang"]
    track = warning["track"]
    track.update(lat=54.3821, lon=25.8127, observed_at=T0 + 58_000)
    return {
        **warning,
        **_header("update", 4, "BY", 3, T0 + 60_000),
        "expires": T0 + 3_660_000,
        "advice": "prepare",
        "ref": uid(2),
    }


def _cancel() -> dict[str, Any]:
    return {
        **_header("cancel", 5, "BY", 4, T0 + 300_000),
        "to": ["LT", "PL"],
        "status": "exercise",
        "precedence": "routine",
        "incident": uid(100),
        "ref": uid(4, T0 + 60_000),
        "reason": "left_area",
        "text": "Target left the area to the north-west.",
        "lang": "en",
    }


def _receipt(n: int, party: str, seq: int, stage: str, **extra: Any) -> dict[str, Any]:
    return {
        **_header("receipt", n, party, seq, T0 + 1_000 * seq),
        "ref": uid(2),
        "hash": hashlib.sha256(_packed(_full_warning())).digest(),
        "stage": stage,
        **extra,
    }


SEEN_ROOT: Final = hashlib.sha256(b"a checkpoint root, for the vectors").digest()


def _with_checkpoint(wire: dict[str, Any], size: int = 1234) -> dict[str, Any]:
    """``wire`` with ``cp`` right after the header, where a signer writes it."""
    head = {k: wire[k] for k in ("t", "id", "from", "ts", "seq", "kid")}
    rest = {k: v for k, v in wire.items() if k not in head}
    return {**head, "cp": {"size": size, "root": SEEN_ROOT}, **rest}


def _with_checkpoints(wire: dict[str, Any]) -> dict[str, Any]:
    """``wire`` with ``cps`` (several relays) right after the header."""
    head = {k: wire[k] for k in ("t", "id", "from", "ts", "seq", "kid")}
    rest = {k: v for k, v in wire.items() if k not in head}
    cps = {"by": {"size": 1234, "root": SEEN_ROOT}, "osce": {"size": 98, "root": SEEN_ROOT}}
    return {**head, "cps": cps, **rest}


def _link_test() -> dict[str, Any]:
    return {**_header("test", 9, "relay", 7, T0 + 5_000), "to": ["LT"]}


def _accepted() -> dict[str, Any]:
    return {
        **_header("accepted", 10, "relay", 8, T0 + 10),
        "ref": uid(2),
        "hash": hashlib.sha256(_packed(_full_warning())).digest(),
        "index": 0,
    }


def _refused_rate_limited() -> dict[str, Any]:
    """The relay's signed refusal of a (hypothetical) resend of the warning: rate_limited."""
    resend = _sign(_packed(_full_warning()), "BY")
    return {
        **_header("refused", 11, "relay", 1_764_000_000_020_000, T0 + 20),
        "ref": uid(2),
        "hash": hashlib.sha256(_packed(_full_warning())).digest(),
        "frame_hash": hashlib.sha256(_frame(1, _packed(_full_warning()), resend)).digest(),
        "code": "rate_limited",
        "sentence": "BY is over 600 messages a minute; retry in 120 ms",
        "retry_after_ms": 120,
    }


def _refused_schema() -> dict[str, Any]:
    """The relay's signed refusal of garbage that is no envelope: no ref, no hash."""
    return {
        **_header("refused", 12, "relay", 1_764_000_000_030_000, T0 + 30),
        "frame_hash": hashlib.sha256(b"\xc1\x00\x01").digest(),
        "code": "schema",
        "sentence": "must be one of warning, update, cancel, text, receipt",
        "path": "t",
    }


# ----------------------------------------------------------------------------- bytes


def _packed(value: object) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def _pack_pairs(pairs: list[tuple[object, object]]) -> bytes:
    """A MessagePack map written pair by pair, so a key may repeat."""
    packer = msgpack.Packer(use_bin_type=True)
    out: bytes = packer.pack_map_header(len(pairs))
    for key, value in pairs:
        out += packer.pack(key) + packer.pack(value)
    return out


def _frame(*items: object) -> bytes:
    return _packed(list(items))


def _sign(body: bytes, party: str) -> bytes:
    return key_of(party).sign(MSG_TAG + body)


def _changed(wire: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A deep copy of ``wire`` with the dotted ``path`` set to ``value`` (or removed)."""
    out = copy.deepcopy(wire)
    *parents, last = path.split(".")
    target = out
    for part in parents:
        target = target[part]
    if value is _REMOVE:
        del target[last]
    else:
        target[last] = value
    return out


_REMOVE: Final = object()


def _json_view(body: bytes) -> dict[str, Any]:
    return body_to_json(decode_body(body))


# ----------------------------------------------------------------------------- cases


def _ok(name: str, note: str, wire: dict[str, Any]) -> Case:
    """A valid envelope of ``wire``, signed by the party it names."""
    return _ok_frame(name, note, seal_bytes(_packed(wire), key_of(wire["from"])))


def _ok_frame(name: str, note: str, frame: bytes) -> Case:
    body = msgpack.unpackb(frame)[1]
    return Case(
        name=name, note=note, envelope_hex=frame.hex(), expect="ok", body_json=_json_view(body)
    )


def _bad(name: str, note: str, frame: bytes, expect: str, path: str | None = None) -> Case:
    case = Case(name=name, note=note, envelope_hex=frame.hex(), expect=expect)
    if path is not None:
        case["path"] = path
    return case


def _schema(name: str, note: str, wire: dict[str, Any], path: str) -> Case:
    """A body that breaks a schema rule, validly signed by its sender (BY if it names none)."""
    body = _packed(wire)
    signer = wire["from"] if wire.get("from") in PARTIES else "BY"
    return _bad(name, note, seal_bytes(body, key_of(signer)), "schema", path)


def _sized_text(size: int) -> bytes:
    """A valid BY text envelope of exactly ``size`` bytes (ASCII text, padded to fit)."""
    for length in range(4001):
        wire = {**doc_example(), "id": uid(20), "seq": 20, "text": "x" * length}
        body = _packed(wire)
        frame = seal_bytes(body, key_of("BY"))
        if len(frame) == size:
            return frame
    raise AssertionError(f"no text length gives a frame of {size} bytes")


def _ok_cases() -> list[Case]:
    wire = _full_warning()
    as_int = _changed(_changed(_minimal_warning(), "track.lat", 55), "id", uid(21))
    as_int["seq"] = 21
    example_body = _packed(doc_example())
    example_sig = _sign(example_body, "BY")
    loose_frame = (
        b"\x93\xcc\x01\xc6"
        + struct.pack(">I", len(example_body))
        + example_body
        + b"\xc5"
        + struct.pack(">H", len(example_sig))
        + example_sig
    )
    return [
        _ok("doc_example", "the worked example of docs/protocol.md", doc_example()),
        _ok("warning", "a warning with every optional field", wire),
        _ok(
            "warning_minimal", "a warning to '*' with only the required fields", _minimal_warning()
        ),
        _ok("update", "an update of the warning, same incident", _update()),
        _ok("cancel", "a cancel of the incident", _cancel()),
        _ok(
            "receipt_delivered",
            "LT's delivered receipt for the warning",
            _receipt(6, "LT", 2, "delivered"),
        ),
        _ok(
            "receipt_acknowledged",
            "LT's acknowledged receipt with action and note",
            _receipt(
                7,
                "LT",
                3,
                "acknowledged",
                action="monitoring",
                note="Seen by the duty officer; radar tracking.",
            ),
        ),
        _ok(
            "receipt_rejected",
            "PL's rejected receipt with its reason",
            _receipt(8, "PL", 1, "rejected", reason="incident unknown to PL"),
        ),
        _ok(
            "text_with_checkpoint",
            "a text carrying the checkpoint its author witnessed last (cp, protocol §3.2.1)",
            _with_checkpoint(_changed(doc_example(), "id", uid(31))),
        ),
        _ok(
            "receipt_with_checkpoint",
            "LT's acknowledged receipt carrying the checkpoint LT witnessed last",
            _with_checkpoint(_receipt(32, "LT", 4, "acknowledged", action="monitoring")),
        ),
        _ok(
            "text_with_relay_checkpoints",
            "a text in a network of several relays carrying each relay's checkpoint "
            "(cps, protocol §3.2.1)",
            _with_checkpoints(_changed(doc_example(), "id", uid(33))),
        ),
        _ok(
            "receipt_delivered_via",
            "LT's delivered receipt naming the relay that delivered first (via, §3.7)",
            _with_checkpoints(_receipt(34, "LT", 5, "delivered", via="osce")),
        ),
        _ok("test", "the relay's link test to LT", _link_test()),
        _ok("accepted", "the relay's accepted receipt for the warning", _accepted()),
        _ok(
            "refused_rate_limited",
            "the relay's signed refusal of a resend of the warning, with its retry-after",
            _refused_rate_limited(),
        ),
        _ok(
            "refused_schema",
            "the relay's signed refusal of bytes whose body it could not read: no ref, no hash",
            _refused_schema(),
        ),
        _ok(
            "number_as_integer", "a MessagePack integer is a valid number (track.lat = 55)", as_int
        ),
        _ok_frame(
            "loose_frame_encoding",
            "the frame is not minimally encoded (uint8 "
            "version, bin32 body, bin16 signature); only the body bytes are signed",
            loose_frame,
        ),
        _ok_frame(
            "frame_at_limit", f"a valid frame of exactly {MAX_FRAME} bytes", _sized_text(MAX_FRAME)
        ),
        _ok(
            "text_with_operator",
            "a text naming the operator who sent it",
            {**_changed(doc_example(), "id", uid(22)), "seq": 22, "operator": "anna.k"},
        ),
        _ok(
            "receipt_acknowledged_by_operator",
            "LT's acknowledged receipt naming the operator who acknowledged",
            _receipt(23, "LT", 23, "acknowledged", action="monitoring", operator="duty-lt"),
        ),
    ]


def _frame_cases() -> list[Case]:
    body = _packed(doc_example())
    sig = _sign(body, "BY")
    good = _frame(1, body, sig)
    return [
        _bad(
            "too_large",
            f"a validly signed frame of {MAX_FRAME + 1} bytes",
            _sized_text(MAX_FRAME + 1),
            "too_large",
        ),
        _bad("garbage", "not MessagePack (0xc1 is never used)", b"\xc1\x00\x01", "bad_frame"),
        _bad("empty", "no bytes at all", b"", "bad_frame"),
        _bad("truncated", "the frame without its last byte", good[:-1], "bad_frame"),
        _bad(
            "trailing_bytes", "a valid frame followed by one more byte", good + b"\xc0", "bad_frame"
        ),
        _bad("not_an_array", "the body map sent on its own", body, "bad_frame"),
        _bad("two_elements", "[1, body] without the signature", _frame(1, body), "bad_frame"),
        _bad("four_elements", "[1, body, sig, extra]", _frame(1, body, sig, b""), "bad_frame"),
        _bad("version_2", "[2, body, sig]", _frame(2, body, sig), "bad_frame"),
        _bad(
            "version_true",
            "[true, body, sig]: a boolean is not the integer 1",
            _frame(True, body, sig),
            "bad_frame",
        ),
        _bad("version_string", '["1", body, sig]', _frame("1", body, sig), "bad_frame"),
        _bad(
            "body_as_str",
            "the body as a MessagePack str, not bin",
            _frame(1, body.decode("latin-1"), sig),
            "bad_frame",
        ),
        _bad(
            "signature_63_bytes",
            "a signature one byte short",
            _frame(1, body, sig[:63]),
            "bad_frame",
        ),
    ]


def _body_frame_cases() -> list[Case]:
    wire = doc_example()
    pairs = list(wire.items())
    dup_top = _pack_pairs([*pairs, ("text", "Second text.")])
    track_pairs = list(_full_warning()["track"].items())
    warning_pairs: list[tuple[object, object]] = [
        (k, _RawMap(_pack_pairs([*track_pairs, ("lat", 0.0)])) if k == "track" else v)
        for k, v in _full_warning().items()
    ]
    dup_nested = _pack_pairs_raw(warning_pairs)
    int_key = _pack_pairs([*pairs, (7, "seven")])
    bad_utf8 = _packed(wire).replace(b"Line check", b"Line\xffcheck")
    cases = [
        ("body_not_a_map", "the signed body is an array", _packed(list(wire.values()))),
        ("duplicate_key", "the body map has the key 'text' twice", dup_top),
        ("duplicate_key_nested", "the track map has the key 'lat' twice", dup_nested),
        ("non_string_key", "the body map has an integer key", int_key),
        ("bin_key", "the body map has a bin key", _pack_pairs([*pairs, (b"note", "x")])),
        (
            "body_trailing_bytes",
            "the body bin holds a map and one more byte",
            _packed(wire) + b"\xc0",
        ),
        ("body_bad_utf8", "a str that is not UTF-8", bad_utf8),
    ]
    return [
        _bad(name, note, seal_bytes(body, key_of("BY")), "bad_frame") for name, note, body in cases
    ]


class _RawMap:
    """Already-packed map bytes, spliced in as a value by :func:`_pack_pairs_raw`."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def _pack_pairs_raw(pairs: list[tuple[object, object]]) -> bytes:
    packer = msgpack.Packer(use_bin_type=True)
    out: bytes = packer.pack_map_header(len(pairs))
    for key, value in pairs:
        out += packer.pack(key)
        out += value.data if isinstance(value, _RawMap) else packer.pack(value)
    return out


def _signature_cases() -> list[Case]:
    body = _packed(doc_example())
    sig = _sign(body, "BY")
    flipped_sig = bytes([sig[0] ^ 0x01]) + sig[1:]
    assert body.endswith(b"en")
    flipped_body = body[:-1] + bytes([body[-1] ^ 0x01])  # lang "en" becomes "eo"
    wrong_kid = _packed({**doc_example(), "kid": kid_of("LT")})
    outsider = {**doc_example(), "from": "XX", "kid": kid_of("XX")}
    outsider_body = _packed(outsider)
    return [
        _bad(
            "flipped_signature_byte",
            "the first signature byte XOR 1",
            _frame(1, body, flipped_sig),
            "bad_signature",
        ),
        _bad(
            "flipped_body_byte",
            "the last body byte XOR 1 (lang 'en' becomes 'eo')",
            _frame(1, flipped_body, sig),
            "bad_signature",
        ),
        _bad(
            "wrong_kid",
            "BY signs, but the body names LT's key id",
            seal_bytes(wrong_kid, key_of("BY")),
            "bad_signature",
        ),
        _bad(
            "wrong_key",
            "LT's key signs a body from BY with BY's key id",
            seal_bytes(body, key_of("LT")),
            "bad_signature",
        ),
        _bad(
            "no_domain_tag",
            "the signature covers the body alone, without the tag",
            _frame(1, body, key_of("BY").sign(body)),
            "bad_signature",
        ),
        _bad(
            "auth_tag",
            "the signature uses the authentication tag hotline/v1/auth\\0",
            _frame(1, body, key_of("BY").sign(AUTH_TAG + body)),
            "bad_signature",
        ),
        _bad(
            "unknown_sender",
            "XX is not a party of the network",
            seal_bytes(outsider_body, key_of("XX")),
            "unknown_sender",
        ),
    ]


def _schema_cases() -> list[Case]:
    text = doc_example()
    warning = _full_warning()
    minimal = _minimal_warning()
    receipt = _receipt(6, "LT", 2, "delivered")
    return [
        _schema(
            "from_missing",
            "no 'from': refused before the signature is checked",
            _changed(text, "from", _REMOVE),
            "from",
        ),
        _schema(
            "kid_short",
            "a 7-byte kid: refused before the signature is checked",
            _changed(text, "kid", kid_of("BY")[:7]),
            "kid",
        ),
        _schema(
            "track_lat_out_of_range",
            "track.lat = 91",
            _changed(warning, "track.lat", 91.0),
            "track.lat",
        ),
        _schema(
            "heading_360",
            "track.heading_deg must be below 360",
            _changed(warning, "track.heading_deg", 360.0),
            "track.heading_deg",
        ),
        _schema(
            "count_zero",
            "track.count must be at least 1",
            _changed(warning, "track.count", 0),
            "track.count",
        ),
        _schema(
            "confidence_above_1",
            "track.confidence = 1.5",
            _changed(warning, "track.confidence", 1.5),
            "track.confidence",
        ),
        _schema(
            "unknown_field",
            "a field 'colour' that no body has",
            _changed(text, "colour", "red"),
            "colour",
        ),
        _schema(
            "unknown_track_field",
            "a field 'colour' inside track",
            _changed(warning, "track.colour", "red"),
            "track.colour",
        ),
        _schema(
            "missing_field",
            "a warning without status",
            _changed(warning, "status", _REMOVE),
            "status",
        ),
        _schema(
            "nil_optional",
            "advice set to nil instead of left out",
            _changed(warning, "advice", None),
            "advice",
        ),
        _schema(
            "alt_without_ref",
            "track.alt_m without track.alt_ref",
            _changed(warning, "track.alt_ref", _REMOVE),
            "track.alt_ref",
        ),
        _schema(
            "text_without_lang",
            "a warning's text without lang",
            _changed(warning, "lang", _REMOVE),
            "lang",
        ),
        _schema(
            "expires_not_after_ts",
            "expires equal to ts",
            _changed(minimal, "expires", T0),
            "expires",
        ),
        _schema(
            "border_malformed",
            "predicted.border without '-'",
            _changed(warning, "predicted.border", "BYLT"),
            "predicted.border",
        ),
        _schema("to_repeats", "to names LT twice", _changed(text, "to", ["LT", "LT"]), "to"),
        _schema("cp_size_zero", "cp.size = 0: the empty tree is never carried",
                _with_checkpoint(text, size=0), "cp.size"),
        _schema("cp_root_short", "cp.root of 31 bytes",
                _changed(_with_checkpoint(text), "cp.root", SEEN_ROOT[:31]), "cp.root"),
        _schema("cp_unknown_field", "cp with a field it does not have",
                _changed(_with_checkpoint(text), "cp.note", "x"), "cp.note"),
        _schema("cp_on_a_test", "the relay's link test carries no cp",
                _with_checkpoint(_link_test()), "cp"),
        _schema("cps_with_cp", "cp and cps together",
                _with_checkpoint(_with_checkpoints(text)), "cps"),
        _schema("cps_root_short", "one relay's root in cps of 31 bytes",
                _changed(_with_checkpoints(text), "cps.osce.root", SEEN_ROOT[:31]),
                "cps.osce.root"),
        _schema("via_on_acknowledged", "via belongs to a delivered receipt only",
                _receipt(35, "LT", 6, "acknowledged", action="monitoring", via="by"), "via"),
        _schema("to_empty", "to is an empty list", _changed(text, "to", []), "to"),
        _schema(
            "to_bad_id",
            "the second recipient is not an endpoint id",
            _changed(text, "to", ["LT", "P L"]),
            "to[1]",
        ),
        _schema(
            "id_not_uuid7",
            "the id is a UUIDv4",
            _changed(text, "id", bytes.fromhex("9b2f0c6a3d1e4f7a8b5c6d7e8f901234")),
            "id",
        ),
        _schema("unknown_type", "t = 'alert'", _changed(text, "t", "alert"), "t"),
        _schema("status_unknown", "status = 'drill'", _changed(text, "status", "drill"), "status"),
        _schema("ts_float", "ts as a float", _changed(text, "ts", float(T0)), "ts"),
        _schema("seq_negative", "seq = -1", _changed(text, "seq", -1), "seq"),
        _schema(
            "text_control_char",
            "text holds a carriage return",
            _changed(text, "text", "Line check\r"),
            "text",
        ),
        _schema(
            "update_without_ref",
            "an update without ref",
            _changed(_update(), "ref", _REMOVE),
            "ref",
        ),
        _schema(
            "action_on_delivered",
            "action on a delivered receipt",
            _changed(receipt, "action", "monitoring"),
            "action",
        ),
        _schema(
            "rejected_without_reason",
            "a rejected receipt without reason",
            _changed(receipt, "stage", "rejected"),
            "reason",
        ),
        _schema("hash_short", "a 31-byte hash", _changed(receipt, "hash", bytes(31)), "hash"),
        _schema("test_to_all", "a link test to '*'", _changed(_link_test(), "to", "*"), "to"),
        _schema(
            "refused_temporary_without_retry",
            "a rate_limited refusal without retry_after_ms",
            _changed(_refused_rate_limited(), "retry_after_ms", _REMOVE),
            "retry_after_ms",
        ),
        _schema(
            "refused_final_with_retry",
            "a link_forbidden refusal with retry_after_ms",
            _changed(_refused_rate_limited(), "code", "link_forbidden"),
            "retry_after_ms",
        ),
        _schema(
            "refused_path_not_schema",
            "a path on a refusal whose code is not schema",
            _changed(_changed(_refused_schema(), "code", "stale"), "path", "expires"),
            "path",
        ),
        _schema(
            "note_bidi_override",
            "a note wrapped in RIGHT-TO-LEFT OVERRIDE and POP DIRECTIONAL FORMATTING",
            _receipt(7, "LT", 3, "acknowledged", note="\u202eDEVIECER TON\u202c"),
            "note",
        ),
        _schema(
            "text_zero_width",
            "text holding a ZERO WIDTH SPACE",
            _changed(text, "text", "Line\u200bcheck"),
            "text",
        ),
        _schema(
            "text_c1_control",
            "text holding the C1 control U+0085",
            _changed(text, "text", "Line check\x85"),
            "text",
        ),
        _schema(
            "operator_on_delivered",
            "operator on a delivered receipt",
            _changed(receipt, "operator", "duty-lt"),
            "operator",
        ),
        _schema(
            "operator_not_a_name",
            "an operator name with a space",
            {**text, "operator": "anna k"},
            "operator",
        ),
    ]


def build_cases() -> list[Case]:
    """Every golden case, in file order."""
    cases = [
        *_ok_cases(),
        *_frame_cases(),
        *_body_frame_cases(),
        *_signature_cases(),
        *_schema_cases(),
    ]
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    return cases


def render() -> dict[str, str]:
    """The text of each generated file, by file name."""
    return {
        NETWORK_FILE: network_toml(),
        ENVELOPES_FILE: json.dumps(build_cases(), indent=2, ensure_ascii=False) + "\n",
    }


def main() -> int:
    for name, text in render().items():
        (HERE / name).write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {', '.join(render())} in {HERE}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
