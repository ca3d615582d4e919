"""CAP 1.2 out: a warning, update or cancel (or an acknowledgement of one) as an ``alert``.

The document validates against the OASIS CAP 1.2 schema: elements in the
order of its sequences, every time written with the numeric offset ``+00:00``
(CAP forbids ``Z``), ``scope`` Restricted. What hotline knows and CAP has no
element for travels in ``info/parameter`` as ``hotline:NAME`` pairs, so that
:func:`hotline.cap.reader.cap_to_body_json` reads the export back as the same
content (the losses are listed in ``docs/cap.md``):

- ``identifier`` is the hotline message id; ``sender`` the caller's (``hotline:BY``);
- ``references`` (Update, Cancel, Ack) ends with the message referred to;
- ``incidents`` and ``hotline:incident`` both name the incident;
- ``info``: ``category`` Security, ``event`` by object kind (Drone warning for a
  uav), ``responseType`` from advice (AllClear for a cancel), ``urgency`` and
  ``severity`` from precedence, ``certainty`` from confidence, ``onset`` the
  observation time, ``expires``, ``language`` and ``description`` the free text;
- ``area``: ``areaDesc``, a ``circle`` at the track with radius ``pos_err_m`` in
  km (at least 0.001), ``altitude`` in feet when the altitude is above mean sea
  level (``hotline:alt_m`` and ``hotline:alt_ref`` otherwise).

A body read from someone else's CAP carries ``cap`` (protocol §3.10): then
``identifier``, ``sender`` and ``sent`` are that alert's own, every ``info`` it
had is written again (``language``, ``event``, ``headline``, ``description``)
and every ``area`` as it was (``areaDesc``, polygons, circles, altitude,
ceiling) instead of the track's circle; the first ``info`` carries the hotline
fields as above.

An Ack (``ack=True``) carries no ``info``: it references the message and takes
its status. The output is built with :mod:`xml.etree.ElementTree`, which escapes
text; characters XML 1.0 cannot hold (U+FFFE, U+FFFF) become U+FFFD.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Final
from xml.etree import ElementTree as ET

from hotline.cap.codes import (
    ACK_TAG,
    ADVICE_TO_RESPONSE,
    CANCEL_EVENT,
    CAP_NS,
    EVENT_BY_OBJECT,
    PRECEDENCE_TO_URGENCY_SEVERITY,
    RESTRICTION,
    SENDER_PREFIX,
    STATUS_TO_CAP,
    certainty_of,
)
from hotline.cap.geo import (
    decimal_text,
    metres_to_feet,
    metres_to_km,
    parse_circle,
    parse_polygon,
)
from hotline.cap.times import format_cap_time
from hotline.errors import UsageError
from hotline.protocol.bodies import (
    ALL_RECIPIENTS,
    Body,
    CancelBody,
    CapArea,
    CapInfo,
    Recipients,
    Track,
    UpdateBody,
    WarningBody,
)
from hotline.protocol.ids import format_id, make_id, uuid7_time_ms
from hotline.protocol.vocab import AltRef

__all__ = ["body_to_cap", "cap_sender"]

_MIN_RADIUS_KM: Final = Decimal("0.001")
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CAP_NAME_BREAKERS: Final = re.compile(r"[\s,<&]")


def cap_sender(party: str) -> str:
    """The CAP ``sender`` for a hotline party: ``hotline:BY``."""
    return SENDER_PREFIX + party


def _plain(number: Decimal) -> str:
    """A decimal without trailing zeros or an exponent: 2.5, 1500, 0.001."""
    return format(number.normalize(), "f")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _add(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        child.text = _clean(text)
    return child


def _time(ms: int, what: str, **options: bool) -> str:
    try:
        return format_cap_time(ms, **options)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None


def _cap_name(text: str, what: str) -> str:
    if not text or _CAP_NAME_BREAKERS.search(text):
        raise UsageError(f"{what} {text!r} must be non-empty, without spaces, commas, < or &")
    return text


def _references(
    body: WarningBody | CancelBody,
    sender: str,
    given: Sequence[tuple[str, str, int]],
    ack: bool,
) -> str | None:
    if ack:
        target = body.id
        default = (cap_sender(body.sender), format_id(body.id), body.ts)
        if body.cap is not None:
            default = (body.cap.sender, body.cap.identifier, body.cap.sent)
    elif isinstance(body, UpdateBody | CancelBody):
        target = body.ref
        default = (sender, format_id(body.ref), uuid7_time_ms(body.ref))
    else:
        return None
    entries = list(given) or [default]
    if entries[-1][0].startswith(SENDER_PREFIX) and entries[-1][1] != format_id(target):
        raise UsageError(
            f"the last reference must name the message {format_id(target)}, not {entries[-1][1]!r}"
        )
    return " ".join(
        f"{_cap_name(s, 'a reference sender')},{_cap_name(i, 'a reference identifier')},"
        f"{_time(ms, 'a reference time')}"
        for s, i, ms in entries
    )


def _parameters(info: ET.Element, pairs: list[tuple[str, str]]) -> None:
    for name, value in pairs:
        parameter = _add(info, "parameter")
        _add(parameter, "valueName", name)
        _add(parameter, "value", value)


def _to_text(to: Recipients) -> str:
    return ALL_RECIPIENTS if to == ALL_RECIPIENTS else " ".join(to)


def _info_text(info: ET.Element, body: WarningBody | CancelBody, origin: CapInfo | None) -> None:
    """``headline`` (kept from the origin) and ``description`` (the body's text)."""
    headline = None if origin is None else origin.headline
    if headline is not None:
        _add(info, "headline", headline)
    if body.text is not None and body.text != headline:
        _add(info, "description", body.text)


def _areas(info: ET.Element, areas: Sequence[CapArea]) -> None:
    for kept in areas:
        area = _add(info, "area")
        _add(area, "areaDesc", kept.desc)
        for polygon in kept.polygon or ():
            _add(area, "polygon", polygon)
        for circle in kept.circle or ():
            _add(area, "circle", circle)
        if kept.altitude is not None:
            _add(area, "altitude", _plain(Decimal(decimal_text(kept.altitude))))
        if kept.ceiling is not None:
            _add(area, "ceiling", _plain(Decimal(decimal_text(kept.ceiling))))


def _other_info(
    alert: ET.Element, body: WarningBody | CancelBody, origin: CapInfo, event: str
) -> None:
    """A second or later ``info`` of the origin, with the first's codes and times."""
    info = _add(alert, "info")
    if origin.lang is not None:
        _add(info, "language", origin.lang)
    _add(info, "category", "Security")
    _add(info, "event", origin.event or event)
    if isinstance(body, WarningBody):
        if body.advice is not None:
            _add(info, "responseType", ADVICE_TO_RESPONSE[body.advice])
    else:
        _add(info, "responseType", "AllClear")
    urgency, severity = PRECEDENCE_TO_URGENCY_SEVERITY[body.precedence]
    _add(info, "urgency", urgency)
    _add(info, "severity", severity)
    if isinstance(body, WarningBody):
        _add(info, "certainty", certainty_of(body.track.confidence))
        _add(info, "onset", _time(body.track.observed_at, "track.observed_at"))
        _add(info, "expires", _time(body.expires, "expires", round_up=True))
    else:
        _add(info, "certainty", "Unknown")
    if origin.headline is not None:
        _add(info, "headline", origin.headline)
    if origin.description is not None:
        _add(info, "description", origin.description)
    _areas(info, origin.area or ())


def _warning_info(info: ET.Element, body: WarningBody, origin: CapInfo | None) -> None:
    track = body.track
    _add(info, "category", "Security")
    _add(info, "event", (origin and origin.event) or EVENT_BY_OBJECT[track.object])
    if body.advice is not None:
        _add(info, "responseType", ADVICE_TO_RESPONSE[body.advice])
    urgency, severity = PRECEDENCE_TO_URGENCY_SEVERITY[body.precedence]
    _add(info, "urgency", urgency)
    _add(info, "severity", severity)
    _add(info, "certainty", certainty_of(track.confidence))
    _add(info, "onset", _time(track.observed_at, "track.observed_at"))
    _add(info, "expires", _time(body.expires, "expires", round_up=True))
    _info_text(info, body, origin)
    pairs = [
        ("hotline:to", _to_text(body.to)),
        ("hotline:incident", format_id(body.incident)),
        ("hotline:object", track.object.value),
        ("hotline:source", track.source.value),
        ("hotline:confidence", decimal_text(track.confidence)),
    ]
    for key in ("heading_deg", "speed_mps", "vrate_mps"):
        value = getattr(track, key)
        if value is not None:
            pairs.append((f"hotline:{key}", decimal_text(value)))
    if track.count is not None:
        pairs.append(("hotline:count", str(track.count)))
    if track.sensor_id is not None:
        pairs.append(("hotline:sensor_id", track.sensor_id))
    if track.alt_m is not None and track.alt_ref is not None and track.alt_ref is not AltRef.MSL:
        pairs.append(("hotline:alt_m", decimal_text(track.alt_m)))
        pairs.append(("hotline:alt_ref", track.alt_ref.value))
    predicted = body.predicted
    if predicted is not None:
        pairs.append(("hotline:border", predicted.border))
        pairs.append(
            ("hotline:crossing_at", _time(predicted.crossing_at, "crossing_at", with_ms=True))
        )
        for key in ("crossing_lat", "crossing_lon", "probability"):
            value = getattr(predicted, key)
            if value is not None:
                pairs.append((f"hotline:{key}", decimal_text(value)))
    _parameters(info, pairs)
    if origin is not None and origin.area:
        if not _gives_the_track(origin.area, track):
            _track_area(info, body)  # read back first, so the track is never lost
        _areas(info, origin.area)
        return
    _track_area(info, body)


def _gives_the_track(areas: Sequence[CapArea], track: Track) -> bool:
    """Whether reading ``areas`` back gives ``track``'s position, radius and kind of
    altitude (the reader takes them from the first area with a circle or polygon)."""
    for area in areas:
        shape = (area.circle or area.polygon or (None,))[0]
        if shape is None:
            continue
        try:
            where = parse_circle(shape) if area.circle else parse_polygon(shape)
        except ValueError:
            return False
        return (
            (where.lat, where.lon) == (track.lat, track.lon)
            and where.radius_m == track.pos_err_m
            and (area.altitude is not None) == (track.alt_ref is AltRef.MSL)
        )
    return False


def _track_area(info: ET.Element, body: WarningBody) -> None:
    track, predicted = body.track, body.predicted
    area = _add(info, "area")
    desc = "track position"
    if predicted is not None:
        desc += f", predicted to cross the {predicted.border} border"
    _add(area, "areaDesc", desc)
    radius = max(metres_to_km(track.pos_err_m or 0.0), _MIN_RADIUS_KM)
    _add(
        area,
        "circle",
        f"{decimal_text(track.lat)},{decimal_text(track.lon)} {_plain(radius)}",
    )
    if track.alt_m is not None and track.alt_ref is AltRef.MSL:
        _add(area, "altitude", _plain(metres_to_feet(track.alt_m)))


def _cancel_info(info: ET.Element, body: CancelBody, origin: CapInfo | None) -> None:
    _add(info, "category", "Security")
    _add(info, "event", (origin and origin.event) or CANCEL_EVENT)
    _add(info, "responseType", "AllClear")
    urgency, severity = PRECEDENCE_TO_URGENCY_SEVERITY[body.precedence]
    _add(info, "urgency", urgency)
    _add(info, "severity", severity)
    _add(info, "certainty", "Unknown")
    _info_text(info, body, origin)
    _parameters(
        info,
        [
            ("hotline:to", _to_text(body.to)),
            ("hotline:incident", format_id(body.incident)),
            ("hotline:reason", body.reason.value),
        ],
    )
    if origin is not None and origin.area:
        _areas(info, origin.area)


def body_to_cap(
    body: Body,
    *,
    sender: str,
    sent_ms: int,
    references: Sequence[tuple[str, str, int]] = (),
    ack: bool = False,
    ack_id: bytes | None = None,
) -> bytes:
    """A warning, update or cancel as a CAP 1.2 alert (UTF-8 XML bytes).

    ``sender`` is the CAP sender (:func:`cap_sender`); ``sent_ms`` the time
    written as ``sent``. ``references`` are ``(sender, identifier, sent_ms)``
    entries; the last must name the message referred to (an update's or
    cancel's ``ref``; with ``ack``, the message itself). Left out, it is made
    from ``ref`` (with ``sender`` and the time inside the UUIDv7) or, for an
    Ack, from the acknowledged message. With ``ack=True`` the result is the
    ``Ack`` of ``body``; its identifier is ``ack_id`` (such as the id of the
    acknowledged receipt) or one derived from the message id, ``sender`` and
    ``sent_ms``. Raises ``UsageError`` for a body CAP cannot carry.
    """
    if not isinstance(body, WarningBody | CancelBody):
        raise UsageError(f"a {body.type.value} body has no CAP form; only warnings, "
                         "updates and cancels do")
    _cap_name(sender, "the CAP sender")
    sent = _time(sent_ms, "sent_ms")
    if ack:
        if ack_id is None:
            digest = hashlib.sha256(ACK_TAG + body.id + sender.encode()).digest()
            ack_id = make_id(sent_ms, digest[:10])
        identifier = format_id(ack_id)
        msg_type = "Ack"
    else:
        identifier = format_id(body.id)
        msg_type = "Alert" if body.type.value == "warning" else body.type.value.capitalize()
        if body.cap is not None:
            identifier, sender = body.cap.identifier, body.cap.sender
            sent = _time(body.cap.sent, "cap.sent")
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    _add(alert, "identifier", identifier)
    _add(alert, "sender", sender)
    _add(alert, "sent", sent)
    _add(alert, "status", STATUS_TO_CAP[body.status])
    _add(alert, "msgType", msg_type)
    _add(alert, "scope", "Restricted")
    _add(alert, "restriction", RESTRICTION)
    refs = _references(body, sender, references, ack)
    if refs is not None:
        _add(alert, "references", refs)
    _add(alert, "incidents", format_id(body.incident))
    if not ack:
        kept = () if body.cap is None else body.cap.info or ()
        first = kept[0] if kept else None
        info = _add(alert, "info")
        lang = body.lang if first is None else first.lang  # read back: no language is en
        if lang is not None:
            _add(info, "language", lang)
        if isinstance(body, WarningBody):
            _warning_info(info, body, first)
            event = EVENT_BY_OBJECT[body.track.object]
        else:
            _cancel_info(info, body, first)
            event = CANCEL_EVENT
        for later in kept[1:]:
            _other_info(alert, body, later, event)
    ET.indent(alert)
    data: bytes = ET.tostring(
        alert, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS
    )
    return data
