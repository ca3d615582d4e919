"""Private key files: PEM PKCS#8 Ed25519, mode 0600, refused when looser.

A key readable or writable by group or others is refused at load with an
error that names the file and the command that fixes it; keys are created
with mode 0600 from the first byte (never chmod-ed after being written).

Layout in a network directory: ``keys/<ID>.key`` is always the party's
current key (the one ``public_key`` in ``network.toml`` names), so every
command's default stays the same after a rotation. ``hotline keys rotate``
moves the key it replaces to ``keys/<ID>.<kid>.key`` (``kid`` in hex), where
the relay finds it to keep signing checkpoints with it during the overlap;
delete that file once the overlap is over.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Final

from hotline.errors import KeyFileError
from hotline.protocol.keys import SigningKey

__all__ = [
    "load_other_keys",
    "load_signing_key",
    "other_key_path",
    "write_signing_key",
]

_OTHER_KEY: Final = re.compile(r"(.+)\.([0-9a-f]{16})\.key")


def other_key_path(keys_dir: Path, party: str, kid: bytes) -> Path:
    """Where a party's key other than its current one is kept: ``<party>.<kid hex>.key``."""
    return keys_dir / f"{party}.{kid.hex()}.key"


def load_other_keys(keys_dir: Path, party: str) -> list[SigningKey]:
    """The party's keys kept beside its current one, each checked like any key file.

    A file whose name says one key id but which holds another key is refused.
    """
    found: list[SigningKey] = []
    if not keys_dir.is_dir():
        return found
    for path in sorted(keys_dir.iterdir()):
        match = _OTHER_KEY.fullmatch(path.name)
        if match is None or match.group(1) != party:
            continue
        key = load_signing_key(path)
        if key.public.kid.hex() != match.group(2):
            raise KeyFileError(
                f"key file {path} holds key {key.public.kid.hex()}, not the one its name says"
            )
        found.append(key)
    return found


def load_signing_key(path: Path) -> SigningKey:
    """Read a private key, refusing one that group or others may read or write."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    if mode & 0o077:
        raise KeyFileError(
            f"key file {path} is open to group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        return SigningKey.from_pem(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"key file {path} is not an unencrypted PEM PKCS#8 Ed25519 private key"
        ) from exc


def write_signing_key(path: Path, key: SigningKey) -> None:
    """Create ``path`` with mode 0600 and the key in it; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; not overwriting it") from None
    with os.fdopen(fd, "wb") as out:
        out.write(key.to_pem())
        out.flush()
        os.fsync(out.fileno())
