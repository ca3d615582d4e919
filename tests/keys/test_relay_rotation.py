"""Key rotation against a real relay on loopback: overlap, expiry, the log's record, audit."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from hotline.auditlog.checkpoint import open_checkpoint, parse_checkpoint_text
from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import EntryKind, decode_entry
from hotline.auditlog.log import STORE_DIR
from hotline.auditlog.note import parse_note
from hotline.endpoint.witness import ConsistencyProof, Fresh, NeedsProof, Refused, Witness
from hotline.errors import RejectCode
from hotline.network import Limits, Network, network_to_toml
from hotline.protocol.envelope import open_envelope
from hotline.protocol.keys import SigningKey
from hotline.protocol.session import (
    AUTH_FAILED_CLOSE,
    Accepted,
    Auth,
    RejectedNotice,
    auth_signature,
    encode_control,
)
from hotline.relay.server import RelayConfig, RunningRelay, start_relay
from tests.auditlog.logs import run_cli
from tests.factories import TestNet, make_network
from tests.keys.helpers import Rotated, rotate
from tests.relay.client import RawClient
from tests.relay.conftest import Author

OVERLAP = 3_600_000


@dataclass
class Clock:
    """The wall clock, moved forward by ``ahead`` ms: the relay's idea of now."""

    ahead: int = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.ahead


@pytest.fixture
def net() -> TestNet:
    return make_network(("BY", "LT"), limits=Limits(retry_interval_ms=300))


def _rotated(net: TestNet, party: str) -> Rotated:
    return rotate(net, party, at=Clock()() - 1_000, overlap=OVERLAP)


async def _relay(
    network: Network, data: Path, key: SigningKey, clock: Clock,
    also_sign: tuple[SigningKey, ...] = (),
) -> RunningRelay:
    (data.parent / "network.toml").write_text(network_to_toml(network))
    return await start_relay(RelayConfig(
        network=network,
        network_toml=(data.parent / "network.toml").read_bytes(),
        data_dir=data,
        key=key,
        also_sign=also_sign,
        port=0,
        checkpoint_every=4,
        checkpoint_interval_ms=100,
        tick_ms=50,
        clock=clock,
    ))


def _as(rotated: Rotated, party: str, key: SigningKey) -> TestNet:
    """The rotated network, with ``party`` holding ``key``."""
    return TestNet(rotated.network, {**rotated.after.keys, party: key})


async def _send(
    client: RawClient, author: Author, ts: int | None = None
) -> Accepted | RejectedNotice:
    """LT's next warning to BY (dated ``ts`` if given), and the relay's answer."""
    body = author.warning(to=("BY",))
    if ts is not None:
        body = replace(body, ts=ts, expires=ts + 600_000)
    await client.send(client.seal(body))
    return await client.accepted()


def _kinds(bundle: Path) -> list[tuple[EntryKind, dict[str, object]]]:
    entries = []
    for file in sorted((bundle / "tile" / "entries").rglob("*")):
        if file.is_file():
            data = file.read_bytes()
            offset = 0
            while offset < len(data):
                length = int.from_bytes(data[offset : offset + 2], "big")
                entry = decode_entry(data[offset + 2 : offset + 2 + length])
                offset += 2 + length
                fields = {} if entry.event is None else entry.event.fields
                entries.append((entry.kind, fields))
    return entries


async def test_an_endpoint_rotation_overlaps_then_retires_the_old_key(
    net: TestNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both LT keys are accepted during the overlap; after it the old one is bad_signature."""
    rotated, clock = _rotated(net, "LT"), Clock()
    running = await _relay(rotated.network, tmp_path / "relay", net.keys["relay"], clock)
    author = Author("LT")
    try:
        async with RawClient(_as(rotated, "LT", rotated.old), "LT", running.ws_url) as old:
            result = await _send(old, author)
            assert isinstance(result, Accepted), result
        async with RawClient(rotated.after, "LT", running.ws_url) as new:
            assert isinstance(await _send(new, author), Accepted)
            clock.ahead = OVERLAP + 1_000
            new.net = _as(rotated, "LT", rotated.old)  # sign with the retired key from now on
            expired = await _send(new, author, ts=clock())
            backdated = await _send(new, author, ts=clock() - OVERLAP)
            for result in (expired, backdated):
                assert isinstance(result, RejectedNotice)
                assert result.code == RejectCode.BAD_SIGNATURE
                assert f"key {rotated.old.public.kid.hex()} of LT expired at" in result.sentence
        await _refused_auth(running, "LT", rotated.old)
    finally:
        await running.stop()
    bundle = tmp_path / "bundle"
    exported = run_cli(["audit", "export", str(tmp_path / "relay"), "--out", str(bundle)], capsys)
    assert exported[0] == 0
    code, out, err = run_cli(["audit", "verify", str(bundle)], capsys)
    assert (code, err) == (0, "")
    assert out.startswith("ok: ")
    changed = [f for kind, f in _kinds(bundle) if kind is EntryKind.KEYS_CHANGED]
    assert len(changed) == 1
    _records_periods(changed[0], rotated.network, "LT")


def _records_periods(fields: dict[str, object], network: Network, party: str) -> None:
    """A keys_changed entry lists every key of ``party`` with the network's periods."""
    rows = fields["keys"]
    assert isinstance(rows, list)
    mine = {row["kid"]: row for row in rows if row["party"] == party}
    periods = network.periods_of(party)
    assert periods is not None
    assert set(mine) == {p.key.kid for p in periods}
    for period in periods:
        row = mine[period.key.kid]
        assert row["public_key"] == period.key.raw
        assert row.get("not_before") == period.not_before
        assert row.get("not_after") == period.not_after


async def _refused_auth(running: RunningRelay, party: str, key: SigningKey) -> None:
    """Authenticating with ``key`` is closed with the auth-failed code."""
    async with aiohttp.ClientSession() as session, session.ws_connect(running.ws_url) as ws:
        challenge = await ws.receive_bytes(timeout=10)
        await ws.send_bytes(encode_control(Auth(party, auth_signature(challenge, party, key))))
        message = await ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == AUTH_FAILED_CLOSE


async def test_old_messages_still_verify_after_a_rotation_and_the_log_records_it(
    net: TestNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed with the old key before the rotation, checked by audit verify afterwards."""
    data, author = tmp_path / "relay", Author("LT")
    running = await _relay(net.network, data, net.keys["relay"], Clock())
    try:
        async with RawClient(net, "LT", running.ws_url) as lt:
            assert isinstance(await _send(lt, author), Accepted)
    finally:
        await running.stop()
    rotated = _rotated(net, "LT")
    running = await _relay(rotated.network, data, net.keys["relay"], Clock())
    try:
        async with RawClient(rotated.after, "LT", running.ws_url) as lt:
            assert isinstance(await _send(lt, author), Accepted)
    finally:
        await running.stop()
    bundle = tmp_path / "bundle"
    assert run_cli(["audit", "export", str(data), "--out", str(bundle)], capsys)[0] == 0
    code, out, err = run_cli(["audit", "verify", "--full-schema", str(bundle)], capsys)
    assert (code, err) == (0, "")
    changes = [f for kind, f in _kinds(bundle) if kind is EntryKind.KEYS_CHANGED]
    assert len(changes) == 2  # the first start's keys, then the rotation's
    _records_periods(changes[0], net.network, "LT")
    _records_periods(changes[1], rotated.network, "LT")
    code, out, _ = run_cli(["audit", "replay", str(bundle)], capsys)
    assert code == 0
    rows = [line for line in out.splitlines() if "keys_changed" in line]
    assert len(rows) == 2
    assert f"LT {rotated.new.public.kid.hex()} from " in rows[1]
    assert f"LT {rotated.old.public.kid.hex()} until " in rows[1]


async def test_an_unchanged_key_set_is_not_recorded_again(net: TestNet, tmp_path: Path) -> None:
    """A restart with the same keys adds no keys_changed entry."""
    data = tmp_path / "relay"
    for _ in range(3):
        running = await _relay(net.network, data, net.keys["relay"], Clock())
        await running.stop()
    store = FileStore(data / STORE_DIR)
    try:
        kinds = [decode_entry(e).kind for e in store.read_range(0, store.size)]
    finally:
        store.close()
    assert kinds.count(EntryKind.RELAY_STARTED) == 3
    assert kinds.count(EntryKind.KEYS_CHANGED) == 1


async def _checkpoint_of_at_least(running: RunningRelay, client: RawClient, size: int) -> bytes:
    """The first checkpoint note the relay broadcasts that covers ``size`` entries."""
    while True:
        note = (await client.checkpoint()).note
        if parse_checkpoint_text(parse_note(note).text).size >= size:
            return note


def _proof(running: RunningRelay, old: int, new: int) -> ConsistencyProof:
    log = running.relay.log
    assert log is not None
    hashes = log.consistency_proof(old, new)
    return ConsistencyProof(
        old, new, log.store.subtree_hash(0, old), log.store.subtree_hash(0, new), tuple(hashes)
    )


async def test_a_relay_rotation_keeps_witnesses_following_one_history(
    net: TestNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checkpoints under the new relay key are consistent with the old; old ones still verify."""
    data, author = tmp_path / "relay", Author("LT")
    origin = net.network.relay.origin
    running = await _relay(net.network, data, net.keys["relay"], Clock())
    try:
        async with RawClient(net, "LT", running.ws_url) as lt:
            assert isinstance(await _send(lt, author), Accepted)
    finally:
        await running.stop()
    first = (data / "checkpoint").read_bytes()  # signed by the old relay key only
    old_witness = Witness(origin, net.network.relay.periods, None)
    held = old_witness.observe(first)
    assert isinstance(held, Fresh)
    old_witness.hold(held)

    rotated, clock = _rotated(net, "relay"), Clock()
    new_witness = Witness(origin, rotated.network.relay.periods, old_witness.held)
    running = await _relay(
        rotated.network, data, rotated.new, clock, also_sign=(rotated.old,)
    )
    try:
        async with RawClient(rotated.after, "LT", running.ws_url) as lt:
            accepted = await _send(lt, author)
            assert isinstance(accepted, Accepted)
            receipt = open_envelope(accepted.frame, rotated.network).body
            assert receipt.kid == rotated.new.public.kid
            during = await _checkpoint_of_at_least(running, lt, running.relay.log.size)
            assert len(parse_note(during).signatures) == 2
            for witness in (old_witness, new_witness):
                need = witness.observe(during, clock())
                assert isinstance(need, NeedsProof), need
                size = need.checkpoint.size
                settled = witness.check_proof(need, _proof(running, need.held.size, size))
                assert isinstance(settled, Fresh)
                witness.hold(settled)

            clock.ahead = OVERLAP + 1_000
            assert isinstance(await _send(lt, author, ts=clock()), Accepted)
            after = await _checkpoint_of_at_least(running, lt, running.relay.log.size)
            assert len(parse_note(after).signatures) == 1
            assert open_checkpoint(after, origin, rotated.new.public).size > size
            assert isinstance(old_witness.observe(after, clock()), Refused)
            need = new_witness.observe(after, clock())
            assert isinstance(need, NeedsProof)
            proof = _proof(running, need.held.size, need.checkpoint.size)
            assert isinstance(new_witness.check_proof(need, proof), Fresh)
    finally:
        await running.stop()

    earlier = tmp_path / "first.checkpoint"
    earlier.write_bytes(first)
    bundle = tmp_path / "bundle"
    assert run_cli(["audit", "export", str(data), "--out", str(bundle)], capsys)[0] == 0
    code, out, err = run_cli(
        ["audit", "verify", str(bundle), "--checkpoint", str(earlier)], capsys
    )
    assert (code, err) == (0, "")
    assert "2 checkpoint(s)" in out


async def test_audit_verify_refuses_a_checkpoint_signed_only_by_an_expired_relay_key(
    net: TestNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retired relay key cannot vouch for entries written after its period ended."""
    rotated, clock = _rotated(net, "relay"), Clock(OVERLAP + 1_000)
    data = tmp_path / "relay"
    # A relay that kept its retired key as current past the overlap.
    running = await _relay(rotated.network, data, rotated.old, clock)
    await running.stop()
    bundle = tmp_path / "bundle"
    assert run_cli(["audit", "export", str(data), "--out", str(bundle)], capsys)[0] == 0
    code, _, err = run_cli(["audit", "verify", str(bundle)], capsys)
    assert code == 1
    assert "the checkpoint is signed only by relay keys that had expired" in err


