"""Several relays' bundles read against one network: the auditor's pinned one, or agreeing."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from hotline.bootstrap import create_network, key_path
from hotline.cli.main import main
from hotline.keyfile import load_signing_key
from hotline.network import Network, network_to_toml
from hotline.protocol.keys import SigningKey
from tests.auditlog.logs import entries_for, run_cli, write_log
from tests.factories import TestNet

ENDPOINTS = ("BY", "LT", "PL")


def _entries(full: Network, relay: str, keys: dict[str, SigningKey], count: int) -> list[bytes]:
    """The same messages for every relay; the link tests its own, signed with ``keys[relay]``."""
    return entries_for(TestNet(full.for_relay(relay), keys), count)


def _relay_log(root: Path, full: Network, relay: str, key: SigningKey, entries: list[bytes],
               network_dir: Path) -> Path:
    """``relay``'s log of ``entries``, signed with ``key``, exported with ``network_dir``."""
    write_log(root / f"relay-{relay}", TestNet(full.for_relay(relay), {"relay": key}), entries)
    out = root / "bundles" / relay
    assert main(["audit", "export", str(root / f"relay-{relay}"), "--out", str(out),
                 "--network", str(network_dir)]) == 0
    return out


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Network, dict[str, SigningKey]]:
    root = tmp_path_factory.mktemp("relays")
    full = create_network(root / "net", endpoints=ENDPOINTS, relays=("by", "osce"))
    keys = {p: load_signing_key(key_path(root / "net", p)) for p in (*ENDPOINTS, "by", "osce")}
    for relay in ("by", "osce"):
        _relay_log(root, full, relay, keys[relay], _entries(full, relay, keys, 200), root / "net")
    return root, full, keys


def _hostile(root: Path, full: Network, keys: dict[str, SigningKey]) -> Path:
    """osce's bundle as a hostile osce makes it: its own key in its network.toml."""
    evil = SigningKey.generate()
    forged = replace(full, relays={**full.relays,
                                   "osce": replace(full.relays["osce"], public_key=evil.public)})
    (root / "evil").mkdir(exist_ok=True)
    (root / "evil" / "network.toml").write_text(network_to_toml(forged))
    entries = _entries(forged, "osce", {**keys, "osce": evil}, 200)
    return _relay_log(root / "evil", forged, "osce", evil, entries, root / "evil")


@pytest.mark.parametrize("verb", ["report", "compare"])
def test_pinned_network_reads_every_relay_bundle(
    net: tuple[Path, Network, dict[str, SigningKey]], verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--network with the whole network.toml: each bundle read by its relay's key, exit 0."""
    root, _, _ = net
    bundles = [str(root / "bundles" / r) for r in ("by", "osce")]
    code, out, err = run_cli(["audit", verb, *bundles, "--network", str(root / "net"),
                              "--format", "json"], capsys)
    assert (code, err) == (0, "")
    assert set(json.loads(out)["relays"]) == {"by", "osce"}


@pytest.mark.parametrize("verb", ["report", "compare"])
def test_a_bundle_naming_its_own_relay_key_is_refused_against_the_pinned_network(
    net: tuple[Path, Network, dict[str, SigningKey]], verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hostile osce's bundle verifies by its own network.toml, not by the pinned one."""
    root, full, keys = net
    if not (root / "evil" / "bundles" / "osce").exists():
        _hostile(root, full, keys)
    hostile = root / f"hostile-{verb}"
    shutil.copytree(root / "evil" / "bundles" / "osce", hostile)
    bundles = [str(root / "bundles" / "by"), str(hostile)]
    code, _, _ = run_cli(["audit", verb, *bundles], capsys)
    assert code == 0  # by the bundles' own files alone it passes: hence --network
    code, out, err = run_cli(["audit", verb, *bundles, "--network", str(root / "net")], capsys)
    assert code == 1
    assert out == ""
    assert err.startswith("bundle_network_mismatch: ")
    assert "view of relay 'osce' in the relay's id, origin, URL or keys" in err
    # the honest network.toml beside the forged checkpoint: the pinned key refuses it
    shutil.copy(root / "bundles" / "osce" / "network.toml", hostile / "network.toml")
    code, _, err = run_cli(["audit", verb, *bundles, "--network", str(root / "net")], capsys)
    assert code == 1
    assert err.startswith("verify_failed: ")
    shutil.rmtree(hostile)


def test_a_bundle_of_a_relay_the_pinned_network_lacks_is_refused(
    net: tuple[Path, Network, dict[str, SigningKey]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A checkpoint whose origin names no relay of the pinned network is refused by name."""
    root, _, _ = net
    other = create_network(tmp_path / "other", endpoints=ENDPOINTS, relays=("by", "osce"),
                           origin="elsewhere.example/log")
    code, _, err = run_cli(["audit", "compare", str(root / "bundles" / "by"),
                            str(root / "bundles" / "osce"), "--network",
                            str(tmp_path / "other")], capsys)
    assert other.multipath
    assert code == 1
    assert err.startswith("bundle_network_mismatch: ")
    assert "no relay of the pinned network" in err


@pytest.mark.parametrize("verb", ["report", "compare"])
def test_bundles_whose_network_files_disagree_on_an_endpoint_key_are_refused(
    net: tuple[Path, Network, dict[str, SigningKey]], tmp_path: Path, verb: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --network, one bundle naming another key for LT is refused, naming endpoints."""
    root, full, _ = net
    shutil.copytree(root / "bundles" / "by", tmp_path / "by")
    view = full.for_relay("by")
    lt = replace(view.endpoints["LT"], public_key=SigningKey.generate().public)
    (tmp_path / "by" / "network.toml").write_text(
        network_to_toml(replace(view, endpoints={**view.endpoints, "LT": lt})))
    code, out, err = run_cli(["audit", verb, str(tmp_path / "by"),
                              str(root / "bundles" / "osce")], capsys)
    assert code == 1
    assert out == ""
    assert err.startswith("bundle_network_mismatch: ")
    assert "differ in the endpoints or their keys" in err


def test_compare_judges_nothing_after_the_earlier_bundle_ends(
    net: tuple[Path, Network, dict[str, SigningKey]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """by exported after 60 entries, osce after 200: osce's later messages are no finding."""
    root, full, keys = net
    early = _relay_log(tmp_path, full, "by", keys["by"], _entries(full, "by", keys, 60),
                       root / "net")
    capsys.readouterr()
    code, out, _ = run_cli(["audit", "compare", str(early), str(root / "bundles" / "osce"),
                            "--network", str(root / "net"), "--format", "json"], capsys)
    result = json.loads(out)
    assert code == 0
    assert result["missing"] == []
    assert result["after_end"]  # what osce logged later: listed, not judged
    assert {m["lacks"] for m in result["after_end"]} == {"by"}


@pytest.mark.parametrize("verb", [["verify"], ["replay"], ["report"], ["prove", "--index", "3"]])
def test_one_relay_bundle_is_read_by_its_key_in_the_whole_pinned_network(
    net: tuple[Path, Network, dict[str, SigningKey]], verb: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """osce's bundle alone against the whole network.toml: osce's key, not the first relay's."""
    root, full, keys = net
    code, _, err = run_cli(["audit", verb[0], str(root / "bundles" / "osce"), *verb[1:],
                            "--network", str(root / "net")], capsys)
    assert (code, err) == (0, "")
    if not (root / "evil" / "bundles" / "osce").exists():
        _hostile(root, full, keys)
    code, _, err = run_cli(["audit", verb[0], str(root / "evil" / "bundles" / "osce"),
                            *verb[1:], "--network", str(root / "net")], capsys)
    assert code == 1
    assert err.startswith("bundle_network_mismatch: ")
