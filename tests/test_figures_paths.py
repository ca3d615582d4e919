"""Two relays' logs side by side: first deliveries per path, and what one log lacks."""

from __future__ import annotations

from hotline.figures.paths import EVIDENCE_WINDOW_MS, PathLedger, RelayLog

T0 = 1_800_000_000_000
END = T0 + 10 * EVIDENCE_WINDOW_MS  # both logs run well past the messages
M1, M2, R1, R2, R3 = (bytes([i]) * 16 for i in range(1, 6))


def _logs() -> tuple[RelayLog, RelayLog]:
    by, osce = RelayLog("by"), RelayLog("osce")
    for log in (by, osce):
        log.last_ts = END
        log.messages[M1] = ("BY", ("LT",), T0)
    by.messages[M2] = ("BY", ("LT",), T0 + 1_000)  # osce never logged M2
    # osce's link tests to BY around M2: two sent, one answered
    osce.tests[b"t1" * 8] = ("BY", T0)
    osce.tests[b"t2" * 8] = ("BY", T0 + 2_000)
    osce.answered[b"t1" * 8] = T0 + 5
    # LT's one receipt for M1, in both logs, names osce as first; a second receipt of its
    # own for M1 on by counts no more
    for log in (by, osce):
        log.firsts[R1] = (M1, "LT", "osce")
    by.firsts[R3] = (M1, "LT", "osce")
    by.firsts[R2] = (M2, "LT", "by")
    return by, osce


def test_first_deliveries_count_once_per_message_and_recipient() -> None:
    """A receipt in both logs, or a second one for one relay, is one first delivery."""
    firsts = PathLedger(_logs()).firsts()
    assert dict(firsts[("BY", "LT")]) == {"osce": 1, "by": 1}


def test_a_message_one_log_lacks_is_listed_with_the_link_test_evidence() -> None:
    """M2 is missing from osce, whose link tests to BY were not all answered then."""
    (missing,) = PathLedger(_logs()).missing()
    assert (missing.id, missing.has, missing.lacks) == (M2, "by", "osce")
    assert (missing.tests, missing.answered, missing.reachable) == (2, 1, False)
    assert "unreachable" in missing.line()


def test_a_reachable_relay_that_lacks_a_message_is_said_to_be_reachable() -> None:
    """Every link test around the message answered: the relay could reach the sender."""
    by, osce = _logs()
    osce.answered[b"t2" * 8] = T0 + 2_010
    (missing,) = PathLedger([by, osce]).missing()
    assert missing.reachable
    far = RelayLog("osce")
    far.last_ts = END
    far.tests[b"t3" * 8] = ("BY", T0 + 1_000 + EVIDENCE_WINDOW_MS + 1)
    (alone,) = PathLedger([by, far]).missing()[-1:]
    assert alone.tests == 0
    assert not alone.reachable


def test_what_one_log_holds_after_the_other_ends_is_listed_apart_not_judged() -> None:
    """by's log ends 5 min before osce's: osce's later messages are no finding against by."""
    by, osce = _logs()
    by.last_ts = T0 + 2 * EVIDENCE_WINDOW_MS
    late = {bytes([0x40 + i]) * 16: T0 + 2 * EVIDENCE_WINDOW_MS - 30_000 + i * 60_000
            for i in range(6)}  # the first within the window before by's end, the rest after
    for ident, ts in late.items():
        osce.messages[ident] = ("BY", ("LT",), ts)
        by.tests[ident[:8] * 2] = ("BY", ts)
        by.answered[ident[:8] * 2] = ts + 5  # by reached BY: would read as "dropped it"
    osce.last_ts = T0 + 7 * EVIDENCE_WINDOW_MS
    ledger = PathLedger([by, osce])
    (missing,) = ledger.missing()
    assert missing.id == M2
    after = ledger.after_end()
    assert {m.id for m in after} == set(late)
    assert all(m.ends == "by" and m.lacks == "by" for m in after)
    assert all("not in by's log; after by's bundle ends" in m.line()
               and "reachable" not in m.line()
               for m in after)


def test_nothing_is_judged_against_a_log_with_no_entries() -> None:
    """An empty log has no end to compare to: what the other holds is listed apart."""
    by, _ = _logs()
    empty = RelayLog("osce")
    assert PathLedger([by, empty]).missing() == []
    assert {m.id for m in PathLedger([by, empty]).after_end()} == {M1, M2}
