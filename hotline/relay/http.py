"""The relay's HTTP surface: health, checkpoint, tiles, proofs, per-link figures.

Tiles follow C2SP tlog-tiles: ``/tile/<L>/<N>[.p/<W>]`` and
``/tile/entries/<N>[.p/<W>]``; only the one canonical spelling of a path is
served (anything else is 400), and only tiles within the latest signed
checkpoint (otherwise 404). Full tiles never change and are cached for a year;
the checkpoint for a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

from hotline.auditlog.merkle import leaf_hash
from hotline.auditlog.proofjson import consistency_json, inclusion_json
from hotline.auditlog.tiles import TILE_HEIGHT, TILE_WIDTH, parse_tile_path
from hotline.errors import AuditError, UsageError

if TYPE_CHECKING:
    from hotline.relay.server import Relay

__all__ = ["add_http_routes"]

_IMMUTABLE: Final = "public, max-age=31536000, immutable"


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


def _int(request: web.Request, name: str) -> int:
    value = request.query.get(name, "")
    if not value.isdigit() or len(value) > 19:
        raise UsageError(f"query parameter {name} must be a non-negative integer")
    return int(value)


def _health(relay: Relay, checkpoint_size: int) -> web.Response:
    """200 ``ok`` while the relay can log; 503 ``not_ready`` with the reason otherwise."""
    body: dict[str, object] = {
        "status": "ok" if relay.ready else "not_ready",
        "log_size": relay.log.size,
        "checkpoint_size": checkpoint_size, "online": relay.online,
    }
    if not relay.ready:
        body["reason"] = relay.not_ready_reason
    body.update(relay.backend.health())
    return web.json_response(body, status=200 if relay.ready else 503)


def add_http_routes(app: web.Application, relay: Relay) -> None:
    def published_size() -> int:
        return max(0, relay.log.signed_size)

    async def healthz(_: web.Request) -> web.Response:
        return _health(relay, published_size())

    async def checkpoint(_: web.Request) -> web.Response:
        return web.Response(
            body=relay.checkpoint_note,
            content_type="text/plain",
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=1"},
        )

    async def tile(request: web.Request) -> web.Response:
        path = "tile/" + request.match_info["path"]
        try:
            ref = parse_tile_path(path)
        except (AuditError, UsageError) as exc:
            return _error(400, "bad_path", str(exc))
        span = TILE_WIDTH ** ref.level
        hashes_at_level = published_size() >> (TILE_HEIGHT * ref.level)
        if (ref.index * TILE_WIDTH + ref.width) > hashes_at_level:
            return _error(404, "not_found", f"{path} is beyond the published tree")
        if ref.entries:
            body = relay.log.entry_bundle(ref.index, ref.width)
        else:
            body = relay.log.tile(ref.level, ref.index, ref.width)
        del span
        cache = _IMMUTABLE if not ref.is_partial else "public, max-age=60"
        return web.Response(
            body=body, content_type="application/octet-stream", headers={"Cache-Control": cache}
        )

    async def inclusion(request: web.Request) -> web.Response:
        try:
            index, size = _int(request, "index"), _int(request, "size")
            if not 0 < size <= published_size():
                raise UsageError(f"size must be between 1 and {published_size()}")
            proof = relay.log.inclusion_proof(index, size)
        except UsageError as exc:
            return _error(400, "bad_request", str(exc))
        store = relay.log.store
        return web.json_response(
            inclusion_json(index, size, leaf_hash(store.read(index)), store.subtree_hash(0, size),
                           proof)
        )

    async def consistency(request: web.Request) -> web.Response:
        try:
            old, new = _int(request, "old"), _int(request, "new")
            if not 0 < old <= new <= published_size():
                raise UsageError(f"need 0 < old <= new <= {published_size()}")
            proof = relay.log.consistency_proof(old, new)
        except UsageError as exc:
            return _error(400, "bad_request", str(exc))
        store = relay.log.store
        return web.json_response(
            consistency_json(old, new, store.subtree_hash(0, old), store.subtree_hash(0, new),
                             proof)
        )

    async def links(_: web.Request) -> web.Response:
        return web.json_response(relay.figures.snapshot())

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=relay.metrics.render(), headers={"Content-Type": relay.metrics.content_type}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/checkpoint", checkpoint)
    app.router.add_get("/tile/{path:.+}", tile)
    app.router.add_get("/v1/proof/inclusion", inclusion)
    app.router.add_get("/v1/proof/consistency", consistency)
    app.router.add_get("/v1/links", links)
    app.router.add_get("/metrics", metrics)
