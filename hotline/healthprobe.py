"""The container health probe: is the process this image runs answering?

Run as ``python -m hotline.healthprobe`` by the image's ``HEALTHCHECK``. It reads
the command line of the container's first process (``/proc/1/cmdline``), so one
probe serves the relay and the endpoints whatever flags they were started with:

- the port is ``--port`` (default 8700 for the relay, 8800 for an endpoint);
- over https when the process serves TLS (``--tls-cert`` for the relay,
  ``--api-tls-cert`` for an endpoint), else http;
- when the process requires client certificates (mutual TLS: ``--tls-client-ca``
  for the relay, ``--api-client-ca`` for an endpoint) the probe shows the
  process's own certificate and key (``--tls-cert`` and ``--tls-key``), which
  must then be issued by that CA for client authentication (``hotline
  tls-certs`` issues the relay's and the endpoints' certificates so);
- healthy means ``/healthz`` answered 200: for a relay replica that is
  readiness (it answers 503 while it cannot log), not only a listening port.

The probe talks to its own loopback port: the server's certificate is not
verified here (an endpoint verifies the relay's). Exit status 0 means healthy,
1 means not.
"""

from __future__ import annotations

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


def _flag(args: Sequence[str], name: str) -> str | None:
    items = list(args)
    return items[items.index(name) + 1] if name in items[:-1] else None


def probe(args: Sequence[str], host: str = "127.0.0.1") -> bool:
    """Whether the server started with the command line ``args`` answers ready on ``host``."""
    relay = "relay" in args
    port = int(_flag(args, "--port") or _DEFAULT_PORTS[relay])
    tls = ("--tls-cert" if relay else "--api-tls-cert") in args
    url = f"{'https' if tls else 'http'}://{host}:{port}/healthz"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # our own port: readiness, not the peer's identity
    if _flag(args, "--tls-client-ca" if relay else "--api-client-ca") is not None:
        cert, key = _flag(args, "--tls-cert"), _flag(args, "--tls-key")
        if cert is None or key is None:
            return False  # mutual TLS and no certificate of our own to show
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError):
            return False
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
