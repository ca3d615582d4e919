"""A network of several independent relays: ``[relays.<ID>]``, ``init --relays``, relay views."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hotline.bootstrap import create_network, key_path
from hotline.cli.main import main
from hotline.errors import ConfigError
from hotline.keyfile import load_signing_key
from hotline.network import network_to_toml, parse_network
from hotline.network_file import load_network


def _doc(tmp_path: Path) -> dict[str, Any]:
    network = create_network(tmp_path / "net", endpoints=("BY", "LT", "PL"), relays=("by", "osce"))
    return tomllib.loads(network_to_toml(network))


def test_init_relays_writes_each_relay_with_its_own_key_origin_and_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``init --relays by,osce``: two relays, each with its own key, origin and port."""
    assert main(["init", str(tmp_path / "net"), "--relays", "by,osce"]) == 0
    assert "keys/osce.key" in capsys.readouterr().out
    network = load_network(tmp_path / "net" / "network.toml")
    assert network.multipath
    assert [r.id for r in network.all_relays] == ["by", "osce"]
    by, osce = network.relays["by"], network.relays["osce"]
    assert by.origin != osce.origin
    assert by.url.replace("8700", "8701") == osce.url
    for relay in (by, osce):
        assert load_signing_key(key_path(tmp_path / "net", relay.id)).public == relay.public_key
    assert network.relays_for("BY", ["LT"]) == ("by", "osce")


def test_the_one_relay_network_is_unchanged(tmp_path: Path) -> None:
    """Without --relays the file has [relay] and no [relays]; it round-trips as before."""
    network = create_network(tmp_path / "net")
    text = network_to_toml(network)
    assert "[relay]" in text
    assert "[relays" not in text
    assert not network.multipath
    assert network.all_relays == (network.relay,)
    assert network.for_relay("relay") is network


def test_a_relay_view_holds_one_relay_and_only_the_links_it_carries(tmp_path: Path) -> None:
    """A link naming relays = ["osce"] is carried by osce alone; by's view lacks it."""
    doc = _doc(tmp_path)
    for link in doc["links"]:
        if set(link["between"]) == {"BY", "PL"}:
            link["relays"] = ["osce"]
    network = parse_network(doc)
    assert network.relays_of_link("BY", "PL") == ("osce",)
    assert network.relays_for("BY", ["LT", "PL"]) == ("by", "osce")
    by_view = network.for_relay("by")
    assert not by_view.multipath
    assert by_view.relay.id == "by"
    assert not by_view.linked("BY", "PL")
    assert by_view.linked("BY", "LT")
    assert network.for_relay("osce").linked("BY", "PL")
    assert parse_network(tomllib.loads(network_to_toml(network))) == network


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(relay={"id": "r", "origin": "o", "url": "u",
                                   "public_key": d["relays"]["by"]["public_key"]}),
         r"either \[relay\] or \[relays"),
        (lambda d: d["relays"]["osce"].update(origin=d["relays"]["by"]["origin"]),
         "keeps a log of its own"),
        (lambda d: d["relays"]["osce"].pop("operator"), "operator must be a non-empty string"),
        (lambda d: d["links"][0].update(relays=["nowhere"]), "relays must name distinct relays"),
        (lambda d: d["relays"].update(LT=d["relays"].pop("osce")), "share a relay's id"),
        (lambda d: d["relays"]["osce"].update(public_key=d["relays"]["by"]["public_key"]),
         "share one public key"),
    ],
)
def test_a_bad_relays_table_is_refused_by_name(tmp_path: Path, change: Any, words: str) -> None:
    """Each mistake in [relays] is a ConfigError naming what is wrong."""
    doc = _doc(tmp_path)
    change(doc)
    with pytest.raises(ConfigError, match=words):
        parse_network(doc)


def test_an_unknown_relay_id_is_named(tmp_path: Path) -> None:
    """Asking for the view of a relay the network does not list names the ones it does."""
    network = parse_network(_doc(tmp_path))
    with pytest.raises(ConfigError, match="by, osce"):
        network.for_relay("nowhere")
