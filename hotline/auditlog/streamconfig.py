"""Where a relay's log lives: ``[store]`` of its configuration file.

``kind = "file"`` (the default) keeps the log in the relay's data directory
(``hotline.auditlog.filestore``). ``kind = "nats"`` puts it on a NATS
JetStream stream shared by relay replicas (``hotline.auditlog.natsstore``,
``hotline.relay.replica``)::

    [store]
    kind = "nats"
    servers = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
    stream = "HOTLINE_LOG"      # default
    subject = "hotline.log"     # default; entries on <subject>.entry, link tests on .test
    replicas = 3                # default; JetStream keeps each entry on this many nodes
    duplicate_window_s = 86400  # default and minimum: the network's [limits] max_age_s
    timeout_s = 5               # how long to wait for one JetStream acknowledgement

This module imports no NATS client, so a relay on the file store runs
without nats-py installed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hotline.errors import ConfigError

__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_SUBJECT",
    "StreamSettings",
    "load_store_file",
    "parse_store_table",
]

DEFAULT_STREAM: Final = "HOTLINE_LOG"
DEFAULT_SUBJECT: Final = "hotline.log"


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Where the log's stream lives and how it is replicated (``[store]`` with kind "nats")."""

    servers: tuple[str, ...]
    stream: str = DEFAULT_STREAM
    subject: str = DEFAULT_SUBJECT
    replicas: int = 3
    duplicate_window_ms: int = 86_400_000
    timeout_s: float = 5.0

    @property
    def entry_subject(self) -> str:
        return f"{self.subject}.entry"

    @property
    def test_subject(self) -> str:
        return f"{self.subject}.test"


def parse_store_table(
    table: dict[str, Any], where: str, *, max_age_ms: int
) -> StreamSettings | None:
    """``[store]`` of a relay's configuration: None for the file store, else the stream.

    The duplicate window is raised to ``max_age_ms`` (the network's oldest
    acceptable message) if it is given shorter, so a resent message can never
    outlive the window that recognises it.
    """
    allowed = {"kind", "servers", "stream", "subject", "replicas", "duplicate_window_s",
               "timeout_s"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    kind = table.get("kind", "file")
    if kind == "file":
        return None
    if kind != "nats":
        raise ConfigError(f'{where}: kind must be "file" or "nats", not {kind!r}')
    servers = table.get("servers")
    if (not isinstance(servers, list) or not servers
            or not all(isinstance(s, str) and s for s in servers)):
        raise ConfigError(f"{where}: servers must be a non-empty list of nats:// URLs")
    stream = table.get("stream", DEFAULT_STREAM)
    subject = table.get("subject", DEFAULT_SUBJECT)
    if not isinstance(stream, str) or not stream.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{where}: stream must be a name of letters, digits, _ and -")
    if not isinstance(subject, str) or not subject or any(c in subject for c in " *>"):
        raise ConfigError(f"{where}: subject must be a plain NATS subject (no spaces or wildcards)")
    replicas = table.get("replicas", 3)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= 5:
        raise ConfigError(f"{where}: replicas must be an integer from 1 to 5 (JetStream's limit)")
    window = table.get("duplicate_window_s", max_age_ms / 1000)
    timeout = table.get("timeout_s", 5.0)
    for key, value in (("duplicate_window_s", window), ("timeout_s", timeout)):
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{where}: {key} must be a positive number of seconds")
    return StreamSettings(
        servers=tuple(servers),
        stream=stream,
        subject=subject,
        replicas=replicas,
        duplicate_window_ms=max(int(window * 1000), max_age_ms),
        timeout_s=float(timeout),
    )


def load_store_file(path: Path, *, max_age_ms: int) -> StreamSettings | None:
    """``[store]`` of the TOML file at ``path`` (the file store if the table is absent)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as TOML ({exc})") from exc
    table = data.get("store", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [store] must be a table")
    return parse_store_table(table, f"{path} [store]", max_age_ms=max_age_ms)
