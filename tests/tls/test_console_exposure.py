"""Off loopback the endpoint serves its console and API only over TLS, with an operator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hotline.endpoint.service import serve_endpoint
from hotline.errors import ConfigError, PlaintextRefused
from hotline.testing.operators import add_operator
from hotline.tls import ClientTls, TlsSettings
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
