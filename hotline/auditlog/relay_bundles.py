"""The bundles of several relays of one network, opened against one network.

Each relay exports its own bundle, holding its one-relay view of the network
(:meth:`~hotline.network.Network.for_relay`). A bundle's network.toml is the
relay's word, so a hostile relay could name its own keys there. With the full
network.toml pinned (``--network``), each bundle's relay is the one whose origin
its checkpoint names, its checkpoint is checked against that relay's keys from
the pinned network, and a bundle whose network.toml is not exactly the pinned
network's view of its relay is refused. Without it, the bundles must at least
agree with each other on everything but the relay: the network's name, every
endpoint and its keys, the links, deadlines and limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

from hotline.auditlog.bundle import CHECKPOINT_NAME, NETWORK_NAME, Bundle
from hotline.errors import AuditError, BundleMismatch, HotlineError, UsageError
from hotline.network import Network
from hotline.network_file import load_network

__all__ = ["open_relay_bundles"]

_RELAY_FIELDS = frozenset({"relay", "relays", "link_relays"})
_WHAT = {"relay": "the relay's id, origin, URL or keys", "endpoints": "the endpoints or their keys",
         "links": "the links", "relays": "the relays", "link_relays": "which relays carry a link"}


def _differences(a: Network, b: Network, *, skip: frozenset[str] = frozenset()) -> list[str]:
    # a one-relay view's network.toml has [relay], which has no operator: not compared
    a, b = (replace(n, relay=replace(n.relay, operator="")) for n in (a, b))
    return [_WHAT.get(f.name, f.name) for f in fields(Network)
            if f.name not in skip and getattr(a, f.name) != getattr(b, f.name)]


def _origin(path: Path) -> str:
    try:
        note = (path / CHECKPOINT_NAME).read_bytes()
    except FileNotFoundError:
        raise AuditError(f"{path} is not a log bundle: it has no {CHECKPOINT_NAME} file") from None
    return note.split(b"\n", 1)[0].decode("utf-8", "replace")


def _pinned(path: Path, pinned: Network) -> Bundle:
    origin = _origin(path)
    relay = next((r for r in pinned.all_relays if r.origin == origin), None)
    if relay is None:
        raise BundleMismatch(
            f"{path}'s checkpoint names the origin {origin!r}, no relay of the pinned network"
        )
    view = pinned.for_relay(relay.id)
    if (path / NETWORK_NAME).is_file():
        try:
            own = load_network(path / NETWORK_NAME)
        except HotlineError as exc:
            raise BundleMismatch(f"{path}'s {NETWORK_NAME} does not load: {exc}") from exc
        differ = _differences(own, view)
        if differ:
            raise BundleMismatch(
                f"{path}'s {NETWORK_NAME} differs from the pinned network's view of relay "
                f"{relay.id!r} in {', '.join(differ)}"
            )
    return Bundle(path, view)


def open_relay_bundles(paths: Sequence[Path], pinned: Network | None) -> list[Bundle]:
    """One bundle per relay, each with the network to read it by; refused if they disagree.

    ``pinned``: the full network.toml the auditor trusts; without it, the bundles'
    own network files, which must agree with each other on all but the relay.
    """
    bundles = [_pinned(path, pinned) if pinned is not None else Bundle(path) for path in paths]
    seen: set[str] = set()
    for bundle in bundles:
        relay = bundle.network.relay.id
        if relay in seen:
            raise UsageError(f"two bundles are relay {relay!r}'s; give one bundle per relay")
        seen.add(relay)
    if pinned is None and bundles:
        first = bundles[0]
        for bundle in bundles[1:]:
            differ = _differences(first.network, bundle.network, skip=_RELAY_FIELDS)
            if differ:
                raise BundleMismatch(
                    f"the network files of {first.path} and {bundle.path} differ in "
                    f"{', '.join(differ)}; give the full network.toml with --network "
                    "(needed too when some links are carried by only some relays)"
                )
    return bundles
