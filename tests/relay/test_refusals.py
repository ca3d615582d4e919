"""Every refusal is signed by the relay, names what it refused, and costs a bounded budget."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import replace

import aiohttp
import msgpack

from hotline.errors import RejectCode
from hotline.network import Limits
from hotline.protocol.admission import SESSIONS_PER_MINUTE
from hotline.protocol.bodies import RefusedBody
from hotline.protocol.envelope import open_envelope, seal
from hotline.protocol.schema import encode_body
from hotline.protocol.session import (
    AUTH_FAILED_CLOSE,
    REFUSAL_FLOOD_CLOSE,
    Auth,
    RejectedNotice,
    auth_signature,
    decode_control,
    encode_control,
)
from hotline.relay.core import REFUSALS_BURST, REFUSALS_PER_S, Close, LogLine, RelayCore, Send
from hotline.relay.server import RunningRelay
from tests.factories import TestNet, make_network
from tests.relay.client import TIMEOUT, RawClient
from tests.relay.conftest import Author, now_ms


def _core(net: TestNet) -> RelayCore:
    counter = itertools.count(1)
    core = RelayCore(net.network, net.keys["relay"], lambda n: next(counter).to_bytes(n, "big"))
    core.connected("BY", now_ms())
    return core


def _refusal(net: TestNet, actions: Sequence[object]) -> tuple[RejectedNotice, RefusedBody]:
    """The one rejected control sent, and its relay-signed refused body (verified)."""
    (send,) = [a for a in actions if not isinstance(a, LogLine)]
    assert isinstance(send, Send)
    notice = decode_control(send.data)
    assert isinstance(notice, RejectedNotice)
    body = open_envelope(notice.frame, net.network).body
    assert isinstance(body, RefusedBody)
    assert body.sender == net.network.relay.id
    return notice, body


def test_a_refused_envelope_gets_a_relay_signed_refusal_naming_it() -> None:
    """The refused body names the message (ref, body hash, frame hash) and repeats the v1 fields."""
    net = make_network(links=[("BY", "LT")])
    core = _core(net)
    warning = Author("BY").warning(to=("LV",))
    frame = net.seal(warning)
    notice, body = _refusal(net, core.receive("BY", frame, now_ms()))
    assert (body.code, body.ref, body.retry_after_ms) == (
        RejectCode.LINK_FORBIDDEN, warning.id, None
    )
    assert body.hash == hashlib.sha256(encode_body(replace(
        warning, kid=net.keys["BY"].public.kid
    ))).digest()
    assert body.frame_hash == hashlib.sha256(frame).digest()
    assert (notice.ref, notice.code, notice.sentence) == (warning.id, body.code, body.sentence)


def test_bytes_that_are_no_envelope_are_refused_by_their_frame_hash_alone() -> None:
    """Garbage has no readable body: the refusal carries only the hash of the bytes."""
    net = make_network()
    core = _core(net)
    notice, body = _refusal(net, core.receive("BY", b"\x93\x01\xc4", now_ms()))
    assert (body.code, body.ref, body.hash) == (RejectCode.BAD_FRAME, None, None)
    assert body.frame_hash == hashlib.sha256(b"\x93\x01\xc4").digest()
    assert notice.ref == b""


def test_a_rate_limited_refusal_says_when_to_retry() -> None:
    """rate_limited is temporary: the signed refusal carries retry_after_ms from the budget."""
    net = make_network(limits=Limits(messages_per_minute=60))
    core = _core(net)
    author = Author("BY")
    refusals = []
    for _ in range(12):
        for action in core.receive("BY", net.seal(author.warning()), now_ms()):
            if isinstance(action, Send):
                refusals.append(_refusal(net, [action])[1])
    assert refusals, "the burst of 10 must run out within 12 messages"
    assert refusals[0].code is RejectCode.RATE_LIMITED
    assert refusals[0].retry_after_ms is not None
    assert 0 < refusals[0].retry_after_ms <= 1_001


def test_a_session_drawing_refusals_too_fast_is_closed_not_answered() -> None:
    """After REFUSALS_BURST signed refusals at once the next is a close with 4429; time refills."""
    net = make_network()
    core = _core(net)
    now = now_ms()
    for _ in range(REFUSALS_BURST):
        assert isinstance(core.receive("BY", b"\xc1", now)[-1], Send)
    *notes, closing = core.receive("BY", b"\xc1", now)
    assert [n.event for n in notes if isinstance(n, LogLine)] == [
        "envelope_rejected", "refusal_flood_closed",
    ]
    assert isinstance(closing, Close)
    assert (closing.party, closing.code) == ("BY", REFUSAL_FLOOD_CLOSE)
    assert closing.reason.startswith("refused_flood: ")
    assert core.counters.refusal_floods == 1
    later = now + 1000 // REFUSALS_PER_S
    assert isinstance(core.receive("BY", b"\xc1", later)[-1], Send)


def test_an_unsigned_control_notice_still_encodes_as_version_1() -> None:
    """A notice without a frame has no frame field on the wire, and decodes back to b''."""
    data = encode_control(RejectedNotice(b"", "bad_frame", "not MessagePack"))
    assert "frame" not in msgpack.unpackb(data)
    assert decode_control(data) == RejectedNotice(b"", "bad_frame", "not MessagePack")


async def test_a_live_relay_signs_refusals_of_envelopes_and_of_text_frames(
    net: TestNet, relay: RunningRelay
) -> None:
    """Over a real session, a replayed seq and a text frame both come back relay-signed."""
    by = Author("BY")
    async with RawClient(net, "BY", relay.ws_url) as client:
        first = by.warning()
        await client.send(client.seal(first))
        await client.accepted()
        stale = client.seal(replace(by.warning(), seq=first.seq))
        await client.send(stale)
        notice = await client.accepted()
        assert isinstance(notice, RejectedNotice)
        body = open_envelope(notice.frame, net.network).body
        assert isinstance(body, RefusedBody)
        assert (body.code, body.frame_hash) == (
            RejectCode.REPLAY, hashlib.sha256(stale).digest()
        )
        assert client.ws is not None
        await client.ws.send_str("hello")
        notice = await client.accepted()
        assert isinstance(notice, RejectedNotice)
        body = open_envelope(notice.frame, net.network).body
        assert isinstance(body, RefusedBody)
        assert (body.code, body.frame_hash) == (
            RejectCode.BAD_FRAME, hashlib.sha256(b"hello").digest()
        )


def test_the_relay_signs_nothing_an_endpoint_may_send_as_refused() -> None:
    """An endpoint-signed refused body is refused: only the relay signs refusals."""
    net = make_network()
    core = _core(net)
    forged = RefusedBody(
        id=Author("BY").header()["id"],  # type: ignore[arg-type]
        sender="BY", ts=now_ms(), seq=99, kid=net.keys["BY"].public.kid,
        frame_hash=bytes(32), code=RejectCode.STALE, sentence="made up",
    )
    _, body = _refusal(net, core.receive("BY", seal(forged, net.keys["BY"]), now_ms()))
    assert (body.code, body.path) == (RejectCode.SCHEMA, "t")


async def test_an_endpoint_reconnecting_too_often_is_refused_but_its_address_is_not_blocked(
    net: TestNet, relay: RunningRelay
) -> None:
    """Past its session budget LT is closed with 4401 rate_limited; BY, same address, connects."""
    for _ in range(SESSIONS_PER_MINUTE):
        async with RawClient(net, "LT", relay.ws_url):
            pass
    async with aiohttp.ClientSession() as session:
        for _ in range(6):  # more than the guard's 5 failures: none of these is a failure
            async with session.ws_connect(relay.ws_url) as ws:
                challenge = await ws.receive_bytes(timeout=TIMEOUT)
                signature = auth_signature(challenge, "LT", net.keys["LT"])
                await ws.send_bytes(encode_control(Auth("LT", signature)))
                closing = await ws.receive(timeout=TIMEOUT)
                assert closing.type is aiohttp.WSMsgType.CLOSE
                assert closing.data == AUTH_FAILED_CLOSE
                assert str(closing.extra).startswith("rate_limited: ")
    async with RawClient(net, "BY", relay.ws_url) as client:
        assert client.welcome is not None
