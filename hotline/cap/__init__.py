"""CAP 1.2 (OASIS Common Alerting Protocol) at the edge of hotline: in and out.

Sensor feeds and civil alerting systems speak CAP; hotline speaks signed
MessagePack bodies in SI units. This package converts between the two, purely:
bytes and values in, bytes and values out, no I/O and no clock ("now" is an
argument).

- :func:`cap_to_body_json` reads an untrusted CAP Alert, Update or Cancel
  (refusing DTDs, entities and documents over 256 KiB) as the JSON view of a
  hotline body without its header, plus the CAP identity (:class:`CapInput`);
- :func:`body_to_cap` writes a warning, update or cancel, or an ``Ack`` of
  one, as a CAP 1.2 document that validates against the OASIS schema.

An export reads back as the same body content, except for the losses listed in
``docs/cap.md``, which also gives the mapping field by field. Modules:
``codes`` (the two vocabularies), ``times`` (CAP date-times), ``geo`` (circles,
polygons, feet), ``xmlsafe`` (parsing untrusted XML), ``elements`` (CAP elements
with their paths), ``reader`` and ``writer``.
"""

from __future__ import annotations

from hotline.cap.codes import CAP_NS, MAX_CAP_BYTES
from hotline.cap.reader import CapInput, cap_to_body_json
from hotline.cap.writer import body_to_cap, cap_sender

__all__ = ["CAP_NS", "MAX_CAP_BYTES", "CapInput", "body_to_cap", "cap_sender", "cap_to_body_json"]
