"""The servers under test: installed from Debian if missing, run on loopback, stopped by PID.

Each server gets a port the OS picks (never a default port), its own throw-away
state directory and a log file there. :class:`Server` keeps the
:class:`subprocess.Popen` it was started with; :meth:`Server.stop` signals that
PID and no other process.

- NATS (``nats-server``): JetStream with file storage. Debian 12 ships 2.9,
  which has no ``sync_interval``: the file store writes each message to the
  page cache and fsyncs on its own timer, not per message.
- Mosquitto: persistence on (``persistence true``: the in-memory store is
  written to ``mosquitto.db`` on its autosave interval and at exit, not per
  message), ``set_tcp_nodelay true``, and no cap of 20 in-flight QoS 1
  messages per client, so that 100 in flight are not throttled by the broker.
- hotline: ``hotline relay`` on a fresh network (see :mod:`peers.hotline_peer`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hotline.testing.ports import free_port

__all__ = ["Server", "ensure_installed", "spawn", "start_mosquitto", "start_nats"]

DEBIAN_PACKAGES: Final = {"nats-server": "nats-server", "mosquitto": "mosquitto"}
START_TIMEOUT_S: Final = 20.0


def binary(name: str) -> str | None:
    """The path of ``name`` on PATH or in /usr/sbin (where Debian puts both servers)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def ensure_installed(names: list[str]) -> None:
    """``apt-get install -y`` whichever of the servers is missing (``apt-get update`` first)."""
    missing = [DEBIAN_PACKAGES[n] for n in names if n in DEBIAN_PACKAGES and binary(n) is None]
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {', '.join(missing)} from Debian")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    state: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to this server's PID, then SIGKILL to the same PID if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        log = self.state / "server.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def spawn(name: str, argv: list[str], port: int, state: Path,
          timeout_s: float = START_TIMEOUT_S) -> Server:
    log = (state / "server.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=state)
    log.close()
    server = Server(name, process, port, state)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} in {timeout_s:.0f} s")


def start_nats(scratch: Path) -> Server:
    """nats-server with JetStream on file storage in ``scratch/nats``."""
    path = binary("nats-server")
    if path is None:
        raise RuntimeError("nats-server is not installed (apt-get install nats-server)")
    state = scratch / "nats"
    state.mkdir(parents=True)
    port = free_port()
    config = state / "nats.conf"
    config.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f'server_name: "bench"\n'
        "jetstream {\n"
        f'  store_dir: "{state / "jetstream"}"\n'
        "  max_memory_store: 268435456\n"
        "  max_file_store: 8589934592\n"
        "}\n"
    )
    return spawn("nats-server", [path, "-c", str(config)], port, state)


def start_mosquitto(scratch: Path) -> Server:
    """Mosquitto with persistence in ``scratch/mosquitto`` and TCP_NODELAY."""
    path = binary("mosquitto")
    if path is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    state = scratch / "mosquitto"
    state.mkdir(parents=True)
    port = free_port()
    config = state / "mosquitto.conf"
    # Run as whoever we are: as root, mosquitto would otherwise switch to the
    # 'mosquitto' user, who cannot write the throw-away state directory.
    user = pwd.getpwuid(os.geteuid()).pw_name
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"user {user}\n"
        "persistence true\n"
        f"persistence_location {state}/\n"
        "set_tcp_nodelay true\n"
        "max_inflight_messages 0\n"
        "max_queued_messages 100000\n"
        "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
    )
    return spawn("mosquitto", [path, "-c", str(config)], port, state)
