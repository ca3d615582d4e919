"""CAP out then in: an export reads back as the same body, but for the losses in docs/cap.md."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.cap import body_to_cap, cap_sender, cap_to_body_json
from hotline.errors import Rejected
from hotline.protocol.bodies import CancelBody, CapArea, CapInfo, CapOrigin, UpdateBody, WarningBody
from hotline.protocol.ids import format_id
from hotline.protocol.jsonview import body_to_json
from hotline.protocol.vocab import AltRef
from tests.cap import test_export as samples
from tests.protocol import strategies as s

HEADER = ("id", "from", "ts", "seq", "kid")


def expected_after_round_trip(body: WarningBody | CancelBody) -> dict[str, Any]:
    """The JSON view of ``body`` without its header, with the documented losses applied."""
    out = {k: v for k, v in body_to_json(body).items() if k not in HEADER}
    if "expires" in out:
        out["expires"] = -(-out["expires"] // 1000) * 1000  # rounded up to the second
    track = out.get("track")
    if track is not None:
        track["observed_at"] = track["observed_at"] // 1000 * 1000  # rounded down
        if track.get("pos_err_m", 0.0) < 1.0:
            track["pos_err_m"] = 1.0  # the smallest circle CAP gets is 0.001 km
    for key in ("text",):
        if key in out:
            out[key] = out[key].replace("\ufffe", "\ufffd").replace("\uffff", "\ufffd")
    if track is not None and "sensor_id" in track:
        track["sensor_id"] = track["sensor_id"].replace("\ufffe", "\ufffd")
        track["sensor_id"] = track["sensor_id"].replace("\uffff", "\ufffd")
    return out


def round_trip(body: WarningBody | CancelBody) -> dict[str, Any]:
    refs = []
    if isinstance(body, UpdateBody | CancelBody):
        refs = [(cap_sender(body.sender), format_id(body.ref), body.ts)]
    xml = body_to_cap(body, sender=cap_sender(body.sender), sent_ms=body.ts, references=refs)
    return cap_to_body_json(xml, now_ms=body.ts).body


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Equal, except that an altitude above sea level may differ by the feet rounding."""
    got_alt = got.get("track", {}).pop("alt_m", None)
    want_alt = want.get("track", {}).pop("alt_m", None)
    assert got == want
    assert (got_alt is None) == (want_alt is None)
    if got_alt is not None and want_alt is not None:
        exact = want["track"].get("alt_ref") != AltRef.MSL.value
        assert got_alt == want_alt if exact else math.isclose(got_alt, want_alt, abs_tol=7e-4)


@pytest.mark.parametrize(
    "make", [samples.full_warning, samples.bare_warning, samples.update, samples.cancel]
)
def test_fixed_bodies_round_trip(make: Any) -> None:
    """The export tests' warning, bare warning, update and cancel read back as themselves."""
    body = make()
    assert_same(round_trip(body), expected_after_round_trip(body))


def test_a_full_warning_round_trips_exactly() -> None:
    """Whole seconds, a radius of at least 1 m and an altitude in mm lose nothing at all."""
    body = samples.full_warning()
    assert round_trip(body) == {k: v for k, v in body_to_json(body).items() if k not in HEADER}


def test_the_documented_losses_are_the_only_ones() -> None:
    """Milliseconds of observed_at and expires, and a missing pos_err_m, are what changes."""
    body = samples.bare_warning()
    track = replace(body.track, observed_at=body.ts + 999)
    body = replace(body, expires=body.expires + 1, track=track)
    got = round_trip(body)
    assert got["expires"] == body.expires - 1 + 1000
    assert got["track"]["observed_at"] == body.ts
    assert got["track"]["pos_err_m"] == 1.0


def test_an_acknowledgement_is_not_read_back() -> None:
    """An Ack is for other systems; hotline takes acknowledgements as signed receipts."""
    body = samples.full_warning()
    xml = body_to_cap(body, sender="hotline:LT", sent_ms=body.ts, ack=True)
    with pytest.raises(Rejected) as caught:
        cap_to_body_json(xml, now_ms=body.ts)
    assert caught.value.path == "msgType"


@settings(max_examples=200, deadline=None)
@given(st.one_of(s.warnings(), s.warnings(update=True), s.cancels()))
def test_any_body_round_trips_modulo_documented_losses(body: WarningBody | CancelBody) -> None:
    """For every warning, update and cancel, export then import gives its content back."""
    assert_same(round_trip(body), expected_after_round_trip(body))


def test_cap_areas_that_disagree_with_the_track_do_not_lose_it() -> None:
    """A cap field (protocol §3.10) whose first area is not the track's position: the export
    writes the track's circle first, so it reads back as the same track."""
    body = samples.full_warning()
    cap = CapOrigin(sender="ops@x.example", identifier="A-1", sent=body.ts, info=(
        CapInfo(event="Drone", area=(CapArea(desc="elsewhere", circle=("10,10 5",)),)),))
    with_cap = replace(body, cap=cap)
    xml = body_to_cap(with_cap, sender=cap_sender(body.sender), sent_ms=body.ts)
    again = cap_to_body_json(xml, now_ms=body.ts).body
    assert again["track"] == expected_after_round_trip(body)["track"]
    assert again["cap"]["info"][0]["area"][-1] == {"desc": "elsewhere", "circle": ["10,10 5"]}
