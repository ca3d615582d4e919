"""A message as the operator or an integrator posts it, made into a body to sign.

The posted JSON is the body's JSON view (:mod:`hotline.protocol.jsonview`)
without the header: ``t`` and the type's own fields. The endpoint fills in
``id``, ``from``, ``ts``, ``kid``, ``operator`` (the logged-in operator who
posted it; the core fills the ``seq``); for a warning a
missing ``incident`` becomes a new one, for an update or cancel the incident
of the message it refers to; a missing ``expires`` of a warning or update is
``ts`` + 1 hour. Everything else is checked by the protocol's schema, which
names the field at fault.

Times must also be plausible, since every sender can put any 64-bit integer
in them: each of ``track.observed_at``, ``predicted.crossing_at`` and
``expires`` must be at or after 2000-01-01 (a time in seconds, or an unset
clock, lands in 1970); ``track.observed_at`` is a past observation, so it may
be at most the network's clock skew after ``ts``. A refusal is ``schema``
with the field's path and says the unit.
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

__all__ = [
    "COMPOSABLE",
    "DEFAULT_EXPIRY_MS",
    "EARLIEST_TIME_MS",
    "Header",
    "check_times",
    "draft_body",
    "referenced_id",
]

DEFAULT_EXPIRY_MS: Final = 3_600_000
COMPOSABLE: Final = frozenset({"warning", "update", "cancel", "text"})
_FILLED: Final = ("id", "from", "ts", "seq", "kid", "operator")
EARLIEST_TIME_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
_UNIT: Final = "milliseconds since the epoch"


@dataclass(frozen=True, slots=True)
class Header:
    """What the endpoint fills in for a posted message."""

    id: bytes
    sender: str
    ts: int
    kid: bytes
    new_incident: bytes  # used when a warning names no incident
    skew_ms: int = 30_000  # how far ahead of ``ts`` an observation may be (clock skew)
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
    check_times(body, header.skew_ms)
    return body


def _too_early(value: int, path: str) -> Rejected:
    if value * 1000 >= EARLIEST_TIME_MS:
        hint = f"{_UNIT}; this looks like seconds"
    else:
        hint = f"{_UNIT} (UTC) at or after 2000-01-01"
    return Rejected(RejectCode.SCHEMA, f"{value} is before 2000-01-01: must be {hint}", path)


def check_times(body: RoutedBody, skew_ms: int) -> None:
    """Refuse implausible times (see the module docstring). Raises ``Rejected``."""
    if not isinstance(body, WarningBody):
        return
    observed = body.track.observed_at
    if observed < EARLIEST_TIME_MS:
        raise _too_early(observed, "track.observed_at")
    if observed > body.ts + skew_ms:
        raise Rejected(
            RejectCode.SCHEMA,
            f"{observed} is {observed - body.ts} ms after now: an observation must be in the "
            f"past ({_UNIT}, at most {skew_ms} ms of clock skew ahead)",
            "track.observed_at",
        )
    if body.predicted is not None and body.predicted.crossing_at < EARLIEST_TIME_MS:
        raise _too_early(body.predicted.crossing_at, "predicted.crossing_at")
    if body.expires < EARLIEST_TIME_MS:
        raise _too_early(body.expires, "expires")
