"""Reading a local API request and writing its refusal, shared by the endpoint's routes.

A body is read whole up to a limit (:func:`read_body`) and parsed as strict
JSON (:func:`parse_json`: unique keys, finite numbers, at most 8 levels deep);
a feed's ``Idempotency-Key`` is checked (:func:`idempotency_key`); a refusal
is answered as ``{"error", "field", "detail"}`` (:func:`error_response`,
:func:`refusal_response`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from aiohttp import web

from hotline.endpoint.errors import (
    BadHeader,
    BadJson,
    NotAuthenticated,
    RateLimited,
    RequestRefused,
)
from hotline.errors import Rejected

__all__ = [
    "JSON_MEDIA_TYPES",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_JSON_DEPTH",
    "error_response",
    "idempotency_key",
    "parse_json",
    "read_body",
    "refusal_response",
]

MAX_JSON_DEPTH: Final = 8
JSON_MEDIA_TYPES: Final = frozenset({"application/json"})
MAX_IDEMPOTENCY_KEY: Final = 200
_IDEMPOTENCY_KEY: Final = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")
_JSON_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET: Final = re.compile(rb"[\[\]{}]")
_READ_CHUNK: Final = 16 * 1024


def error_response(
    status: int, error: str, field: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "field": field, "detail": detail},
                             status=status, headers=headers)


def refusal_response(exc: RequestRefused | Rejected) -> web.Response:
    """The reply to a refused request: its status, ``{error, field, detail}``, headers."""
    if isinstance(exc, Rejected):
        return error_response(422, exc.code, exc.path, exc.sentence)
    headers: dict[str, str] = {}
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = (
            'Bearer realm="hotline", error="invalid_token"' if exc.token_given
            else 'Bearer realm="hotline"'
        )
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    return error_response(exc.status, exc.code, exc.field, exc.sentence, headers or None)


def idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key, or None. Raises BadHeader."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadHeader(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII "
                        "characters", header="idempotency-key")
    return key


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None when it is longer than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:  # noqa: ANN401  (json's parse_constant hook)
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> object:
    """One JSON value, with unique keys and finite numbers. Raises BadJson."""
    depth = _nesting_depth(raw)
    if depth > max_depth:
        raise BadJson(f"the JSON nests {depth} levels deep; at most {max_depth} are read")
    try:
        value: object = json.loads(raw, object_pairs_hook=_unique_keys,
                                   parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise BadJson(f"the request body is not valid JSON: {exc}") from None
    return value
