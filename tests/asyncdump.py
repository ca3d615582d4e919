"""A test that hangs on an await names it: every asyncio task's chain of awaits is written out.

pytest's ``faulthandler_timeout`` writes every thread's stack when a test runs too
long, but a test stuck on an await shows there only the event loop waiting in
``select``. At the same moment the hooks in ``tests/conftest.py`` have each running
event loop write all its tasks, each with the awaits it is suspended in (file, line,
function, innermost last), to the terminal as faulthandler does (not to the test's
captured output). A loop stuck in a call that never returns cannot write them; the
thread stacks name that call.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import IO

import pytest

_DEPTH = 64
"""Awaits followed per task at most (a chain of awaits is a few dozen deep at most)."""


def await_chain(task: asyncio.Task[object]) -> list[str]:
    """Where ``task`` is suspended: one line per coroutine in its chain of awaits."""
    lines: list[str] = []
    link: object = task.get_coro()
    for _ in range(_DEPTH):
        frame = next((getattr(link, name) for name in ("cr_frame", "gi_frame", "ag_frame")
                      if getattr(link, name, None) is not None), None)
        if frame is not None:
            code = frame.f_code
            lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        following = next((getattr(link, name) for name in ("cr_await", "gi_yieldfrom", "ag_await")
                          if getattr(link, name, None) is not None), None)
        if following is None:
            break
        if isinstance(following, asyncio.Future):
            lines.append(f"  awaiting {following!r}"[:300])
            break
        link = following
    return lines


def task_report(loop: asyncio.AbstractEventLoop) -> str:
    """Every task of ``loop`` with its chain of awaits."""
    out = ["asyncio tasks of the running event loop, innermost await last:"]
    for task in asyncio.all_tasks(loop):
        out.append(f"{task!r}"[:300])
        out.extend(await_chain(task))
    return "\n".join(out) + "\n"


class TaskDumper:
    """After ``after_s`` of one test (its set-up and tear-down included), each running event
    loop writes its tasks to ``stream``."""

    def __init__(self, after_s: float, stream: IO[str]) -> None:
        self.after_s = after_s
        self.stream = stream
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        self._timer = threading.Timer(self.after_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        loops = [o for o in gc.get_objects()
                 if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]
        for loop in loops:
            loop.call_soon_threadsafe(self._write, loop)

    def _write(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stream.write(f"\nStill running after {self.after_s:.0f} s. " + task_report(loop))
        self.stream.flush()


_dumper: TaskDumper | None = None


def configure(config: pytest.Config) -> None:
    """Arm the dump at ``faulthandler_timeout`` (none when it is 0), writing to the terminal."""
    global _dumper  # noqa: PLW0603 - one per test session, as faulthandler's own
    after_s = float(config.getini("faulthandler_timeout") or 0)
    if after_s > 0:
        # Capturing is suspended while plugins are configured: fd 2 is the terminal here.
        _dumper = TaskDumper(after_s, os.fdopen(os.dup(2), "w"))


def unconfigure() -> None:
    global _dumper  # noqa: PLW0603
    if _dumper is not None:
        _dumper.cancel()
        _dumper.stream.close()
        _dumper = None


def started() -> None:
    if _dumper is not None:
        _dumper.start()


def ended() -> None:
    if _dumper is not None:
        _dumper.cancel()
