"""CAP out: every export validates against the OASIS CAP 1.2 schema and says what the body says."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.cap import body_to_cap, cap_sender
from hotline.errors import UsageError
from hotline.protocol.bodies import (
    CancelBody,
    Predicted,
    TextBody,
    Track,
    UpdateBody,
    WarningBody,
)
from hotline.protocol.ids import format_id, make_id
from hotline.protocol.vocab import (
    Advice,
    AltRef,
    CancelReason,
    ObjectKind,
    Precedence,
    Source,
    Status,
)
from tests.cap.helpers import NUMERIC_OFFSET, cap_schema, parameters, text_of, times_in
from tests.protocol import strategies as s

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z
KID = bytes(8)
WARNING_ID = make_id(T0, b"\x00" * 10)
UPDATE_ID = make_id(T0 + 60_000, b"\x02" * 10)
CANCEL_ID = make_id(T0 + 120_000, b"\x03" * 10)
INCIDENT = make_id(T0, b"\x01" * 10)


def full_warning() -> WarningBody:
    """A warning that uses every field: predicted crossing, advice, text, altitude msl."""
    return WarningBody(
        id=WARNING_ID,
        sender="BY",
        ts=T0,
        seq=1,
        kid=KID,
        to=("LT", "PL"),
        status=Status.ACTUAL,
        precedence=Precedence.FLASH,
        incident=INCIDENT,
        expires=T0 + 1_800_000,
        track=Track(
            lat=54.6872,
            lon=25.2797,
            observed_at=T0 - 30_000,
            object=ObjectKind.UAV,
            confidence=0.9,
            source=Source.RADAR,
            pos_err_m=2500.0,
            alt_m=457.2,
            alt_ref=AltRef.MSL,
            heading_deg=270.0,
            speed_mps=25.5,
            vrate_mps=-0.5,
            count=2,
            sensor_id="BY-R7",
        ),
        predicted=Predicted(
            border="BY-LT",
            crossing_at=T0 + 240_500,
            crossing_lat=54.6,
            crossing_lon=25.8,
            probability=0.75,
        ),
        advice=Advice.AVOID,
        text="Two drones heading west.",
        lang="en",
    )


def bare_warning() -> WarningBody:
    """A warning with no altitude, no prediction, no advice and no text."""
    return WarningBody(
        id=WARNING_ID,
        sender="LV",
        ts=T0,
        seq=2,
        kid=KID,
        to="*",
        status=Status.EXERCISE,
        precedence=Precedence.ROUTINE,
        incident=INCIDENT,
        expires=T0 + 600_000,
        track=Track(
            lat=56.95,
            lon=24.1,
            observed_at=T0,
            object=ObjectKind.BALLOON,
            confidence=0.4,
            source=Source.VISUAL,
        ),
    )


def update() -> UpdateBody:
    w = full_warning()
    fields: dict[str, Any] = {f.name: getattr(w, f.name) for f in dataclasses.fields(w)}
    fields.update(id=UPDATE_ID, ts=T0 + 60_000, seq=3, precedence=Precedence.IMMEDIATE,
                  predicted=None, advice=Advice.MONITOR)
    return UpdateBody(**fields, ref=WARNING_ID)


def cancel() -> CancelBody:
    return CancelBody(
        id=CANCEL_ID,
        sender="BY",
        ts=T0 + 120_000,
        seq=4,
        kid=KID,
        to=("LT", "PL"),
        status=Status.ACTUAL,
        precedence=Precedence.FLASH,
        incident=INCIDENT,
        ref=UPDATE_ID,
        reason=CancelReason.LEFT_AREA,
        text="Left the area to the east.",
        lang="en",
    )


def _export(kind: str) -> bytes:
    if kind == "warning with predicted crossing":
        return body_to_cap(full_warning(), sender="hotline:BY", sent_ms=T0)
    if kind == "warning without altitude or prediction":
        return body_to_cap(bare_warning(), sender="hotline:LV", sent_ms=T0)
    if kind == "update":
        return body_to_cap(update(), sender="hotline:BY", sent_ms=T0 + 60_000,
                           references=[("hotline:BY", format_id(WARNING_ID), T0)])
    if kind == "cancel":
        return body_to_cap(cancel(), sender="hotline:BY", sent_ms=T0 + 120_000)
    return body_to_cap(full_warning(), sender="hotline:LT", sent_ms=T0 + 9_000, ack=True)


KINDS = [
    "warning with predicted crossing",
    "warning without altitude or prediction",
    "update",
    "cancel",
    "ack",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_export_validates_against_the_oasis_schema(kind: str) -> None:
    """Warnings, updates, cancels and acks are valid CAP 1.2 (element order included)."""
    cap_schema().validate(_export(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_every_time_has_a_numeric_offset_never_z(kind: str) -> None:
    """sent, onset, expires, references and crossing_at all end in +00:00, never Z."""
    xml = _export(kind)
    found = times_in(xml)
    assert found
    assert all(NUMERIC_OFFSET.fullmatch(t) and t.endswith("+00:00") for t in found), found
    assert not re.search(rb"\d\d:\d\d(\.\d+)?Z", xml)


def test_identifier_is_the_message_id_and_scope_is_restricted() -> None:
    """identifier is the hotline UUID, sender as given, scope Restricted to the network."""
    xml = _export("warning with predicted crossing")
    assert text_of(xml, "identifier") == format_id(WARNING_ID)
    assert text_of(xml, "sender") == "hotline:BY"
    assert text_of(xml, "sent") == "2025-11-24T16:00:00+00:00"
    assert text_of(xml, "msgType") == "Alert"
    assert text_of(xml, "scope") == "Restricted"
    assert text_of(xml, "restriction") == "hotline deconfliction network"
    assert text_of(xml, "incidents") == format_id(INCIDENT)


def test_info_carries_codes_units_and_text() -> None:
    """Security/Drone warning, urgency from precedence, radius in km, altitude in feet."""
    xml = _export("warning with predicted crossing")
    assert text_of(xml, "info/category") == "Security"
    assert text_of(xml, "info/event") == "Drone warning"
    assert text_of(xml, "info/responseType") == "Avoid"
    assert text_of(xml, "info/urgency") == "Immediate"
    assert text_of(xml, "info/severity") == "Extreme"
    assert text_of(xml, "info/certainty") == "Observed"
    assert text_of(xml, "info/onset") == "2025-11-24T15:59:30+00:00"
    assert text_of(xml, "info/expires") == "2025-11-24T16:30:00+00:00"
    assert text_of(xml, "info/language") == "en"
    assert text_of(xml, "info/description") == "Two drones heading west."
    assert text_of(xml, "info/area/circle") == "54.6872,25.2797 2.5"
    assert text_of(xml, "info/area/altitude") == "1500"
    assert "BY-LT" in (text_of(xml, "info/area/areaDesc") or "")


def test_hotline_fields_travel_as_parameters() -> None:
    """Fields CAP has no element for are hotline:NAME parameters, in SI units."""
    assert parameters(_export("warning with predicted crossing")) == {
        "hotline:to": "LT PL",
        "hotline:incident": format_id(INCIDENT),
        "hotline:object": "uav",
        "hotline:source": "radar",
        "hotline:confidence": "0.9",
        "hotline:heading_deg": "270.0",
        "hotline:speed_mps": "25.5",
        "hotline:vrate_mps": "-0.5",
        "hotline:count": "2",
        "hotline:sensor_id": "BY-R7",
        "hotline:border": "BY-LT",
        "hotline:crossing_at": "2025-11-24T16:04:00.500+00:00",
        "hotline:crossing_lat": "54.6",
        "hotline:crossing_lon": "25.8",
        "hotline:probability": "0.75",
    }


def test_a_track_without_error_radius_gets_the_smallest_circle() -> None:
    """A circle needs a radius: no pos_err_m is written as 0.001 km; no altitude element."""
    xml = _export("warning without altitude or prediction")
    assert text_of(xml, "info/area/circle") == "56.95,24.1 0.001"
    assert text_of(xml, "info/area/altitude") is None
    assert text_of(xml, "info/area/areaDesc") == "track position"
    assert text_of(xml, "info/event") == "Balloon warning"
    assert text_of(xml, "info/description") is None


def test_an_altitude_above_ground_is_not_written_as_cap_altitude() -> None:
    """CAP altitude is above sea level; agl and hae travel as hotline:alt_m/alt_ref."""
    w = full_warning()
    body = replace(w, track=replace(w.track, alt_m=120.0, alt_ref=AltRef.AGL))
    xml = body_to_cap(body, sender="hotline:BY", sent_ms=T0)
    cap_schema().validate(xml)
    assert text_of(xml, "info/area/altitude") is None
    assert parameters(xml)["hotline:alt_m"] == "120.0"
    assert parameters(xml)["hotline:alt_ref"] == "agl"


def test_update_and_cancel_reference_the_message_they_refer_to() -> None:
    """references ends with ref: given by the caller, or made from ref's UUIDv7 time."""
    assert text_of(_export("update"), "references") == (
        f"hotline:BY,{format_id(WARNING_ID)},2025-11-24T16:00:00+00:00"
    )
    xml = _export("cancel")
    assert text_of(xml, "msgType") == "Cancel"
    assert text_of(xml, "references") == (
        f"hotline:BY,{format_id(UPDATE_ID)},2025-11-24T16:01:00+00:00"
    )
    assert text_of(xml, "info/responseType") == "AllClear"
    assert parameters(xml)["hotline:reason"] == "left_area"


def test_an_ack_references_the_message_and_has_no_info() -> None:
    """An Ack names the acknowledged message (its sender, id and ts) and carries no info."""
    xml = _export("ack")
    assert text_of(xml, "msgType") == "Ack"
    assert text_of(xml, "references") == (
        f"hotline:BY,{format_id(WARNING_ID)},2025-11-24T16:00:00+00:00"
    )
    assert text_of(xml, "identifier") != format_id(WARNING_ID)
    assert text_of(xml, "info/event") is None
    receipt_id = make_id(T0 + 9_000, b"\x09" * 10)
    named = body_to_cap(full_warning(), sender="hotline:LT", sent_ms=T0 + 9_000, ack=True,
                        ack_id=receipt_id)
    assert text_of(named, "identifier") == format_id(receipt_id)


def test_export_is_deterministic() -> None:
    """The same body, sender and time give the same bytes (the Ack's identifier included)."""
    assert _export("ack") == _export("ack")
    assert _export("update") == _export("update")


def test_text_bodies_have_no_cap_form() -> None:
    """Only warnings, updates and cancels export; a text body is a usage error."""
    body = TextBody(id=WARNING_ID, sender="BY", ts=T0, seq=1, kid=KID, to="*",
                    status=Status.TEST, precedence=Precedence.ROUTINE, text="hi", lang="en")
    with pytest.raises(UsageError, match="no CAP form"):
        body_to_cap(body, sender="hotline:BY", sent_ms=T0)


def test_references_must_end_with_the_referenced_message() -> None:
    """A references list whose last entry is not the update's ref is refused."""
    with pytest.raises(UsageError, match="last reference"):
        body_to_cap(update(), sender="hotline:BY", sent_ms=T0,
                    references=[("hotline:BY", format_id(CANCEL_ID), T0)])


def test_a_sender_with_a_space_is_refused() -> None:
    """CAP forbids spaces and commas in sender: such a sender is a usage error."""
    with pytest.raises(UsageError, match="CAP sender"):
        body_to_cap(full_warning(), sender="hotline BY", sent_ms=T0)


def test_cap_sender_prefixes_the_party() -> None:
    """hotline's CAP sender for BY is hotline:BY."""
    assert cap_sender("BY") == "hotline:BY"


def test_characters_xml_cannot_hold_are_replaced() -> None:
    """U+FFFF in free text becomes U+FFFD, and the document still validates."""
    body = replace(full_warning(), text="drone \uffff here")
    xml = body_to_cap(body, sender="hotline:BY", sent_ms=T0)
    cap_schema().validate(xml)
    assert text_of(xml, "info/description") == "drone \ufffd here"


@settings(max_examples=60, deadline=None)
@given(st.one_of(s.warnings(), s.warnings(update=True), s.cancels()))
def test_any_warning_update_or_cancel_exports_valid_cap(body: WarningBody | CancelBody) -> None:
    """Whatever the field values, the export is valid CAP 1.2 with numeric-offset times."""
    refs = []
    if isinstance(body, UpdateBody | CancelBody):
        refs = [("hotline:X", format_id(body.ref), body.ts)]
    xml = body_to_cap(body, sender=cap_sender(body.sender), sent_ms=body.ts, references=refs)
    cap_schema().validate(xml)
    assert all(NUMERIC_OFFSET.fullmatch(t) for t in times_in(xml))
