"""Reading ``network.toml`` from disk (the edge around :mod:`hotline.network`)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hotline.errors import ConfigError
from hotline.network import Network, parse_network

__all__ = ["load_network"]


def load_network(path: Path) -> Network:
    """Read and validate a network.toml file."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_network(data, source=str(path))
