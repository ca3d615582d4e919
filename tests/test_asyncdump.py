"""A hung test's asyncio tasks are written out with the awaits they are stuck in."""

from __future__ import annotations

import asyncio
import io

from tests.asyncdump import TaskDumper, task_report

TIMEOUT = 5.0


class _Seen(io.StringIO):
    """A stream that says when something was written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        count = super().write(text)
        self.written.set()
        return count


async def _inner(gate: asyncio.Event) -> None:
    await gate.wait()


async def _outer(gate: asyncio.Event) -> None:
    await _inner(gate)


async def test_a_task_report_names_each_await_a_task_is_suspended_in() -> None:
    """A task waiting two coroutines deep is listed with both, innermost last, then the wait."""
    gate = asyncio.Event()
    task = asyncio.create_task(_outer(gate), name="waiting-on-the-gate")
    for _ in range(3):  # a few turns of the loop (no timed wait): the task reaches the gate
        await asyncio.sleep(0)
    try:
        lines = task_report(asyncio.get_running_loop()).splitlines()
    finally:
        gate.set()
        await asyncio.wait({task}, timeout=TIMEOUT)
    start = next(i for i, line in enumerate(lines) if "waiting-on-the-gate" in line)
    chain = lines[start + 1:start + 4]
    assert chain[0].endswith("in _outer")
    assert chain[1].endswith("in _inner")
    assert chain[2].endswith("in wait")
    assert "locks.py" in chain[2]


async def test_the_dumper_has_the_running_loop_write_its_tasks_when_the_time_is_up() -> None:
    """Armed for a moment, the dumper has this loop write its tasks, this test's among them."""
    seen = _Seen()
    dumper = TaskDumper(0.05, seen)
    dumper.start()
    try:
        await asyncio.wait_for(seen.written.wait(), TIMEOUT)
    finally:
        dumper.cancel()
    assert "Still running after 0 s" in seen.getvalue()
    assert "test_the_dumper_has_the_running_loop_write_its_tasks" in seen.getvalue()
