"""A message as the operator or an integrator posts it, made into a body to sign.

The posted JSON is the body's JSON view (:mod:`hotline.protocol.jsonview`)
without the header: ``t`` and the type's own fields. The endpoint fills in
``id``, ``from``, ``ts``, ``kid``, ``operator`` (the logged-in operator who
posted it; the core fills the ``seq``); for a warning a
missing ``incident`` becomes a new one, for an update or cancel the incident
of the message it refers to; a missing ``expires`` of a warning or update is
``ts`` + 1 hour. Everything else is checked by the protocol's schema, which
names the field at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import CancelBody, RoutedBody, TextBody, WarningBody
from hotline.protocol.ids import format_id, parse_id
from hotline.protocol.jsonview import json_to_body
from hotline.protocol.vocab import BodyType

__all__ = ["COMPOSABLE", "DEFAULT_EXPIRY_MS", "Header", "draft_body", "referenced_id"]

DEFAULT_EXPIRY_MS: Final = 3_600_000
COMPOSABLE: Final = frozenset({"warning", "update", "cancel", "text"})
_FILLED: Final = ("id", "from", "ts", "seq", "kid", "operator")


@dataclass(frozen=True, slots=True)
class Header:
    """What the endpoint fills in for a posted message."""

    id: bytes
    sender: str
    ts: int
    kid: bytes
    new_incident: bytes  # used when a warning names no incident
    operator: str | None = None  # the logged-in operator who posted it


def _as_object(data: object) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise Rejected(RejectCode.SCHEMA, "the message must be a JSON object", "")
    return data


def referenced_id(data: object) -> bytes | None:
    """The ``ref`` of a posted update or cancel that names no incident, to look it up."""
    fields = _as_object(data)
    if fields.get("t") not in ("update", "cancel") or "incident" in fields:
        return None
    ref = fields.get("ref")
    if not isinstance(ref, str):
        return None
    try:
        return parse_id(ref)
    except ValueError:
        return None


def draft_body(data: object, header: Header, ref_incident: bytes | None = None) -> RoutedBody:
    """The body to sign, or ``Rejected`` (``schema`` with the path of the bad field).

    ``ref_incident`` is the incident of the message named by ``ref`` (see
    :func:`referenced_id`), when the journal knows it.
    """
    fields = dict(_as_object(data))
    kind = fields.get("t")
    if kind not in COMPOSABLE:
        raise Rejected(RejectCode.SCHEMA, "must be one of warning, update, cancel, text", "t")
    for key in _FILLED:
        if key in fields:
            raise Rejected(RejectCode.SCHEMA, "is filled in by the endpoint; leave it out", key)
    fields.update(
        id=format_id(header.id),
        ts=header.ts,
        seq=0,  # the core gives the real one when it signs
        kid=header.kid.hex(),
        **{"from": header.sender},
    )
    if header.operator is not None:
        fields["operator"] = header.operator
    if "incident" not in fields:
        if kind == BodyType.WARNING.value:
            fields["incident"] = format_id(header.new_incident)
        elif ref_incident is not None and kind in ("update", "cancel"):
            fields["incident"] = format_id(ref_incident)
    if kind in ("warning", "update") and "expires" not in fields:
        fields["expires"] = header.ts + DEFAULT_EXPIRY_MS
    body = json_to_body(fields)
    if not isinstance(body, WarningBody | CancelBody | TextBody):  # pragma: no cover
        raise Rejected(RejectCode.SCHEMA, "must be one of warning, update, cancel, text", "t")
    return body
