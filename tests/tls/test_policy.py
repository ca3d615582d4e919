"""Plaintext only on loopback unless unsafe_plaintext; pins and TLS files checked at start."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import structlog

from hotline.bootstrap import create_network
from hotline.cli import endpoint_cmd, relay_cmd
from hotline.cli.main import build_parser, main
from hotline.endpoint.service import serve_endpoint
from hotline.errors import PlaintextRefused, TlsError
from hotline.network import network_to_toml
from hotline.relay.server import RelayConfig, start_relay
from hotline.tls import (
    ClientTls,
    ServerTls,
    TlsSettings,
    Transport,
    format_pin,
    is_loopback,
    listening_transport,
    note_transport,
    parse_pin,
    relay_transport,
    server_context,
)
from tests.factories import TestNet
from tests.tls.conftest import Pki, endpoint_config

DIGEST = hashlib.sha256(b"a certificate").digest()


def listen(host: str, serve: ServerTls | None = None, *, unsafe: bool = False) -> Transport:
    return listening_transport(host, serve, unsafe_plaintext=unsafe, what="the relay",
                               cert_flags="--tls-cert and --tls-key")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"])
def test_plaintext_is_allowed_on_loopback(host: str) -> None:
    """Loopback addresses and localhost may listen without TLS."""
    assert is_loopback(host)
    assert listen(host) is Transport.LOOPBACK


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "relay.example"])
def test_plaintext_off_loopback_is_refused_naming_the_options(host: str) -> None:
    """All interfaces, another address or a name: refused, naming the flags and the switch."""
    with pytest.raises(PlaintextRefused) as refused:
        listen(host)
    assert "--tls-cert and --tls-key" in str(refused.value)
    assert "unsafe_plaintext (--unsafe-plaintext)" in str(refused.value)


def test_unsafe_plaintext_allows_it_and_the_start_says_so() -> None:
    """With unsafe_plaintext the listener may start, and plaintext_allowed_unsafely is logged."""
    transport = listen("0.0.0.0", unsafe=True)
    assert transport is Transport.UNSAFE_PLAINTEXT
    with structlog.testing.capture_logs() as logs:
        note_transport(transport, role="relay")
        note_transport(listen("127.0.0.1", unsafe=True), role="relay")
    assert logs == [{"event": "plaintext_allowed_unsafely", "log_level": "warning",
                     "role": "relay"}]


def test_a_certificate_makes_any_host_acceptable(pki: Pki) -> None:
    """With a certificate the listener speaks TLS wherever it listens."""
    assert listen("0.0.0.0", pki.serve("relay")) is Transport.TLS


async def test_the_relay_refuses_plaintext_on_all_interfaces_before_opening_its_log(
    net: TestNet, tmp_path: Path
) -> None:
    """start_relay on 0.0.0.0 without TLS raises PlaintextRefused and leaves no log behind."""
    config = RelayConfig(
        network=net.network, network_toml=network_to_toml(net.network).encode(),
        data_dir=tmp_path / "relay", key=net.keys["relay"], host="0.0.0.0", port=0,
    )
    with pytest.raises(PlaintextRefused):
        await start_relay(config)
    assert not (tmp_path / "relay").exists()


def test_hotline_relay_on_all_interfaces_needs_unsafe_plaintext(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command exits 2 naming --unsafe-plaintext; with it, the settings carry the switch."""
    create_network(tmp_path / "net", endpoints=("BY", "LT"))
    argv = ["relay", "--network", str(tmp_path / "net"), "--data", str(tmp_path / "relay"),
            "--host", "0.0.0.0", "--port", "0"]
    assert main(argv) == 2
    assert "plaintext_refused: " in capsys.readouterr().err
    assert not (tmp_path / "relay").exists()
    config = relay_cmd.config_from(build_parser().parse_args([*argv, "--unsafe-plaintext"]))
    assert config.tls == TlsSettings(unsafe_plaintext=True)


@pytest.mark.parametrize("url", ["ws://192.0.2.7:8700/v1/ws", "http://relay.example/v1/ws"])
def test_an_endpoint_refuses_plaintext_to_a_relay_off_loopback(url: str) -> None:
    """ws:// or http:// to another host is refused unless unsafe_plaintext is set."""
    with pytest.raises(PlaintextRefused) as refused:
        relay_transport(url, TlsSettings())
    assert "wss://" in str(refused.value)
    assert "--unsafe-plaintext" in str(refused.value)
    assert relay_transport(url, TlsSettings(unsafe_plaintext=True)) is Transport.UNSAFE_PLAINTEXT


def test_an_endpoint_may_reach_a_relay_on_loopback_or_over_wss() -> None:
    """ws:// on loopback and any wss:// URL are allowed."""
    assert relay_transport("ws://127.0.0.1:8700/v1/ws", TlsSettings()) is Transport.LOOPBACK
    assert relay_transport("wss://relay.example/v1/ws", TlsSettings()) is Transport.TLS


def test_relay_tls_options_with_a_ws_url_are_refused() -> None:
    """A CA or pin for the relay with a ws:// URL is a mistake: the URL must be wss://."""
    with pytest.raises(TlsError, match="not wss://"):
        relay_transport("ws://127.0.0.1:8700/v1/ws", TlsSettings(client=ClientTls(pin=DIGEST)))


async def test_an_endpoint_dialling_plaintext_off_loopback_stops_before_its_journal(
    net: TestNet, tmp_path: Path
) -> None:
    """serve_endpoint with a ws:// relay URL on another host raises and writes nothing."""
    config = endpoint_config(net, tmp_path, "BY", "ws://192.0.2.7:8700/v1/ws", ClientTls())
    with pytest.raises(PlaintextRefused):
        async with serve_endpoint(config):
            pytest.fail("the endpoint started")
    assert not (tmp_path / "BY").exists()


def test_a_pin_is_read_with_a_prefix_or_as_colon_separated_hex() -> None:
    """``sha256:<hex>``, upper-case hex with colons and bare hex all give the same digest."""
    colons = ":".join(f"{b:02X}" for b in DIGEST)
    assert parse_pin(format_pin(DIGEST)) == parse_pin(colons) == parse_pin(DIGEST.hex()) == DIGEST


@pytest.mark.parametrize("text", ["sha256:abcd", "sha256:" + "zz" * 32, "md5:" + "00" * 16])
def test_a_malformed_pin_is_refused(text: str) -> None:
    """A pin that is not 32 bytes of hex is a TlsError."""
    with pytest.raises(TlsError):
        parse_pin(text)


def test_a_tls_key_open_to_others_is_refused(pki: Pki) -> None:
    """As with signing keys, a TLS key readable by group or others stops the start."""
    pki.key("relay").chmod(0o644)
    with pytest.raises(TlsError, match="chmod 600"):
        server_context(pki.serve("relay"))


def test_a_certificate_without_its_key_is_refused_by_the_command(tmp_path: Path) -> None:
    """``hotline endpoint --tls-cert`` without ``--tls-key`` is a TlsError naming both."""
    create_network(tmp_path / "net", endpoints=("BY", "LT"))
    args = build_parser().parse_args([
        "endpoint", "--network", str(tmp_path / "net"), "--id", "BY", "--data", str(tmp_path),
        "--tls-cert", str(tmp_path / "BY.pem"),
    ])
    with pytest.raises(TlsError, match="--tls-cert and --tls-key"):
        endpoint_cmd.config_from(args)


def test_the_endpoint_command_gathers_its_tls_settings(pki: Pki, tmp_path: Path) -> None:
    """Relay trust, client certificate, API certificate and client CA land where they belong."""
    create_network(tmp_path / "net", endpoints=("BY", "LT"))
    args = build_parser().parse_args([
        "endpoint", "--network", str(tmp_path / "net"), "--id", "BY", "--data", str(tmp_path),
        "--relay-url", "wss://127.0.0.1:8700/v1/ws", "--relay-ca", str(pki.ca),
        "--relay-pin", format_pin(pki.relay_pin),
        "--tls-cert", str(pki.cert("BY")), "--tls-key", str(pki.key("BY")),
        "--api-tls-cert", str(pki.cert("BY")), "--api-tls-key", str(pki.key("BY")),
        "--api-client-ca", str(pki.ca),
    ])
    tls = endpoint_cmd.config_from(args).tls
    assert tls.client == ClientTls(pki.ca, pki.relay_pin, pki.cert("BY"), pki.key("BY"))
    assert tls.serve == pki.serve("BY", mutual=True)
    assert not tls.unsafe_plaintext
