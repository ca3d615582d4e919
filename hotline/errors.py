"""Every error hotline raises, in one tree.

Each error carries a stable machine ``code`` and one ``sentence`` for a person
(``str(error)``; a :class:`Rejected` puts its ``path`` before it). The CLI
prints ``code: sentence`` and exits non-zero; the wire protocol sends the code,
the sentence and the path back to the peer as separate fields.

The tree splits by blame, as the reader of an error needs to know whose move
it is::

    HotlineError
    ├── Rejected                the remote side sent something we refuse
    │                           (code is one of the wire RejectCode values)
    ├── UsageError              the local side misused the tool or the API
    │   ├── ConfigError         network.toml is missing, malformed or inconsistent
    │   │   ├── TlsError        a TLS certificate, key, CA or pin is missing or malformed
    │   │   └── PlaintextRefused  plaintext off loopback without unsafe_plaintext
    │   ├── KeyFileError        a private key file is unreadable, malformed or too open
    │   ├── UnknownMessage      (endpoint) no received message has that id: HTTP 404
    │   ├── AlreadyAcknowledged (endpoint) acknowledged before: HTTP 409
    │   └── RequestRefused      (endpoint) a sensor feed's request refused as a whole:
    │                           401, 400, 409, 413, 415, 429 (see hotline.endpoint.errors)
    ├── RelayUnavailable        (endpoint) the relay's HTTP side did not answer usefully
    ├── PeerCertificateRefused  a TLS peer's certificate failed the CA or the pin
    └── AuditError              the audit log or a bundle does not hold together
        ├── ProofError          a Merkle proof or tree parameter is invalid
        ├── NoteError           a signed note or checkpoint is malformed or badly signed
        ├── EntryError          a log entry's bytes are not [kind, relay_ts, payload]
        ├── StoreError          a log store on disk is damaged, truncated or altered
        ├── BundleMismatch      relays' bundles do not describe one (the pinned) network
        └── VerificationFailed  an entry of a log bundle breaks an invariant
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "AuditError",
    "BundleMismatch",
    "ConfigError",
    "EntryError",
    "HotlineError",
    "KeyFileError",
    "NoteError",
    "PeerCertificateRefused",
    "PlaintextRefused",
    "ProofError",
    "RejectCode",
    "Rejected",
    "SnapshotMismatch",
    "StoreError",
    "TlsError",
    "UsageError",
    "VerificationFailed",
]


class RejectCode(enum.StrEnum):
    """The wire codes with which a received frame is refused (protocol §Rejections)."""

    BAD_FRAME = "bad_frame"
    TOO_LARGE = "too_large"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_SENDER = "unknown_sender"
    NOT_AUTHENTICATED = "not_authenticated"
    SENDER_MISMATCH = "sender_mismatch"
    REPLAY = "replay"
    STALE = "stale"
    LINK_FORBIDDEN = "link_forbidden"
    RATE_LIMITED = "rate_limited"
    SCHEMA = "schema"
    BUSY = "busy"

    @property
    def temporary(self) -> bool:
        """A temporary refusal: the same frame may be sent again after ``retry_after_ms``."""
        return self in (RejectCode.RATE_LIMITED, RejectCode.BUSY)


class HotlineError(Exception):
    """Base of every hotline error: a machine code and one human sentence."""

    code: str = "error"

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence: Final = sentence

    def __str__(self) -> str:
        return self.sentence

    def describe(self) -> str:
        """``code: sentence``, the form the CLI prints."""
        return f"{self.code}: {self}"


class Rejected(HotlineError):
    """A frame from the other side is refused; nothing it carried was acted on.

    ``code`` is the wire code and ``sentence`` the one sentence for a person,
    as the wire carries them. Two fields add context, never a second message:
    ``path`` names the offending field for ``schema`` rejections
    (``track.lat``), and is empty otherwise; ``retry_after_ms`` says when a
    temporary refusal (``rate_limited``, ``busy``) may be retried, 0 if unknown.
    ``str()`` puts the path before the sentence (``track.lat: must be ...``).
    """

    code: RejectCode

    def __init__(
        self, code: RejectCode, sentence: str, path: str = "", *, retry_after_ms: int = 0
    ) -> None:
        super().__init__(sentence)
        self.code = code
        self.path: Final = path
        self.retry_after_ms: Final = retry_after_ms

    def __str__(self) -> str:
        return f"{self.path}: {self.sentence}" if self.path else self.sentence


class UsageError(HotlineError):
    """The local side asked for something that cannot be done as asked."""

    code = "usage"


class ConfigError(UsageError):
    """The network configuration is missing, malformed or inconsistent."""

    code = "config"


class TlsError(ConfigError):
    """A TLS certificate, key, CA file or pin is missing, malformed or too open."""

    code = "tls"


class PlaintextRefused(ConfigError):
    """Plaintext was asked for off loopback; the sentence names the option to set."""

    code = "plaintext_refused"


class PeerCertificateRefused(HotlineError):
    """The other side's TLS certificate did not verify against the CA or the pin."""

    code = "peer_certificate_refused"


class NetworkError(HotlineError):
    """A peer could not be reached, or the connection broke (not a mistake of the command)."""

    code = "network"


class KeyFileError(UsageError):
    """A private key file is missing, malformed, or readable by others."""

    code = "key_file"


class AuditError(HotlineError):
    """The audit log, a bundle or a proof does not hold together."""

    code = "audit"


class ProofError(AuditError):
    """A Merkle proof does not verify, or its tree parameters are impossible."""

    code = "bad_proof"


class NoteError(AuditError):
    """A signed note or checkpoint is malformed, or its signatures do not verify."""

    code = "bad_note"


class EntryError(AuditError):
    """A log entry's bytes do not decode as ``[kind, relay_ts, payload]``."""

    code = "bad_entry"


class StoreError(AuditError):
    """A log store is damaged, truncated or altered beyond a torn tail."""

    code = "bad_store"


class BundleMismatch(AuditError):
    """The bundles of several relays do not describe the same network, or not the pinned one."""

    code = "bundle_network_mismatch"


class SnapshotMismatch(AuditError):
    """A relay-state snapshot does not match the log (or is torn, foreign or stale): unused."""

    code = "snapshot_mismatch"


class VerificationFailed(AuditError):
    """An entry of a log bundle breaks an invariant; ``index`` names it (or -1)."""

    code = "verify_failed"

    def __init__(self, index: int, sentence: str) -> None:
        prefix = f"entry {index}: " if index >= 0 else ""
        super().__init__(prefix + sentence)
        self.index: Final = index
