"""The relay's HTTP surface: health, checkpoint, tiles, proofs, figures, metrics."""

from __future__ import annotations

import base64
import json

import aiohttp
import pytest

from hotline.auditlog.checkpoint import open_checkpoint
from hotline.auditlog.merkle import verify_consistency, verify_inclusion
from hotline.auditlog.tiles import TILE_WIDTH, decode_entry_bundle, split_tile
from hotline.protocol.session import Accepted
from hotline.relay.server import RunningRelay
from tests.factories import TestNet
from tests.relay.client import RawClient
from tests.relay.conftest import Author


async def _fill(net: TestNet, relay: RunningRelay, count: int) -> None:
    by = Author("BY")
    async with RawClient(net, "BY", relay.ws_url) as client:
        for _ in range(count):
            await client.send(client.seal(by.warning()))
            assert isinstance(await client.accepted(), Accepted)
        while relay.relay.log.signed_size < count:
            await client.checkpoint()


async def _get(relay: RunningRelay, path: str) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as session, session.get(relay.http_url + path) as response:
        return response.status, await response.read(), response.headers.get("Content-Type", "")


async def test_health_reports_the_log(net: TestNet, relay: RunningRelay) -> None:
    """/healthz answers ok with the log's size."""
    status, body, kind = await _get(relay, "/healthz")
    assert (status, kind) == (200, "application/json; charset=utf-8")
    assert b'"status": "ok"' in body


async def test_checkpoint_tiles_and_proofs_agree(net: TestNet, relay: RunningRelay) -> None:
    """The served checkpoint verifies, tiles hold its leaves, proofs verify against it."""
    await _fill(net, relay, 5)
    status, note, kind = await _get(relay, "/checkpoint")
    assert (status, kind.startswith("text/plain")) == (200, True)
    checkpoint = open_checkpoint(note, net.network.relay.origin, net.keys["relay"].public)
    size = checkpoint.size
    assert size >= 5
    width = size % TILE_WIDTH
    status, tile, _ = await _get(relay, f"/tile/0/000.p/{width}")
    assert status == 200
    leaves = split_tile(tile, width)
    status, bundle, _ = await _get(relay, f"/tile/entries/000.p/{width}")
    entries = decode_entry_bundle(bundle, width)
    status, body, _ = await _get(relay, f"/v1/proof/inclusion?index=2&size={size}")
    proof = json.loads(body)
    verify_inclusion(leaves[2], 2, size, [base64.b64decode(h) for h in proof["proof"]],
                     checkpoint.root)
    assert len(entries) == width
    status, body, _ = await _get(relay, f"/v1/proof/consistency?old=1&new={size}")
    proof = json.loads(body)
    verify_consistency(1, size, base64.b64decode(proof["old_root"]), checkpoint.root,
                       [base64.b64decode(h) for h in proof["proof"]])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tile/0/..%2F..%2Fetc%2Fpasswd", 400),
        ("/tile/0/0000", 400),
        ("/tile/0/000.p/256", 400),
        ("/tile/64/000", 400),
        ("/tile/0/999", 404),
        ("/v1/proof/inclusion?index=0&size=999999", 400),
        ("/v1/proof/inclusion?index=-1&size=1", 400),
        ("/v1/proof/consistency?old=0&new=1", 400),
        ("/v1/proof/consistency?old=a&new=1", 400),
    ],
)
async def test_bad_paths_and_parameters_are_refused(
    net: TestNet, relay: RunningRelay, path: str, status: int
) -> None:
    """Path tricks, non-canonical tiles and impossible proofs get 400 or 404, never 500."""
    got, _, _ = await _get(relay, path)
    assert got == status


async def test_links_and_metrics_are_served(net: TestNet, relay: RunningRelay) -> None:
    """/v1/links gives the figures JSON; /metrics the Prometheus text format."""
    await _fill(net, relay, 2)
    status, body, _ = await _get(relay, "/v1/links")
    links = json.loads(body)
    assert status == 200
    by_lt = next(link for link in links["links"] if (link["from"], link["to"]) == ("BY", "LT"))
    assert by_lt["messages"] == 2
    status, body, kind = await _get(relay, "/metrics")
    assert status == 200
    assert kind.startswith("text/plain")
    text = body.decode()
    assert 'hotline_envelopes_accepted_total{type="warning"} 2.0' in text
    assert "hotline_log_entries" in text
