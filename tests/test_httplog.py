"""The HTTP server library's error lines become throttled http_request_failed events."""

from __future__ import annotations

import structlog.testing
from aiohttp.http_exceptions import BadHttpMessage

from hotline.httplog import LineBudget, server_logger
from hotline.lograte import LogThrottle


def test_a_handler_fault_keeps_its_traceback_and_a_parse_error_its_reason() -> None:
    """A request that was no HTTP is a warning with the parser's reason; any other fault is
    an error with its traceback; lines past the burst are counted, then reported."""
    now = [0]
    logger = server_logger("t", LogThrottle(burst=2, window_ms=1000), lambda: now[0])
    with structlog.testing.capture_logs() as events:
        try:
            raise BadHttpMessage("Invalid character in Content-Length")
        except BadHttpMessage:
            logger.exception("Error handling request from %s", "192.0.2.1")
        try:
            raise KeyError("handler bug")
        except KeyError:
            logger.exception("Error handling request from %s", "192.0.2.1")
        logger.error("Unhandled exception")  # past the burst: held back
        logger.debug("Ignored premature client disconnection")  # below warning: not an event
        now[0] = 1000
        logger.error("Unhandled exception")
    first, second, third = events
    assert first["log_level"] == "warning"
    assert first["reason"] == "Error handling request from 192.0.2.1"
    assert "Content-Length" in str(first["error"])
    assert second["log_level"] == "error"
    assert second["exc_info"][0] is KeyError
    assert third["suppressed"] == 1
    assert {e["event"] for e in events} == {"http_request_failed"}


def test_a_line_budget_adds_the_count_held_back() -> None:
    """LineBudget.admit: fields to add, None past the burst, then the count held back."""
    now = [0]
    budget = LineBudget(LogThrottle(burst=1, window_ms=10), lambda: now[0])
    assert budget.admit("operator_login_refused") == {}
    assert budget.admit("operator_login_refused") is None
    now[0] = 10
    assert budget.admit("operator_login_refused") == {"suppressed": 1}
