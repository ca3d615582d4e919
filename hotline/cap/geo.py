"""CAP geometry and numbers: circles, polygons, feet, kilometres, decimals.

A CAP ``circle`` is ``"lat,lon radius_km"``; a ``polygon`` is at least four
``lat,lon`` pairs separated by spaces, the last equal to the first; ``altitude``
and ``ceiling`` are feet. Hotline holds a position, an error radius in metres
and an altitude in metres.

A polygon becomes the mean of its distinct vertices (longitudes unwrapped
around the first vertex, so a polygon across the antimeridian works) with an
error radius equal to the greatest great-circle (haversine) distance from that
centre to a vertex, rounded up to a whole metre. Centres are rounded to
1e-7 degree (about a centimetre).

Every parser raises ``ValueError`` with a sentence for a person; the caller
adds the CAP path. Conversions between units go through ``Decimal`` so that a
value hotline writes reads back as the same float.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

__all__ = [
    "EARTH_RADIUS_M",
    "Area",
    "decimal_text",
    "feet_to_metres",
    "haversine_m",
    "km_to_metres",
    "metres_to_feet",
    "metres_to_km",
    "parse_circle",
    "parse_decimal",
    "parse_number",
    "parse_polygon",
]

EARTH_RADIUS_M: Final = 6_371_008.8
"""The mean radius of the Earth (IUGG), for haversine distances."""

_FOOT: Final = Decimal("0.3048")
_MAX_FEET: Final = Decimal(10) ** 12
_MM: Final = Decimal("0.001")
_MAX_DIGITS: Final = 1000
_DECIMAL: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


@dataclass(frozen=True, slots=True)
class Area:
    """A point and an error radius in metres, as a track holds them."""

    lat: float
    lon: float
    radius_m: float


def parse_decimal(text: str) -> Decimal:
    """An ``xs:decimal`` (no exponent, no NaN); ``ValueError`` otherwise."""
    text = text.strip()
    if len(text) > _MAX_DIGITS or not _DECIMAL.fullmatch(text):
        raise ValueError(
            f"{text[:40]!r} is not a decimal number of at most {_MAX_DIGITS} characters"
        )
    return Decimal(text)


def parse_number(text: str) -> float:
    """A finite decimal number, an exponent allowed; ``ValueError`` otherwise."""
    text = text.strip()
    if len(text) > _MAX_DIGITS or not _NUMBER.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]!r} is too large")
    return value


def decimal_text(value: float) -> str:
    """The shortest decimal that reads back as ``value``, without an exponent."""
    return format(Decimal(repr(float(value))), "f")


def _pair(text: str, what: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"{what} must be written lat,lon, not {text[:40]!r}")
    try:
        lat, lon = parse_number(parts[0]), parse_number(parts[1])
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if not -90 <= lat <= 90:
        raise ValueError(f"the latitude of {what} must be between -90 and 90, not {lat:g}")
    if not -180 <= lon <= 180:
        raise ValueError(f"the longitude of {what} must be between -180 and 180, not {lon:g}")
    return lat, lon


def km_to_metres(km: Decimal) -> float:
    return float(km.scaleb(3))


def metres_to_km(metres: float) -> Decimal:
    return Decimal(repr(float(metres))).scaleb(-3)


def parse_circle(text: str) -> Area:
    """``"lat,lon radius_km"`` as a centre and a radius in metres."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError("must be written 'lat,lon radius' with the radius in kilometres")
    lat, lon = _pair(parts[0], "the centre")
    try:
        radius_km = parse_decimal(parts[1])
    except ValueError as exc:
        raise ValueError(f"the radius: {exc}") from None
    if radius_km < 0:
        raise ValueError("the radius must not be negative")
    return Area(lat, lon, km_to_metres(radius_km))


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres between two WGS84 points (spherical Earth)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def parse_polygon(text: str) -> Area:
    """A closed ring of at least four ``lat,lon`` pairs as its centre and reach."""
    pairs = text.split()
    if len(pairs) < 4:
        raise ValueError("must have at least four lat,lon pairs, the last equal to the first")
    points = [_pair(p, f"vertex {i + 1}") for i, p in enumerate(pairs)]
    if points[0] != points[-1]:
        raise ValueError("must be closed: its last pair must equal its first")
    distinct = list(dict.fromkeys(points))
    lon0 = distinct[0][1]
    lat = sum(p[0] for p in distinct) / len(distinct)
    unwrapped = [lon0 + ((p[1] - lon0 + 180) % 360 - 180) for p in distinct]
    lon = (sum(unwrapped) / len(distinct) + 180) % 360 - 180
    lat, lon = round(lat, 7), round(lon, 7)
    reach = max(haversine_m(lat, lon, p[0], p[1]) for p in distinct)
    return Area(lat, lon, float(math.ceil(reach)))


def feet_to_metres(feet: Decimal) -> float:
    """Feet to metres, to the millimetre; ``ValueError`` beyond a million kilometres."""
    if abs(feet) > _MAX_FEET:
        raise ValueError(f"{feet} ft is out of range")
    return float((feet * _FOOT).quantize(_MM, rounding=ROUND_HALF_EVEN))


def metres_to_feet(metres: float) -> Decimal:
    """Metres to feet, to a thousandth of a foot (0.3 mm): reads back to the same millimetre."""
    return (Decimal(repr(float(metres))) / _FOOT).quantize(_MM, rounding=ROUND_HALF_EVEN)
