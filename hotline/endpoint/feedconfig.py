"""An endpoint's sensor feeds: who may post alerts, how often, and to whom (``feeds.toml``).

One ``[[feeds]]`` table per feed::

    [[feeds]]
    name = "radar-1"            # 1 to 64 of letters, digits, _ . - ; unique in the file
    token_sha256 = "9f86d0…"     # hex SHA-256 of the feed's bearer token; never the token
    rate_per_minute = 60        # optional (default 60): alerts a minute, as a token bucket
    to = ["BY", "PL"]           # optional (default "*"): recipients of the feed's alerts
    status = "exercise"         # optional (default "actual"): actual, exercise or test

Tokens are never stored in clear: a request's token is hashed and compared with
every feed's hash by :func:`hmac.compare_digest`, each comparison taking the
same time whether it matches or not. A validation error names the file, the
table (``feeds[1]``) and the key.

:func:`parse_feeds` is pure; :func:`load_feeds` reads a file and
:func:`append_feed` adds a feed to one (``hotline feed-token``, the demo).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hotline.errors import ConfigError
from hotline.network import Network
from hotline.protocol.bodies import ALL_RECIPIENTS, Recipients
from hotline.protocol.schema import PARTY_ID
from hotline.protocol.vocab import Status

__all__ = [
    "DEFAULT_RATE_PER_MINUTE",
    "FEEDS_FILE",
    "Feed",
    "FeedConfig",
    "append_feed",
    "load_feeds",
    "new_token",
    "parse_feeds",
    "token_sha256",
]

FEEDS_FILE: Final = "feeds.toml"
DEFAULT_RATE_PER_MINUTE: Final = 60
MAX_RATE_PER_MINUTE: Final = 60_000
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SHA256_HEX: Final = re.compile(r"[0-9a-fA-F]{64}")
_KEYS: Final = frozenset({"name", "token_sha256", "rate_per_minute", "to", "status"})
_MAX_RECIPIENTS: Final = 64


def token_sha256(token: str) -> bytes:
    """The SHA-256 of a bearer token, as ``token_sha256`` holds it (in hex)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    """A new random bearer token: 32 random bytes, URL-safe base64."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Feed:
    """One sensor feed: its name, its token's hash, its rate and its defaults."""

    name: str
    token_sha256: bytes
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE
    to: Recipients = ALL_RECIPIENTS
    status: Status = Status.ACTUAL

    def to_json(self) -> str | list[str]:
        """``to`` as a posted body writes it: ``"*"`` or a list of ids."""
        return ALL_RECIPIENTS if self.to == ALL_RECIPIENTS else list(self.to)


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """Every feed of an endpoint (possibly none: then every feed request is refused)."""

    feeds: tuple[Feed, ...] = ()

    def authenticate(self, token: str) -> Feed | None:
        """The feed whose token this is, or None.

        Every feed's hash is compared, in constant time each, whichever matches.
        """
        digest = token_sha256(token)
        found: Feed | None = None
        for feed in self.feeds:
            if hmac.compare_digest(digest, feed.token_sha256) and found is None:
                found = feed
        return found

    def named(self, name: str) -> Feed | None:
        return next((f for f in self.feeds if f.name == name), None)


# ----------------------------------------------------------------------------- parsing


def _recipients(value: object, where: str, network: Network | None, me: str | None) -> Recipients:
    if value == ALL_RECIPIENTS:
        return ALL_RECIPIENTS
    if not isinstance(value, list) or not value or len(value) > _MAX_RECIPIENTS:
        raise ConfigError(f'{where}: must be "*" or a list of 1 to {_MAX_RECIPIENTS} '
                          "endpoint ids")
    ids: list[str] = []
    for number, party in enumerate(value):
        if not isinstance(party, str) or not PARTY_ID.fullmatch(party):
            raise ConfigError(f'{where}[{number}]: must be an endpoint id such as "BY"')
        if party in ids:
            raise ConfigError(f"{where}[{number}]: {party} is named twice")
        if network is not None and me is not None:
            if party not in network.endpoints:
                raise ConfigError(f"{where}[{number}]: {party} is not an endpoint of the network")
            if not network.linked(me, party):
                raise ConfigError(f"{where}[{number}]: there is no link {me}-{party}")
        ids.append(party)
    return tuple(ids)


def _feed(table: object, where: str, network: Network | None, me: str | None) -> Feed:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table ([[feeds]])")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        known = ", ".join(sorted(_KEYS))
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {known})")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}.name: must be 1 to 64 letters, digits, _ . - "
                          "starting with a letter or digit")
    where = f"{where} ({name})"
    digest = table.get("token_sha256")
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise ConfigError(f"{where}.token_sha256: must be the 64 hex digits of the SHA-256 "
                          "of the feed's token (hotline feed-token writes it)")
    rate = table.get("rate_per_minute", DEFAULT_RATE_PER_MINUTE)
    if (isinstance(rate, bool) or not isinstance(rate, int | float)
            or not 0 < rate <= MAX_RATE_PER_MINUTE):
        raise ConfigError(f"{where}.rate_per_minute: must be a number above 0 and at most "
                          f"{MAX_RATE_PER_MINUTE}")
    status_text = table.get("status", Status.ACTUAL.value)
    try:
        status = Status(status_text)
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise ConfigError(f"{where}.status: must be one of {allowed}") from None
    to = _recipients(table.get("to", ALL_RECIPIENTS), f"{where}.to", network, me)
    return Feed(name, bytes.fromhex(digest), float(rate), to, status)


def parse_feeds(
    data: Mapping[str, Any],
    *,
    source: str = FEEDS_FILE,
    network: Network | None = None,
    me: str | None = None,
) -> FeedConfig:
    """Validate a parsed ``feeds.toml``; with ``network`` and ``me``, check ``to`` links too."""
    unknown = sorted(set(data) - {"feeds"})
    if unknown:
        raise ConfigError(f"{source}: unknown table or key {unknown[0]!r}; feeds are [[feeds]]")
    tables = data.get("feeds", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{source}: feeds must be an array of tables ([[feeds]])")
    feeds: list[Feed] = []
    for number, table in enumerate(tables):
        feed = _feed(table, f"{source}: feeds[{number}]", network, me)
        for other in feeds:
            if other.name == feed.name:
                raise ConfigError(f"{source}: feeds[{number}].name: {feed.name!r} is used twice")
            if other.token_sha256 == feed.token_sha256:
                raise ConfigError(f"{source}: feeds[{number}].token_sha256: the same token as "
                                  f"feed {other.name!r}")
        feeds.append(feed)
    return FeedConfig(tuple(feeds))


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def load_feeds(path: Path, *, network: Network | None = None, me: str | None = None) -> FeedConfig:
    """Read and validate a feeds file."""
    return parse_feeds(_read(path), source=str(path), network=network, me=me)


# ----------------------------------------------------------------------------- writing


def append_feed(
    path: Path,
    name: str,
    token: str,
    *,
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE,
    to: Sequence[str] | None = None,
    status: Status | None = None,
) -> Feed:
    """Add a feed for ``token`` (stored hashed) to the file, creating it (mode 0600).

    The file is checked before and after; it is replaced atomically, so a
    running endpoint reading it never sees half an entry.
    """
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    if before:
        existing = parse_feeds(_read(path), source=str(path))
        if existing.named(name) is not None:
            raise ConfigError(f"{path}: a feed named {name!r} exists already")
    rate = int(rate_per_minute) if float(rate_per_minute).is_integer() else rate_per_minute
    lines = [
        "[[feeds]]",
        f"name = {json.dumps(name)}",
        f'token_sha256 = "{token_sha256(token).hex()}"',
        f"rate_per_minute = {rate!r}",
    ]
    if to is not None:
        targets = list(to)
        value = json.dumps(ALL_RECIPIENTS if targets == [ALL_RECIPIENTS] else targets)
        lines.append(f"to = {value}")
    if status is not None:
        lines.append(f'status = "{status.value}"')
    separator = "" if not before or before.endswith("\n\n") else (
        "\n" if before.endswith("\n") else "\n\n"
    )
    text = before + separator + "\n".join(lines) + "\n"
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: the new feed would not be valid TOML: {exc}") from None
    config = parse_feeds(parsed, source=str(path))
    feed = config.named(name)
    if feed is None:  # pragma: no cover  (the entry was just written)
        raise ConfigError(f"{path}: the new feed {name!r} did not read back")
    _replace(path, text)
    return feed


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).chmod(mode)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
