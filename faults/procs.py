"""Real ``hotline`` processes on loopback: started, SIGKILLed and stopped by their PID.

:class:`Cluster` is a fresh network of them: the relay and BY, LT, LV, EE, PL.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Final, TypeVar

import aiohttp

from faults.check import JournalView, missing, read_journals
from hotline.bootstrap import NETWORK_FILE, create_network
from hotline.testing.operators import add_operator
from hotline.testing.ports import free_port

READY_TIMEOUT_S: Final = 30.0
SETTLE_TIMEOUT_S: Final = 120.0
ENDPOINTS: Final = ("BY", "LT", "LV", "EE", "PL")
STOP_TIMEOUT_S: Final = 15.0


T = TypeVar("T")


def run_in_directory(
    keep: Path | None, prefix: str, run: Callable[[Path], Coroutine[object, object, T]]
) -> T:
    """Run a fault suite in an empty directory: ``keep`` (emptied first) to look at afterwards,
    or a temporary one removed when the run ends."""
    if keep is not None:
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        return asyncio.run(run(keep))
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return asyncio.run(run(Path(tmp)))


async def settle_journals(
    data_dirs: dict[str, Path], timeout_s: float = SETTLE_TIMEOUT_S
) -> JournalView:
    """Wait (bounded) until every message is accepted and in every recipient's journal.

    Reads the endpoints' journals four times a second: what is waited for is
    written by other processes, so there is no event to wait on here.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        view = read_journals(data_dirs)
        unaccepted, undelivered = missing(view)
        if not unaccepted and not undelivered:
            return view
        if time.monotonic() > deadline:
            _say(f"settle timed out: {len(unaccepted)} unaccepted, "
                 f"{len(undelivered)} undelivered")
            return view
        await asyncio.sleep(0.25)


class Proc:
    """One ``python -m hotline …`` child; every signal goes to its own PID."""

    def __init__(self, name: str, args: list[str], health_url: str, log_path: Path) -> None:
        self.name = name
        self.args = args
        self.health_url = health_url
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, session: aiohttp.ClientSession) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as handle:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hotline", *self.args,
                stdout=handle, stderr=handle, stdin=asyncio.subprocess.DEVNULL,
            )
        self.starts += 1
        await self._ready(session)

    async def _ready(self, session: aiohttp.ClientSession) -> None:
        """Poll the child's /healthz (bounded) until it answers; fail if it exits."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            proc = self.proc
            if proc is None or proc.returncode is not None:
                code = None if proc is None else proc.returncode
                raise RuntimeError(f"{self.name} exited ({code}); see {self.log_path}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(self.health_url) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready in {READY_TIMEOUT_S}s")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL by PID and reap it."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    def freeze(self) -> None:
        """SIGSTOP by PID: the process hangs with its sockets open, as a paused VM does."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT by PID."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        """SIGTERM by PID (a clean stop), SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.thaw()  # a frozen process would not act on SIGTERM
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            await self.kill()


def _say(text: str) -> None:
    print(f"faults: {text}", file=sys.stderr, flush=True)  # noqa: T201 - a command's progress


def _raise_limits(network_dir: Path) -> None:
    """Lift the per-sender rate so the load is never rate-limited."""
    path = network_dir / NETWORK_FILE
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^messages_per_minute = \d+$", "messages_per_minute = 100000",
                          text)
    if count != 1:
        raise RuntimeError(f"no messages_per_minute line in {path}")
    path.write_text(text, encoding="utf-8")


class Cluster:
    """A fresh network in ``root``: the relay and the endpoints as processes, not yet started.

    ``relay_port`` fixes the relay's port (default: a free one); ``relay_url_of``
    gives an endpoint the WebSocket URL it dials instead of the relay's own (a
    fault proxy in front of it).
    """

    def __init__(
        self,
        root: Path,
        *,
        relay_port: int | None = None,
        relay_url_of: Callable[[str], str] | None = None,
    ) -> None:
        self.root = root
        relay_port = free_port() if relay_port is None else relay_port
        ws = f"ws://127.0.0.1:{relay_port}/v1/ws"
        self.network = create_network(root, relay_url=ws)
        _raise_limits(root)
        self.relay_dir = root / "relay"
        self.relay = Proc(
            "relay",
            ["relay", "--network", str(root), "--data", str(self.relay_dir),
             "--host", "127.0.0.1", "--port", str(relay_port)],
            f"http://127.0.0.1:{relay_port}/healthz", root / "logs" / "relay.log",
        )
        self.data_dirs = {e: root / "endpoints" / e for e in ENDPOINTS}
        for data in self.data_dirs.values():
            add_operator(data)  # the harness logs in as this officer (LoggedIn)
        self.urls: dict[str, str] = {}
        self.endpoints: dict[str, Proc] = {}
        for party in ENDPOINTS:
            port = free_port()
            self.urls[party] = f"http://127.0.0.1:{port}"
            dial = ws if relay_url_of is None else relay_url_of(party)
            self.endpoints[party] = Proc(
                party,
                ["endpoint", "--network", str(root), "--id", party,
                 "--data", str(self.data_dirs[party]), "--host", "127.0.0.1",
                 "--port", str(port), "--relay-url", dial],
                self.urls[party] + "/healthz", root / "logs" / f"{party}.log",
            )
        self.peers = {
            party: sorted(p for p in ENDPOINTS if p != party and self.network.linked(party, p))
            for party in ENDPOINTS
        }
        self.down: set[str] = set()

    def is_up(self, party: str) -> bool:
        return party not in self.down

    async def start_all(self, session: aiohttp.ClientSession) -> None:
        await self.relay.start(session)
        await asyncio.gather(*(p.start(session) for p in self.endpoints.values()))

    async def stop_all(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.endpoints.values()))
        await self.relay.stop()

    async def kill_all(self) -> None:
        await asyncio.gather(*(p.kill() for p in self.endpoints.values()))
        await self.relay.kill()

    async def crash(self, session: aiohttp.ClientSession, target: str) -> None:
        """SIGKILL ``target`` by PID, then start it again on the same data dir."""
        if target == "relay":
            await self.relay.kill()
            await self.relay.start(session)
            return
        self.down.add(target)
        try:
            await self.endpoints[target].kill()
            await self.endpoints[target].start(session)
        finally:
            self.down.discard(target)

    async def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> JournalView:
        """Wait (bounded) until every message is accepted and in every recipient's journal."""
        return await settle_journals(self.data_dirs, timeout_s)

    async def connected(self, session: aiohttp.ClientSession) -> set[str]:
        """The endpoints whose ``/healthz`` says the relay has welcomed them."""
        out: set[str] = set()
        for party, url in self.urls.items():
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
                async with session.get(url + "/healthz") as r:
                    if (await r.json()).get("connected") is True:
                        out.add(party)
        return out

    async def api_checks(self, session: aiohttp.ClientSession) -> tuple[int, int]:
        """(Duplicate ids in /api/inbox lists, endpoints whose checkpoint is inconsistent)."""
        duplicates = inconsistent = 0
        for url in self.urls.values():
            async with session.get(url + "/api/inbox") as r:
                ids = [m["id"] for m in (await r.json())["messages"]]
            duplicates += len(ids) - len(set(ids))
            async with session.get(url + "/api/checkpoint") as r:
                checkpoint = await r.json()
            inconsistent += checkpoint["consistent"] is False
        return duplicates, inconsistent
