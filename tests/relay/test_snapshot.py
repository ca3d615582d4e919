"""Restart from a relay-state snapshot and the on-disk id index, on a real relay.

A snapshot is used only when it matches the log; anything else is discarded
and the state rebuilt from the whole log, giving the same state either way.
"""

from __future__ import annotations

import shutil
from collections.abc import MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog.testing

from hotline.auditlog.filestore import FileStore
from hotline.figures import LinkFigures
from hotline.network import network_to_toml
from hotline.protocol.keys import SigningKey
from hotline.protocol.session import Accepted
from hotline.protocol.vocab import Stage
from hotline.relay.idindex import ID_INDEX_FILE
from hotline.relay.server import RelayConfig, RunningRelay, start_relay
from hotline.relay.snapshot import SNAPSHOT_FILE
from tests.factories import TestNet
from tests.relay.client import RawClient
from tests.relay.conftest import Author, now_ms, relay_config

DAY_MS = 86_400_000


async def _traffic(
    net: TestNet, relay: RunningRelay, authors: tuple[Author, Author] | None = None
) -> list[tuple[bytes, bytes]]:
    """BY warns LT three times; LT delivers all and acknowledges the first: (frame, accepted)."""
    by, lt = authors or (Author("BY"), Author("LT"))
    sent: list[tuple[bytes, bytes]] = []
    async with RawClient(net, "BY", relay.ws_url) as cby, RawClient(net, "LT", relay.ws_url) as clt:
        warnings = [by.warning() for _ in range(3)]
        for warning in warnings:
            frame = cby.seal(warning)
            await cby.send(frame)
            accepted = await cby.accepted()
            assert isinstance(accepted, Accepted)
            sent.append((frame, accepted.frame))
            await clt.delivered()
        for warning in warnings:
            await clt.send(clt.seal(lt.receipt(warning)))
            assert isinstance(await clt.accepted(), Accepted)
        await clt.send(clt.seal(lt.receipt(warnings[0], Stage.ACKNOWLEDGED)))
        assert isinstance(await clt.accepted(), Accepted)
    return sent


def _recomputed(net: TestNet, data: Path) -> dict[str, Any]:
    """The figures folded from every entry the log holds."""
    figures = LinkFigures(net.network)
    store = FileStore(data / "store")
    try:
        for index, entry in enumerate(store.read_range(0, store.size)):
            figures.add_entry(index, entry)
    finally:
        store.close()
    return figures.snapshot()


async def _restart(config: RelayConfig) -> tuple[RunningRelay, list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as events:
        running = await start_relay(config)
    return running, events


def _named(
    events: list[MutableMapping[str, Any]], name: str
) -> list[MutableMapping[str, Any]]:
    return [e for e in events if e["event"] == name]


async def test_restart_replays_only_the_tail_and_ends_in_the_same_state(
    net: TestNet, tmp_path: Path
) -> None:
    """A stopped relay restarts from its snapshot, replays nothing before it, and its figures
    equal those recomputed from the whole log; a resend still gets its original receipt."""
    config = relay_config(net, tmp_path / "relay")
    running = await start_relay(config)
    sent = await _traffic(net, running)
    await running.stop()
    size = running.relay.log.size
    running, events = await _restart(config)
    try:
        assert _named(events, "snapshot_loaded") == [
            {"event": "snapshot_loaded", "size": size, "log_level": "info"}
        ]
        restored = _named(events, "relay_state_restored")[0]
        assert (restored["snapshot_size"], restored["replayed"]) == (size, 0)
        async with RawClient(net, "BY", running.ws_url) as cby:
            for frame, accepted in sent:
                await cby.send(frame)
                again = await cby.accepted()
                assert isinstance(again, Accepted)
                assert again.frame == accepted
    finally:
        await running.stop()
    assert running.relay.figures.snapshot() == _recomputed(net, tmp_path / "relay")


async def test_a_resend_older_than_max_age_gets_its_original_receipt_after_restarts(
    net: TestNet, tmp_path: Path
) -> None:
    """Two days on and with the id index rebuilt from the log, a resend is still answered
    with its original accepted receipt, byte for byte, not refused as stale."""
    config = relay_config(net, tmp_path / "relay")
    running = await start_relay(config)
    sent = await _traffic(net, running)
    await running.stop()
    (tmp_path / "relay" / ID_INDEX_FILE).unlink()
    later = now_ms() + 2 * DAY_MS
    running, events = await _restart(replace(config, clock=lambda: later))
    try:
        assert _named(events, "id_index_caught_up")[0]["rows"] > len(sent)
        async with RawClient(net, "BY", running.ws_url) as cby:
            frame, accepted = sent[1]
            await cby.send(frame)
            again = await cby.accepted()
            assert isinstance(again, Accepted)
            assert again.frame == accepted
    finally:
        await running.stop()


def _sign_with_another_key(path: Path) -> None:
    """The same payload and digest, signed by a key that is not the relay's."""
    data = path.read_bytes()
    head = len(b"hotline-relay-snapshot/1\n")
    digest = data[head:head + 32]
    path.write_bytes(data[:head + 32] + SigningKey.generate().sign(digest) + data[head + 96:])


def _flip_payload_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))


async def test_a_snapshot_that_does_not_match_is_discarded_and_the_log_replayed(
    net: TestNet, tmp_path: Path
) -> None:
    """An altered, foreign-signed, other-log or other-network snapshot is never used: the
    relay says why, replays the whole log and ends with the figures the log gives."""
    config = relay_config(net, tmp_path / "relay")
    running = await start_relay(config)
    await _traffic(net, running)
    await running.stop()
    other_config = relay_config(net, tmp_path / "other")
    other = await start_relay(other_config)
    authors = (Author("BY"), Author("LT"))
    await _traffic(net, other, authors)
    await _traffic(net, other, authors)
    await other.stop()
    small = await start_relay(relay_config(net, tmp_path / "small"))  # a shorter, other log
    await small.stop()
    snapshot = tmp_path / "relay" / SNAPSHOT_FILE
    other_network = replace(net.network, name="another network")
    cases: list[tuple[str, RelayConfig, Any]] = [
        ("digest", config, _flip_payload_byte),
        ("signed", config, _sign_with_another_key),
        ("covers", config,
         lambda path: shutil.copyfile(tmp_path / "other" / SNAPSHOT_FILE, path)),
        ("tree root", config,
         lambda path: shutil.copyfile(tmp_path / "small" / SNAPSHOT_FILE, path)),
        ("network.toml", replace(config, network_toml=network_to_toml(other_network).encode()),
         None),
    ]
    for reason, case_config, spoil in cases:
        saved = snapshot.read_bytes()
        if spoil is not None:
            spoil(snapshot)
        running, events = await _restart(case_config)
        try:
            discarded = _named(events, "snapshot_discarded")
            assert len(discarded) == 1, (reason, events)
            assert reason in discarded[0]["reason"], discarded
            restored = _named(events, "relay_state_restored")[0]
            assert restored["snapshot_size"] == 0
        finally:
            await running.stop()
        assert running.relay.figures.snapshot() == _recomputed(net, tmp_path / "relay"), reason
        snapshot.write_bytes(saved)
