"""Hostile input at the relay: each answered with its code, nothing accepted, session sane."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import aiohttp
import msgpack
import pytest

from hotline.protocol.bodies import WarningBody
from hotline.protocol.envelope import seal_bytes
from hotline.protocol.schema import encode_body
from hotline.protocol.session import (
    AUTH_FAILED_CLOSE,
    Accepted,
    Auth,
    RejectedNotice,
    auth_signature,
    encode_control,
)
from hotline.relay.server import RunningRelay
from tests.factories import TestNet
from tests.relay.client import TIMEOUT, RawClient
from tests.relay.conftest import Author


def _forge_signature(client: RawClient, body: WarningBody) -> bytes:
    frame = bytearray(client.seal(body))
    frame[-1] ^= 0x01
    return bytes(frame)


def _signed_by_lt_as_by(client: RawClient, body: WarningBody) -> bytes:
    stamped = replace(body, kid=client.net.keys["BY"].public.kid)
    return seal_bytes(encode_body(stamped), client.net.keys["LT"])


def _from_the_future(body: WarningBody) -> WarningBody:
    return replace(body, ts=body.ts + 3_600_000, expires=body.expires + 7_200_000)


Forge = Callable[[RawClient, Author, Author], bytes]

CASES: dict[str, Forge] = {
    "bad_signature": lambda c, a, b: _forge_signature(c, a.warning()),
    "mis_keyed": lambda c, a, b: _signed_by_lt_as_by(c, a.warning()),
    "sender_mismatch": lambda c, a, b: c.seal(b.warning(to=("BY",))),
    "stale": lambda c, a, b: c.seal(_from_the_future(a.warning())),
    "link_forbidden": lambda c, a, b: c.seal(a.warning(to=("EE",))),
    "garbage": lambda c, a, b: b"\x93\x01\xc4\x01",
}
EXPECTED = {
    "bad_signature": "bad_signature", "mis_keyed": "bad_signature",
    "sender_mismatch": "sender_mismatch", "stale": "stale", "link_forbidden": "link_forbidden",
    "garbage": "bad_frame",
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_hostile_frame_gets_its_code_and_the_session_goes_on(
    net: TestNet, relay: RunningRelay, case: str
) -> None:
    """The frame is refused with its code, nothing is logged for it, a good frame follows."""
    by, lt = Author("BY"), Author("LT")
    async with RawClient(net, "BY", relay.ws_url) as client:
        before = dict(relay.relay.core.counters.accepted)
        await client.send(CASES[case](client, by, lt))
        result = await client.accepted()
        assert isinstance(result, RejectedNotice), result
        assert result.code == EXPECTED[case]
        assert relay.relay.core.counters.accepted == before
        await client.send(client.seal(by.warning()))
        assert isinstance(await client.accepted(), Accepted)


async def test_an_oversize_frame_is_too_large(net: TestNet, relay: RunningRelay) -> None:
    """A frame over the configured maximum is refused as too_large before decoding."""
    async with RawClient(net, "BY", relay.ws_url) as client:
        await client.send(b"\x93" + b"\x00" * (net.network.limits.max_frame_bytes + 10))
        result = await client.accepted()
        assert isinstance(result, RejectedNotice)
        assert result.code == "too_large"


async def test_a_replayed_id_and_an_old_seq_are_replays(net: TestNet, relay: RunningRelay) -> None:
    """The same id with another body, and a seq not above the last, are both replay."""
    by = Author("BY")
    async with RawClient(net, "BY", relay.ws_url) as client:
        first = by.warning()
        await client.send(client.seal(first))
        assert isinstance(await client.accepted(), Accepted)
        await client.send(client.seal(replace(by.warning(), id=first.id)))
        result = await client.accepted()
        assert isinstance(result, RejectedNotice)
        assert (result.code, "id" in result.sentence) == ("replay", True)
        await client.send(client.seal(replace(by.warning(), seq=first.seq)))
        result = await client.accepted()
        assert isinstance(result, RejectedNotice)
        assert (result.code, "seq" in result.sentence) == ("replay", True)


async def test_text_frames_and_unknown_controls_are_refused(
    net: TestNet, relay: RunningRelay
) -> None:
    """A text frame is bad_frame; a control the relay does not take is schema."""
    async with RawClient(net, "BY", relay.ws_url) as client:
        assert client.ws is not None
        await client.ws.send_str("hello")
        result = await client.accepted()
        assert isinstance(result, RejectedNotice)
        assert result.code == "bad_frame"
        await client.send(msgpack.packb({"t": "welcome", "id": "BY", "size": 1}))
        result = await client.accepted()
        assert isinstance(result, RejectedNotice)
        assert result.code == "schema"


@pytest.mark.parametrize("who", ["stranger", "wrong key", "not auth"])
async def test_bad_authentication_is_closed_with_a_reason(
    net: TestNet, relay: RunningRelay, who: str
) -> None:
    """Unknown ids and wrong keys close the socket with 4401 and their code; an envelope
    before auth with not_authenticated, as protocol.md says."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(relay.ws_url)
        challenge = await ws.receive_bytes(timeout=TIMEOUT)
        if who == "stranger":
            answer = encode_control(Auth("XX", auth_signature(challenge, "XX", net.keys["BY"])))
        elif who == "wrong key":
            answer = encode_control(Auth("LT", auth_signature(challenge, "LT", net.keys["BY"])))
        else:
            answer = msgpack.packb([1, b"", b""])
        await ws.send_bytes(answer)
        message = await ws.receive(timeout=TIMEOUT)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == AUTH_FAILED_CLOSE
        assert isinstance(message.extra, str)
        expected = {"stranger": "unknown_sender", "wrong key": "bad_signature",
                    "not auth": "not_authenticated"}[who]
        assert message.extra.split(":")[0] == expected
        await ws.close()
