"""hotline.cap is pure: importing it brings in no network, event loop or web framework."""

from __future__ import annotations

import subprocess
import sys


def test_importing_hotline_cap_pulls_in_no_io_modules() -> None:
    """Neither aiohttp, asyncio, socket nor sqlite3 is imported by hotline.cap."""
    code = (
        "import sys, hotline.cap\n"
        "bad = sorted(m for m in ('aiohttp', 'asyncio', 'socket', 'sqlite3') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
