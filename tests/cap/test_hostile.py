"""CAP in from outside: hostile or broken input is refused with a path naming the CAP element."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.cap import MAX_CAP_BYTES, cap_to_body_json
from hotline.errors import RejectCode, Rejected
from tests.cap.helpers import MSG_ID, NOW, alert_xml, area_xml, info_xml, sample

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE alert [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://203.0.113.1/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>
"""


def refusal(xml: bytes, *, now_ms: int = NOW) -> Rejected:
    with pytest.raises(Rejected) as caught:
        cap_to_body_json(xml, now_ms=now_ms)
    return caught.value


def test_not_xml_is_refused() -> None:
    """Bytes that are not well-formed XML are a schema error on the whole document."""
    error = refusal(b"this is not xml")
    assert (error.code, error.path) == (RejectCode.SCHEMA, "alert")
    assert "not well-formed XML" in error.sentence


def test_a_truncated_document_is_refused() -> None:
    """A document cut short is not well-formed."""
    assert refusal(alert_xml()[:-20]).path == "alert"


def test_the_wrong_namespace_is_refused() -> None:
    """A CAP 1.1 alert (or any other namespace) is not CAP 1.2."""
    error = refusal(alert_xml(namespace="urn:oasis:names:tc:emergency:cap:1.1"))
    assert error.path == "alert"
    assert "urn:oasis:names:tc:emergency:cap:1.2" in error.sentence


def test_an_alert_without_namespace_is_refused() -> None:
    """<alert> with no namespace is not a CAP 1.2 alert."""
    assert refusal(b"<alert><identifier>x</identifier></alert>").path == "alert"


def test_billion_laughs_is_refused_before_expansion() -> None:
    """A DTD with nested entities is refused outright; nothing is expanded."""
    error = refusal(BILLION_LAUGHS)
    assert (error.code, error.path) == (RejectCode.SCHEMA, "alert")
    assert "DTD" in error.sentence


def test_an_external_entity_is_refused() -> None:
    """An entity naming a file is refused; the file is never read."""
    error = refusal(EXTERNAL_ENTITY)
    assert error.path == "alert"
    assert "passwd" not in str(error)


def test_an_external_dtd_is_refused() -> None:
    """A DOCTYPE pointing at a URL is refused; nothing is fetched."""
    assert refusal(EXTERNAL_DTD).path == "alert"


def test_a_huge_document_is_refused_before_parsing() -> None:
    """Over 256 KiB is too_large, whatever it holds."""
    padding = b"<!--" + b"x" * MAX_CAP_BYTES + b"-->"
    error = refusal(alert_xml(prolog=padding.decode()))
    assert (error.code, error.path) == (RejectCode.TOO_LARGE, "alert")


def test_a_document_at_the_limit_is_read() -> None:
    """Exactly 256 KiB is still accepted (the limit is inclusive)."""
    base = alert_xml()
    padding = "<!--" + "x" * (MAX_CAP_BYTES - len(base) - 7) + "-->"
    xml = alert_xml(prolog=padding)
    assert len(xml) == MAX_CAP_BYTES
    assert cap_to_body_json(xml, now_ms=NOW).body["t"] == "warning"


@pytest.mark.parametrize(
    "sent",
    [
        "2025-11-24T16:00:00Z",
        "2025-11-24T16:00:00",
        "2025-13-24T16:00:00+00:00",
        "2025-02-30T16:00:00+00:00",
        "2025-11-24 16:00:00+00:00",
        "1969-12-31T23:59:59+00:00",
        "2025-11-24T16:00:00+24:00",
        "yesterday",
    ],
)
def test_a_bad_time_is_refused(sent: str) -> None:
    """sent must be a real CAP time with a numeric offset, after 1970."""
    error = refusal(alert_xml(sent=sent))
    assert (error.code, error.path) == (RejectCode.SCHEMA, "sent")


def test_z_is_explained() -> None:
    """A time ending in Z is refused with the reason: CAP 1.2 wants +00:00."""
    assert "+00:00" in refusal(alert_xml(sent="2025-11-24T16:00:00Z")).sentence


def test_a_bad_onset_names_the_info_element() -> None:
    """A bad time inside info names info[0].onset."""
    times = "<onset>2025-11-24T16:00:00</onset>"
    assert refusal(alert_xml(info=info_xml(times=times))).path == "info[0].onset"


def test_a_latitude_of_95_is_refused() -> None:
    """A circle centred at latitude 95 names info[0].area[0].circle."""
    error = refusal(alert_xml(info=info_xml(area=area_xml("<circle>95,25 1</circle>"))))
    assert error.path == "info[0].area[0].circle"
    assert "latitude" in error.sentence


@pytest.mark.parametrize(
    "circle",
    ["54.5,25.5", "54.5 25.5 1", "54.5,25.5 -1", "54.5,25.5 1e3", "54.5,200 1", "nan,1 1",
     "54.5,25.5 one", "54.5,25.5,0 1", ""],
)
def test_a_malformed_circle_is_refused(circle: str) -> None:
    """A circle is 'lat,lon radius_km' with numbers in range and a non-negative radius."""
    xml = alert_xml(info=info_xml(area=area_xml(f"<circle>{circle}</circle>")))
    assert refusal(xml).path == "info[0].area[0].circle"


@pytest.mark.parametrize(
    "polygon",
    ["1,1 1,2 2,2", "1,1 1,2 2,2 2,1", "1,1 1,2 95,2 1,1", "1,1 1,x 2,2 1,1"],
)
def test_a_malformed_polygon_is_refused(polygon: str) -> None:
    """A polygon has at least four pairs, the last equal to the first, all in range."""
    xml = alert_xml(info=info_xml(area=area_xml(f"<polygon>{polygon}</polygon>")))
    assert refusal(xml).path == "info[0].area[0].polygon"


def test_a_missing_area_is_refused() -> None:
    """An Alert without an area has no position: info[0].area."""
    error = refusal(alert_xml(info=info_xml(area="")))
    assert error.path == "info[0].area"


def test_an_area_without_shape_is_refused() -> None:
    """An area holding only a description names the circle it lacks."""
    assert refusal(alert_xml(info=info_xml(area=area_xml("")))).path == "info[0].area[0].circle"


def test_a_missing_info_is_refused() -> None:
    """An Alert without info carries no track."""
    assert refusal(alert_xml(info="")).path == "info"


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("<altitude>high</altitude>", "info[0].area[0].altitude"),
        ("<altitude>1e3</altitude>", "info[0].area[0].altitude"),
        ("<ceiling>100</ceiling>", "info[0].area[0].ceiling"),
        ("<altitude>200</altitude><ceiling>100</ceiling>", "info[0].area[0].ceiling"),
        ("<altitude>99999999999999999</altitude>", "info[0].area[0].altitude"),
    ],
)
def test_a_bad_altitude_is_refused(extra: str, path: str) -> None:
    """Altitudes are decimal feet; a ceiling needs an altitude below it; range is checked."""
    assert refusal(alert_xml(info=info_xml(area=area_xml(extra=extra)))).path == path


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"hotline:speed_mps": "fast"}, "hotline:speed_mps"),
        ({"hotline:speed_mps": "-3"}, "hotline:speed_mps"),
        ({"hotline:heading_deg": "360"}, "hotline:heading_deg"),
        ({"hotline:count": "2.5"}, "hotline:count"),
        ({"hotline:object": "ufo"}, "hotline:object"),
        ({"hotline:confidence": "1.5"}, "hotline:confidence"),
        ({"hotline:colour": "red"}, "not a hotline parameter"),
        ({"hotline:incident": "not-a-uuid"}, "hotline:incident"),
        ({"hotline:crossing_at": "2025-11-24T16:00:00Z"}, "hotline:crossing_at"),
        ({"hotline:to": "LT ,, *"}, "hotline:to"),
    ],
)
def test_a_bad_parameter_names_the_parameter(params: dict[str, str], word: str) -> None:
    """A bad hotline:NAME value is refused at info[0].parameter[i], naming the field."""
    error = refusal(alert_xml(info=info_xml(params=params)))
    assert error.path == "info[0].parameter[0]"
    assert word in error.sentence


def test_a_parameter_given_twice_is_refused() -> None:
    """Two hotline:object parameters are ambiguous: the second is named."""
    pairs = "".join(
        f"<parameter><valueName>hotline:object</valueName><value>{v}</value></parameter>"
        for v in ("uav", "bird")
    )
    info = info_xml().replace("<area>", pairs + "<area>")
    assert refusal(alert_xml(info=info)).path == "info[0].parameter[1]"


def test_a_prediction_without_crossing_time_is_refused() -> None:
    """hotline:border alone is not a prediction: crossing_at is required."""
    error = refusal(alert_xml(info=info_xml(params={"hotline:border": "BY-LT"})))
    assert error.path == "info[0]"
    assert "hotline:crossing_at" in error.sentence


def test_an_expired_alert_is_refused() -> None:
    """expires not after now is refused at info[0].expires."""
    times = "<expires>2025-11-24T16:05:00+00:00</expires>"
    assert refusal(alert_xml(info=info_xml(times=times))).path == "info[0].expires"


def test_text_over_the_limit_names_the_description() -> None:
    """The protocol's rules apply with CAP paths: a 4001-character description."""
    text = f"<description>{'x' * 4001}</description>"
    error = refusal(alert_xml(info=info_xml(text=text)))
    assert error.path == "info[0].description"
    assert "4000" in error.sentence


def test_a_bad_language_names_the_language() -> None:
    """A language that is not BCP 47 names info[0].language."""
    text = "<description>hello</description>"
    assert refusal(alert_xml(info=info_xml(language="e", text=text))).path == "info[0].language"


def test_a_bad_recipient_names_hotline_to() -> None:
    """An endpoint id that cannot exist in hotline:to names the parameter."""
    error = refusal(alert_xml(info=info_xml(params={"hotline:to": "LT L/V"})))
    assert error.path == "info[0].parameter[0]"


@pytest.mark.parametrize("msg_type", ["Ack", "Error", "Notice"])
def test_only_alert_update_and_cancel_are_read(msg_type: str) -> None:
    """Acks and errors are not hotline messages; unknown types are not CAP."""
    assert refusal(alert_xml(msg_type=msg_type)).path == "msgType"


@pytest.mark.parametrize(
    "references",
    [
        "",
        "sender-only",
        ",x,2025-11-24T16:00:00+00:00",
        f"a,{MSG_ID},2025-11-24T16:00:00Z",
        f"a,{MSG_ID},2025-11-24T16:00:00+00:00 a,b",
    ],
)
def test_an_update_needs_well_formed_references(references: str) -> None:
    """references must be sender,identifier,sent entries with a CAP time."""
    assert refusal(alert_xml(msg_type="Update", references=references)).path == "references"


@pytest.mark.parametrize("identifier", ["not-a-uuid", "019ab697-e800-4000-8000-000000000001"])
def test_a_reference_by_the_senders_own_identifier_is_left_to_the_endpoint(
    identifier: str,
) -> None:
    """A last reference that is no hotline id (a UUIDv7) gives no ref, only the entries."""
    cap = cap_to_body_json(alert_xml(
        msg_type="Update",
        references=f"a@x,T-0,2025-11-24T15:00:00+02:00 a@x,{identifier},2025-11-24T16:00:00+00:00",
    ), now_ms=NOW)
    assert "ref" not in cap.body
    assert cap.references == (("a@x", "T-0", 1_763_989_200_000),
                              ("a@x", identifier, 1_764_000_000_000))


@pytest.mark.parametrize("element", ["identifier", "sender", "sent", "status", "msgType"])
def test_a_missing_required_element_is_named(element: str) -> None:
    """identifier, sender, sent, status and msgType are required."""
    xml = alert_xml().decode()
    start = xml.index(f"<{element}>")
    end = xml.index(f"</{element}>") + len(element) + 3
    assert refusal((xml[:start] + xml[end:]).encode()).path == element


def test_a_repeated_single_element_is_refused() -> None:
    """Two sent elements are ambiguous."""
    xml = alert_xml().replace(b"<status>", b"<sent>2025-11-24T16:00:00+00:00</sent><status>")
    assert refusal(xml).path == "sent"


def test_a_bad_code_names_its_element() -> None:
    """An urgency outside CAP's list is refused at info[0].urgency."""
    assert refusal(alert_xml(info=info_xml(urgency="Soon"))).path == "info[0].urgency"


def test_a_string_is_not_bytes() -> None:
    """The API takes bytes: a str is refused rather than guessed at."""
    with pytest.raises(Rejected):
        cap_to_body_json(alert_xml().decode(), now_ms=NOW)  # type: ignore[arg-type]


def _read_or_refuse(xml: bytes) -> None:
    """Reads ``xml`` or refuses it with a path; any other exception fails the test."""
    path = "(read)"
    try:
        cap_to_body_json(xml, now_ms=NOW)
    except Rejected as exc:
        path = exc.path
    assert path


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_refused_with_a_path(data: bytes) -> None:
    """Random bytes never raise anything but Rejected, and every refusal has a path."""
    _read_or_refuse(data)


_XML_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_element_text_of_a_real_alert_is_read_or_refused(data: st.DataObject) -> None:
    """Replacing the text of any element of a sample never breaks the reader."""
    name = data.draw(st.sampled_from(["alert_circle.xml", "alert_polygon.xml", "update.xml",
                                      "cancel.xml", "cancel_minimal.xml"]))
    root = ET.fromstring(sample(name))
    elements = [e for e in root.iter() if len(e) == 0]
    target = data.draw(st.sampled_from(elements))
    target.text = data.draw(
        st.one_of(_XML_TEXT, st.from_regex(r"-?\d{1,30}(\.\d{0,30})?", fullmatch=True))
    )
    _read_or_refuse(ET.tostring(root))
