"""Parsing XML that came from outside, refusing what could hurt the reader.

CAP arrives over the sensor-feed API from systems hotline does not control, so
the parser refuses, before building anything:

- a document over :data:`~hotline.cap.codes.MAX_CAP_BYTES` (``too_large``);
- any document type declaration (DTD), and so every entity declaration: no
  "billion laughs" expansion, no external entity or DTD ever fetched or read
  (``defusedxml`` with ``forbid_dtd``, ``forbid_entities``, ``forbid_external``);
- anything that is not well-formed XML.

Each refusal is a :class:`~hotline.errors.Rejected` whose path is ``alert``
(the whole document). Comments and processing instructions are dropped by the
tree builder; nothing is ever loaded from a URL or a file.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from hotline.cap.codes import MAX_CAP_BYTES
from hotline.errors import RejectCode, Rejected

__all__ = ["DOCUMENT", "parse_untrusted"]

DOCUMENT = "alert"
"""The path that names the whole document in a rejection."""


def parse_untrusted(xml: bytes) -> Element:
    """The root element of an untrusted document, or ``Rejected`` (path ``alert``)."""
    if not isinstance(xml, bytes | bytearray | memoryview):
        raise Rejected(RejectCode.SCHEMA, "must be the bytes of an XML document", DOCUMENT)
    if len(xml) > MAX_CAP_BYTES:
        raise Rejected(
            RejectCode.TOO_LARGE,
            f"is {len(xml)} bytes; a CAP document may have at most {MAX_CAP_BYTES}",
            DOCUMENT,
        )
    try:
        return defused_fromstring(
            bytes(xml), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        raise Rejected(
            RejectCode.SCHEMA,
            "must not contain a DTD or entity declarations (<!DOCTYPE …>)",
            DOCUMENT,
        ) from None
    except (ParseError, LookupError, ValueError) as exc:  # LookupError: unknown encoding
        raise Rejected(RejectCode.SCHEMA, f"is not well-formed XML ({exc})", DOCUMENT) from None
