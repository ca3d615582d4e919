"""CAP date-times ⇄ integer milliseconds since the Unix epoch, UTC.

CAP 1.2 writes every time as ``YYYY-MM-DDThh:mm:ss`` followed by a numeric
offset (``+02:00``; ``-00:00`` means UTC); the letter ``Z`` is not allowed.
Reading also takes a fraction of a second (kept to the millisecond, the rest
dropped), which hotline writes only in ``hotline:crossing_at``; the schema's
own elements (``sent``, ``onset``, ``expires``) are written in whole seconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

__all__ = ["format_cap_time", "parse_cap_time"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS: Final = (1 << 48) - 1
_LAST_MS: Final = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH) // timedelta(
    milliseconds=1
)
_TIME: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-])(\d\d):(\d\d)", re.ASCII
)


def parse_cap_time(text: str) -> int:
    """Milliseconds since the epoch of a CAP time; ``ValueError`` with a sentence otherwise."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        if text.strip().endswith(("Z", "z")):
            raise ValueError("needs a numeric UTC offset such as +00:00; CAP 1.2 forbids Z")
        raise ValueError("must be a CAP time such as 2025-11-24T18:00:00+02:00")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = (match.group(7) or "").ljust(3, "0")[:3]
    sign = 1 if match.group(8) == "+" else -1
    off_h, off_m = int(match.group(9)), int(match.group(10))
    if off_h > 23 or off_m > 59:
        raise ValueError("has an impossible UTC offset")
    try:
        tz = timezone(sign * timedelta(hours=off_h, minutes=off_m))
        moment = datetime(year, month, day, hour, minute, second, int(fraction) * 1000, tz)
    except ValueError:
        raise ValueError("is not a real date and time") from None
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if not 0 <= ms <= _MAX_MS:
        raise ValueError("must be after 1970-01-01T00:00:00+00:00")
    return ms


def format_cap_time(ms: int, *, with_ms: bool = False, round_up: bool = False) -> str:
    """A CAP time in UTC written ``+00:00``, never ``Z``.

    Whole seconds unless ``with_ms`` (then a ``.mmm`` fraction when it is not
    zero); a fraction is dropped, or with ``round_up`` rounded up to the next
    second. ``ValueError`` for a time CAP cannot write (after the year 9999).
    """
    if not with_ms and round_up:
        ms = -(-ms // 1000) * 1000
    if not 0 <= ms <= _LAST_MS:
        raise ValueError(f"time {ms} ms is outside the years CAP can write (1970 to 9999)")
    moment = _EPOCH + timedelta(milliseconds=ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if with_ms and ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "+00:00"
