"""A sensor's alert made into a warning, or into an update of the incident its track opened.

Pure: values and the time in, values out; the journal lookups happen at the
edge (:mod:`hotline.endpoint.feed_service`).

A posted alert (``POST /api/alerts``) is a JSON object with the fields of a
warning without its header and without ``t``, ``incident`` and ``ref``, which
the endpoint chooses: ``to`` and ``status`` (both optional, defaulting to the
feed's), ``precedence``, ``expires`` (optional), ``track``, ``predicted``,
``advice``, ``text``, ``lang``, and one field of the feed's own, ``track_id``
(optional, 1 to 64 characters), that names the sensor's track and is never
signed or sent.

Rules:

- An alert's **sensor track** is its feed, ``track.sensor_id`` and
  ``track_id``; an alert with neither of the last two has none and is always a
  new warning.
- A track's **incident** is the incident of the last message one of its alerts
  became. The incident is **open** while the last message we sent in it (an
  operator's included, the relay's rejections not) is not a cancel and has not
  expired (``expires`` > now).
- An alert whose track has an open incident becomes an ``update`` of it: ``ref``
  is that last message, ``incident`` and ``to`` are the incident's (the posted
  ``to`` is ignored). Otherwise it is a ``warning`` with a new incident, and
  its track is followed from then on.

Everything else about the body is checked by the protocol's schema when the
endpoint composes it (:mod:`hotline.endpoint.compose`), with the same paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from hotline.endpoint.records import IncidentHead
from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import ALL_RECIPIENTS, Recipients
from hotline.protocol.ids import format_id
from hotline.protocol.vocab import BodyType

if TYPE_CHECKING:  # a type only: feedconfig reads files, this module stays sans-IO
    from hotline.endpoint.feedconfig import Feed

__all__ = ["Alert", "TrackKey", "continued_incident", "draft_of", "read_alert"]

_CHOSEN: Final = ("t", "incident", "ref")
_TRACK_ID: Final = re.compile(r"[^\x00-\x1f\x7f]{1,64}")


@dataclass(frozen=True, slots=True)
class TrackKey:
    """One sensor track of one feed (``sensor_id`` or ``track_id`` may be missing, not both)."""

    feed: str
    sensor_id: str | None
    track_id: str | None


@dataclass(frozen=True, slots=True)
class Alert:
    """A posted alert, checked for the fields the endpoint chooses; ``fields`` has
    the feed's defaults filled in and no ``track_id``."""

    fields: dict[str, Any]
    track: TrackKey | None


def _schema(path: str, sentence: str) -> Rejected:
    return Rejected(RejectCode.SCHEMA, sentence, path)


def read_alert(data: object, feed: Feed) -> Alert:
    """The alert as posted by ``feed``, or ``Rejected`` (``schema`` with the path)."""
    if not isinstance(data, dict):
        raise _schema("", "the alert must be a JSON object")
    for chosen in _CHOSEN:
        if chosen in data:
            raise _schema(chosen, "is chosen by the endpoint: a new sensor track becomes a "
                               "warning, a known one an update of its incident; leave it out")
    fields = dict(data)
    track_id = fields.pop("track_id", None)
    if track_id is not None and (not isinstance(track_id, str)
                                 or not _TRACK_ID.fullmatch(track_id)):
        raise _schema("track_id", "must be 1 to 64 characters without control characters")
    fields.setdefault("to", feed.to_json())
    fields.setdefault("status", feed.status.value)
    track = fields.get("track")
    sensor_id = track.get("sensor_id") if isinstance(track, dict) else None
    if not isinstance(sensor_id, str):
        sensor_id = None  # a sensor_id that is not text is refused by the schema later
    key = None
    if sensor_id is not None or track_id is not None:
        key = TrackKey(feed.name, sensor_id, track_id)
    return Alert(fields, key)


def continued_incident(head: IncidentHead | None, now_ms: int) -> IncidentHead | None:
    """``head`` when its incident is still open at ``now_ms``, else None."""
    if head is None or head.type is BodyType.CANCEL:
        return None
    if head.expires is None or head.expires <= now_ms:
        return None
    return head


def _recipients_json(to: Recipients) -> str | list[str]:
    return ALL_RECIPIENTS if to == ALL_RECIPIENTS else list(to)


def draft_of(alert: Alert, open_head: IncidentHead | None, new_incident: bytes) -> dict[str, Any]:
    """The message to post: an update of ``open_head``'s incident, else a new warning."""
    if open_head is None:
        return {"t": BodyType.WARNING.value, **alert.fields,
                "incident": format_id(new_incident)}
    return {
        "t": BodyType.UPDATE.value,
        **alert.fields,
        "to": _recipients_json(open_head.to),
        "incident": format_id(open_head.incident),
        "ref": format_id(open_head.id),
    }
