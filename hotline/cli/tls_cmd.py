"""``hotline tls-certs``: a throw-away CA and certificates, for tests and for trying TLS out.

Writes into DIR (never over an existing file):

- ``ca.pem``: the CA's certificate, to give relays and endpoints as the CA they
  trust (``--relay-ca``, ``--tls-client-ca``); the CA's key is not kept, so
  more certificates from it are not possible: run the command again instead;
- ``relay.pem`` and ``relay.key``: the relay's certificate for the hosts given;
- ``<ID>.pem`` and ``<ID>.key`` for each endpoint: good both as its client
  certificate to the relay (mutual TLS) and for serving its API on those hosts.

Keys are ECDSA P-256, PEM PKCS#8, mode 0600 from the first byte. The relay's
pin is printed, for ``--relay-pin``. A real deployment uses certificates from
the operators' own CA.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hotline.cli.common import Commands, NetworkArg
from hotline.errors import UsageError
from hotline.tls import certificate_pin

__all__ = ["Issued", "issue", "make_authority", "register", "write_certificates"]

VALID_DAYS: Final = 365
DEFAULT_ENDPOINTS: Final = ("BY", "LT", "LV", "EE", "PL")

Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hotline (throw-away)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return x509.DNSName(host)


def _builder(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey,
             now: datetime.datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def make_authority(common_name: str = "hotline throw-away CA") -> Issued:
    """A self-signed CA that may issue end-entity certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        _builder(_name(common_name), _name(common_name), key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def issue(
    authority: Issued, common_name: str, hosts: tuple[str, ...], *, server: bool, client: bool
) -> Issued:
    """A certificate from ``authority`` for ``hosts``, for server and/or client authentication."""
    ca_certificate, ca_key = authority
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    builder = (
        _builder(_name(common_name), ca_certificate.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alt_name(h) for h in hosts]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def write_certificates(directory: Path, hosts: tuple[str, ...], endpoints: tuple[str, ...]) -> str:
    """Write the CA, the relay's and each endpoint's certificate and key; the relay's pin."""
    names = ["ca.pem", "relay.pem", "relay.key"]
    for endpoint in endpoints:
        names += [f"{endpoint}.pem", f"{endpoint}.key"]
    taken = [name for name in names if (directory / name).exists()]
    if taken:
        raise UsageError(f"{directory} already holds {', '.join(taken)}; not overwriting")
    directory.mkdir(parents=True, exist_ok=True)
    authority = make_authority()
    _write_new(directory / "ca.pem", _certificate_pem(authority[0]), 0o644)
    # The relay's certificate also allows client authentication: its container's health
    # probe shows it to the relay's own port under mutual TLS (hotline/healthprobe.py).
    parties = [("relay", True, True)] + [(e, True, True) for e in endpoints]
    relay_pin = ""
    for party, server, client in parties:
        certificate, key = issue(authority, party, hosts, server=server, client=client)
        _write_new(directory / f"{party}.key", _key_pem(key), 0o600)
        _write_new(directory / f"{party}.pem", _certificate_pem(certificate), 0o644)
        if party == "relay":
            relay_pin = certificate_pin(_certificate_pem(certificate))
    return relay_pin


def register(commands: Commands) -> None:
    p = commands.add_parser(
        "tls-certs", help="write a throw-away CA and certificates for the relay and endpoints"
    )
    p.add_argument("directory", type=Path, help="where to write them (files are never replaced)")
    p.add_argument("--hosts", default="127.0.0.1,localhost",
                   help="comma-separated names and addresses the certificates are good for")
    p.add_argument("--endpoints", help="comma-separated endpoint ids (default: the network's, "
                                       "or BY,LT,LV,EE,PL)")
    p.add_argument("--network", type=NetworkArg, help="take the endpoint ids from network.toml")
    p.set_defaults(handler=run)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    if args.endpoints:
        endpoints = _split(args.endpoints)
    elif args.network is not None:
        endpoints = tuple(sorted(args.network.load().endpoints))
    else:
        endpoints = DEFAULT_ENDPOINTS
    hosts = _split(args.hosts)
    if not hosts:
        raise UsageError("--hosts names no host")
    pin = write_certificates(args.directory, hosts, endpoints)
    print(f"wrote ca.pem, relay.pem/.key and {len(endpoints)} endpoint certificates "
          f"to {args.directory}")
    print(f"relay pin: {pin}")
    return 0
