"""``hotline tls-certs``: a throw-away CA, the relay's and each endpoint's certificate."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from hotline.bootstrap import create_network
from hotline.cli.main import main
from hotline.tls import certificate_pin


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_it_writes_a_ca_the_relay_and_one_certificate_per_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files for the network's endpoints, keys 0600, names and uses right, the pin printed."""
    create_network(tmp_path / "net", endpoints=("BY", "LT", "PL"))
    out = tmp_path / "certs"
    assert main(["tls-certs", str(out), "--hosts", "127.0.0.1,localhost",
                 "--network", str(tmp_path / "net")]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["BY.key", "BY.pem", "LT.key", "LT.pem", "PL.key", "PL.pem",
                     "ca.pem", "relay.key", "relay.pem"]
    for key in out.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = _load(out / "ca.pem")
    relay = _load(out / "relay.pem")
    lt = _load(out / "LT.pem")
    for issued in (relay, lt):
        assert issued.issuer == ca.subject
        issued.verify_directly_issued_by(ca)
    names_on = relay.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names_on.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names_on.get_values_for_type(x509.DNSName) == ["localhost"]
    uses = lt.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(uses) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    printed = capsys.readouterr().out
    assert f"relay pin: {certificate_pin((out / 'relay.pem').read_bytes())}" in printed


def test_it_never_overwrites_certificates_already_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second run into the same directory exits 2 and leaves the first CA in place."""
    out = tmp_path / "certs"
    assert main(["tls-certs", str(out), "--endpoints", "BY"]) == 0
    first = (out / "ca.pem").read_bytes()
    assert main(["tls-certs", str(out), "--endpoints", "BY"]) == 2
    assert "not overwriting" in capsys.readouterr().err
    assert (out / "ca.pem").read_bytes() == first
