"""Starting a relay that cannot listen leaves nothing behind."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.relay.server import start_relay
from tests.factories import TestNet
from tests.relay.conftest import relay_config


async def test_a_relay_that_cannot_listen_releases_its_log(net: TestNet, tmp_path: Path) -> None:
    """A port in use fails the start, and the log's directory is free for the next start."""
    data = tmp_path / "relay"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = replace(relay_config(net, data), port=busy.getsockname()[1])
        with pytest.raises(OSError, match="address already in use"):
            await start_relay(config)
    running = await start_relay(relay_config(net, data))
    await running.stop()
