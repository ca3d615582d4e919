"""Shared pieces of the CAP tests: the OASIS schema, sample files, CAP built to order."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import xmlschema

from hotline.cap.codes import CAP_NS
from hotline.protocol.ids import format_id, make_id

VECTORS = Path(__file__).parent.parent / "vectors" / "cap"
NOW = 1_764_000_300_000  # 2025-11-24T16:05:00Z
KID_HEX = "0001020304050607"
MSG_ID = "019ab697-e800-7000-8000-000000000001"
INCIDENT = "019ab697-e800-7000-8000-0000000000aa"
TIME_ELEMENTS = ("sent", "effective", "onset", "expires")


@functools.cache
def cap_schema() -> xmlschema.XMLSchema:
    """The OASIS CAP 1.2 schema, as vendored in tests/vectors/cap."""
    return xmlschema.XMLSchema(str(VECTORS / "CAP-v1.2.xsd"))


def sample(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def with_header(body: dict[str, Any], *, sender: str = "LT", ts: int = NOW) -> dict[str, Any]:
    """The JSON body with the header an endpoint would add (id, from, ts, seq, kid)."""
    return {
        "t": body["t"],
        "id": format_id(make_id(ts, b"\x05" * 10)),
        "from": sender,
        "ts": ts,
        "seq": 7,
        "kid": KID_HEX,
        **body,
    }


def q(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def times_in(xml: bytes) -> list[str]:
    """Every time string of a CAP document: time elements, references, hotline:crossing_at."""
    root = ET.fromstring(xml)
    found = [e.text or "" for name in TIME_ELEMENTS for e in root.iter(q(name))]
    for refs in root.iter(q("references")):
        found += [entry.split(",")[2] for entry in (refs.text or "").split()]
    for param in root.iter(q("parameter")):
        if param.findtext(q("valueName")) == "hotline:crossing_at":
            found.append(param.findtext(q("value")) or "")
    return found


def parameters(xml: bytes) -> dict[str, str]:
    root = ET.fromstring(xml)
    return {
        p.findtext(q("valueName")) or "": p.findtext(q("value")) or ""
        for p in root.iter(q("parameter"))
    }


def text_of(xml: bytes, path: str) -> str | None:
    """The text of the first element at ``path`` (CAP names joined by /, below alert)."""
    return ET.fromstring(xml).findtext("/".join(q(p) for p in path.split("/")))


def area_xml(
    shape: str = "<circle>54.6872,25.2797 2.5</circle>", *, extra: str = ""
) -> str:
    return f"<area><areaDesc>test</areaDesc>{shape}{extra}</area>"


def info_xml(
    *,
    language: str = "",
    response: str = "",
    urgency: str = "Immediate",
    severity: str = "Extreme",
    certainty: str = "Observed",
    times: str = "<expires>2025-11-24T17:00:00+00:00</expires>",
    text: str = "",
    params: dict[str, str] | None = None,
    area: str | None = None,
) -> str:
    """An info block, elements in schema order; ``area`` None means a default circle."""
    lang = f"<language>{language}</language>" if language else ""
    resp = f"<responseType>{response}</responseType>" if response else ""
    pairs = "".join(
        f"<parameter><valueName>{k}</valueName><value>{v}</value></parameter>"
        for k, v in (params or {}).items()
    )
    return (
        f"<info>{lang}<category>Security</category><event>Drone warning</event>{resp}"
        f"<urgency>{urgency}</urgency><severity>{severity}</severity>"
        f"<certainty>{certainty}</certainty>{times}{text}{pairs}"
        f"{area_xml() if area is None else area}</info>"
    )


def alert_xml(
    *,
    msg_type: str = "Alert",
    status: str = "Actual",
    sent: str = "2025-11-24T16:00:00+00:00",
    references: str = "",
    incidents: str = "",
    note: str = "",
    info: str | None = None,
    namespace: str = CAP_NS,
    prolog: str = "",
) -> bytes:
    """A CAP alert built to order; ``info`` None means one default info block."""
    refs = f"<references>{references}</references>" if references else ""
    inc = f"<incidents>{incidents}</incidents>" if incidents else ""
    nt = f"<note>{note}</note>" if note else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<alert xmlns="{namespace}">'
        f"<identifier>T-1</identifier><sender>feed@test.example</sender>"
        f"<sent>{sent}</sent><status>{status}</status><msgType>{msg_type}</msgType>"
        f"<scope>Restricted</scope>{nt}{refs}{inc}"
        f"{info_xml() if info is None else info}</alert>"
    ).encode()


NUMERIC_OFFSET = re.compile(r".*[+-]\d\d:\d\d")
