"""Bodies as JSON for people and integrators, and back.

The JSON view is the wire map with its binary fields written as text: ids
(``id``, ``incident``, ``ref``) in canonical UUID form, ``hash``, ``frame_hash``, ``kid`` and
``cp.root`` in lowercase hex. Everything else is the same value under the same key, so the
schema of :mod:`hotline.protocol.schema` applies unchanged (and names the same
paths) whichever way a body came in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from hotline.errors import RejectCode, Rejected
from hotline.protocol.bodies import Body
from hotline.protocol.ids import format_id, parse_id
from hotline.protocol.schema import body_to_map, map_to_body

__all__ = ["body_to_json", "json_to_body", "json_to_map"]

_ID_FIELDS: Final = frozenset({"id", "incident", "ref"})
_HEX_FIELDS: Final = frozenset({"hash", "kid", "frame_hash"})
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})*")


def json_to_map(data: Mapping[str, Any]) -> dict[str, Any]:
    """The wire map of a JSON body (binary fields decoded; nothing else changed)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _ID_FIELDS and isinstance(value, str):
            try:
                out[key] = parse_id(value)
            except ValueError:
                raise Rejected(
                    RejectCode.SCHEMA, "must be a UUID such as 0190f1c2-…", key
                ) from None
        elif key in _HEX_FIELDS and isinstance(value, str):
            out[key] = _from_hex(value, key)
        elif key == "cp" and isinstance(value, Mapping):
            out[key] = {
                k: _from_hex(v, f"cp.{k}") if k == "root" and isinstance(v, str) else v
                for k, v in value.items()
            }
        elif key == "cps" and isinstance(value, Mapping):
            out[key] = {
                relay: {
                    k: _from_hex(v, f"cps.{relay}.{k}")
                    if k == "root" and isinstance(v, str) else v
                    for k, v in seen.items()
                } if isinstance(seen, Mapping) else seen
                for relay, seen in value.items()
            }
        else:
            out[key] = value
    return out


def _from_hex(value: str, path: str) -> bytes:
    if not _HEX.fullmatch(value):
        raise Rejected(RejectCode.SCHEMA, "must be lowercase hex digits", path)
    return bytes.fromhex(value)


def json_to_body(data: Mapping[str, Any]) -> Body:
    return map_to_body(json_to_map(data))


def _to_json(value: object) -> object:
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def body_to_json(body: Body) -> dict[str, Any]:
    """The JSON view of a body, keys in wire order."""
    out: dict[str, Any] = {}
    for key, value in body_to_map(body).items():
        if key in _ID_FIELDS and isinstance(value, bytes):
            out[key] = format_id(value)
        elif key in _HEX_FIELDS and isinstance(value, bytes):
            out[key] = value.hex()
        elif key == "cp" and isinstance(value, dict):
            out[key] = {k: v.hex() if isinstance(v, bytes) else v for k, v in value.items()}
        elif key == "cps" and isinstance(value, dict):
            out[key] = {
                relay: {k: v.hex() if isinstance(v, bytes) else v for k, v in seen.items()}
                for relay, seen in value.items()
            }
        else:
            out[key] = _to_json(value)
    return out
