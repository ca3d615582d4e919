"""TLS for the relay and the endpoints: contexts, pins, and the plaintext policy.

What this module keeps true:

- a server context carries its certificate chain and key, speaks TLS 1.2 or
  newer, and with a client CA requires every client to present a certificate
  that CA issued (mutual TLS);
- a client context trusts the CA file given, or the system's store when none is
  given; with a pin (SHA-256 of the peer's DER certificate) the handshake must
  also present exactly that certificate, and the CA is then optional;
- plaintext is served or dialled only on loopback, unless ``unsafe_plaintext``
  says otherwise; the decision is a pure function (:func:`listening_transport`,
  :func:`relay_transport`) and the edges log ``plaintext_allowed_unsafely``
  each time the unsafe allowance is used;
- private key files are refused when group or others may read them, as the
  signing keys are.

The pin is checked inside the TLS layer: the client context's
``sslobject_class`` (public :mod:`ssl` API) compares the SHA-256 of the peer's
DER certificate with the pin as the handshake completes, before any request
byte is written, and fails the handshake with ``SSLCertVerificationError``
otherwise. It works with a CA, with a client certificate, and alone, and
depends on no private method of aiohttp.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import ipaddress
import ssl
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import structlog
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hotline.errors import PlaintextRefused, TlsError
from hotline.lograte import LogThrottle

__all__ = [
    "ClientTls",
    "PinMismatch",
    "ServerTls",
    "TlsSettings",
    "Transport",
    "certificate_pin",
    "client_connector",
    "client_context",
    "format_pin",
    "is_loopback",
    "listening_transport",
    "network_sentence",
    "note_transport",
    "parse_pin",
    "refusal_sentence",
    "relay_transport",
    "server_context",
]

log = structlog.get_logger("hotline.tls")

PIN_PREFIX: Final = "sha256:"
_PIN_BYTES: Final = 32
_MINIMUM: Final = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True, slots=True)
class ServerTls:
    """What a listener serves: its certificate chain and key, and for mutual TLS a client CA."""

    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True, slots=True)
class ClientTls:
    """How to trust a server, and the certificate to show it when it asks (mutual TLS).

    With neither ``ca`` nor ``pin`` the system's trust store decides.
    """

    ca: Path | None = None
    pin: bytes | None = None  # SHA-256 of the server's DER certificate
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise TlsError("a client certificate and its key go together: give both or neither")
        if self.pin is not None and len(self.pin) != _PIN_BYTES:
            raise TlsError(f"a pin is a SHA-256 digest of {_PIN_BYTES} bytes")

    @property
    def configured(self) -> bool:
        return any(v is not None for v in (self.ca, self.pin, self.cert))


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """A process's TLS: what it serves with, how it reaches the relay, and the unsafe switch.

    ``serve`` is the relay's listener, or an endpoint's console and feed API;
    ``client`` is how an endpoint trusts the relay (unused by the relay).
    """

    serve: ServerTls | None = None
    client: ClientTls = field(default_factory=ClientTls)
    unsafe_plaintext: bool = False


class Transport(enum.Enum):
    """What the plaintext policy decided for one listener or one connection."""

    TLS = "tls"
    LOOPBACK = "loopback"  # plaintext that never leaves this host
    UNSAFE_PLAINTEXT = "unsafe_plaintext"  # plaintext across a network, because it was asked for


# ---------------------------------------------------------------------- the plaintext policy


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; any other name or address is not."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def listening_transport(
    host: str, serve: ServerTls | None, *, unsafe_plaintext: bool, what: str, cert_flags: str
) -> Transport:
    """Whether a listener on ``host`` may start; raises PlaintextRefused when it may not."""
    if serve is not None:
        return Transport.TLS
    if is_loopback(host):
        return Transport.LOOPBACK
    if unsafe_plaintext:
        return Transport.UNSAFE_PLAINTEXT
    raise PlaintextRefused(
        f"refusing to serve {what} without TLS on {host}, which is not a loopback address: "
        f"give it a certificate ({cert_flags}), listen on 127.0.0.1, or set unsafe_plaintext "
        "(--unsafe-plaintext) to let anyone on the path read and alter the traffic"
    )


def relay_transport(url: str, tls: TlsSettings) -> Transport:
    """Whether an endpoint may dial the relay at ``url``; raises PlaintextRefused or TlsError."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("wss", "https"):
        return Transport.TLS
    if scheme not in ("ws", "http"):
        raise TlsError(f"the relay URL {url!r} is neither wss:// nor ws://")
    if tls.client.configured:
        raise TlsError(
            f"relay TLS options (--relay-ca, --relay-pin, --tls-cert) are given but the relay "
            f"URL {url} is not wss://; use the wss:// URL"
        )
    if is_loopback(parts.hostname or ""):
        return Transport.LOOPBACK
    if tls.unsafe_plaintext:
        return Transport.UNSAFE_PLAINTEXT
    raise PlaintextRefused(
        f"refusing to reach the relay without TLS at {url}, which is not on loopback: use its "
        "wss:// URL, or set unsafe_plaintext (--unsafe-plaintext) to let anyone on the path "
        "read and alter the traffic"
    )


def note_transport(transport: Transport, **where: object) -> None:
    """Log ``plaintext_allowed_unsafely`` when the unsafe allowance was used."""
    if transport is Transport.UNSAFE_PLAINTEXT:
        log.warning("plaintext_allowed_unsafely", **where)


# ---------------------------------------------------------------------- pins


def parse_pin(text: str) -> bytes:
    """``sha256:<hex>``, or hex with or without colons (as ``openssl x509 -fingerprint``)."""
    value = text.strip()
    if value.lower().startswith(PIN_PREFIX):
        value = value[len(PIN_PREFIX) :]
    value = value.replace(":", "")
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        raise TlsError(
            f"the pin {text!r} is not hex (write it as sha256:<64 hex digits>)"
        ) from None
    if len(digest) != _PIN_BYTES:
        raise TlsError(
            f"the pin {text!r} has {len(digest)} bytes; a SHA-256 pin has {_PIN_BYTES}"
        )
    return digest


def format_pin(digest: bytes) -> str:
    return PIN_PREFIX + digest.hex()


def certificate_pin(pem: bytes) -> str:
    """The pin of the first certificate in ``pem``: ``sha256:`` and the hex of its DER's hash."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise TlsError("not a PEM certificate") from exc
    return format_pin(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())


# ---------------------------------------------------------------------- contexts


def _check_key_file(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise TlsError(f"cannot read TLS key file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise TlsError(
            f"TLS key file {path} is open to group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    _check_key_file(key)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(
            f"cannot load the certificate {cert} with the key {key}: {_reason(exc)}"
        ) from exc


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load the CA certificates in {ca}: {_reason(exc)}") from exc


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _logged_handshake(lines: LogThrottle, clock: Callable[[], int]) -> type[ssl.SSLObject]:
    """A server-side TLS session class whose failed handshakes are logged through ``lines``."""

    class LoggedHandshake(ssl.SSLObject):
        """A failed handshake is logged at error level, with the reason (asyncio only logs
        it in debug mode). OpenSSL has sent the client its alert. Anyone who reaches the
        port can fail one, so lines beyond the throttle's burst are counted, not written."""

        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise
            except ssl.SSLError as exc:
                extra = lines.fields("tls_handshake_failed", clock())
                if extra is not None:
                    log.error(  # noqa: TRY400 - the reason is the line; a traceback says no more
                        "tls_handshake_failed", reason=exc.reason or str(exc),
                        library=exc.library,
                        client_certificate_required=self.context.verify_mode
                        is ssl.CERT_REQUIRED, **extra,
                    )
                raise

    return LoggedHandshake


def server_context(
    serve: ServerTls, *, lines: LogThrottle | None = None,
    clock: Callable[[], int] = _monotonic_ms,
) -> ssl.SSLContext:
    """A listener's context; with ``client_ca`` every client must show a certificate from it.

    Only ``client_ca`` is trusted for client certificates, never the system's store.
    Failed handshakes are logged through ``lines`` (``hotline.lograte``) at ``clock``'s
    time (ms): give the server's own throttle, whose held-back counts it reports; else
    the context has one of its own, and a count rides on the next line written.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MINIMUM
    _load_chain(context, serve.cert, serve.key)
    if serve.client_ca is not None:
        _load_ca(context, serve.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    context.sslobject_class = _logged_handshake(lines or LogThrottle(), clock)
    return context


def client_context(client: ClientTls) -> ssl.SSLContext:
    """A client's context: the CA given and it alone, or the system store when neither a CA
    nor a pin is given, or with only a pin no CA at all."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the peer and its host name
    if client.ca is not None:
        _load_ca(context, client.ca)
    elif client.pin is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:  # a pin alone: the certificate is judged by its hash, not by who issued it
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = _MINIMUM
    if client.cert is not None and client.key is not None:
        _load_chain(context, client.cert, client.key)
    return context


class PinMismatch(ssl.SSLCertVerificationError):
    """The peer's certificate is not the pinned one (raised inside the handshake)."""

    def __init__(self, got: bytes, expected: bytes) -> None:
        super().__init__(
            f"the certificate is {format_pin(got)}, not the pinned {format_pin(expected)}"
        )
        self.got: Final = got
        self.expected: Final = expected

    def __str__(self) -> str:
        return str(self.args[0])


def _pinned(pin: bytes) -> type[ssl.SSLObject]:
    """An ``SSLObject`` class whose handshake also requires the peer's certificate to be ``pin``."""

    class PinnedObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()  # raises SSLWantReadError until the handshake is done
            der = self.getpeercert(binary_form=True)
            got = hashlib.sha256(der or b"").digest()
            if got != pin:
                raise PinMismatch(got, pin)

    return PinnedObject


def client_connector(client: ClientTls) -> aiohttp.TCPConnector | None:
    """A connector for every https and wss request of one session; None: aiohttp's default.

    Must be called with an event loop running (aiohttp's connectors belong to one).
    """
    if not client.configured:
        return None
    context = client_context(client)
    if client.pin is not None:
        context.sslobject_class = _pinned(client.pin)
    return aiohttp.TCPConnector(ssl=context)


def network_sentence(exc: BaseException, url: str, what: str = "") -> str:
    """Why ``url`` could not be reached, in one sentence (``exc`` is not a certificate refusal).

    Under TLS 1.3 a server that refuses our client certificate does so after our side
    of the handshake finished, so the refusal arrives as an alert or a reset on the
    first read: that is said so, rather than a bare "Server disconnected".
    """
    detail = str(exc) or type(exc).__name__
    where = f"{what} at {url}" if what else url
    if isinstance(exc, TimeoutError):
        return f"cannot reach {where}: no answer in time"
    secure = url.startswith(("https://", "wss://"))
    alert = "alert" in detail.lower() or isinstance(exc, ssl.SSLError | aiohttp.ClientSSLError)
    dropped = isinstance(exc, aiohttp.ServerDisconnectedError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNRESET
    )
    if secure and (alert or dropped):
        return (f"cannot reach {where}: the TLS connection was refused ({detail}); a server that "
                "requires client certificates refuses one it does not trust (check --tls-cert/"
                "--cert and the server's client CA)")
    return f"cannot reach {where}: {detail}"


def refusal_sentence(exc: BaseException) -> str | None:
    """A sentence for a connection refused over its certificate, or None for other failures."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        if isinstance(error, PinMismatch):
            return f"the certificate of {exc.host}:{exc.port} is {format_pin(error.got)}, " \
                f"not the pinned {format_pin(error.expected)}; refusing to connect"
        return f"the certificate of {exc.host}:{exc.port} does not verify: {error}"
    return None
