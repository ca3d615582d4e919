"""Helpers shared by the sub-commands: finding the network and its keys."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hotline.bootstrap import NETWORK_FILE, key_path
from hotline.keyfile import load_signing_key
from hotline.network import Network
from hotline.network_file import load_network
from hotline.protocol.keys import SigningKey

__all__ = ["Commands", "NetworkArg", "now_ms"]

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]  # what add_subparsers() gives
else:
    Commands = argparse._SubParsersAction


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class NetworkArg:
    """``--network`` as given: a network.toml file, or the directory holding it."""

    def __init__(self, value: str) -> None:
        path = Path(value)
        self.file = path / NETWORK_FILE if path.is_dir() else path
        self.directory = self.file.parent

    def load(self) -> Network:
        return load_network(self.file)

    def signing_key(self, party: str, override: Path | None = None) -> SigningKey:
        return load_signing_key(override or key_path(self.directory, party))
