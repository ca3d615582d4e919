"""The relay's HTTP side as an endpoint uses it: proofs, log entries, link figures.

The base URL comes from the relay's WebSocket URL: ``ws`` becomes ``http``
(``wss`` becomes ``https``) and a trailing ``/v1/ws`` is dropped. Third-party
errors are translated here: a fetch that fails raises :class:`RelayUnavailable`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

import aiohttp

from hotline.auditlog.tiles import TILE_WIDTH, decode_entry_bundle, entries_path
from hotline.endpoint.witness import ConsistencyProof
from hotline.errors import HotlineError

__all__ = ["RelayHttp", "RelayUnavailable", "http_base"]

_TIMEOUT: Final = aiohttp.ClientTimeout(total=5)


class RelayUnavailable(HotlineError):
    """The relay's HTTP side did not answer, or answered something unusable."""

    code = "relay_unavailable"


def http_base(ws_url: str) -> str:
    """``ws://host:port/v1/ws`` → ``http://host:port``."""
    url = ws_url.rstrip("/")
    if url.endswith("/v1/ws"):
        url = url[: -len("/v1/ws")]
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    return url


def _hash(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise RelayUnavailable(f"the relay's proof has no {what}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RelayUnavailable(f"the relay's proof has a {what} that is not base64") from exc


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RelayUnavailable(f"the relay's proof has no integer {what}")
    return value


def parse_consistency(data: object) -> ConsistencyProof:
    """The decoded JSON of ``/v1/proof/consistency`` (structure only; the core judges it)."""
    if not isinstance(data, dict):
        raise RelayUnavailable("the relay's consistency proof is not a JSON object")
    proof = data.get("proof")
    if not isinstance(proof, list):
        raise RelayUnavailable("the relay's consistency proof has no proof list")
    return ConsistencyProof(
        old_size=_int(data.get("old_size"), "old_size"),
        new_size=_int(data.get("new_size"), "new_size"),
        old_root=_hash(data.get("old_root"), "old_root"),
        new_root=_hash(data.get("new_root"), "new_root"),
        proof=tuple(_hash(h, "proof hash") for h in proof),
    )


class RelayHttp:
    """Fetches from the relay's HTTP side through one client session."""

    def __init__(self, session: aiohttp.ClientSession, base: str, agent: str = "") -> None:
        self._session = session
        self.base = base
        self._headers = {"User-Agent": f"hotline-endpoint/{agent}"} if agent else {}

    async def _get(self, path: str, params: dict[str, str] | None = None) -> object:
        try:
            async with self._session.get(
                self.base + path, params=params, timeout=_TIMEOUT, headers=self._headers
            ) as response:
                if response.status != 200:
                    raise RelayUnavailable(f"GET {path} answered HTTP {response.status}")
                data: object = await response.json(content_type=None)
                return data
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise RelayUnavailable(f"GET {path} failed: {exc!r}") from exc

    async def _get_bytes(self, path: str) -> bytes:
        try:
            async with self._session.get(
                self.base + path, timeout=_TIMEOUT, headers=self._headers
            ) as response:
                if response.status != 200:
                    raise RelayUnavailable(f"GET {path} answered HTTP {response.status}")
                return await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RelayUnavailable(f"GET {path} failed: {exc!r}") from exc

    async def entries(self, start: int, end: int) -> list[bytes]:
        """Log entries ``start`` to ``end - 1``, read from the relay's entry tiles."""
        out: list[bytes] = []
        for number in range(start // TILE_WIDTH, (end + TILE_WIDTH - 1) // TILE_WIDTH):
            first = number * TILE_WIDTH
            width = min(TILE_WIDTH, end - first)
            path = "/" + entries_path(number, width)
            data = await self._get_bytes(path)
            try:
                bundle = decode_entry_bundle(data, width)
            except HotlineError as exc:
                raise RelayUnavailable(f"GET {path} is not an entry bundle: {exc}") from exc
            out.extend(bundle[max(start - first, 0):])
        return out

    async def consistency(self, old: int, new: int) -> ConsistencyProof:
        data = await self._get("/v1/proof/consistency", {"old": str(old), "new": str(new)})
        return parse_consistency(data)

    async def links_json(self) -> object:
        """The relay's per-link figures, as it serves them (passed through to the console)."""
        return await self._get("/v1/links")
