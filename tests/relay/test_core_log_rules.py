"""Whatever receipts endpoints send, in whatever order, the relay core logs nothing the audit
rules blame on the relay: receipts on their way to the log included."""

from __future__ import annotations

import random
from collections import deque

import pytest

from hotline.auditlog.rules import LogRules
from hotline.protocol.bodies import Body, LinkTestBody, ReceiptBody
from hotline.protocol.envelope import open_envelope
from hotline.protocol.session import Deliver, decode_control
from hotline.protocol.vocab import Precedence, Stage
from hotline.relay.core import Append, Broadcast, Close, LogLine, RelayAction, Send
from tests.endpoint.builders import Author
from tests.relay.test_core import NET, NOW, RETRY, new_core, receipt

RECIPIENTS = ("LT", "LV", "EE")


@pytest.mark.parametrize("seed", range(8))
def test_receipts_in_any_order_and_overlap_leave_a_log_the_rules_find_sound(seed: int) -> None:
    """Receipts of every stage, repeated and contradicting, many still on their way to the log
    while more come: every one the core takes makes a log with no finding."""
    rng = random.Random(seed)
    core, author = new_core(), Author(NET)
    log: list[bytes] = []
    waiting: deque[Append] = deque()  # appends asked for, made durable later, in order
    seen: list[tuple[str, Body]] = []
    now = NOW

    def run(actions: list[RelayAction]) -> None:
        for action in actions:
            if isinstance(action, Append):
                waiting.append(action)
            elif isinstance(action, Send):
                control = decode_control(action.data)
                if isinstance(control, Deliver):
                    body = open_envelope(control.frame, NET.network).body
                    if not isinstance(body, ReceiptBody):
                        seen.append((action.party, body))
            else:
                assert isinstance(action, LogLine | Broadcast | Close)

    def settle(count: int) -> None:
        for _ in range(min(count, len(waiting))):
            append = waiting.popleft()
            log.append(append.entry)
            run(core.appended(append.token, len(log) - 1, now))

    for party in ("BY", *RECIPIENTS):
        run(core.connected(party, now))
    for _ in range(150):
        roll = rng.random()
        if roll < 0.2:
            to = tuple(sorted(rng.sample(RECIPIENTS, rng.randint(1, 3))))
            body = author.warning(sender="BY", to=to, ts=now,
                                  precedence=rng.choice(list(Precedence)))
            run(core.receive("BY", NET.seal(body), now))
        elif roll < 0.75 and seen:
            party, message = rng.choice(seen)
            stage = rng.choice([Stage.DELIVERED, Stage.ACKNOWLEDGED, Stage.REJECTED])
            if stage is Stage.ACKNOWLEDGED and isinstance(message, LinkTestBody):
                stage = Stage.DELIVERED
            run(core.receive(party, receipt(author, party, message, stage, now), now))
        elif roll < 0.85:
            run(core.tick(now))
        settle(rng.choice([0, 0, 1, 2, 5]))
        now += rng.choice([0, 1, 100, RETRY])
    settle(len(waiting))
    rules = LogRules(NET.network)
    findings = [f for index, entry in enumerate(log) for f in rules.entry(index, entry)]
    assert findings == []
