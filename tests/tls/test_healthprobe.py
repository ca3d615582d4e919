"""The image's health probe finds the server from its command line, over http or https.

The probe blocks (it is a one-shot command), so the tests run it in a thread
while the in-process relay keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from hotline.healthprobe import probe
from hotline.network import network_to_toml
from hotline.relay.server import RelayConfig, start_relay
from tests.factories import TestNet
from tests.tls.conftest import Pki, tls_relay


async def test_a_plaintext_relay_on_its_port_is_healthy(net: TestNet, tmp_path: Path) -> None:
    """`relay --port N` without TLS: the probe asks http://127.0.0.1:N/healthz."""
    running = await start_relay(RelayConfig(
        network=net.network, network_toml=network_to_toml(net.network).encode(),
        data_dir=tmp_path / "relay", key=net.keys["relay"], port=0))
    try:
        port = str(running.port)
        assert await asyncio.to_thread(probe, ["python", "hotline", "relay", "--port", port])
    finally:
        await running.stop()
    assert not await asyncio.to_thread(probe, ["python", "hotline", "relay", "--port", port])


async def test_a_tls_relay_is_probed_over_https(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """With --tls-cert the probe speaks https; plain http to that port is not healthy."""
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay")))
        port = str(running.port)
        args = ["hotline", "relay", "--port", port, "--tls-cert", "relay.pem"]
        assert await asyncio.to_thread(probe, args)
        assert not await asyncio.to_thread(probe, ["hotline", "relay", "--port", port])


async def test_a_mutual_tls_relay_is_probed_with_its_own_certificate(
    net: TestNet, pki: Pki, tmp_path: Path
) -> None:
    """With --tls-client-ca the probe shows --tls-cert/--tls-key and asks /healthz; none: not."""
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(
            tls_relay(net, tmp_path / "relay", pki.serve("relay", mutual=True)))
        port = str(running.port)
        mutual = ["hotline", "relay", "--port", port, "--tls-client-ca", str(pki.ca),
                  "--tls-cert", str(pki.cert("relay"))]
        assert await asyncio.to_thread(probe, [*mutual, "--tls-key", str(pki.key("relay"))])
        assert not await asyncio.to_thread(probe, mutual)  # no key: no certificate to show
