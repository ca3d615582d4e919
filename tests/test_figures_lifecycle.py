"""The figures count receipts by the lifecycle table: acknowledged implies delivered."""

from __future__ import annotations

from hotline.protocol.vocab import Stage
from tests.test_figures import T0, LogBook, hop, link, stats


def test_an_acknowledgement_without_a_delivered_receipt_counts_as_delivered() -> None:
    """An acknowledged receipt that comes first counts and times delivery, with no ack latency."""
    book = LogBook()
    warning = book.warning("BY", ("LT",), T0, crossing_at=T0 + 600_000)
    book.receipt("LT", warning, Stage.ACKNOWLEDGED, T0 + 2_000, ts=T0 + 1_990)
    row = link(book.snapshot(), "BY", "LT")
    assert (row["delivered"], row["acknowledged"]) == (1, 1)
    assert row["delivery_ms"] == stats(2_000)
    assert row["e2e_ms"] == stats(1_990)
    assert row["ack_ms"]["count"] == 0
    assert row["lead_time_s"] == row["lead_time_delivered_s"] == stats(598)


def test_a_delivered_receipt_after_the_acknowledgement_changes_nothing() -> None:
    """Receipts reordered in transit count delivery once, by the first receipt that reached it."""
    book = LogBook()
    warning = book.warning("BY", ("LT",), T0)
    book.receipt("LT", warning, Stage.ACKNOWLEDGED, T0 + 2_000)
    book.receipt("LT", warning, Stage.DELIVERED, T0 + 2_500)
    row = link(book.snapshot(), "BY", "LT")
    assert (row["delivered"], row["acknowledged"]) == (1, 1)
    assert row["delivery_ms"] == stats(2_000)


def test_a_rejection_after_an_acknowledgement_is_not_counted() -> None:
    """A receipt contradicting a final one (rejected after acknowledged) counts nowhere."""
    book = LogBook()
    warning = book.warning("BY", ("LT",), T0)
    book.receipt("LT", warning, Stage.DELIVERED, T0 + 40)
    book.receipt("LT", warning, Stage.ACKNOWLEDGED, T0 + 2_000)
    book.receipt("LT", warning, Stage.REJECTED, T0 + 3_000)
    row = link(book.snapshot(), "BY", "LT")
    assert (row["delivered"], row["acknowledged"], row["rejected"]) == (1, 1, 0)


def test_a_link_test_answered_by_an_acknowledgement_counts_as_answered() -> None:
    """An acknowledged answer to a link test reaches delivered, so the test is answered."""
    book = LogBook()
    test = book.link_test("LT", T0)
    book.receipt("LT", test, Stage.ACKNOWLEDGED, T0 + 30)
    lt = hop(book.snapshot(), "LT")
    assert (lt["tests"], lt["answered"], lt["availability"]) == (1, 1, 1.0)
