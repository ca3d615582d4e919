"""Starting a relay that cannot listen, or cannot be built on its log, leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.errors import StoreError
from hotline.relay.idindex import ID_INDEX_FILE
from hotline.relay.server import start_relay
from tests.factories import TestNet
from tests.relay.conftest import relay_config


def _open_under(directory: Path) -> list[str]:
    """The files under ``directory`` this process holds open (Linux /proc)."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue  # closed while listing (the listing's own descriptor)
        if target.startswith(str(directory)):
            held.append(target)
    return held


def _other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def test_a_relay_that_cannot_listen_releases_its_log(net: TestNet, tmp_path: Path) -> None:
    """A port in use fails the start: no file of the log stays open, no relay task runs on,
    and the log's directory is free for the next start."""
    data = tmp_path / "relay"
    before = _other_tasks()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = replace(relay_config(net, data), port=busy.getsockname()[1])
        with pytest.raises(OSError, match="address already in use"):
            await start_relay(config)
    assert _open_under(data) == []
    assert _other_tasks() <= before
    running = await start_relay(relay_config(net, data))
    assert _open_under(data) != []  # the check above would see an open log
    await running.stop()
    assert _open_under(data) == []


async def test_a_relay_that_cannot_be_built_on_its_log_closes_the_log(
    net: TestNet, tmp_path: Path
) -> None:
    """An id index that cannot be opened fails the start with a store error and the log it
    was to be built on is closed again."""
    data = tmp_path / "relay"
    (data / ID_INDEX_FILE).mkdir(parents=True)  # a directory where the index file goes
    with pytest.raises(StoreError, match="id index"):
        await start_relay(relay_config(net, data))
    assert _open_under(data) == []
    (data / ID_INDEX_FILE).rmdir()
    running = await start_relay(relay_config(net, data))
    await running.stop()
