"""A relay started on a changed network.toml records the change in its log, once."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import EntryKind, LogEvent, decode_entry
from hotline.auditlog.log import STORE_DIR
from hotline.network import Network, network_to_toml
from hotline.relay.server import start_relay
from tests.factories import TestNet
from tests.relay.conftest import relay_config


async def _start_and_stop(net: TestNet, network: Network, data: Path) -> bytes:
    """Run the relay once on ``network``; the SHA-256 of the network.toml it was given."""
    toml = network_to_toml(network).encode()
    running = await start_relay(replace(relay_config(net, data), network=network,
                                        network_toml=toml))
    await running.stop()
    return hashlib.sha256(toml).digest()


def _events(data: Path, kind: EntryKind) -> list[LogEvent]:
    with FileStore(data / STORE_DIR) as store:
        entries = [decode_entry(e) for e in store.read_range(0, store.size)]
    return [e.event for e in entries if e.event is not None and e.kind is kind]


async def test_a_changed_network_is_logged_with_both_hashes_and_only_once(
    net: TestNet, tmp_path: Path
) -> None:
    """Start on A, then on B twice: one config_changed entry, naming B and A."""
    data = tmp_path / "relay"
    first = await _start_and_stop(net, net.network, data)
    assert _events(data, EntryKind.CONFIG_CHANGED) == []
    longer = replace(net.network, link_test_interval_ms=net.network.link_test_interval_ms * 2)
    second = await _start_and_stop(net, longer, data)
    await _start_and_stop(net, longer, data)
    changes = _events(data, EntryKind.CONFIG_CHANGED)
    assert [c.fields for c in changes] == [
        {"network_sha256": second, "previous_network_sha256": first}
    ]
    assert len(_events(data, EntryKind.RELAY_STARTED)) == 3
