"""The container health probe: is the process this image runs answering?

Run as ``python -m hotline.healthprobe`` by the image's ``HEALTHCHECK``. It reads
the command line of the container's first process (``/proc/1/cmdline``), so one
probe serves the relay and the endpoints whatever flags they were started with:

- the port is ``--port`` (default 8700 for the relay, 8800 for an endpoint);
- over https when the process serves TLS (``--tls-cert`` for the relay,
  ``--api-tls-cert`` for an endpoint), else http;
- when the process requires client certificates (``--tls-client-ca``,
  ``--api-client-ca``) the probe has none to show, so it only checks that the
  port accepts connections.

The probe talks to its own loopback port and checks liveness, not identity: the
server's certificate is not verified here (an endpoint verifies the relay's).
Exit status 0 means healthy, 1 means not.
"""

from __future__ import annotations

import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["main", "probe"]

_DEFAULT_PORTS: Final = {True: 8700, False: 8800}
_TIMEOUT_S: Final = 3.0


def probe(args: Sequence[str], host: str = "127.0.0.1") -> bool:
    """Whether the server started with the command line ``args`` answers on ``host``."""
    relay = "relay" in args
    port = _DEFAULT_PORTS[relay]
    if "--port" in args[:-1]:
        port = int(args[list(args).index("--port") + 1])
    if ("--tls-client-ca" if relay else "--api-client-ca") in args:
        try:
            socket.create_connection((host, port), timeout=_TIMEOUT_S).close()
        except OSError:
            return False
        return True
    tls = ("--tls-cert" if relay else "--api-tls-cert") in args
    url = f"{'https' if tls else 'http'}://{host}:{port}/healthz"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # liveness of our own port, not the peer's identity
    try:
        # S310: the URL is built above from a fixed scheme and loopback host.
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S, context=context) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def main() -> int:
    args = Path("/proc/1/cmdline").read_text(encoding="utf-8", errors="replace").split("\0")
    return 0 if probe(args) else 1


if __name__ == "__main__":
    sys.exit(main())
