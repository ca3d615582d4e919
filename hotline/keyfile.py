"""Private key files: PEM PKCS#8 Ed25519, mode 0600, refused when looser.

A key readable or writable by group or others is refused at load with an
error that names the file and the command that fixes it; keys are created
with mode 0600 from the first byte (never chmod-ed after being written).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hotline.errors import KeyFileError
from hotline.protocol.keys import SigningKey

__all__ = ["load_signing_key", "write_signing_key"]


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
