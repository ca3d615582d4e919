"""CAP 1.2 in: an ``alert`` (Alert, Update, Cancel) as the JSON view of a hotline body.

The result is the body's JSON view (:mod:`hotline.protocol.jsonview`) without
its header: the endpoint adds ``id``, ``from``, ``ts``, ``seq`` and ``kid`` and
signs it. The mapping, field by field, is in ``docs/cap.md``; in short:

======================================  =============================================
CAP                                     hotline
======================================  =============================================
``msgType`` Alert / Update / Cancel     ``t`` warning / update / cancel
``status`` Actual, Exercise,            ``status`` actual, exercise, test
Test/System/Draft
``urgency`` + ``severity``              ``precedence``: Immediate+Extreme flash,
                                        Immediate immediate, Expected priority,
                                        else routine
``certainty``                           ``track.confidence`` (Observed 0.9, Likely
                                        0.7, Possible 0.4, Unlikely 0.1, Unknown 0.5)
                                        unless ``hotline:confidence`` is given
``area/circle`` "lat,lon r_km"          ``track.lat``, ``track.lon``,
                                        ``track.pos_err_m`` = r * 1000
``area/polygon``                        centre of the distinct vertices; pos_err_m
                                        = farthest vertex (haversine, whole metres)
``area/altitude`` (+ ``ceiling``), ft   ``track.alt_m`` (* 0.3048; the middle of
                                        altitude and ceiling), ``alt_ref`` msl
``onset``, else ``effective``,          ``track.observed_at``
else ``sent``
``expires``                             ``expires`` (now + 1 h when absent)
``description``, else ``headline``      ``text`` (for a Cancel also the alert's
                                        ``note``), with ``language`` → ``lang``
                                        (default en)
``responseType``                        ``advice``: Monitor, Prepare, Avoid /
                                        Evacuate / Shelter → avoid, AllClear
``references`` (last entry)             ``ref`` when it names a hotline message id;
                                        else left to the endpoint, which looks the
                                        entry up among the CAP identities it knows
``parameter`` ``hotline:NAME``          the hotline field NAME (see ``codes.PARAMETERS``)
``identifier``, ``sender``, ``sent``,   ``cap``: the CAP alert's identity and what
every ``info``'s ``language``,          hotline has no field for, signed with the
``event``, ``headline``,                body so that the export gives them back
``description`` (after the first),
every ``area``'s ``areaDesc``,
``polygon``, ``circle``, ``altitude``,
``ceiling``
======================================  =============================================

``incident`` is ``hotline:incident``, else the first UUIDv7 in ``incidents``;
an Alert naming none gets one derived from its ``sender``, ``identifier`` and
``sent`` (so a resent alert names the same incident); an Update or Cancel naming
none is returned without ``incident``, which the endpoint fills in from the
message ``ref`` names. Only the first ``info`` is read, and in it the first
``area`` holding a ``circle`` or ``polygon`` (its first circle, else its first
polygon).

Invariants: the function is pure (``now_ms`` is the caller's clock), and every
refusal is :class:`~hotline.errors.Rejected` with a path naming the CAP element
at fault (``info[0].area[0].circle``), or ``alert`` for the whole document. A
returned body passes :func:`hotline.protocol.jsonview.json_to_body` once a
header with ``ts`` ≤ ``now_ms`` is added (and, for an Update or Cancel that
named no incident, an ``incident``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

from hotline.cap.codes import (
    CAP_NS,
    CERTAINTY_CONFIDENCE,
    DEFAULT_EXPIRY_MS,
    DEFAULT_LANG,
    INCIDENT_TAG,
    RESPONSE_TO_ADVICE,
    RESPONSE_TYPES,
    SENDER_PREFIX,
    SEVERITIES,
    STATUS_FROM_CAP,
    URGENCIES,
    precedence_of,
)
from hotline.cap.elements import (
    Fields,
    Node,
    Param,
    hotline_parameters,
    integer_param,
    number_param,
    schema_error,
    time_param,
    uuid_text,
)
from hotline.cap.geo import (
    Area,
    feet_to_metres,
    parse_circle,
    parse_decimal,
    parse_polygon,
)
from hotline.cap.times import parse_cap_time
from hotline.cap.xmlsafe import DOCUMENT, parse_untrusted
from hotline.errors import Rejected, UsageError
from hotline.protocol.ids import format_id, is_uuid7, make_id, parse_id
from hotline.protocol.jsonview import json_to_body
from hotline.protocol.schema import MAX_CAP_AREAS, MAX_CAP_INFOS
from hotline.protocol.vocab import BodyType, Precedence

__all__ = ["CapInput", "cap_to_body_json"]

_MAX_MS: Final = (1 << 48) - 1
_PROBE_ID: Final = format_id(make_id(0, bytes(10)))
_MSG_TYPES: Final = {"Alert": BodyType.WARNING, "Update": BodyType.UPDATE,
                     "Cancel": BodyType.CANCEL}


@dataclass(frozen=True, slots=True)
class CapInput:
    """A CAP alert read as a hotline body.

    ``body`` is the JSON view without the header; ``identifier``, ``sender``
    and ``sent_ms`` are the CAP alert's own identity (CAP names a message by
    the three together), also in the body's ``cap``: the endpoint gives the
    message a hotline id of its own. ``references`` are the entries of an
    Update's or Cancel's ``references`` (``sender, identifier, sent_ms``); when
    the last names no hotline message id, ``body`` has no ``ref`` and the
    endpoint looks the entry up.
    """

    body: dict[str, Any]
    identifier: str
    sender: str
    sent_ms: int
    references: tuple[tuple[str, str, int], ...] = ()


def _recipients(params: dict[str, Param], default_to: str | list[str]) -> object:
    param = params.get("hotline:to")
    if param is None:
        if isinstance(default_to, str):
            return default_to if default_to == "*" else [default_to]
        return list(default_to)
    text = param.value.strip()
    if text == "*":
        return "*"
    ids = [t for t in re.split(r"[\s,]+", text) if t]
    if not ids:
        raise schema_error(param.path, "hotline:to must be * or endpoint ids separated by spaces")
    return ids


# ----------------------------------------------------------------------------- the alert


def _references(alert: Node) -> tuple[tuple[str, str, int], ...]:
    """Every ``sender,identifier,sent`` entry of ``references``, oldest first."""
    node = alert.req("references", " for an Update or Cancel: it names the message")
    entries = node.text.split()
    if not entries:
        raise schema_error(node.path, "must list at least one sender,identifier,sent entry")
    out: list[tuple[str, str, int]] = []
    for entry in entries:
        if entry.count(",") != 2:
            raise schema_error(node.path, f"entry {entry[:60]!r} is not sender,identifier,sent")
        sender, identifier, sent = entry.split(",")
        if not sender or not identifier:
            raise schema_error(node.path, f"entry {entry[:60]!r} has an empty sender or "
                                          "identifier")
        try:
            out.append((sender, identifier, parse_cap_time(sent)))
        except ValueError as exc:
            raise schema_error(node.path, f"the sent time of entry {entry[:60]!r} {exc}") from None
    return tuple(out)


def _put_ref(alert: Node, out: Fields) -> tuple[tuple[str, str, int], ...]:
    """``ref`` from the last reference when it is a hotline message id; all the entries."""
    entries = _references(alert)
    ref = uuid_text(entries[-1][1])
    if ref is not None and is_uuid7(parse_id(ref)):
        out.put("ref", ref, f"{alert.path}.references" if alert.path else "references",
                "the last reference")
    return entries


# ----------------------------------------------------------------------------- the origin


def _shapes(area: Node, name: str) -> list[str]:
    shapes: list[str] = []
    for node in area.all(name):
        text = " ".join(node.text.split())
        try:
            (parse_circle if name == "circle" else parse_polygon)(text)
        except ValueError as exc:
            raise schema_error(node.path, str(exc)) from None
        shapes.append(text)
    return shapes


def _feet(node: Node | None) -> float | None:
    if node is None:
        return None
    try:
        return float(parse_decimal(node.text))
    except ValueError as exc:
        raise schema_error(node.path, f"must be a height in feet: {exc}") from None


def _origin_area(area: Node) -> dict[str, Any]:
    desc = area.opt("areaDesc")
    out: dict[str, Any] = {"desc": "" if desc is None else desc.text.strip()}
    for name in ("polygon", "circle"):
        shapes = _shapes(area, name)
        if shapes:
            out[name] = shapes
    for name in ("altitude", "ceiling"):
        feet = _feet(area.opt(name))
        if feet is not None:
            out[name] = feet
    return out


def _origin_info(info: Node, first: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    language = info.opt("language")
    if language is not None:
        out["lang"] = language.text.strip()
    for name in ("event", "headline") if first else ("event", "headline", "description"):
        node = info.opt(name)
        if node is not None:
            out[name] = node.text
    areas = [_origin_area(a) for a in info.all("area")]
    if areas:
        out["area"] = areas
    return out


def _origin(alert: Node, ident: tuple[str, str, int], out: Fields) -> None:
    """``cap``: the alert's identity, and every info's and area's fields hotline has none for.

    The first info's ``description`` is the body's ``text`` already. A hotline
    export (sender ``hotline:…``) has nothing beyond its body, so it gets none.
    """
    sender, identifier, sent_ms = ident
    if sender.startswith(SENDER_PREFIX):
        return
    cap: dict[str, Any] = {"sender": sender, "identifier": identifier, "sent": sent_ms}
    infos = alert.all("info")
    if infos:
        cap["info"] = [_origin_info(info, i == 0) for i, info in enumerate(infos)]
    out.put("cap", cap, DOCUMENT)


def _cap_path(path: str) -> str:
    """The CAP element a ``cap.…`` field of the body came from."""
    rest = path.removeprefix("cap.")
    rest = re.sub(r"\.desc$", ".areaDesc", rest)
    return re.sub(r"\.lang$", ".language", rest)


def _incident(
    alert: Node, params: dict[str, Param], out: Fields, derived: str | None
) -> None:
    param = params.get("hotline:incident")
    if param is not None:
        incident = uuid_text(param.value)
        if incident is None:
            raise schema_error(param.path, "hotline:incident must be a UUID")
        out.put("incident", incident, param.path, "hotline:incident")
        return
    node = alert.opt("incidents")
    if node is not None:
        for token in node.text.split():
            incident = uuid_text(token)
            if incident is not None and is_uuid7(parse_id(incident)):
                out.put("incident", incident, node.path)
                return
    if derived is not None:
        out.put("incident", derived, alert.path or DOCUMENT)


def _derived_incident(sender: str, identifier: str, sent_ms: int) -> str:
    digest = hashlib.sha256(
        INCIDENT_TAG + sender.encode() + b"\x00" + identifier.encode()
    ).digest()
    return format_id(make_id(sent_ms, digest[:10]))


def _precedence(info: Node) -> Precedence:
    urgency = info.req("urgency").code(URGENCIES)
    severity = info.req("severity").code(SEVERITIES)
    return precedence_of(urgency, severity)


def _text(info: Node | None, fallback: Node | None, out: Fields) -> None:
    """``text`` from description, else headline (else ``fallback``), with ``lang``."""
    source = None
    if info is not None:
        source = info.opt("description") or info.opt("headline")
    source = source or fallback
    if source is None:
        return
    out.put("text", source.text, source.path, "the text")
    language = info.opt("language") if info is not None else None
    if language is None:
        out.put("lang", DEFAULT_LANG, source.path)
    else:
        out.put("lang", language.text.strip(), language.path, "the language")


def _area(info: Node) -> tuple[Area, str, Node]:
    areas = info.all("area")
    if not areas:
        raise schema_error(
            f"{info.path}.area", "is required: a circle or polygon gives the position"
        )
    for area in areas:
        shape = area.all("circle") or area.all("polygon")
        if not shape:
            continue
        name = "circle" if area.all("circle") else "polygon"
        path = f"{area.path}.{name}"
        try:
            where = (parse_circle if name == "circle" else parse_polygon)(shape[0].text)
        except ValueError as exc:
            raise schema_error(path, str(exc)) from None
        return where, path, area
    raise schema_error(f"{areas[0].path}.circle", "is required: no area has a circle or polygon")


def _altitude(area: Node, params: dict[str, Param], out: Fields) -> None:
    altitude, ceiling = area.opt("altitude"), area.opt("ceiling")
    if ceiling is not None and altitude is None:
        raise schema_error(ceiling.path, "needs an altitude (CAP 1.2 §3.2.4)")
    if altitude is not None:
        for name in ("hotline:alt_m", "hotline:alt_ref"):
            if name in params:
                raise schema_error(params[name].path, f"{name} conflicts with {altitude.path}")
        try:
            feet = parse_decimal(altitude.text)
            if ceiling is not None:
                top = parse_decimal(ceiling.text)
                if top < feet:
                    raise schema_error(ceiling.path, "must not be below the altitude")
                feet = (feet + top) / 2
            alt_m = feet_to_metres(feet)
        except ValueError as exc:
            raise schema_error(altitude.path, f"must be a height in feet: {exc}") from None
        out.put_in("track", "alt_m", alt_m, altitude.path, "the altitude")
        out.put_in("track", "alt_ref", "msl", altitude.path)
        return
    if "hotline:alt_m" in params:
        param = params["hotline:alt_m"]
        out.put_in("track", "alt_m", number_param(param), param.path, param.name)
        out.where["track.alt_ref"] = (param.path, "hotline:alt_ref")
    if "hotline:alt_ref" in params:
        param = params["hotline:alt_ref"]
        out.put_in("track", "alt_ref", param.value.strip(), param.path, param.name)


def _track(info: Node, params: dict[str, Param], sent_ms: int, out: Fields) -> None:
    where, path, area = _area(info)
    out.put_in("track", "lat", where.lat, path, "the latitude")
    out.put_in("track", "lon", where.lon, path, "the longitude")
    seen = info.opt("onset") or info.opt("effective")
    observed = seen.time() if seen is not None else sent_ms
    out.put_in("track", "observed_at", observed, seen.path if seen else "sent")

    def coded(name: str, key: str, default: str) -> None:
        param = params.get(name)
        if param is None:
            out.put_in("track", key, default, info.path)
        else:
            out.put_in("track", key, param.value.strip(), param.path, name)

    coded("hotline:object", "object", "unknown")
    confidence = params.get("hotline:confidence")
    if confidence is None:
        certainty = info.req("certainty")
        value = CERTAINTY_CONFIDENCE[certainty.code(tuple(CERTAINTY_CONFIDENCE))]
        out.put_in("track", "confidence", value, certainty.path)
    else:
        value = number_param(confidence)
        out.put_in("track", "confidence", value, confidence.path, confidence.name)
    coded("hotline:source", "source", "fused")
    out.put_in("track", "pos_err_m", where.radius_m, path, "the radius")
    _altitude(area, params, out)
    for key in ("heading_deg", "speed_mps", "vrate_mps"):
        param = params.get(f"hotline:{key}")
        if param is not None:
            out.put_in("track", key, number_param(param), param.path, param.name)
    if "hotline:count" in params:
        param = params["hotline:count"]
        out.put_in("track", "count", integer_param(param), param.path, param.name)
    if "hotline:sensor_id" in params:
        param = params["hotline:sensor_id"]
        out.put_in("track", "sensor_id", param.value, param.path, param.name)


def _predicted(info: Node, params: dict[str, Param], out: Fields) -> None:
    names = ("border", "crossing_at", "crossing_lat", "crossing_lon", "probability")
    if not any(f"hotline:{n}" in params for n in names):
        return
    for key in names:
        out.where[f"predicted.{key}"] = (info.path, f"the parameter hotline:{key}")
        param = params.get(f"hotline:{key}")
        if param is None:
            continue
        value: object
        if key == "border":
            value = param.value.strip()
        elif key == "crossing_at":
            value = time_param(param)
        else:
            value = number_param(param)
        out.put_in("predicted", key, value, param.path, param.name)


def _advice(info: Node, out: Fields) -> None:
    for node in info.all("responseType"):
        advice = RESPONSE_TO_ADVICE.get(node.code(RESPONSE_TYPES))
        if advice is not None:
            out.put("advice", advice.value, node.path)
            return


def _warning(
    alert: Node,
    kind: BodyType,
    *,
    ident: tuple[str, str, int],
    now_ms: int,
    default_to: str | list[str],
    out: Fields,
) -> None:
    sender, identifier, sent_ms = ident
    infos = alert.all("info")
    if not infos:
        raise schema_error("info", "is required: an Alert or Update carries the track in info")
    info = infos[0]
    params = hotline_parameters(info)
    out.put("t", kind.value, "msgType")
    to_param = params.get("hotline:to")
    out.put("to", _recipients(params, default_to), to_param.path if to_param else DOCUMENT,
            "hotline:to" if to_param else "the default recipients")
    out.put("status", STATUS_FROM_CAP[alert.req("status").code(tuple(STATUS_FROM_CAP))].value,
            "status")
    out.put("precedence", _precedence(info).value, f"{info.path}.urgency")
    derived = _derived_incident(sender, identifier, sent_ms) if kind is BodyType.WARNING else None
    _incident(alert, params, out, derived)
    expires_node = info.opt("expires")
    if expires_node is None:
        out.put("expires", now_ms + DEFAULT_EXPIRY_MS, f"{info.path}.expires")
    else:
        expires = expires_node.time()
        if expires <= now_ms:
            raise schema_error(expires_node.path, "is already past: the alert has expired")
        out.put("expires", expires, expires_node.path)
    _track(info, params, sent_ms, out)
    _predicted(info, params, out)
    _advice(info, out)
    _text(info, None, out)


def _cancel(
    alert: Node, default_to: str | list[str], out: Fields
) -> tuple[tuple[str, str, int], ...]:
    infos = alert.all("info")
    info = infos[0] if infos else None
    params = hotline_parameters(info) if info is not None else {}
    out.put("t", BodyType.CANCEL.value, "msgType")
    to_param = params.get("hotline:to")
    out.put("to", _recipients(params, default_to), to_param.path if to_param else DOCUMENT,
            "hotline:to" if to_param else "the default recipients")
    out.put("status", STATUS_FROM_CAP[alert.req("status").code(tuple(STATUS_FROM_CAP))].value,
            "status")
    precedence = Precedence.ROUTINE if info is None else _precedence(info)
    out.put("precedence", precedence.value, f"{info.path}.urgency" if info else DOCUMENT)
    _incident(alert, params, out, None)
    references = _put_ref(alert, out)
    reason = params.get("hotline:reason")
    if reason is None:
        out.put("reason", "other", DOCUMENT)
    else:
        out.put("reason", reason.value.strip(), reason.path, reason.name)
    _text(info, alert.opt("note"), out)
    return references


def _check(out: Fields, now_ms: int) -> None:
    """Run the protocol's own schema over the body, naming CAP paths on failure."""
    probe: dict[str, Any] = {
        "t": out.body["t"],
        "id": _PROBE_ID,
        "from": "CAP",
        "ts": now_ms,
        "seq": 0,
        "kid": "00" * 8,
    }
    probe.update(out.body)
    probe.setdefault("incident", _PROBE_ID)
    if probe["t"] != BodyType.WARNING.value:
        probe.setdefault("ref", _PROBE_ID)
    try:
        json_to_body(probe)
    except Rejected as exc:
        if exc.path.startswith("cap."):
            raise schema_error(_cap_path(exc.path), exc.sentence) from None
        raise out.blame(exc) from None


def cap_to_body_json(
    xml: bytes, *, now_ms: int, default_to: str | list[str] = "*"
) -> CapInput:
    """Read a CAP 1.2 Alert, Update or Cancel as a hotline body without its header.

    ``now_ms`` is the caller's clock (a missing ``expires`` is one hour after
    it; an ``expires`` not after it is refused); ``default_to`` addresses the
    body when the alert has no ``hotline:to`` parameter. Raises ``Rejected``
    (``schema`` with the CAP path, or ``too_large``).
    """
    if not 0 <= now_ms <= _MAX_MS:
        raise UsageError(f"now_ms {now_ms} is not a time in milliseconds since the epoch")
    root = parse_untrusted(xml)
    if root.tag != f"{{{CAP_NS}}}alert":
        raise schema_error(DOCUMENT, f"must be a CAP 1.2 <alert> in the namespace {CAP_NS}, "
                      f"not {root.tag[:100]!r}")
    alert = Node(root, "")
    identifier = alert.req("identifier").token()
    sender = alert.req("sender").token()
    sent_ms = alert.req("sent").time()
    msg_type = alert.req("msgType").code(("Alert", "Update", "Cancel", "Ack", "Error"))
    kind = _MSG_TYPES.get(msg_type)
    if kind is None:
        raise schema_error(
            "msgType", f"must be Alert, Update or Cancel; hotline takes no {msg_type}"
        )
    out = Fields()
    infos = alert.all("info")
    if len(infos) > MAX_CAP_INFOS:
        raise schema_error(infos[MAX_CAP_INFOS].path,
                           f"is one info too many: hotline keeps at most {MAX_CAP_INFOS}")
    for info in infos:
        areas = info.all("area")
        if len(areas) > MAX_CAP_AREAS:
            raise schema_error(areas[MAX_CAP_AREAS].path,
                               f"is one area too many: hotline keeps at most {MAX_CAP_AREAS}")
    references: tuple[tuple[str, str, int], ...] = ()
    if kind is BodyType.CANCEL:
        references = _cancel(alert, default_to, out)
    else:
        _warning(
            alert,
            kind,
            ident=(sender, identifier, sent_ms),
            now_ms=now_ms,
            default_to=default_to,
            out=out,
        )
    if kind is BodyType.UPDATE:
        references = _put_ref(alert, out)
    _origin(alert, (sender, identifier, sent_ms), out)
    _check(out, now_ms)
    return CapInput(out.body, identifier, sender, sent_ms, references)
