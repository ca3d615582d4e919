"""The small pure pieces: CAP times, circles, polygons, feet and kilometres."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.cap.codes import PRECEDENCE_TO_URGENCY_SEVERITY, certainty_of, precedence_of
from hotline.cap.geo import (
    decimal_text,
    feet_to_metres,
    haversine_m,
    metres_to_feet,
    parse_circle,
    parse_number,
    parse_polygon,
)
from hotline.cap.times import format_cap_time, parse_cap_time
from hotline.protocol.vocab import Precedence

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z


@pytest.mark.parametrize(
    "text",
    [
        "2025-11-24T16:00:00+00:00",
        "2025-11-24T16:00:00-00:00",
        "2025-11-24T18:00:00+02:00",
        "2025-11-24T11:00:00-05:00",
        "2025-11-24T21:45:00+05:45",
    ],
)
def test_numeric_offsets_convert_to_utc_milliseconds(text: str) -> None:
    """Every offset names the same instant: 16:00:00 UTC."""
    assert parse_cap_time(text) == T0


def test_a_fraction_is_kept_to_the_millisecond() -> None:
    """.5 is 500 ms; digits beyond the millisecond are dropped."""
    assert parse_cap_time("2025-11-24T16:00:00.5+00:00") == T0 + 500
    assert parse_cap_time("2025-11-24T16:00:00.123999+00:00") == T0 + 123


def test_written_times_use_plus_zero_never_z() -> None:
    """format_cap_time writes +00:00, whole seconds unless asked for milliseconds."""
    assert format_cap_time(T0 + 999) == "2025-11-24T16:00:00+00:00"
    assert format_cap_time(T0 + 1, round_up=True) == "2025-11-24T16:00:01+00:00"
    assert format_cap_time(T0 + 250, with_ms=True) == "2025-11-24T16:00:00.250+00:00"
    assert format_cap_time(T0, with_ms=True) == "2025-11-24T16:00:00+00:00"


def test_times_cap_cannot_write_are_refused() -> None:
    """After the year 9999 there is no four-digit year."""
    with pytest.raises(ValueError, match="9999"):
        format_cap_time((1 << 48) - 1)


@given(st.integers(0, 253_402_300_799_000))
def test_times_round_trip_to_the_millisecond(ms: int) -> None:
    """Writing with milliseconds then reading gives the same instant."""
    assert parse_cap_time(format_cap_time(ms, with_ms=True)) == ms


def test_a_circle_radius_is_kilometres() -> None:
    """'54.5,25.5 2.5' is 2500 m around (54.5, 25.5)."""
    area = parse_circle("54.5,25.5 2.5")
    assert (area.lat, area.lon, area.radius_m) == (54.5, 25.5, 2500.0)


def test_a_polygon_becomes_its_centre_and_reach() -> None:
    """The mean of the distinct vertices; the farthest vertex by haversine, whole metres up."""
    area = parse_polygon("54.0,25.0 54.0,25.2 54.2,25.2 54.2,25.0 54.0,25.0")
    assert (area.lat, area.lon) == (54.1, 25.1)
    reach = max(haversine_m(54.1, 25.1, lat, lon) for lat in (54.0, 54.2) for lon in (25.0, 25.2))
    assert area.radius_m == math.ceil(reach)


def test_a_polygon_across_the_antimeridian_is_centred_on_it() -> None:
    """Vertices at 179.9 and -179.9 average near 180, not near 0."""
    area = parse_polygon("10,179.9 10.2,-179.9 10,-179.9 10,179.9")
    assert abs(abs(area.lon) - 180) < 0.1
    assert area.radius_m < 20_000


def test_haversine_of_one_degree_of_latitude() -> None:
    """One degree along a meridian is about 111.2 km on the mean-radius sphere."""
    assert haversine_m(54.0, 25.0, 55.0, 25.0) == pytest.approx(111_195, abs=1)


def test_feet_and_metres() -> None:
    """1000 ft is 304.8 m; 304.8 m is 1000 ft."""
    assert feet_to_metres(Decimal(1000)) == 304.8
    assert metres_to_feet(304.8) == Decimal("1000.000")


@given(st.integers(-1_000_000, 1_000_000_000))
def test_millimetre_altitudes_survive_feet(mm: int) -> None:
    """Any altitude given to the millimetre comes back exactly through feet."""
    metres = mm / 1000
    assert feet_to_metres(metres_to_feet(metres)) == metres


@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_decimal_text_reads_back_as_the_same_float(value: float) -> None:
    """Numbers are written without exponent, and read back bit for bit."""
    text = decimal_text(value)
    assert "e" not in text.lower()
    assert parse_number(text) == value


def test_precedence_and_certainty_codes_invert() -> None:
    """The urgency/severity hotline writes for each precedence reads back as it."""
    for precedence in Precedence:
        assert precedence_of(*PRECEDENCE_TO_URGENCY_SEVERITY[precedence]) is precedence
    assert [certainty_of(c) for c in (1.0, 0.9, 0.7, 0.4, 0.1)] == [
        "Observed",
        "Observed",
        "Likely",
        "Possible",
        "Unlikely",
    ]
