"""A live relay: receipts only from recipients with the right hash, and FLASH never starved."""

from __future__ import annotations

from dataclasses import replace

from hotline.errors import RejectCode
from hotline.protocol.bodies import RefusedBody
from hotline.protocol.envelope import body_hash, open_envelope
from hotline.protocol.schema import encode_body
from hotline.protocol.session import Accepted, RejectedNotice
from hotline.protocol.vocab import Precedence
from hotline.relay.server import RunningRelay
from tests.factories import TestNet
from tests.relay.client import RawClient
from tests.relay.conftest import Author


def _signed_code(net: TestNet, result: Accepted | RejectedNotice) -> RejectCode:
    assert isinstance(result, RejectedNotice), result
    body = open_envelope(result.frame, net.network).body
    assert isinstance(body, RefusedBody)
    return body.code


async def test_110_routine_posts_do_not_make_a_flash_warning_rate_limited(
    net: TestNet, relay: RunningRelay
) -> None:
    """BY floods 110 routine warnings (some are rate_limited); its FLASH is accepted at once."""
    by = Author("BY")
    async with RawClient(net, "BY", relay.ws_url) as client:
        codes = []
        for _ in range(110):
            await client.send(client.seal(by.warning(precedence=Precedence.ROUTINE)))
            result = await client.accepted()
            codes.append("accepted" if isinstance(result, Accepted) else _signed_code(net, result))
        assert RejectCode.RATE_LIMITED in codes
        await client.send(client.seal(by.warning(precedence=Precedence.FLASH)))
        assert isinstance(await client.accepted(), Accepted)


async def test_the_relay_refuses_receipts_from_non_recipients_and_with_wrong_hashes(
    net: TestNet, relay: RunningRelay
) -> None:
    """LV (linked, not addressed) and LT with a wrong hash are refused; LT's right one is not."""
    by, lt, lv = Author("BY"), Author("LT"), Author("LV")
    async with (
        RawClient(net, "BY", relay.ws_url) as sender,
        RawClient(net, "LT", relay.ws_url) as recipient,
        RawClient(net, "LV", relay.ws_url) as bystander,
    ):
        warning = by.warning(to=("LT",))
        await sender.send(sender.seal(warning))
        assert isinstance(await sender.accepted(), Accepted)
        await bystander.send(bystander.seal(lv.receipt(warning)))
        assert _signed_code(net, await bystander.accepted()) is RejectCode.LINK_FORBIDDEN
        wrong = replace(lt.receipt(warning), hash=body_hash(b"something else"))
        await recipient.send(recipient.seal(wrong))
        assert _signed_code(net, await recipient.accepted()) is RejectCode.SCHEMA
        good = lt.receipt(replace(warning, kid=net.keys["BY"].public.kid))
        assert good.hash == body_hash(encode_body(replace(warning, kid=net.keys["BY"].public.kid)))
        await recipient.send(recipient.seal(good))
        assert isinstance(await recipient.accepted(), Accepted)
