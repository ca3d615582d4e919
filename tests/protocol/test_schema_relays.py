"""``cps`` and ``via``: what a body carries in a network of several relays (§3.2.1, §3.7)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import ReceiptBody, RelayCheckpoint, SeenCheckpoint
from hotline.protocol.jsonview import body_to_json, json_to_body
from hotline.protocol.schema import body_to_map, decode_body, encode_body, map_to_body
from hotline.protocol.vocab import Stage
from tests.protocol import strategies as s

ROOT = bytes(range(32))
CPS = (RelayCheckpoint(relay="by", size=12, root=ROOT),
       RelayCheckpoint(relay="osce", size=3, root=ROOT[::-1]))


def test_cps_round_trips_on_the_wire_and_in_json_as_a_map_by_relay() -> None:
    """cps is a map from relay id to {size, root}, right after the header, hex in JSON."""
    body = replace(s.sample_warning(), cps=CPS)
    wire = body_to_map(body)
    assert list(wire)[6] == "cps"
    assert wire["cps"] == {"by": {"size": 12, "root": ROOT},
                           "osce": {"size": 3, "root": ROOT[::-1]}}
    assert decode_body(encode_body(body)) == body
    view = body_to_json(body)
    assert view["cps"]["osce"]["root"] == ROOT[::-1].hex()
    assert json_to_body(view) == body
    assert body.seen_on("osce") == SeenCheckpoint(size=3, root=ROOT[::-1])
    assert body.seen_on("elsewhere") is None
    assert "cps" not in body_to_map(s.sample_warning())  # one relay: unchanged


def test_a_one_relay_body_is_seen_through_cp() -> None:
    """Without cps, every relay's view is the one cp (the one-relay network)."""
    seen = SeenCheckpoint(size=5, root=ROOT)
    assert replace(s.sample_warning(), cp=seen).seen_on("relay") == seen


def _wire(**changes: Any) -> dict[str, Any]:
    wire = body_to_map(replace(s.sample_warning(), cps=CPS))
    wire.update(changes)
    return wire


@pytest.mark.parametrize(
    ("wire", "path", "words"),
    [
        (_wire(cps={}), "cps", "non-empty map"),
        (_wire(cps=[1]), "cps", "non-empty map"),
        (_wire(cps={f"r{i}": {"size": 1, "root": ROOT} for i in range(9)}), "cps", "at most 8"),
        (_wire(cps={"a b": {"size": 1, "root": ROOT}}), "cps.a b", ""),
        (_wire(cps={"by": {"size": 1, "root": ROOT}, b"os": {"size": 1, "root": ROOT}}),
         "cps", "relay ids as its keys"),
        (_wire(cps={7: {"size": 1, "root": ROOT}}), "cps", "relay ids as its keys"),
        (_wire(cps={"by": {"size": 1, "root": ROOT, b"a": 1, "b": 2}}), "cps.by.b",
         "not a field"),
        (_wire(cps={"by": 5}), "cps.by", "must be a map"),
        (_wire(cps={"by": {"size": 0, "root": ROOT}}), "cps.by.size", "between"),
        (_wire(cps={"by": {"size": 1, "root": ROOT[:31]}}), "cps.by.root", ""),
        (_wire(cps={"by": {"size": 1, "root": ROOT, "note": 1}}), "cps.by.note", "not a field"),
        (_wire(cp={"size": 1, "root": ROOT}), "cps", "cannot be given with cp"),
    ],
)
def test_a_bad_cps_names_its_path(wire: dict[str, Any], path: str, words: str) -> None:
    """Each cps rule refuses with schema and the dotted path of the fault."""
    with pytest.raises(Rejected) as caught:
        map_to_body(wire)
    assert caught.value.code is RejectCode.SCHEMA
    assert caught.value.path == path
    assert words in caught.value.sentence


def _receipt(stage: Stage, **extra: Any) -> ReceiptBody:
    warning = s.sample_warning()
    return ReceiptBody(id=warning.id, sender="LT", ts=warning.ts, seq=1, kid=warning.kid,
                       ref=warning.id, hash=ROOT, stage=stage, **extra)


def test_via_names_the_first_relay_of_a_delivered_receipt_only() -> None:
    """A delivered receipt may name the relay that delivered first; no other stage may."""
    delivered = _receipt(Stage.DELIVERED, via="osce")
    assert decode_body(encode_body(delivered)) == delivered
    wire = body_to_map(_receipt(Stage.ACKNOWLEDGED))
    wire["via"] = "osce"
    with pytest.raises(Rejected) as caught:
        map_to_body(wire)
    assert caught.value.path == "via"
