"""The log format: one JSON line per event on stderr, stamped in UTC; held events in one write."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import structlog
import structlog.testing

from hotline.logs import configure_logging, log_infos, one_write

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


class _CountingStderr(io.StringIO):
    """stderr that counts the writes it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[_CountingStderr]:
    captured = _CountingStderr()
    # the test runner swaps sys.stderr around each test phase: hand the module its own
    monkeypatch.setattr("hotline.logs.sys", SimpleNamespace(stderr=captured))
    configure_logging()
    try:
        yield captured
    finally:
        structlog.reset_defaults()


def _lines(stderr: _CountingStderr) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.getvalue().splitlines()]


def test_an_event_is_one_json_line_with_its_name_level_and_a_utc_stamp(
    stderr: _CountingStderr,
) -> None:
    """An event is written at once as one JSON line: its fields, name, level and UTC time."""
    before = datetime.now(UTC)
    structlog.get_logger("t").info("envelope_accepted", id="ab", index=7, to="LT,LV")
    after = datetime.now(UTC)
    (line,) = _lines(stderr)
    stamp = str(line.pop("timestamp"))
    assert line == {"id": "ab", "index": 7, "to": "LT,LV", "event": "envelope_accepted",
                    "level": "info"}
    assert STAMP.match(stamp), stamp
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before - timedelta(microseconds=1) <= when <= after + timedelta(microseconds=1)


def test_stamps_follow_the_clock_across_seconds(
    stderr: _CountingStderr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The date part reused within a second changes with the second; microseconds are padded."""
    times = iter([1_796_000_000_000_001_999, 1_796_000_000_500_000_000, 1_796_000_001_250_000_000])
    clock = SimpleNamespace(time_ns=lambda: next(times), strftime=time.strftime, gmtime=time.gmtime)
    monkeypatch.setattr("hotline.logs.time", clock)
    log = structlog.get_logger("t")
    for n in range(3):
        log.info("tick_failed", n=n)
    stamps = [line["timestamp"] for line in _lines(stderr)]
    assert stamps == ["2026-11-30T00:53:20.000001Z", "2026-11-30T00:53:20.500000Z",
                      "2026-11-30T00:53:21.250000Z"]


def test_values_json_cannot_hold_are_written_as_their_repr(stderr: _CountingStderr) -> None:
    """A value JSON has no form for is written as its repr, not dropped and not a crash."""
    structlog.get_logger("t").info("checkpoint_signed", raw=b"\x01", kinds={"warning"})
    (line,) = _lines(stderr)
    assert line["raw"] == "b'\\x01'"
    assert line["kinds"] == "{'warning'}"


def test_an_exception_is_written_with_its_traceback(stderr: _CountingStderr) -> None:
    """log.exception writes the traceback into the event's line."""
    try:
        raise ValueError("disk refused")
    except ValueError:
        structlog.get_logger("t").exception("tick_failed")
    (line,) = _lines(stderr)
    assert line["level"] == "error"
    assert "ValueError: disk refused" in str(line["exception"])


def test_events_held_by_one_write_go_out_together_in_order(stderr: _CountingStderr) -> None:
    """Inside one_write nothing is written; at its end every event goes out, in order, at once."""
    log = structlog.get_logger("t")
    with one_write():
        for n in range(5):
            log.info("message_forwarded", n=n)
        with one_write():  # nested: still one write, at the end of the outer block
            log.info("receipt_forwarded", n=5)
        assert stderr.getvalue() == ""
    assert [line["n"] for line in _lines(stderr)] == [0, 1, 2, 3, 4, 5]
    assert stderr.writes == 1


def test_held_events_are_written_even_when_the_block_raises(stderr: _CountingStderr) -> None:
    """An error inside one_write loses none of the events logged before it."""
    def fails() -> None:
        with one_write():
            structlog.get_logger("t").info("envelope_accepted", n=1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails()
    assert [line["event"] for line in _lines(stderr)] == ["envelope_accepted"]
    structlog.get_logger("t").info("after", n=2)
    assert [line["event"] for line in _lines(stderr)] == ["envelope_accepted", "after"]


def test_another_threads_events_are_not_held(stderr: _CountingStderr) -> None:
    """While one thread holds its events, another thread's are written as they come."""
    with one_write():
        structlog.get_logger("t").info("held")
        worker = threading.Thread(target=lambda: structlog.get_logger("t").info("append_failed"))
        worker.start()
        worker.join(timeout=10)
        assert [line["event"] for line in _lines(stderr)] == ["append_failed"]
    assert [line["event"] for line in _lines(stderr)] == ["append_failed", "held"]


def test_a_stamp_made_while_another_thread_turns_the_second_has_its_own_second(
    stderr: _CountingStderr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread stamping while another is formatting the new second's date (the worker
    thread logs too) gets its own second, never the new second with the old date."""
    log = structlog.get_logger("t")
    now = [1_796_000_000_999_000_000]
    cut_in = [True]

    def strftime(fmt: str, parts: time.struct_time) -> str:
        text = time.strftime(fmt, parts)
        if cut_in[0] and now[0] >= 1_796_000_001_000_000_000:
            cut_in[0] = False
            log.info("cut_in")  # as another thread would, between the two updates
        return text

    clock = SimpleNamespace(time_ns=lambda: now[0], strftime=strftime, gmtime=time.gmtime)
    monkeypatch.setattr("hotline.logs.time", clock)
    log.info("before")
    now[0] = 1_796_000_001_000_100_000
    log.info("after")
    stamps = {line["event"]: line["timestamp"] for line in _lines(stderr)}
    assert stamps == {"before": "2026-11-30T00:53:20.999000Z",
                      "cut_in": "2026-11-30T00:53:21.000100Z",
                      "after": "2026-11-30T00:53:21.000100Z"}


def test_each_thread_holds_its_own_events(stderr: _CountingStderr) -> None:
    """one_write in a second thread, while the first holds, holds that thread's events too,
    and neither block writes or loses the other's."""
    log = structlog.get_logger("t")
    entered, release = threading.Event(), threading.Event()

    def worker() -> None:
        with one_write():
            log.info("worker_one")
            entered.set()
            release.wait(timeout=10)
            log.info("worker_two")

    thread = threading.Thread(target=worker)
    with one_write():
        log.info("main_one")
        thread.start()
        assert entered.wait(timeout=10)
        log.info("main_two")
    assert [line["event"] for line in _lines(stderr)] == ["main_one", "main_two"]
    release.set()
    thread.join(timeout=10)
    assert [line["event"] for line in _lines(stderr)] == [
        "main_one", "main_two", "worker_one", "worker_two"]
    assert stderr.writes == 2


class _Color(str):
    """A str subclass (as the vocabulary's enums are)."""


_NOTES: list[tuple[str, dict[str, object]]] = [
    ("envelope_accepted", {"id": "ab", "from": "BY", "index": 7, "to": "LT,LV"}),
    ("message_forwarded", {"link": "BY-LT", "attempt": 1, "ratio": 0.5, "none": None}),
    ("odd_values", {"raw": b"\x00\xff", "kind": _Color("flash"), "items": [1, "two", None],
                    "nested": {"k": (1, 2)}, "flag": True, "text": "Łódź \u202e"}),
    ("overriding", {"level": "debug", "timestamp": "then"}),
    ("empty", {}),
]


def _chain_then_batch(stderr: _CountingStderr, notes: list[tuple[str, dict[str, object]]]
                      ) -> tuple[list[str], list[str]]:
    logger = structlog.get_logger()
    for event, fields in notes:
        logger.info(event, **fields)
    chain = stderr.getvalue().splitlines()
    stderr.seek(0)
    stderr.truncate()
    stderr.writes = 0
    log_infos(notes)
    return chain, stderr.getvalue().splitlines()


def test_log_infos_writes_what_the_processor_chain_writes_byte_for_byte(
    stderr: _CountingStderr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the JSON set-up, a batch of info events renders the lines log.info would,
    byte for byte (fields in order, then event, level, stamp; repr for what JSON cannot
    hold; a field named level or timestamp overridden as the chain does), in one write."""
    monkeypatch.setattr("hotline.logs.time.time_ns", lambda: 1_796_341_750_259_308_123)
    chain, batch = _chain_then_batch(stderr, _NOTES)
    assert batch == chain
    assert len(batch) == len(_NOTES)
    assert stderr.writes == 1
    assert json.loads(batch[0])["timestamp"] == "2026-12-03T23:49:10.259308Z"


def test_log_infos_goes_through_structlog_when_another_set_up_is_in_force() -> None:
    """A test capturing events sees each of a batch as an event of its own; so does a
    console set-up; and a note carrying exc_info keeps its traceback, in order."""
    configure_logging()
    try:
        with structlog.testing.capture_logs() as captured:
            log_infos(_NOTES[:2])
        assert [(e["event"], e["log_level"]) for e in captured] == [
            ("envelope_accepted", "info"), ("message_forwarded", "info")]
    finally:
        structlog.reset_defaults()


def test_log_infos_formats_a_traceback_like_the_chain(stderr: _CountingStderr) -> None:
    """A note with exc_info goes through the chain: its traceback is written, in order."""
    try:
        raise ValueError("boom")
    except ValueError as exc:
        log_infos([("before", {}), ("failed", {"exc_info": exc}), ("after", {})])
    lines = _lines(stderr)
    assert [line["event"] for line in lines] == ["before", "failed", "after"]
    assert "ValueError: boom" in str(lines[1]["exception"])
    assert stderr.writes == 1


def test_log_infos_writes_nothing_when_info_is_filtered_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At level warning, info events are dropped, batched or not."""
    captured = _CountingStderr()
    monkeypatch.setattr("hotline.logs.sys", SimpleNamespace(stderr=captured))
    configure_logging(level=logging.WARNING)
    try:
        log_infos(_NOTES)
    finally:
        structlog.reset_defaults()
    assert captured.getvalue() == ""


def test_log_infos_refuses_a_field_named_event_as_the_chain_does(
    stderr: _CountingStderr,
) -> None:
    """A field named event cannot be logged by log.info; a batch holding one fails the same
    way under every set-up, rather than losing the field on one of them."""
    fields: dict[str, object] = {"event": "x"}
    with pytest.raises(TypeError, match="event"):
        structlog.get_logger().info("note", **fields)
    with pytest.raises(TypeError, match="event"):
        log_infos([("note", fields)])
