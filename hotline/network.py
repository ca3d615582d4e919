"""The network: who the parties are, their public keys, links, deadlines and limits.

``network.toml`` is the single source of truth shared by the relay and every
endpoint. :func:`parse_network` validates all of it and names the offending
table and key in its error; :class:`Network` holds only validated values.
Private keys never appear here (see :mod:`hotline.keyfile`); reading the file
is :mod:`hotline.network_file`'s job, so this module stays free of I/O.

Layout::

    [network]            name
    [relay]              id, origin, url, public_key
    [[relay.keys]]       public_key, not_before, not_after   (optional, repeated)
    [relays.<ID>]        origin, url, public_key, operator   (instead of [relay]: several)
    [[relays.<ID>.keys]] public_key, not_before, not_after   (optional, repeated)
    [endpoints.<ID>]     name, public_key, language
    [[endpoints.<ID>.keys]]  public_key, not_before, not_after  (optional, repeated)
    [[links]]            between = ["BY", "LT"], relays = ["by", "osce"] (optional)
    [deadlines.<precedence>]  delivered_s, acknowledged_s
    [limits]             max_frame_bytes, clock_skew_s, messages_per_minute,
                         retry_interval_s, max_age_s
    [link_tests]         interval_s, timeout_s

Key periods (rotation): ``public_key`` is the key a party signs with now. A
``keys`` array lists the party's other keys, earlier or later, each valid
from ``not_before`` (inclusive) to ``not_after`` (exclusive); either bound may
be left out, and the current key may be listed to give it a period too. A
key not listed is valid at every time. Bounds are integer milliseconds since
the epoch or RFC 3339 date-times with a zone. Invariants: a public key belongs
to one party and is listed at most once; no two keys of a party share a key
id; ``not_before < not_after``. Every signature is judged against the period
of the key that made it (:meth:`Network.periods_of`), so a key rotated out
still verifies what it signed while it was valid.

Several relays (``docs/deploy.md``, "Several relays"): a network either has one
``[relay]`` (the default, unchanged) or lists independent relays as
``[relays.<ID>]``, each with its own key, origin (so its own log) and URL, and
the party that runs it (``operator``). A link is carried by every relay unless
its ``relays`` names some of them. Each relay runs with :meth:`Network.for_relay`:
a one-relay view of the network holding only the links it carries, so the
relay itself is the same program whether it is alone or one of several.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any, Final

import tomli_w

from hotline.errors import ConfigError
from hotline.protocol.envelope import DEFAULT_MAX_FRAME, LARGEST_MAX_FRAME
from hotline.protocol.keys import KeyPeriod, PublicKey
from hotline.protocol.schema import PARTY_ID
from hotline.protocol.timetext import format_utc_ms, ms_from_fields, parse_utc_ms
from hotline.protocol.vocab import Precedence

__all__ = [
    "DEFAULT_DEADLINES",
    "DEFAULT_ENDPOINTS",
    "LANGUAGES",
    "Deadline",
    "EndpointInfo",
    "KeyPeriod",
    "Limits",
    "Network",
    "RelayInfo",
    "network_to_toml",
    "parse_network",
]

MAX_RELAYS: Final = 8

LANGUAGES: Final = ("en", "ru", "be", "lt", "lv", "et", "pl")

DEFAULT_ENDPOINTS: Final[Mapping[str, tuple[str, str]]] = {
    "BY": ("Belarus", "be"),
    "LT": ("Lithuania", "lt"),
    "LV": ("Latvia", "lv"),
    "EE": ("Estonia", "et"),
    "PL": ("Poland", "pl"),
}


@dataclass(frozen=True, slots=True)
class Deadline:
    """How long a message of one precedence may take to be delivered and acknowledged."""

    delivered_ms: int
    acknowledged_ms: int


DEFAULT_DEADLINES: Final[Mapping[Precedence, Deadline]] = {
    Precedence.FLASH: Deadline(5_000, 60_000),
    Precedence.IMMEDIATE: Deadline(30_000, 300_000),
    Precedence.PRIORITY: Deadline(120_000, 1_800_000),
    Precedence.ROUTINE: Deadline(600_000, 14_400_000),
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = DEFAULT_MAX_FRAME
    clock_skew_ms: int = 30_000
    messages_per_minute: int = 600
    retry_interval_ms: int = 3_000
    max_age_ms: int = 86_400_000


_DEFAULT_LIMITS: Final = Limits()


def _all_periods(current: PublicKey, listed: tuple[KeyPeriod, ...]) -> tuple[KeyPeriod, ...]:
    """Every key period of a party, the current key's first (unbounded if not listed)."""
    mine = [p for p in listed if p.key == current] or [KeyPeriod(current)]
    return (*mine, *(p for p in listed if p.key != current))


@dataclass(frozen=True, slots=True)
class RelayInfo:
    """A relay; ``keys`` holds its ``[[relay.keys]]`` entries as written."""

    id: str
    origin: str
    url: str
    public_key: PublicKey
    keys: tuple[KeyPeriod, ...] = ()
    operator: str = ""  # who runs it, in a network of several relays
    periods: tuple[KeyPeriod, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "periods", _all_periods(self.public_key, self.keys))


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """An endpoint; ``keys`` holds its ``[[endpoints.<ID>.keys]]`` entries as written."""

    id: str
    name: str
    public_key: PublicKey
    language: str
    keys: tuple[KeyPeriod, ...] = ()
    periods: tuple[KeyPeriod, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "periods", _all_periods(self.public_key, self.keys))


@dataclass(frozen=True, slots=True)
class Network:
    """A validated network. ``links`` holds unordered pairs of endpoint ids."""

    name: str
    relay: RelayInfo
    endpoints: Mapping[str, EndpointInfo]
    links: frozenset[frozenset[str]]
    deadlines: Mapping[Precedence, Deadline] = field(
        default_factory=lambda: dict(DEFAULT_DEADLINES)
    )
    limits: Limits = field(default_factory=Limits)
    link_test_interval_ms: int = 5_000
    link_test_timeout_ms: int = 2_000
    # several relays ([relays.<ID>]); empty for the one-relay network, whose relay is
    # ``relay``. With several, ``relay`` is the first of them.
    relays: Mapping[str, RelayInfo] = field(default_factory=dict)
    # links carried by only some relays ([[links]] relays = [...]); absent: by every relay
    link_relays: Mapping[frozenset[str], tuple[str, ...]] = field(default_factory=dict)

    @property
    def multipath(self) -> bool:
        """True when the network lists several relays (``[relays.<ID>]``)."""
        return bool(self.relays)

    @property
    def all_relays(self) -> tuple[RelayInfo, ...]:
        """Every relay, in configuration order (the one relay when there is one)."""
        return tuple(self.relays.values()) if self.relays else (self.relay,)

    def relay_info(self, relay_id: str) -> RelayInfo | None:
        for relay in self.all_relays:
            if relay.id == relay_id:
                return relay
        return None

    def is_relay(self, party: str) -> bool:
        return self.relay_info(party) is not None

    def relays_of_link(self, a: str, b: str) -> tuple[str, ...]:
        """The relays that carry the link a-b (none if there is no such link)."""
        pair = frozenset((a, b))
        if pair not in self.links:
            return ()
        return self.link_relays.get(pair, tuple(r.id for r in self.all_relays))

    def relays_for(self, sender: str, recipients: Sequence[str]) -> tuple[str, ...]:
        """The relays a body from ``sender`` to ``recipients`` travels over, in order."""
        used = {r for party in recipients for r in self.relays_of_link(sender, party)}
        return tuple(r.id for r in self.all_relays if r.id in used)

    def for_relay(self, relay_id: str) -> Network:
        """The one-relay view a relay runs with: it, and the links it carries."""
        if not self.relays:
            if relay_id != self.relay.id:
                raise ConfigError(f"the network's relay is {self.relay.id!r}, not {relay_id!r}")
            return self
        relay = self.relays.get(relay_id)
        if relay is None:
            raise ConfigError(
                f"{relay_id!r} is not a relay of the network ({', '.join(self.relays)})"
            )
        links = frozenset(
            pair for pair in self.links if relay_id in self.relays_of_link(*sorted(pair))
        )
        return replace(self, relay=relay, relays={}, link_relays={}, links=links)

    def periods_of(self, party: str) -> Sequence[KeyPeriod] | None:
        """Every key of a party with its period, the current key first; None for a stranger."""
        relay = self.relay_info(party)
        if relay is not None:
            return relay.periods
        endpoint = self.endpoints.get(party)
        return None if endpoint is None else endpoint.periods

    def keys_of(self, party: str) -> Sequence[PublicKey] | None:
        """Every key a party has signed or may sign with, the current key first."""
        periods = self.periods_of(party)
        return None if periods is None else tuple(p.key for p in periods)

    def keys_valid_at(self, party: str, ms: int) -> tuple[PublicKey, ...]:
        """The keys of ``party`` that may sign something dated ``ms`` (none for a stranger)."""
        return tuple(p.key for p in self.periods_of(party) or () if p.covers(ms))

    def period_of(self, party: str, kid: bytes) -> KeyPeriod | None:
        """The period of the key of ``party`` with key id ``kid``, if it has one."""
        for period in self.periods_of(party) or ():
            if period.key.kid == kid:
                return period
        return None

    def linked(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.links

    def peers(self, endpoint: str) -> tuple[str, ...]:
        """The endpoints linked to ``endpoint``, in configuration order."""
        return tuple(e for e in self.endpoints if e != endpoint and self.linked(endpoint, e))


# ----------------------------------------------------------------------------- parsing


def _table(
    data: Mapping[str, Any], key: str, where: str, *, required: bool = True
) -> dict[str, Any]:
    if key not in data:
        if required:
            raise ConfigError(f"{where}: [{key}] is missing")
        return {}
    value = data[key]
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _str(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value


def _seconds_ms(table: Mapping[str, Any], key: str, where: str, default_ms: int) -> int:
    if key not in table:
        return default_ms
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive number of seconds")
    return round(value * 1000)


def _positive_int(table: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive integer")
    return value


def _check_known(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}")


def _parse_relay(data: Mapping[str, Any], source: str) -> RelayInfo:
    relay_t = _table(data, "relay", source)
    where = f"{source} [relay]"
    _check_known(relay_t, {"id", "origin", "url", "public_key", "keys"}, where)
    relay_id = relay_t.get("id", "relay")
    if not isinstance(relay_id, str) or not PARTY_ID.fullmatch(relay_id):
        raise ConfigError(f"{where}: id must be letters, digits, _ . - (at most 32)")
    origin = _str(relay_t, "origin", where)
    if any(c.isspace() or ord(c) < 0x20 for c in origin) or "+" in origin:
        raise ConfigError(f"{where}: origin must not contain spaces, control characters or '+'")
    public_key = PublicKey.from_base64(
        _str(relay_t, "public_key", where), where=f"{where} public_key"
    )
    return RelayInfo(
        id=relay_id,
        origin=origin,
        url=_str(relay_t, "url", where),
        public_key=public_key,
        keys=_parse_key_periods(relay_t, f"{source} [[relay.keys]]", public_key),
    )


def _parse_relays(data: Mapping[str, Any], source: str) -> dict[str, RelayInfo]:
    """``[relays.<ID>]``: several independent relays, each with its own key and log."""
    relays_t = _table(data, "relays", source)
    if not relays_t:
        raise ConfigError(f"{source}: [relays] must name at least one relay")
    if len(relays_t) > MAX_RELAYS:
        raise ConfigError(f"{source}: [relays] lists more than {MAX_RELAYS} relays")
    relays: dict[str, RelayInfo] = {}
    origins: dict[str, str] = {}
    for relay_id, table in relays_t.items():
        where = f"{source} [relays.{relay_id}]"
        if not PARTY_ID.fullmatch(relay_id):
            raise ConfigError(f"{where}: the id must be letters, digits, _ . - (at most 32)")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        _check_known(table, {"origin", "url", "public_key", "keys", "operator"}, where)
        origin = _str(table, "origin", where)
        if any(c.isspace() or ord(c) < 0x20 for c in origin) or "+" in origin:
            raise ConfigError(
                f"{where}: origin must not contain spaces, control characters or '+'"
            )
        if origin in origins:
            raise ConfigError(
                f"{where}: origin {origin!r} is also relay {origins[origin]!r}'s: each relay "
                "keeps a log of its own"
            )
        origins[origin] = relay_id
        public_key = PublicKey.from_base64(
            _str(table, "public_key", where), where=f"{where} public_key"
        )
        relays[relay_id] = RelayInfo(
            id=relay_id,
            origin=origin,
            url=_str(table, "url", where),
            public_key=public_key,
            keys=_parse_key_periods(table, f"{source} [[relays.{relay_id}.keys]]", public_key),
            operator=_str(table, "operator", where),
        )
    return relays


def _time_ms(table: Mapping[str, Any], key: str, where: str) -> int | None:
    """A bound: integer milliseconds, an RFC 3339 string or a TOML offset date-time."""
    if key not in table:
        return None
    value = table[key]
    ms: int | None
    if isinstance(value, bool):
        ms = None
    elif isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        ms = parse_utc_ms(value)
    elif all(hasattr(value, a) for a in ("hour", "utcoffset", "microsecond")):
        # a TOML date-time, read without importing datetime (this module reads no clock)
        offset = value.utcoffset()
        if offset is None:
            raise ConfigError(f"{where}: {key} needs a time zone (Z or +hh:mm)")
        if value.microsecond % 1000:
            raise ConfigError(f"{where}: {key} must be a whole millisecond")
        ms = ms_from_fields(
            value.year, value.month, value.day, hour=value.hour, minute=value.minute,
            second=value.second, millisecond=value.microsecond // 1000,
            offset_minutes=round(offset.total_seconds()) // 60,
        )
    else:
        ms = None
    if ms is None or not 0 <= ms < 2**48:
        raise ConfigError(
            f"{where}: {key} must be milliseconds since the epoch or an RFC 3339 date-time "
            "with a zone, such as 2026-03-01T10:00:00Z"
        )
    return ms


def _parse_key_periods(
    table: Mapping[str, Any], where: str, current: PublicKey
) -> tuple[KeyPeriod, ...]:
    entries = table.get("keys", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: keys must be an array of tables")
    periods: list[KeyPeriod] = []
    for i, entry in enumerate(entries):
        at = f"{where} #{i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be a table")
        _check_known(entry, {"public_key", "not_before", "not_after"}, at)
        key = PublicKey.from_base64(_str(entry, "public_key", at), where=f"{at} public_key")
        period = KeyPeriod(key, _time_ms(entry, "not_before", at), _time_ms(entry, "not_after", at))
        if (
            period.not_before is not None
            and period.not_after is not None
            and period.not_before >= period.not_after
        ):
            raise ConfigError(f"{at}: not_before must be earlier than not_after")
        for other in periods:
            if other.key == key:
                raise ConfigError(f"{at}: key {key.kid.hex()} is listed twice")
            if other.key.kid == key.kid:
                raise ConfigError(f"{at}: two keys share the key id {key.kid.hex()}")
        if key != current and key.kid == current.kid:
            raise ConfigError(f"{at}: the key shares its key id with public_key")
        periods.append(period)
    return tuple(periods)


def _parse_endpoints(
    data: Mapping[str, Any], source: str, relays: Sequence[RelayInfo]
) -> dict[str, EndpointInfo]:
    endpoints_t = _table(data, "endpoints", source)
    if not endpoints_t:
        raise ConfigError(f"{source}: [endpoints] must name at least one endpoint")
    endpoints: dict[str, EndpointInfo] = {}
    for endpoint_id, table in endpoints_t.items():
        where = f"{source} [endpoints.{endpoint_id}]"
        if not PARTY_ID.fullmatch(endpoint_id):
            raise ConfigError(f"{where}: the id must be letters, digits, _ . - (at most 32)")
        if any(endpoint_id == relay.id for relay in relays):
            raise ConfigError(f"{where}: an endpoint cannot share a relay's id")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        _check_known(table, {"name", "public_key", "language", "keys"}, where)
        language = _str(table, "language", where)
        if language not in LANGUAGES:
            raise ConfigError(f"{where}: language must be one of {', '.join(LANGUAGES)}")
        public_key = PublicKey.from_base64(
            _str(table, "public_key", where), where=f"{where} public_key"
        )
        endpoints[endpoint_id] = EndpointInfo(
            id=endpoint_id,
            name=_str(table, "name", where),
            public_key=public_key,
            language=language,
            keys=_parse_key_periods(
                table, f"{source} [[endpoints.{endpoint_id}.keys]]", public_key
            ),
        )
    owners: dict[bytes, str] = {}
    for party, periods in [(relay.id, relay.periods) for relay in relays] + [
        (e.id, e.periods) for e in endpoints.values()
    ]:
        for period in periods:
            other = owners.setdefault(period.key.raw, party)
            if other != party:
                raise ConfigError(
                    f"{source}: {other} and {party} share one public key "
                    f"(key id {period.key.kid.hex()})"
                )
    return endpoints


def _parse_links(
    data: Mapping[str, Any],
    source: str,
    endpoints: Mapping[str, EndpointInfo],
    relays: Mapping[str, RelayInfo],
    carried: dict[frozenset[str], tuple[str, ...]],
) -> frozenset[frozenset[str]]:
    links_v = data.get("links", [])
    if not isinstance(links_v, list):
        raise ConfigError(f"{source}: links must be an array of tables [[links]]")
    links: set[frozenset[str]] = set()
    for i, link in enumerate(links_v):
        where = f"{source} [[links]] #{i + 1}"
        if not isinstance(link, dict):
            raise ConfigError(f"{where}: must be a table")
        _check_known(link, {"between", "relays"} if relays else {"between"}, where)
        between = link.get("between")
        if (
            not isinstance(between, list)
            or len(between) != 2
            or not all(isinstance(e, str) for e in between)
            or between[0] == between[1]
        ):
            raise ConfigError(f"{where}: between must name two different endpoints")
        for e in between:
            if e not in endpoints:
                raise ConfigError(f"{where}: {e!r} is not an endpoint of [endpoints]")
        pair = frozenset(between)
        if "relays" in link:
            named = link["relays"]
            if (
                not isinstance(named, list)
                or not named
                or not all(isinstance(r, str) and r in relays for r in named)
                or len(set(named)) != len(named)
            ):
                raise ConfigError(
                    f"{where}: relays must name distinct relays of [relays] "
                    f"({', '.join(relays)})"
                )
            carried[pair] = tuple(r for r in relays if r in named)
        links.add(pair)
    return frozenset(links)


def _parse_deadlines(data: Mapping[str, Any], source: str) -> dict[Precedence, Deadline]:
    deadlines = dict(DEFAULT_DEADLINES)
    for key, table in _table(data, "deadlines", source, required=False).items():
        where = f"{source} [deadlines.{key}]"
        try:
            precedence = Precedence(key)
        except ValueError:
            raise ConfigError(
                f"{where}: not a precedence (flash, immediate, priority, routine)"
            ) from None
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        _check_known(table, {"delivered_s", "acknowledged_s"}, where)
        default = DEFAULT_DEADLINES[precedence]
        deadlines[precedence] = Deadline(
            _seconds_ms(table, "delivered_s", where, default.delivered_ms),
            _seconds_ms(table, "acknowledged_s", where, default.acknowledged_ms),
        )
    return deadlines


def _parse_limits(data: Mapping[str, Any], source: str) -> Limits:
    limits_t = _table(data, "limits", source, required=False)
    where = f"{source} [limits]"
    _check_known(
        limits_t,
        {"max_frame_bytes", "clock_skew_s", "messages_per_minute", "retry_interval_s",
         "max_age_s"},
        where,
    )
    limits = Limits(
        max_frame_bytes=_positive_int(limits_t, "max_frame_bytes", where, DEFAULT_MAX_FRAME),
        clock_skew_ms=_seconds_ms(
            limits_t, "clock_skew_s", where, _DEFAULT_LIMITS.clock_skew_ms
        ),
        messages_per_minute=_positive_int(
            limits_t, "messages_per_minute", where, _DEFAULT_LIMITS.messages_per_minute
        ),
        retry_interval_ms=_seconds_ms(
            limits_t, "retry_interval_s", where, _DEFAULT_LIMITS.retry_interval_ms
        ),
        max_age_ms=_seconds_ms(limits_t, "max_age_s", where, _DEFAULT_LIMITS.max_age_ms),
    )
    if limits.max_frame_bytes < 1024:
        raise ConfigError(f"{where}: max_frame_bytes must be at least 1024")
    if limits.max_frame_bytes > LARGEST_MAX_FRAME:
        raise ConfigError(
            f"{where}: max_frame_bytes must be at most {LARGEST_MAX_FRAME:,}, so that every "
            f"frame it admits fits one log entry; not {limits.max_frame_bytes:,}"
        )
    return limits


def parse_network(data: Mapping[str, Any], *, source: str = "network.toml") -> Network:
    """Validate a decoded network.toml; ConfigError names the table and key at fault."""
    _check_known(
        data,
        {"network", "relay", "relays", "endpoints", "links", "deadlines", "limits",
         "link_tests"},
        source,
    )
    name = _str(_table(data, "network", source), "name", f"{source} [network]")
    relays: dict[str, RelayInfo] = {}
    if "relays" in data:
        if "relay" in data:
            raise ConfigError(f"{source}: give either [relay] or [relays.<ID>], not both")
        relays = _parse_relays(data, source)
        relay = next(iter(relays.values()))
    else:
        relay = _parse_relay(data, source)
    endpoints = _parse_endpoints(data, source, tuple(relays.values()) or (relay,))
    carried: dict[frozenset[str], tuple[str, ...]] = {}
    links = _parse_links(data, source, endpoints, relays, carried)
    tests_t = _table(data, "link_tests", source, required=False)
    where = f"{source} [link_tests]"
    _check_known(tests_t, {"interval_s", "timeout_s"}, where)
    return Network(
        name=name,
        relay=relay,
        endpoints=endpoints,
        links=links,
        deadlines=_parse_deadlines(data, source),
        limits=_parse_limits(data, source),
        link_test_interval_ms=_seconds_ms(tests_t, "interval_s", where, 5_000),
        link_test_timeout_ms=_seconds_ms(tests_t, "timeout_s", where, 2_000),
        relays=relays,
        link_relays=carried,
    )


def _periods_toml(periods: Sequence[KeyPeriod]) -> dict[str, Any]:
    """``{"keys": [...]}`` for a party that lists key periods, else nothing."""
    if not periods:
        return {}
    rows: list[dict[str, str]] = []
    for period in periods:
        row = {"public_key": period.key.to_base64()}
        if period.not_before is not None:
            row["not_before"] = format_utc_ms(period.not_before)
        if period.not_after is not None:
            row["not_after"] = format_utc_ms(period.not_after)
        rows.append(row)
    return {"keys": rows}


def network_to_toml(network: Network) -> str:
    """The network.toml text of a network (round-trips through parse_network)."""
    relays: dict[str, Any]
    if network.relays:
        relays = {"relays": {
            r.id: {
                "origin": r.origin,
                "url": r.url,
                "public_key": r.public_key.to_base64(),
                "operator": r.operator,
                **_periods_toml(r.keys),
            }
            for r in network.relays.values()
        }}
    else:
        relays = {"relay": {
            "id": network.relay.id,
            "origin": network.relay.origin,
            "url": network.relay.url,
            "public_key": network.relay.public_key.to_base64(),
            **_periods_toml(network.relay.keys),
        }}
    doc: dict[str, Any] = {
        "network": {"name": network.name},
        **relays,
        "endpoints": {
            e.id: {
                "name": e.name,
                "public_key": e.public_key.to_base64(),
                "language": e.language,
                **_periods_toml(e.keys),
            }
            for e in network.endpoints.values()
        },
        "links": [
            {"between": pair, **(
                {"relays": list(network.link_relays[frozenset(pair)])}
                if frozenset(pair) in network.link_relays else {}
            )}
            for pair in (
                [a, b]
                for a, b in combinations(network.endpoints, 2)
                if network.linked(a, b)
            )
        ],
        "deadlines": {
            p.value: {
                "delivered_s": d.delivered_ms / 1000,
                "acknowledged_s": d.acknowledged_ms / 1000,
            }
            for p, d in network.deadlines.items()
        },
        "limits": {
            "max_frame_bytes": network.limits.max_frame_bytes,
            "clock_skew_s": network.limits.clock_skew_ms / 1000,
            "messages_per_minute": network.limits.messages_per_minute,
            "retry_interval_s": network.limits.retry_interval_ms / 1000,
            "max_age_s": network.limits.max_age_ms / 1000,
        },
        "link_tests": {
            "interval_s": network.link_test_interval_ms / 1000,
            "timeout_s": network.link_test_timeout_ms / 1000,
        },
    }
    return tomli_w.dumps(doc)
