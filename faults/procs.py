"""Real ``hotline`` processes on loopback: started, SIGKILLed and stopped by their PID."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Final

import aiohttp

READY_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 (bound and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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

    async def stop(self) -> None:
        """SIGTERM by PID (a clean stop), SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            await self.kill()
