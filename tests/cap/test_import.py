"""CAP in: hand-written CAP samples read as exact hotline bodies, units converted."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.cap import CapInput, cap_to_body_json
from hotline.cap.codes import DEFAULT_EXPIRY_MS
from hotline.protocol.bodies import CancelBody, UpdateBody, WarningBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.jsonview import body_to_json, json_to_body
from tests.cap.helpers import (
    INCIDENT,
    MSG_ID,
    NOW,
    alert_xml,
    area_xml,
    info_xml,
    sample,
    with_header,
)
from tests.factories import make_network

ALERT_CIRCLE: dict[str, Any] = {
    "t": "warning",
    "to": ["LT", "LV"],
    "status": "actual",
    "precedence": "flash",
    "incident": "019ab697-e800-7a3e-a774-4bbd3dad633d",  # derived from sender and identifier
    "expires": 1_764_001_800_000,  # 18:30+02:00
    "track": {
        "lat": 54.6872,
        "lon": 25.2797,
        "observed_at": 1_763_999_970_000,  # onset 17:59:30+02:00
        "object": "uav",
        "confidence": 0.9,  # Observed
        "source": "radar",
        "pos_err_m": 2500.0,  # 2.5 km
        "alt_m": 457.2,  # 1500 ft
        "alt_ref": "msl",
        "heading_deg": 270.0,
        "speed_mps": 25.5,
        "count": 2,
        "sensor_id": "LT-R7",
    },
    "predicted": {"border": "BY-LT", "crossing_at": 1_764_000_240_500},  # 19:04:00.5+03:00
    "advice": "avoid",
    "text": "Du bepiločiai orlaiviai skrenda vakarų kryptimi.",
    "lang": "lt",
}

ALERT_POLYGON: dict[str, Any] = {
    "t": "warning",
    "to": "*",
    "status": "exercise",
    "precedence": "priority",  # Expected
    "incident": "019ab697-e800-7ed8-bf2d-1cc3468a8042",
    "expires": NOW + DEFAULT_EXPIRY_MS,
    "track": {
        "lat": 54.1,  # mean of the four distinct vertices
        "lon": 25.1,
        "observed_at": 1_763_999_880_000,  # effective 15:58:00+00:00
        "object": "unknown",
        "confidence": 0.4,  # Possible
        "source": "fused",
        "pos_err_m": 12_895.0,  # haversine to the farthest vertex, rounded up
        "alt_m": 457.2,  # the middle of 1000 ft and 2000 ft
        "alt_ref": "msl",
    },
    "advice": "avoid",  # Shelter
    "text": "Balloons drifting west",  # the headline, there being no description
    "lang": "en",
}

UPDATE: dict[str, Any] = {
    "t": "update",
    "to": "*",
    "status": "actual",
    "precedence": "immediate",
    "incident": INCIDENT,  # from <incidents>
    "expires": 1_764_002_400_000,
    "track": {
        "lat": 54.65,
        "lon": 25.3,
        "observed_at": 1_764_000_110_000,
        "object": "uav",
        "confidence": 0.85,  # hotline:confidence wins over certainty
        "source": "fused",
        "pos_err_m": 750.0,
        "vrate_mps": -1.5,
    },
    "advice": "monitor",
    "ref": MSG_ID,  # the last reference
}

CANCEL: dict[str, Any] = {
    "t": "cancel",
    "to": ["LT", "LV"],
    "status": "actual",
    "precedence": "flash",
    "incident": INCIDENT,  # written in capitals, read canonically
    "ref": "019ab697-e800-7000-8000-000000000002",
    "reason": "false_alarm",
    "text": "Radar clutter; no drone.",
    "lang": "en-GB",
}

CANCEL_MINIMAL: dict[str, Any] = {
    "t": "cancel",
    "to": "*",
    "status": "test",
    "precedence": "routine",
    "ref": "019ab697-e800-7000-8000-000000000003",
    "reason": "other",
    "text": "Sent in error.",
    "lang": "en",
}

SAMPLES = [
    ("alert_circle.xml", ALERT_CIRCLE, "LT-RADAR-7-000123", 1_764_000_000_000),
    ("alert_polygon.xml", ALERT_POLYGON, "PL-EX-2025-0042", 1_764_000_000_000),
    ("update.xml", UPDATE, "LT-RADAR-7-000124", 1_764_000_120_000),
    ("cancel.xml", CANCEL, "LT-RADAR-7-000125", 1_764_000_300_000),
    ("cancel_minimal.xml", CANCEL_MINIMAL, "LT-RADAR-7-000126", 1_764_000_360_000),
]


@pytest.mark.parametrize(("name", "expected", "identifier", "sent_ms"), SAMPLES)
def test_samples_read_as_exact_bodies(
    name: str, expected: dict[str, Any], identifier: str, sent_ms: int
) -> None:
    """Each sample gives exactly the expected body, keys in wire order, and its identity
    both beside the body and in its ``cap``."""
    result = cap_to_body_json(sample(name), now_ms=NOW)
    body = dict(result.body)
    cap = body.pop("cap")
    assert body == expected
    assert list(body) == list(expected)
    assert (result.identifier, result.sent_ms) == (identifier, sent_ms)
    assert (cap["sender"], cap["identifier"], cap["sent"]) == (result.sender, identifier, sent_ms)
    assert result.sender.endswith("sensors.lt.example") or name == "alert_polygon.xml"


@pytest.mark.parametrize(("name", "expected"), [(name, body) for name, body, _, _ in SAMPLES])
def test_samples_pass_the_protocol_schema_once_a_header_is_added(
    name: str, expected: dict[str, Any]
) -> None:
    """The body plus id/from/ts/seq/kid is a valid hotline body of the right type."""
    body = cap_to_body_json(sample(name), now_ms=NOW).body
    if "incident" not in body:  # the endpoint fills it in from the referenced message
        body = {**body, "incident": INCIDENT}
    typed = json_to_body(with_header(body))
    kinds = {"warning": WarningBody, "update": UpdateBody, "cancel": CancelBody}
    assert type(typed) is kinds[expected["t"]]
    assert {k: v for k, v in body_to_json(typed).items() if k in body} == body


def test_an_imported_alert_can_be_signed_and_verified() -> None:
    """With a real key id, the imported body seals and opens as an LT envelope."""
    net = make_network()
    body = json_to_body(
        with_header(cap_to_body_json(sample("alert_circle.xml"), now_ms=NOW).body)
    )
    envelope = open_envelope(net.seal(body), net.network)
    assert isinstance(envelope.body, WarningBody)
    assert envelope.body.track.alt_m == 457.2


def test_the_result_is_a_frozen_value() -> None:
    """CapInput is frozen: identifier, sender and sent time cannot be changed after reading."""
    result = cap_to_body_json(sample("update.xml"), now_ms=NOW)
    assert isinstance(result, CapInput)
    with pytest.raises(AttributeError):
        result.identifier = "x"  # type: ignore[misc]


def test_an_update_naming_no_incident_leaves_it_to_the_endpoint() -> None:
    """Without hotline:incident or incidents, an Update comes back without incident."""
    xml = alert_xml(msg_type="Update", references=f"hotline:LT,{MSG_ID},2025-11-24T16:00:00+00:00")
    body = cap_to_body_json(xml, now_ms=NOW).body
    assert "incident" not in body
    assert body["ref"] == MSG_ID


def test_a_resent_alert_names_the_same_incident() -> None:
    """The derived incident depends on sender and identifier only: a retry is one incident."""
    first = cap_to_body_json(alert_xml(), now_ms=NOW).body["incident"]
    again = cap_to_body_json(alert_xml(), now_ms=NOW + 1000).body["incident"]
    assert first == again


def test_default_recipients_apply_without_a_to_parameter() -> None:
    """default_to addresses a body whose CAP names no hotline:to; a string is one endpoint."""
    assert cap_to_body_json(alert_xml(), now_ms=NOW).body["to"] == "*"
    assert cap_to_body_json(alert_xml(), now_ms=NOW, default_to=["LV", "EE"]).body["to"] == [
        "LV",
        "EE",
    ]
    assert cap_to_body_json(alert_xml(), now_ms=NOW, default_to="PL").body["to"] == ["PL"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Actual", "actual"), ("Exercise", "exercise"), ("Test", "test"), ("System", "test"),
     ("Draft", "test")],
)
def test_status_maps(status: str, expected: str) -> None:
    """Actual→actual, Exercise→exercise, Test/System/Draft→test."""
    assert cap_to_body_json(alert_xml(status=status), now_ms=NOW).body["status"] == expected


@pytest.mark.parametrize(
    ("urgency", "severity", "expected"),
    [
        ("Immediate", "Extreme", "flash"),
        ("Immediate", "Severe", "immediate"),
        ("Immediate", "Unknown", "immediate"),
        ("Expected", "Extreme", "priority"),
        ("Future", "Extreme", "routine"),
        ("Past", "Minor", "routine"),
        ("Unknown", "Unknown", "routine"),
    ],
)
def test_precedence_comes_from_urgency_and_severity(
    urgency: str, severity: str, expected: str
) -> None:
    """Immediate+Extreme flash, Immediate immediate, Expected priority, else routine."""
    xml = alert_xml(info=info_xml(urgency=urgency, severity=severity))
    assert cap_to_body_json(xml, now_ms=NOW).body["precedence"] == expected


@pytest.mark.parametrize(
    ("certainty", "expected"),
    [("Observed", 0.9), ("Likely", 0.7), ("Possible", 0.4), ("Unlikely", 0.1), ("Unknown", 0.5)],
)
def test_confidence_defaults_from_certainty(certainty: str, expected: float) -> None:
    """Without hotline:confidence, certainty gives the confidence."""
    xml = alert_xml(info=info_xml(certainty=certainty))
    assert cap_to_body_json(xml, now_ms=NOW).body["track"]["confidence"] == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [("Monitor", "monitor"), ("Prepare", "prepare"), ("Avoid", "avoid"), ("Evacuate", "avoid"),
     ("Shelter", "avoid"), ("AllClear", "all_clear"), ("Assess", None), ("None", None)],
)
def test_response_type_maps_to_advice(response: str, expected: str | None) -> None:
    """Monitor, Prepare, Avoid/Evacuate/Shelter→avoid, AllClear; others give no advice."""
    body = cap_to_body_json(alert_xml(info=info_xml(response=response)), now_ms=NOW).body
    assert body.get("advice") == expected


def test_a_missing_expires_is_an_hour_after_now() -> None:
    """An Alert without info/expires expires one hour after now_ms."""
    xml = alert_xml(info=info_xml(times=""))
    assert cap_to_body_json(xml, now_ms=NOW).body["expires"] == NOW + 3_600_000


def test_circle_radius_is_kilometres_and_altitude_is_feet() -> None:
    """0.25 km is 250 m; 100 ft is 30.48 m above mean sea level."""
    area = area_xml("<circle>54.5,25.5 0.25</circle>", extra="<altitude>100</altitude>")
    track = cap_to_body_json(alert_xml(info=info_xml(area=area)), now_ms=NOW).body["track"]
    assert (track["pos_err_m"], track["alt_m"], track["alt_ref"]) == (250.0, 30.48, "msl")


def test_altitude_above_ground_comes_from_parameters() -> None:
    """hotline:alt_m with hotline:alt_ref agl sets an altitude CAP cannot express."""
    params = {"hotline:alt_m": "120", "hotline:alt_ref": "agl"}
    track = cap_to_body_json(alert_xml(info=info_xml(params=params)), now_ms=NOW).body["track"]
    assert (track["alt_m"], track["alt_ref"]) == (120.0, "agl")


def test_the_first_circle_or_polygon_of_the_first_area_with_one_counts() -> None:
    """An area with only a geocode is skipped; a circle wins over a polygon in one area."""
    geocode = "<geocode><valueName>X</valueName><value>1</value></geocode>"
    both = (
        "<polygon>1,1 1,2 2,2 1,1</polygon><circle>54.5,25.5 1</circle>"
    )
    info = info_xml(area=area_xml(geocode) + area_xml(both))
    track = cap_to_body_json(alert_xml(info=info), now_ms=NOW).body["track"]
    assert (track["lat"], track["lon"], track["pos_err_m"]) == (54.5, 25.5, 1000.0)


def test_a_cancel_without_info_takes_its_text_from_the_note() -> None:
    """A Cancel may carry no info: the note becomes text in English, precedence routine."""
    xml = alert_xml(msg_type="Cancel", info="", note="Sorry.",
                    references=f"a,{MSG_ID},2025-11-24T16:00:00+00:00")
    body = cap_to_body_json(xml, now_ms=NOW).body
    assert (body["text"], body["lang"], body["precedence"], body["reason"]) == (
        "Sorry.",
        "en",
        "routine",
        "other",
    )


def test_other_parameters_are_ignored() -> None:
    """Parameters outside the hotline: prefix belong to other systems and change nothing."""
    plain = cap_to_body_json(alert_xml(), now_ms=NOW).body
    params = {"vendor:quality": "A", "SAME": "EVI"}
    assert cap_to_body_json(alert_xml(info=info_xml(params=params)), now_ms=NOW).body == plain
