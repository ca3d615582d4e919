"""Loopback ports for the servers that tests, benchmarks, demos and fault runs start.

Binding port 0 asks the kernel for a port from its ephemeral range, the same
range it draws from for the local end of every outgoing connection. A port
picked that way and bound later by a child process can be taken in between by
any outgoing connection (a NATS node dialling its routes, an endpoint dialling
the relay), and the child then fails with "address already in use". The ports
here come from below the ephemeral range instead, are checked free by binding
them, and are never handed out twice by one process.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = ["free_port", "free_port_run", "reserve"]

_RANGE_FILE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST: Final = 10_000
_DEFAULT_EPHEMERAL_START: Final = 32_768
_TRIES: Final = 200

_given: set[int] = set()
_random = random.SystemRandom()


def _ephemeral_start() -> int:
    try:
        return int(_RANGE_FILE.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_START


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def reserve(ports: Iterable[int]) -> None:
    """Never hand out ``ports``: a process given a base port keeps its other servers off it."""
    _given.update(ports)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, outside the ephemeral range, not given out before."""
    top = _ephemeral_start()
    if top - _LOWEST > _TRIES:
        for _ in range(_TRIES):
            port = _random.randrange(_LOWEST, top)
            if port not in _given and _bindable(port, host):
                _given.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))  # no room below the ephemeral range: let the kernel choose
        chosen: int = sock.getsockname()[1]
    _given.add(chosen)
    return chosen


def free_port_run(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive ports free on ``host`` now, outside the ephemeral range.

    For commands that take a base port and number their servers from it
    (``hotline demo --base-port``).
    """
    top = _ephemeral_start()
    for _ in range(_TRIES):
        base = _random.randrange(_LOWEST, max(_LOWEST + 1, top - count))
        run = range(base, base + count)
        if not _given.intersection(run) and all(_bindable(port, host) for port in run):
            _given.update(run)
            return base
    raise OSError(f"no {count} consecutive free ports on {host}")
