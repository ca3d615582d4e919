"""Off loopback the endpoint serves its console and API only over TLS, with an operator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from hotline.endpoint.service import serve_endpoint
from hotline.errors import ConfigError, PlaintextRefused
from hotline.testing.operators import OPERATOR, PASSWORD, add_operator
from hotline.tls import ClientTls, TlsSettings, client_connector
from tests.factories import TestNet
from tests.tls.conftest import Pki, endpoint_config

OFFLINE_RELAY = "ws://127.0.0.1:9/v1/ws"


async def test_all_interfaces_without_tls_is_refused_even_with_unsafe_plaintext(
    net: TestNet, tmp_path: Path
) -> None:
    """0.0.0.0 without an API certificate does not start, --unsafe-plaintext or not."""
    config = endpoint_config(net, tmp_path, "BY", OFFLINE_RELAY, ClientTls())
    add_operator(config.data_dir)
    config = replace(config, host="0.0.0.0", tls=TlsSettings(unsafe_plaintext=True))
    with pytest.raises(PlaintextRefused, match="--api-tls-cert"):
        async with serve_endpoint(config):
            pass


async def test_all_interfaces_with_tls_needs_an_operator(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """0.0.0.0 over TLS with no operator does not start, naming hotline operator add; with
    one it listens."""
    config = replace(endpoint_config(net, tmp_path, "BY", OFFLINE_RELAY, ClientTls(),
                                     serve=pki.serve("BY")), host="0.0.0.0", port=0)
    with pytest.raises(ConfigError, match="hotline operator add"):
        async with serve_endpoint(config):
            pass
    add_operator(config.data_dir)
    async with serve_endpoint(config) as running:
        assert running.scheme == "https"


async def test_under_tls_the_session_cookie_is_secure_and_host_prefixed(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """Over https the login sets __Host-hotline_BY with Secure, HttpOnly and SameSite=Strict."""
    config = endpoint_config(net, tmp_path, "BY", OFFLINE_RELAY, ClientTls(),
                             serve=pki.serve("BY"))
    add_operator(config.data_dir)
    async with serve_endpoint(config) as running, aiohttp.ClientSession(
        connector=client_connector(ClientTls(ca=pki.ca))
    ) as http, http.post(running.url + "/api/login",
                         json={"name": OPERATOR, "password": PASSWORD}) as response:
        assert response.status == 200
        cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-hotline_BY=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= attributes
