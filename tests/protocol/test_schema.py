"""Body encoding and the schema rules, as a specification."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import Body, CancelBody, CapOrigin, WarningBody
from hotline.protocol.jsonview import body_to_json, json_to_body
from hotline.protocol.schema import body_to_map, decode_body, encode_body, map_to_body
from tests.protocol import strategies as s


@settings(max_examples=300)
@given(s.bodies)
def test_every_body_type_round_trips(body: Body) -> None:
    """Encoding then decoding any valid body gives the same body back."""
    assert decode_body(encode_body(body)) == body


@settings(max_examples=150)
@given(s.bodies)
def test_json_view_round_trips(body: Body) -> None:
    """The JSON view (ids as text, hashes as hex) converts back to the same body."""
    assert json_to_body(body_to_json(body)) == body


@given(s.bodies)
def test_header_comes_first_in_wire_order(body: Body) -> None:
    """The wire map starts with t, id, from, ts, seq, kid."""
    assert list(body_to_map(body))[:6] == ["t", "id", "from", "ts", "seq", "kid"]


@given(st.one_of(s.warnings(), s.warnings(update=True), s.cancels()), s.caps)
def test_a_cap_origin_round_trips_on_the_wire_and_in_json(
    body: WarningBody | CancelBody, cap: CapOrigin
) -> None:
    """The optional cap field (protocol §3.10) survives encoding and the JSON view."""
    with_cap = replace(body, cap=cap)
    assert decode_body(encode_body(with_cap)) == with_cap
    assert json_to_body(body_to_json(with_cap)) == with_cap
    assert "cap" not in body_to_map(body)  # bodies without it are unchanged


@pytest.mark.parametrize(
    ("cap", "path", "words"),
    [
        ({"sender": "a b", "identifier": "X", "sent": 1}, "cap.sender", "without spaces"),
        ({"identifier": "X", "sent": 1}, "cap.sender", "required"),
        ({"sender": "a", "identifier": "X", "sent": 1, "info": []}, "cap.info", "non-empty"),
        ({"sender": "a", "identifier": "X", "sent": 1, "info": [{"area": [{}]}]},
         "cap.info[0].area[0].desc", "required"),
        ({"sender": "a", "identifier": "X", "sent": 1,
          "info": [{"area": [{"desc": "d", "ceiling": 5.0}]}]},
         "cap.info[0].area[0].ceiling", "altitude"),
        ({"sender": "a", "identifier": "X", "sent": 1, "info": [{"colour": "red"}]},
         "cap.info[0].colour", "not a field"),
        ({"sender": "a", "identifier": "X", "sent": 1, "info": [{}] * 5}, "cap.info",
         "at most 4"),
    ],
)
def test_a_bad_cap_field_names_its_path(cap: dict[str, Any], path: str, words: str) -> None:
    """Every rule of the cap field refuses with schema and the path of the bad part."""
    with pytest.raises(Rejected) as caught:
        map_to_body(_warning_map(cap=cap))
    assert (caught.value.code, caught.value.path) == (RejectCode.SCHEMA, path)
    assert words in caught.value.sentence


@given(s.warnings())
def test_absent_optional_fields_are_left_out(body: WarningBody) -> None:
    """Optional fields that are None do not appear on the wire at all."""
    wire = body_to_map(body)
    assert all(value is not None for value in wire.values())
    assert ("predicted" in wire) == (body.predicted is not None)


def _warning_map(**changes: Any) -> dict[str, Any]:
    wire = body_to_map(s.sample_warning())
    wire["track"] = dict(wire["track"])  # type: ignore[call-overload]
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        target: Any = wire
        for p in parents:
            target = target[p]
        if value is _DROP:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return wire


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"track__lat": 91.0}, "track.lat", "between -90 and 90"),
        ({"track__lon": -180.5}, "track.lon", "between -180 and 180"),
        ({"track__confidence": 1.5}, "track.confidence", "between 0 and 1"),
        ({"track__heading_deg": 360.0}, "track.heading_deg", "below 360"),
        ({"track__object": "ufo"}, "track.object", "one of"),
        ({"track__lat": float("nan")}, "track.lat", "finite"),
        ({"track__lat": True}, "track.lat", "a number"),
        ({"track__extra": 1}, "track.extra", "not a field"),
        ({"track__alt_m": 10.0, "track__alt_ref": _DROP}, "track.alt_ref", "together"),
        ({"track": _DROP}, "track", "required"),
        ({"precedence": "urgent"}, "precedence", "one of"),
        ({"to": []}, "to", "non-empty"),
        ({"to": ["LT", "LT"]}, "to", "twice"),
        ({"to": ["L T"]}, "to[0]", "endpoint id"),
        ({"id": b"\x00" * 16}, "id", "UUIDv7"),
        ({"kid": b"\x00" * 7}, "kid", "key id"),
        ({"expires": 1_764_000_000_000}, "expires", "later than ts"),
        ({"text": "hello", "lang": _DROP}, "lang", "together"),
        ({"lang": "not a tag", "text": "x"}, "lang", "BCP 47"),
        ({"advice": None}, "advice", "left out"),
        ({"colour": "red"}, "colour", "not a field"),
        ({"seq": -1}, "seq", "between"),
        ({"t": "memo"}, "t", "one of"),
    ],
)
def test_schema_errors_name_the_field(changes: dict[str, Any], path: str, words: str) -> None:
    """Each schema rule rejects with code schema and the dotted path of the bad field."""
    with pytest.raises(Rejected) as caught:
        map_to_body(_warning_map(**changes))
    assert caught.value.code is RejectCode.SCHEMA
    assert caught.value.path == path
    assert words in caught.value.sentence


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        msgpack.packb([1, 2, 3]),
        msgpack.packb({1: "x"}),
        msgpack.packb({"a": 1}) + b"\x00",
    ],
    ids=["empty", "never-used byte", "array", "int key", "trailing bytes"],
)
def test_malformed_bodies_are_bad_frames(data: bytes) -> None:
    """Bytes that are not one map with string keys are rejected as bad_frame."""
    with pytest.raises(Rejected) as caught:
        decode_body(data)
    assert caught.value.code is RejectCode.BAD_FRAME


def test_duplicate_keys_are_refused() -> None:
    """A map that repeats a key is refused, so no two readers can disagree on it."""
    data = b"\x82\xa1t\xa4text\xa1t\xa7warning"
    with pytest.raises(Rejected) as caught:
        decode_body(data)
    assert caught.value.code is RejectCode.BAD_FRAME
    assert "repeats" in caught.value.sentence


def test_deep_nesting_is_refused() -> None:
    """Deeply nested values in a field the schema does not know are refused."""
    deep: object = 1
    for _ in range(10):
        deep = [deep]
    with pytest.raises(Rejected) as caught:
        decode_body(msgpack.packb({"t": "text", "x": deep}))
    assert caught.value.code is RejectCode.SCHEMA


@given(s.receipts())
def test_receipt_rules_hold(body: Body) -> None:
    """Only acknowledged receipts carry an action; rejected ones need a reason."""
    wire = body_to_map(body)
    wire["stage"] = "delivered"
    wire["action"] = "monitoring"
    wire.pop("reason", None)
    with pytest.raises(Rejected) as caught:
        map_to_body(wire)
    assert caught.value.path == "action"
    wire.pop("action")
    wire["stage"] = "rejected"
    with pytest.raises(Rejected) as caught:
        map_to_body(wire)
    assert caught.value.path == "reason"


@given(s.warnings(), st.sampled_from(["id", "from", "ts", "seq", "kid", "t"]))
def test_every_header_field_is_required(body: WarningBody, field: str) -> None:
    """A body without any one of the common header fields is rejected naming it."""
    wire = body_to_map(body)
    del wire[field]
    with pytest.raises(Rejected) as caught:
        map_to_body(wire)
    assert caught.value.path == field


def test_encode_refuses_an_invalid_body() -> None:
    """Nothing invalid is ever encoded for signing."""
    body = s.sample_warning()
    bad = replace(body, track=replace(body.track, lat=123.0))
    with pytest.raises(Rejected):
        encode_body(bad)


@given(s.receipts())
def test_only_rejected_receipts_carry_a_reason(body: Body) -> None:
    """A delivered or acknowledged receipt with a reason is refused naming reason."""
    wire = body_to_map(body)
    if wire["stage"] == "rejected":
        return
    wire["reason"] = "because"
    with pytest.raises(Rejected) as caught:
        map_to_body(wire)
    assert caught.value.path == "reason"


@given(s.texts())
def test_a_text_message_cannot_be_empty(body: Body) -> None:
    """Free text between officers must say something."""
    wire = body_to_map(body)
    wire["text"] = ""
    with pytest.raises(Rejected) as caught:
        map_to_body(wire)
    assert caught.value.path == "text"
