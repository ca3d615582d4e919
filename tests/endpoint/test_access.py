"""Who may use the local API: Host names, cross-site requests, sessions, CSRF, roles.

Requests are written as ``curl`` would send them (explicit headers, no browser),
against a real endpoint on loopback; ``tests/console/test_cross_site.py`` attacks
from a real browser.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog.testing

from hotline.endpoint.access import CSRF_HEADER
from hotline.endpoint.operators import Role
from hotline.endpoint.service import EndpointConfig, RunningEndpoint, serve_endpoint
from hotline.lograte import DEFAULT_BURST, DEFAULT_PER_PEER
from hotline.protocol.ids import format_id
from hotline.testing.operators import OPERATOR, PASSWORD, add_operator, operator_headers
from tests.endpoint.builders import Author, deliver
from tests.endpoint.test_api import TIMEOUT, closed_port
from tests.factories import TestNet, make_network

TEXT = {"t": "text", "to": ["BY"], "status": "exercise", "precedence": "routine",
        "text": "x", "lang": "en"}
RAW_TEXT = json.dumps(TEXT).encode()


@dataclass
class Lt:
    net: TestNet
    running: RunningEndpoint
    http: aiohttp.ClientSession
    officer: dict[str, str]

    @property
    def url(self) -> str:
        return self.running.url

    async def post(self, path: str, data: bytes, **headers: str) -> tuple[int, Any]:
        async with self.http.post(self.url + path, data=data,
                                  headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str, **headers: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def outbox(self) -> list[Any]:
        status, body = await self.get("/api/outbox", **self.officer)
        assert status == 200
        messages: list[Any] = body["messages"]
        return messages


@pytest.fixture
async def lt(tmp_path: Path) -> AsyncIterator[Lt]:
    net = make_network()
    config = EndpointConfig(
        network=net.network, endpoint_id="LT", key=net.keys["LT"], data_dir=tmp_path,
        relay_url=f"ws://127.0.0.1:{closed_port()}/v1/ws",
    )
    add_operator(tmp_path)
    add_operator(tmp_path, "watcher", Role.VIEWER)
    async with serve_endpoint(config) as running, aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=TIMEOUT)
    ) as http:
        yield Lt(net, running, http, await operator_headers(http, running.url))


JSON = "application/json"


async def test_a_cross_site_text_plain_post_is_refused_and_sends_nothing(lt: Lt) -> None:
    """The issue's curl: Origin evil.example, text/plain, no session → 403; nothing is sent."""
    status, body = await lt.post("/api/messages", RAW_TEXT, Origin="http://evil.example",
                                 **{"Content-Type": "text/plain"})
    assert (status, body["error"]) == (403, "cross_site")
    status, body = await lt.post("/api/messages", RAW_TEXT, **{"Content-Type": "text/plain"})
    assert status == 401
    assert await lt.outbox() == []


async def test_json_without_a_session_is_401(lt: Lt) -> None:
    """application/json with no session cookie answers 401 not_authenticated."""
    status, body = await lt.post("/api/messages", RAW_TEXT, **{"Content-Type": JSON})
    assert (status, body["error"], body["field"]) == (401, "not_authenticated", "session")
    assert await lt.outbox() == []


async def test_a_rebinding_host_is_421_for_posts_and_reads_even_with_a_session(lt: Lt) -> None:
    """Host rebind.evil.example is 421 on POST /api/messages, GET /api/inbox and the page."""
    evil = {"Host": "rebind.evil.example", **lt.officer}
    status, body = await lt.post("/api/messages", RAW_TEXT, **{"Content-Type": JSON}, **evil)
    assert (status, body["error"], body["field"]) == (421, "misdirected", "host")
    status, body = await lt.get("/api/inbox", **evil)
    assert (status, body["error"]) == (421, "misdirected")
    async with lt.http.get(lt.url + "/", headers=evil) as response:
        assert response.status == 421
    assert await lt.outbox() == []


async def test_loopback_names_are_accepted_with_any_port(lt: Lt) -> None:
    """localhost, 127.0.0.1 and [::1] are the endpoint's own names (the port is not checked)."""
    for host in ("localhost:1234", "127.0.0.1", "[::1]:80", "LOCALHOST"):
        async with lt.http.get(lt.url + "/healthz", headers={"Host": host}) as response:
            assert response.status == 200, host


async def test_the_session_alone_is_not_enough_without_the_csrf_header(lt: Lt) -> None:
    """A post with the cookie but without (or with a wrong) X-Hotline-CSRF is 403 csrf."""
    cookie = {"Cookie": lt.officer["Cookie"], "Content-Type": JSON}
    status, body = await lt.post("/api/messages", RAW_TEXT, **cookie)
    assert (status, body["error"], body["field"]) == (403, "csrf", CSRF_HEADER.lower())
    status, _ = await lt.post("/api/messages", RAW_TEXT, **cookie, **{CSRF_HEADER: "guess"})
    assert status == 403
    assert await lt.outbox() == []


async def test_a_logged_in_post_must_be_json(lt: Lt) -> None:
    """Even with the session and the CSRF token, text/plain is 415 unsupported_media_type."""
    status, body = await lt.post("/api/messages", RAW_TEXT, **lt.officer,
                                 **{"Content-Type": "text/plain"})
    assert (status, body["error"]) == (415, "unsupported_media_type")


async def test_another_port_of_the_same_host_is_another_origin(lt: Lt) -> None:
    """Origin http://127.0.0.1:OTHER or Sec-Fetch-Site: same-site is refused, session or not."""
    other = {"Origin": "http://127.0.0.1:9", "Content-Type": JSON, **lt.officer}
    status, body = await lt.post("/api/messages", RAW_TEXT, **other)
    assert (status, body["error"], body["field"]) == (403, "cross_site", "origin")
    site = {"Sec-Fetch-Site": "same-site", "Content-Type": JSON, **lt.officer}
    status, _ = await lt.post("/api/messages", RAW_TEXT, **site)
    assert status == 403
    status, _ = await lt.get("/api/inbox", **{"Sec-Fetch-Site": "cross-site", **lt.officer})
    assert status == 403
    assert await lt.outbox() == []


async def test_the_consoles_own_origin_posts_and_the_body_names_the_operator(lt: Lt) -> None:
    """Same-origin with the session and CSRF: 202, and the signed body says who sent it."""
    own = {"Origin": lt.url, "Sec-Fetch-Site": "same-origin", "Content-Type": JSON}
    status, body = await lt.post("/api/messages", RAW_TEXT, **own, **lt.officer)
    assert status == 202, body
    (sent,) = await lt.outbox()
    assert sent["body"]["operator"] == OPERATOR


async def test_a_posted_operator_field_is_refused(lt: Lt) -> None:
    """The operator is the session's: a body naming one is 422 at field operator."""
    forged = json.dumps({**TEXT, "operator": "someone-else"}).encode()
    status, body = await lt.post("/api/messages", forged, **lt.officer, **{"Content-Type": JSON})
    assert (status, body["field"]) == (422, "operator")


async def test_a_viewer_reads_but_neither_sends_nor_acknowledges(lt: Lt) -> None:
    """A viewer's session reads the inbox; posting and acknowledging are 403 forbidden."""
    viewer = await operator_headers(lt.http, lt.url, "watcher")
    status, _ = await lt.get("/api/inbox", **viewer)
    assert status == 200
    status, body = await lt.post("/api/messages", RAW_TEXT, **viewer, **{"Content-Type": JSON})
    assert (status, body["error"], body["field"]) == (403, "forbidden", "role")
    message = Author(lt.net).warning()
    await lt.running.endpoint.received(deliver(lt.net.seal(message), 1))
    ack = f"/api/messages/{format_id(message.id)}/ack"
    status, _ = await lt.post(ack, b"{}", **viewer, **{"Content-Type": JSON})
    assert status == 403
    assert await lt.outbox() == []


async def test_a_wrong_password_is_401_and_sets_no_cookie(lt: Lt) -> None:
    """Wrong password or unknown name: 401 bad_credentials, no Set-Cookie."""
    for name, password in ((OPERATOR, "not the password"), ("nobody", PASSWORD)):
        login = json.dumps({"name": name, "password": password}).encode()
        async with lt.http.post(lt.url + "/api/login", data=login,
                                headers={"Content-Type": JSON}) as response:
            assert response.status == 401
            assert (await response.json())["error"] == "bad_credentials"
            assert "Set-Cookie" not in response.headers


async def test_the_session_cookie_is_httponly_and_samesite_strict(lt: Lt) -> None:
    """The login's cookie is HttpOnly, SameSite=Strict, Path=/ and named for the endpoint."""
    login = json.dumps({"name": OPERATOR, "password": PASSWORD}).encode()
    async with lt.http.post(lt.url + "/api/login", data=login,
                            headers={"Content-Type": JSON}) as response:
        assert response.status == 200
        cookie = response.headers["Set-Cookie"]
        answer = await response.json()
    assert cookie.startswith("hotline_LT=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http on loopback: a Secure cookie would be lost
    assert (answer["operator"], answer["role"]) == (OPERATOR, "officer")


async def test_logout_ends_the_session(lt: Lt) -> None:
    """After POST /api/logout the same cookie is 401 and /api/session names nobody."""
    status, _ = await lt.post("/api/logout", b"{}", **lt.officer, **{"Content-Type": JSON})
    assert status == 204
    status, _ = await lt.get("/api/inbox", **lt.officer)
    assert status == 401
    status, body = await lt.get("/api/session", **lt.officer)
    assert (status, body["operator"]) == (200, None)


async def test_a_body_arriving_in_two_tcp_writes_is_read_whole(lt: Lt) -> None:
    """A post whose body comes in two writes (headers and half, then the rest) is 202."""
    head = (f"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(RAW_TEXT)}\r\n"
            f"Cookie: {lt.officer['Cookie']}\r\n{CSRF_HEADER}: {lt.officer[CSRF_HEADER]}\r\n"
            "Connection: close\r\n\r\n").encode()
    half = len(RAW_TEXT) // 2
    reader, writer = await asyncio.open_connection("127.0.0.1", lt.running.port)
    try:
        writer.write(head + RAW_TEXT[:half])
        await writer.drain()
        writer.write(RAW_TEXT[half:])
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 202"), answer[:200]


@pytest.mark.parametrize(("raw", "why"), [
    (b'{"t": "text", "t": "warning"}', "twice"),
    (b'{"t": "text", "to": ["BY"], "n": NaN}', "NaN"),
    (b"[" * 9 + b"]" * 9, "levels deep"),
])
async def test_every_route_reads_json_strictly(lt: Lt, raw: bytes, why: str) -> None:
    """Repeated keys, NaN and deep nesting are 400 bad_json on messages and acks alike."""
    for path in ("/api/messages", "/api/messages/019ab697-e800-7000-8000-000000000001/ack"):
        status, body = await lt.post(path, raw, **lt.officer, **{"Content-Type": JSON})
        assert (status, body["error"]) == (400, "bad_json"), path
        assert why in body["detail"]


async def test_a_client_trickling_its_headers_is_closed(tmp_path: Path) -> None:
    """A connection that sends a byte of headers at a time is closed at the header timeout."""
    net = make_network()
    config = EndpointConfig(
        network=net.network, endpoint_id="LT", key=net.keys["LT"], data_dir=tmp_path,
        relay_url=f"ws://127.0.0.1:{closed_port()}/v1/ws", header_timeout_s=0.5,
    )
    async with serve_endpoint(config) as running:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            closed = False
            async with asyncio.timeout(TIMEOUT):
                while not closed:
                    writer.write(b"X")  # one more byte of a header that never ends
                    try:
                        closed = await asyncio.wait_for(reader.read(1), 0.1) == b""
                    except TimeoutError:
                        continue
        finally:
            writer.close()
    assert closed


def test_the_journal_and_its_directory_are_private(tmp_path: Path) -> None:
    """A new journal is 0600 in a 0700 directory; the operators file is 0600."""
    from hotline.endpoint.journal import JOURNAL_FILE, Journal  # noqa: PLC0415

    data = tmp_path / "LT"
    Journal.open(data / JOURNAL_FILE).close()
    add_operator(data)
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / JOURNAL_FILE).stat().st_mode & 0o777 == 0o600
    assert (data / "operators.json").stat().st_mode & 0o777 == 0o600


async def test_malformed_requests_are_logged_as_throttled_structured_lines(
    lt: Lt, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are no HTTP request are 400 and logged as http_request_failed, at most the
    throttle's burst of lines, never as the server library's own traceback lines."""
    attempts = DEFAULT_BURST + 3
    with structlog.testing.capture_logs() as events:
        for _ in range(attempts):
            reader, writer = await asyncio.open_connection("127.0.0.1", lt.running.port)
            try:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Length: nope\r\n\r\n")
                async with asyncio.timeout(TIMEOUT):
                    answer = await reader.read()
            finally:
                writer.close()
            assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    assert [r for r in caplog.records if r.name.startswith("aiohttp")] == []
    assert [e["event"] for e in events].count("http_request_failed") == DEFAULT_BURST


async def test_refused_logins_and_posts_without_a_feed_token_are_throttled_in_the_log(
    lt: Lt,
) -> None:
    """Anyone who reaches the API can fail a login or post an alert with no feed's token:
    each is refused every time, but at most one address's share of the throttle's lines of
    each is written, the next one after the window carrying how many were held back."""
    attempts = DEFAULT_BURST + 3
    login = json.dumps({"name": "nobody", "password": "guess"}).encode()
    with structlog.testing.capture_logs() as events:
        for _ in range(attempts):
            status, body = await lt.post("/api/alerts", b"{}", Authorization="Bearer guess",
                                         **{"Content-Type": JSON})
            assert (status, body["error"]) == (401, "not_authenticated")
            status, body = await lt.post("/api/login", login, **{"Content-Type": JSON})
            assert (status, body["error"]) == (401, "bad_credentials")
    names = [e["event"] for e in events]
    assert names.count("feed_post_refused") == DEFAULT_PER_PEER  # all from 127.0.0.1
    assert names.count("operator_login_refused") == DEFAULT_PER_PEER
