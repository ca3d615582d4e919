"""Test-wide settings.

Hypothesis runs without per-example deadlines: speed is measured by the
benchmarks in bench/, never by unit tests, and a loaded CI machine must not
turn a slow example into a failure.

A test still running at ``faulthandler_timeout`` has, besides its threads'
stacks, every asyncio task's chain of awaits written out (``tests/asyncdump.py``).
"""

from collections.abc import Generator

import pytest
from hypothesis import settings

from tests import asyncdump

settings.register_profile("hotline", deadline=None)
settings.load_profile("hotline")


def pytest_configure(config: pytest.Config) -> None:
    asyncdump.configure(config)


def pytest_unconfigure() -> None:
    asyncdump.unconfigure()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    asyncdump.started()
    try:
        return (yield)
    finally:
        asyncdump.ended()
