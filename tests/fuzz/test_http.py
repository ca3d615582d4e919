"""Fuzzed HTTP: arbitrary paths, bodies and headers get a 4xx with error JSON, never a 500."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from hotline.network import network_to_toml
from hotline.relay.server import RelayConfig, start_relay
from hotline.testing.operators import LoggedIn
from tests.factories import make_network
from tests.feeds.helpers import TOKEN, endpoint_running, radar_feed, write_feeds

NET = make_network()
SEGMENTS = st.sampled_from(["..", "%2e%2e", "%2f", "%00", "tile", "entries", "0", "x001",
                            "000.p", "7", "api", "messages", "console", "i18n", "en.json",
                            "ack", "cap", "a" * 300, "%ff", "~", "."])
PATHS = st.lists(st.one_of(SEGMENTS, st.text("abc019%./x", max_size=12)), max_size=8).map(
    lambda parts: "/" + "/".join(parts))
BODIES = st.one_of(st.binary(max_size=300), st.just(b"[" * 20_000),
                   st.recursive(st.one_of(st.none(), st.booleans(), st.integers(),
                                          st.floats(allow_nan=False), st.text(max_size=20)),
                                lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8),
                                                                        inner, max_size=4)),
                                max_leaves=20).map(lambda v: repr(v).encode()))
TYPES = st.sampled_from(["application/json", "application/cap+xml", "text/plain",
                         "application/json; charset=latin-1", "multipart/form-data", ""])
REQUEST = st.tuples(st.sampled_from(["/api/alerts", "/api/cap", "/api/messages"]), BODIES,
                    TYPES, st.sampled_from([f"Bearer {TOKEN}", "Bearer x", "", "Basic a"]),
                    st.one_of(st.none(), st.text(max_size=30)))


def _is_error_json(status: int, payload: object) -> bool:
    return 400 <= status < 500 and isinstance(payload, dict) and "error" in payload


async def _post_all(url: str, requests: list[tuple[str, bytes, str, str, str | None]]) -> None:
    # logged in as an officer, so /api/messages posts reach the handler, not only the 401
    async with aiohttp.ClientSession(middlewares=(LoggedIn(),)) as http:
        for route, body, content_type, auth, key in requests:
            headers = {"Content-Type": content_type, "Authorization": auth}
            if key is not None and key.isascii() and key.isprintable():
                headers["Idempotency-Key"] = key
            async with http.post(url + route, data=body, headers=headers) as response:
                assert response.status < 500, (route, body[:80], response.status)
                if response.status >= 400:
                    payload = await response.json(content_type=None)
                    assert _is_error_json(response.status, payload), payload


@settings(max_examples=8, deadline=None)
@given(st.lists(REQUEST, min_size=1, max_size=25))
def test_feed_and_message_posts_never_answer_500(
    requests: list[tuple[str, bytes, str, str, str | None]],
) -> None:
    """POSTs to /api/alerts, /api/cap and /api/messages: a 2xx or a 4xx with error JSON."""

    async def run(root: Path) -> None:
        feeds = write_feeds(root / "feeds.toml", radar_feed())
        async with endpoint_running(NET, root, "LT", feeds=feeds) as running:
            await _post_all(running.url, requests)

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))


@settings(max_examples=8, deadline=None)
@given(st.lists(PATHS, min_size=1, max_size=30))
def test_relay_paths_never_answer_500(paths: list[str]) -> None:
    """Any GET path on the relay is a 2xx, or a 4xx (error JSON on its own routes)."""

    async def run(root: Path) -> None:
        relay = await start_relay(RelayConfig(
            network=NET.network, network_toml=network_to_toml(NET.network).encode(),
            data_dir=root / "relay", key=NET.keys["relay"], port=0))
        try:
            async with aiohttp.ClientSession() as http:
                for path in paths:
                    url = URL(relay.http_url + path, encoded=True)
                    async with http.get(url) as response:
                        assert response.status < 500, (path, response.status)
                        if response.status >= 400 and path.startswith(("/tile/", "/v1/")):
                            payload = await response.json(content_type=None)
                            assert _is_error_json(response.status, payload), (path, payload)
        finally:
            await relay.stop()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))
