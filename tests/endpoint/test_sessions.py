"""Operator sessions: the idle timeout, logout, the bound on their number (a fake clock)."""

from __future__ import annotations

from hotline.endpoint.operators import Operator, Role
from hotline.endpoint.sessions import MAX_SESSIONS, SessionStore

ANNA = Operator("anna", Role.OFFICER)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_the_idle_timeout_and_each_request_restarts_it() -> None:
    """Found at 29 min idle (which restarts it), gone 30 min and a moment after the last use."""
    clock = Clock()
    store = SessionStore(clock, idle_s=1800)
    token, session = store.start(ANNA)
    clock.now += 1799
    assert store.find(token) is session
    clock.now += 1799
    assert store.find(token) is session
    clock.now += 1801
    assert store.find(token) is None
    assert store.find(token) is None  # and it stays gone
    assert not session.logged_out  # an idle end leaves open event streams alone


def test_logout_ends_the_session_and_marks_it_for_its_streams() -> None:
    """After end() the token finds nothing and the session says it was logged out."""
    store = SessionStore(Clock())
    token, session = store.start(ANNA)
    store.end(token)
    assert store.find(token) is None
    assert session.logged_out


def test_tokens_and_csrf_tokens_are_distinct_and_checked_exactly() -> None:
    """Two logins get different cookies and CSRF tokens; only the exact token matches."""
    store = SessionStore(Clock())
    first_token, first = store.start(ANNA)
    second_token, second = store.start(ANNA)
    assert first_token != second_token
    assert first.csrf != second.csrf
    assert first.csrf_matches(first.csrf)
    assert not first.csrf_matches(second.csrf)
    assert not first.csrf_matches(None)
    assert not first.csrf_matches(first.csrf[:-1])
    assert store.find("not a token") is None
    assert store.find(None) is None


def test_the_number_of_sessions_is_bounded() -> None:
    """Past MAX_SESSIONS logins the least recently used session is ended."""
    clock = Clock()
    store = SessionStore(clock)
    oldest_token, oldest = store.start(ANNA)
    for _ in range(MAX_SESSIONS):
        clock.now += 0.001
        store.start(ANNA)
    assert store.find(oldest_token) is None
    assert oldest.logged_out
