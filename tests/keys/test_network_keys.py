"""``network.toml`` key tables: every key of a party with the period it may sign in."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from hotline.errors import ConfigError
from hotline.network import network_to_toml, parse_network
from hotline.protocol.keys import KeyPeriod
from hotline.protocol.timetext import format_utc_ms, parse_utc_ms
from tests.factories import make_network
from tests.keys.helpers import OVERLAP, T_EXPIRE, T_ROTATE, next_key, rotate

NET = make_network(("BY", "LT"))
OLD = NET.keys["LT"].public.to_base64()
NEW = next_key("LT").public.to_base64()


def _doc(*keys: dict[str, Any], current: str = NEW) -> dict[str, Any]:
    doc = tomllib.loads(network_to_toml(NET.network))
    doc["endpoints"]["LT"]["public_key"] = current
    if keys:
        doc["endpoints"]["LT"]["keys"] = list(keys)
    return doc


def _refused(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_network(doc, source="net.toml")
    return str(caught.value)


def test_a_file_without_key_tables_parses_and_writes_as_before() -> None:
    """No [[…keys]]: each party has one key valid at every time, and the text is unchanged."""
    text = network_to_toml(NET.network)
    network = parse_network(tomllib.loads(text))
    assert "keys" not in text
    assert network_to_toml(network) == text
    assert network.keys_of("LT") == (NET.keys["LT"].public,)
    assert network.periods_of("LT") == (KeyPeriod(NET.keys["LT"].public),)
    assert network.keys_valid_at("LT", 0) == (NET.keys["LT"].public,)


def test_key_periods_round_trip_through_the_file() -> None:
    """A rotated network is written with its key tables and read back equal."""
    network = rotate(NET, "LT").network
    text = network_to_toml(network)
    assert "[[endpoints.LT.keys]]" in text
    assert f'not_after = "{format_utc_ms(T_EXPIRE)}"' in text
    back = parse_network(tomllib.loads(text))
    assert back == network
    assert back.periods_of("LT") == network.periods_of("LT")


def test_keys_of_lists_every_key_current_first_and_keys_valid_at_follows_the_periods() -> None:
    """During the overlap both keys are valid; before it only the old, after it only the new."""
    network = rotate(NET, "LT").network
    old, new = NET.keys["LT"].public, next_key("LT").public
    assert network.keys_of("LT") == (new, old)
    assert network.keys_valid_at("LT", T_ROTATE - 1) == (old,)
    assert set(network.keys_valid_at("LT", T_ROTATE)) == {old, new}
    assert network.keys_valid_at("LT", T_EXPIRE - 1) == (new, old)
    assert network.keys_valid_at("LT", T_EXPIRE) == (new,)
    assert network.keys_valid_at("XX", T_ROTATE) == ()
    assert network.keys_of("XX") is None


def test_the_relay_has_key_tables_too() -> None:
    """[[relay.keys]] is read like an endpoint's."""
    network = rotate(NET, "relay").network
    back = parse_network(tomllib.loads(network_to_toml(network)))
    assert "[[relay.keys]]" in network_to_toml(network)
    assert back.relay.periods == network.relay.periods


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_780_000_000_000, 1_780_000_000_000),
        ("2026-05-28T20:26:40Z", 1_780_000_000_000),
        ("2026-05-28T22:26:40.5+02:00", 1_780_000_000_500),
    ],
)
def test_bounds_are_milliseconds_or_rfc_3339(value: object, expected: int) -> None:
    """An integer is milliseconds since the epoch; a string is an RFC 3339 date-time."""
    network = parse_network(_doc({"public_key": OLD, "not_after": value}))
    assert network.period_of("LT", NET.keys["LT"].public.kid) == KeyPeriod(
        NET.keys["LT"].public, None, expected
    )


def test_a_native_toml_date_time_with_a_zone_is_accepted() -> None:
    """`not_before = 2026-05-28T20:26:40Z` (unquoted) is read as that instant."""
    text = network_to_toml(NET.network) + (
        f'\n[[endpoints.LT.keys]]\npublic_key = "{OLD}"\nnot_before = 2026-05-28T20:26:40Z\n'
    )
    network = parse_network(tomllib.loads(text))
    period = network.period_of("LT", NET.keys["LT"].public.kid)
    assert period == KeyPeriod(NET.keys["LT"].public, T_ROTATE, None)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"public_key": OLD, "expires": 1}, "[[endpoints.LT.keys]] #1: unknown key 'expires'"),
        ({"not_after": 1}, "[[endpoints.LT.keys]] #1: public_key must be a non-empty string"),
        ({"public_key": "abc"}, "[[endpoints.LT.keys]] #1 public_key is not valid base64"),
        ({"public_key": OLD, "not_after": "tomorrow"}, "not_after must be milliseconds"),
        ({"public_key": OLD, "not_after": "2026-05-28T20:26:40"}, "RFC 3339 date-time"),
        ({"public_key": OLD, "not_after": -5}, "not_after must be milliseconds"),
        ({"public_key": OLD, "not_after": True}, "not_after must be milliseconds"),
        ({"public_key": OLD, "not_before": "2026-05-28T20:26:40.0001Z"}, "not_before must be"),
        (
            {"public_key": OLD, "not_before": T_EXPIRE, "not_after": T_ROTATE},
            "not_before must be earlier than not_after",
        ),
    ],
)
def test_a_bad_key_entry_is_refused_naming_the_table(entry: dict[str, Any], words: str) -> None:
    """Each malformed [[endpoints.LT.keys]] entry is refused with its table and number."""
    assert words in _refused(_doc(entry))


def test_a_local_toml_date_time_without_a_zone_is_refused() -> None:
    """A date-time without Z or an offset names no instant and is refused."""
    text = network_to_toml(NET.network) + (
        f'\n[[endpoints.LT.keys]]\npublic_key = "{OLD}"\nnot_before = 2026-05-28T20:26:40\n'
    )
    with pytest.raises(ConfigError, match="not_before needs a time zone"):
        parse_network(tomllib.loads(text))


def test_a_key_listed_twice_is_refused() -> None:
    """The same key in two entries (overlapping or not) is refused."""
    words = _refused(_doc(
        {"public_key": OLD, "not_after": T_ROTATE},
        {"public_key": OLD, "not_before": T_EXPIRE},
    ))
    assert "[[endpoints.LT.keys]] #2: key" in words
    assert "is listed twice" in words


def test_a_key_of_another_party_is_refused() -> None:
    """A key listed for LT that is BY's key is refused: a key belongs to one party."""
    other = NET.keys["BY"].public.to_base64()
    assert "share one public key" in _refused(_doc({"public_key": other, "not_after": T_ROTATE}))


def test_keys_must_be_an_array_of_tables() -> None:
    """`keys = "…"` instead of [[endpoints.LT.keys]] is refused."""
    doc = _doc()
    doc["endpoints"]["LT"]["keys"] = OLD
    assert "keys must be an array of tables" in _refused(doc)


def test_the_current_key_may_carry_its_own_period() -> None:
    """Listing public_key itself gives the current key a period; unlisted it has none."""
    network = parse_network(_doc(
        {"public_key": OLD, "not_after": T_EXPIRE},
        {"public_key": NEW, "not_before": T_ROTATE},
    ))
    current = network.periods_of("LT")
    assert current is not None
    assert current[0] == KeyPeriod(next_key("LT").public, T_ROTATE, None)
    assert network.keys_valid_at("LT", T_ROTATE - 1) == (NET.keys["LT"].public,)


def test_rfc_3339_text_round_trips_at_millisecond_precision() -> None:
    """format_utc_ms and parse_utc_ms agree, and refuse what is not an instant."""
    for ms in (0, T_ROTATE, T_ROTATE + 7, T_ROTATE + OVERLAP + 999, 253_402_300_799_999):
        assert parse_utc_ms(format_utc_ms(ms)) == ms
    assert format_utc_ms(T_ROTATE) == "2026-05-28T20:26:40Z"
    assert parse_utc_ms("2026-02-29T00:00:00Z") is None
    assert parse_utc_ms("2026-05-28 20:26:40z") == T_ROTATE
    assert parse_utc_ms("2026-05-28T20:26:40+24:00") is None
