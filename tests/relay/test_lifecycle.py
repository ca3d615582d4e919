"""A warning's whole life through a real relay: accept, deliver, receipts, store and forward."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import structlog.testing

from hotline.auditlog.filestore import FileStore
from hotline.auditlog.leaf import EntryKind, LogEvent, encode_event_entry
from hotline.auditlog.segments import encode_record
from hotline.errors import StoreError
from hotline.protocol.bodies import ReceiptBody, WarningBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Accepted, Deliver, RejectedNotice
from hotline.protocol.vocab import Precedence, Stage
from hotline.relay.core import Append, LogLine, RelayAction
from hotline.relay.server import RunningRelay, start_relay
from hotline.relay.snapshot import SNAPSHOT_FILE
from tests.factories import TestNet
from tests.relay.client import RawClient
from tests.relay.conftest import Author, relay_config


def _accepted_body(net: TestNet, result: Accepted | RejectedNotice) -> object:
    assert isinstance(result, Accepted), result
    return open_envelope(result.frame, net.network).body


async def test_warning_is_accepted_delivered_and_acknowledged(
    net: TestNet, relay: RunningRelay
) -> None:
    """BY's warning is accepted with its log index, reaches LT, and LT's receipts reach BY."""
    by, lt = Author("BY"), Author("LT")
    async with RawClient(net, "BY", relay.ws_url) as cby, RawClient(net, "LT", relay.ws_url) as clt:
        warning = by.warning()
        await cby.send(cby.seal(warning))
        accepted = _accepted_body(net, await cby.accepted())
        assert accepted.ref == warning.id  # type: ignore[attr-defined]
        delivered = await clt.delivered()
        assert open_envelope(delivered.frame, net.network).body == replace(
            warning, kid=net.keys["BY"].public.kid
        )
        assert delivered.index == accepted.index  # type: ignore[attr-defined]
        for stage in (Stage.DELIVERED, Stage.ACKNOWLEDGED):
            receipt = replace(lt.receipt(warning, stage), kid=net.keys["LT"].public.kid)
            await clt.send(clt.seal(receipt))
            assert isinstance(await clt.accepted(), Accepted)
            back = await cby.delivered()
            body = open_envelope(back.frame, net.network).body
            assert isinstance(body, ReceiptBody)
            assert (body.ref, body.stage) == (warning.id, stage)


async def test_an_offline_recipient_gets_its_backlog_in_order(
    net: TestNet, relay: RunningRelay
) -> None:
    """Messages to an offline LT wait; on connect they come flash first, then in log order."""
    by = Author("BY")
    routine = [by.warning(precedence=Precedence.ROUTINE) for _ in range(3)]
    flash = by.warning(precedence=Precedence.FLASH)
    async with RawClient(net, "BY", relay.ws_url) as cby:
        for body in [*routine, flash]:
            await cby.send(cby.seal(body))
            assert isinstance(await cby.accepted(), Accepted)
    async with RawClient(net, "LT", relay.ws_url) as clt:
        got = [open_envelope((await clt.delivered()).frame, net.network).body.id
               for _ in range(4)]
    assert got == [flash.id] + [w.id for w in routine]


async def test_undelivered_messages_are_resent_with_the_same_bytes(
    net: TestNet, relay: RunningRelay
) -> None:
    """Without a delivered receipt the relay resends the identical frame."""
    by = Author("BY")
    async with RawClient(net, "BY", relay.ws_url) as cby, RawClient(net, "LT", relay.ws_url) as clt:
        frame = cby.seal(by.warning())
        await cby.send(frame)
        await cby.accepted()
        first = await clt.delivered()
        second = await clt.delivered()
        assert first == second
        assert first.frame == frame


async def test_a_duplicate_gets_the_original_receipt_and_is_not_delivered_twice(
    net: TestNet, relay: RunningRelay
) -> None:
    """Resending an accepted envelope returns byte-identical accepted receipts, one delivery."""
    by, lt = Author("BY"), Author("LT")
    async with RawClient(net, "BY", relay.ws_url) as cby, RawClient(net, "LT", relay.ws_url) as clt:
        warning = by.warning()
        frame = cby.seal(warning)
        await cby.send(frame)
        first = await cby.accepted()
        delivered = await clt.delivered()
        receipt = replace(lt.receipt(warning), kid=net.keys["LT"].public.kid)
        await clt.send(clt.seal(receipt))
        await clt.accepted()
        await cby.send(frame)
        assert await cby.accepted() == first
        later = replace(by.warning(), kid=net.keys["BY"].public.kid)
        await cby.send(cby.seal(later))
        await cby.accepted()
        following = await clt.delivered()
        assert open_envelope(following.frame, net.network).body.id == later.id
        assert delivered.index < following.index


async def test_pending_deliveries_survive_a_relay_restart(net: TestNet, tmp_path: Path) -> None:
    """A message accepted before a restart is delivered after it, rebuilt from the log."""
    config = relay_config(net, tmp_path / "relay")
    running = await start_relay(config)
    by = Author("BY")
    warning = by.warning()
    async with RawClient(net, "BY", running.ws_url) as cby:
        await cby.send(cby.seal(warning))
        assert isinstance(await cby.accepted(), Accepted)
    await running.stop()
    running = await start_relay(config)
    try:
        async with RawClient(net, "LT", running.ws_url) as clt:
            body = open_envelope((await clt.delivered()).frame, net.network).body
            assert body.id == warning.id
        async with RawClient(net, "BY", running.ws_url) as cby:
            again = replace(by.warning(), kid=net.keys["BY"].public.kid)
            await cby.send(cby.seal(again))
            result = await cby.accepted()
            assert isinstance(result, Accepted)
    finally:
        await running.stop()


async def test_receipts_missed_while_offline_are_sent_after_since(
    net: TestNet, relay: RunningRelay
) -> None:
    """A sender that was away gets the receipts logged after the index it names."""
    by, lt = Author("BY"), Author("LT")
    warning = by.warning()
    async with RawClient(net, "BY", relay.ws_url) as cby:
        await cby.send(cby.seal(warning))
        await cby.accepted()
    async with RawClient(net, "LT", relay.ws_url) as clt:
        await clt.delivered()
        await clt.send(clt.seal(replace(lt.receipt(warning), kid=net.keys["LT"].public.kid)))
        await clt.accepted()
    async with RawClient(net, "BY", relay.ws_url, since=-1) as cby:
        message = await cby.delivered()
        assert isinstance(message, Deliver)
        body = open_envelope(message.frame, net.network).body
        assert isinstance(body, ReceiptBody)
        assert body.ref == warning.id
    assert isinstance(warning, WarningBody)


async def test_every_state_change_is_a_structured_log_event(
    net: TestNet, relay: RunningRelay
) -> None:
    """Accept, forward and receipt each log one event with the message id, link and stage,
    in the order they happened."""
    by, lt = Author("BY"), Author("LT")
    with structlog.testing.capture_logs() as events:
        async with RawClient(net, "BY", relay.ws_url) as cby, RawClient(
            net, "LT", relay.ws_url
        ) as clt:
            warning = by.warning()
            await cby.send(cby.seal(warning))
            await cby.accepted()
            await clt.delivered()
            await clt.send(clt.seal(replace(lt.receipt(warning), kid=net.keys["LT"].public.kid)))
            await clt.accepted()
            await cby.delivered()
    names = [(e["event"], e.get("id") or e.get("ref")) for e in events]
    assert ("envelope_accepted", warning.id.hex()) in names
    forwarded = next(e for e in events if e["event"] == "message_forwarded")
    assert (forwarded["id"], forwarded["link"]) == (warning.id.hex(), "BY-LT")
    receipt = next(e for e in events if e["event"] == "receipt_forwarded")
    assert (receipt["ref"], receipt["link"], receipt["stage"]) == (
        warning.id.hex(), "LT-BY", "delivered"
    )
    order = [e["event"] for e in events if e["event"] in (
        "envelope_accepted", "message_forwarded", "receipt_forwarded")]
    assert order == [  # written after the sends, but in the order they were made
        "envelope_accepted", "message_forwarded", "envelope_accepted", "receipt_forwarded"
    ]


async def test_a_note_is_written_before_the_failure_of_the_append_it_announces(
    relay: RunningRelay,
) -> None:
    """The core notes a missed deadline and asks for its overdue entry together; when the
    log refuses the entry, the operator reads the note first, then the failure."""
    await relay.relay.log.committer.close()  # the log takes no more appends
    event = LogEvent(EntryKind.OVERDUE, {"ref": bytes(16), "recipient": "LT",
                                         "stage": "delivered", "deadline": 1})
    with structlog.testing.capture_logs() as events:
        relay.relay.perform([
            LogLine("deadline_missed", {"id": "00" * 16, "link": "BY-LT"}),
            Append(encode_event_entry(1, event), 10**9, 1, event=event),
        ])
    names = [e["event"] for e in events if e["event"] in ("deadline_missed", "append_failed")]
    assert names == ["deadline_missed", "append_failed"]


async def test_a_failed_tick_is_logged_and_the_next_tick_runs(
    relay: RunningRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault in one tick does not end the ticker: it is logged as tick_failed and the
    ticks after it run as before."""
    core = relay.relay.core
    tick = core.tick
    calls: list[int] = []
    went_on = asyncio.Event()

    def failing_once(now: int) -> list[RelayAction]:
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("a fault in one tick")
        went_on.set()
        return tick(now)

    with structlog.testing.capture_logs() as events:
        monkeypatch.setattr(core, "tick", failing_once)
        await asyncio.wait_for(went_on.wait(), 10)
    failed = [e for e in events if e["event"] == "tick_failed"]
    assert [e["error"] for e in failed] == ["RuntimeError('a fault in one tick')"]


async def test_a_relay_refuses_to_start_on_an_altered_log(net: TestNet, tmp_path: Path) -> None:
    """An entry under the signed checkpoint rewritten on disk, checksum and all, stops the relay."""
    config = relay_config(net, tmp_path / "relay")
    running = await start_relay(config)
    by = Author("BY")
    async with RawClient(net, "BY", running.ws_url) as cby:
        await cby.send(cby.seal(by.warning()))
        assert isinstance(await cby.accepted(), Accepted)
    await running.stop()
    store = FileStore(tmp_path / "relay" / "store")
    index = next(i for i in range(store.size) if b"BY-LT" in store.read(i))
    entry = store.read(index)
    store.close()
    altered = entry.replace(b"BY-LT", b"BY-LV")
    segment = next((tmp_path / "relay" / "store").glob("*.seg"))
    data = segment.read_bytes()
    assert data.count(encode_record(index, entry)) == 1
    segment.write_bytes(data.replace(encode_record(index, entry), encode_record(index, altered)))
    snapshot = tmp_path / "relay" / SNAPSHOT_FILE
    saved = snapshot.read_bytes()
    snapshot.unlink()  # no snapshot: the whole log is replayed and the alteration found
    with pytest.raises(StoreError, match="altered"):
        await start_relay(config)
    # From a snapshot the relay starts without reading the entries under it; it re-hashes
    # them after it starts, finds the alteration and stops itself.
    snapshot.write_bytes(saved)
    running = await start_relay(config)
    try:
        async with asyncio.timeout(30):
            await running.relay.halted.wait()
        assert "altered" in running.relay.halt_reason
        assert f"entry {index} " in running.relay.halt_reason
    finally:
        await running.stop()
