"""An endpoint's console and feed API served over https, and ``hotline send`` against it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from hotline.endpoint.service import RunningEndpoint, serve_endpoint
from hotline.testing.operators import OPERATOR, PASSWORD, add_operator, operator_headers
from hotline.tls import ClientTls, ServerTls, client_connector, format_pin
from tests.factories import TestNet
from tests.tls.conftest import TIMEOUT, Pki, endpoint_config

OFFLINE_RELAY = "ws://127.0.0.1:9/v1/ws"  # nothing listens: messages wait in the outbox


@contextlib.asynccontextmanager
async def https_endpoint(
    net: TestNet, tmp_path: Path, serve: ServerTls
) -> AsyncIterator[RunningEndpoint]:
    config = endpoint_config(net, tmp_path, "BY", OFFLINE_RELAY, ClientTls(), serve=serve)
    add_operator(config.data_dir)
    async with serve_endpoint(config) as running:
        yield running


async def hotline_send(*args: str) -> tuple[int, str, str]:
    """Run ``hotline send ARGS`` in a child process: exit status, stdout, stderr."""
    env = {**os.environ, "HOTLINE_OPERATOR": OPERATOR, "HOTLINE_PASSWORD": PASSWORD}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline", "send", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def outbox(running: RunningEndpoint, pki: Pki) -> Any:
    """The endpoint's /api/outbox, fetched over https trusting the CA."""
    connector = client_connector(ClientTls(ca=pki.ca))
    async with aiohttp.ClientSession(connector=connector) as http:
        headers = await operator_headers(http, running.url)
        async with http.get(running.url + "/api/outbox", headers=headers) as response:
            return await response.json()


async def test_the_api_answers_over_https_to_a_client_trusting_the_ca(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """/healthz and /api/links answer over https; the running endpoint's URL says https."""
    async with https_endpoint(net, tmp_path, pki.serve("BY")) as by:
        assert by.url.startswith("https://127.0.0.1:")
        connector = client_connector(ClientTls(ca=pki.ca))
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(by.url + "/healthz") as response:
                assert response.status == 200
            headers = await operator_headers(http, by.url)
            async with http.get(by.url + "/api/links", headers=headers) as response:
                assert response.status == 200


async def test_hotline_send_with_the_ca_posts_to_an_https_endpoint(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """``hotline send --ca`` posts a text; the endpoint's outbox holds it under the printed id."""
    async with https_endpoint(net, tmp_path, pki.serve("BY")) as by:
        status, out, err = await hotline_send(
            "--api", by.url, "--ca", str(pki.ca),
            "text", "--to", "LT", "--text", "over TLS", "--status", "test")
        assert status == 0, err
        message_id = out.strip()
        assert [m["id"] for m in (await outbox(by, pki))["messages"]] == [message_id]


async def test_hotline_send_refuses_an_endpoint_whose_certificate_is_not_the_pinned_one(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """A wrong ``--pin`` exits 1 naming both digests, and nothing is posted."""
    wrong = hashlib.sha256(b"another certificate").digest()
    async with https_endpoint(net, tmp_path, pki.serve("BY")) as by:
        status, out, err = await hotline_send(
            "--api", by.url, "--pin", format_pin(wrong),
            "text", "--to", "LT", "--text", "to the wrong server?")
        assert (status, out) == (1, "")
        assert err.startswith("peer_certificate_refused: ")
        assert format_pin(wrong) in err
        assert (await outbox(by, pki))["messages"] == []


async def test_an_api_asking_for_client_certificates_takes_send_with_one_only(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """With ``--api-client-ca``, send without ``--cert`` fails as a network refusal (exit 1,
    not usage), the server logs the failed handshake at error level, and with LT's
    certificate it posts."""
    async with https_endpoint(net, tmp_path, pki.serve("BY", mutual=True)) as by:
        text = ("text", "--to", "LT", "--text", "mutual", "--status", "test")
        with structlog.testing.capture_logs() as logs:
            status, _, err = await hotline_send("--api", by.url, "--ca", str(pki.ca), *text)
        assert status == 1
        assert err.startswith("network: cannot reach the endpoint"), err
        assert "TLS connection was refused" in err
        failed = [e for e in logs if e["event"] == "tls_handshake_failed"]
        assert failed
        assert failed[0]["log_level"] == "error"
        assert failed[0]["client_certificate_required"] is True
        status, out, err = await hotline_send(
            "--api", by.url, "--ca", str(pki.ca),
            "--cert", str(pki.cert("LT")), "--key", str(pki.key("LT")), *text)
        assert status == 0, err
        assert out.strip()
