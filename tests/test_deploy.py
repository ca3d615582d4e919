"""The shipped deployment files start what they say: every command they run parses, loads
its network, keys and certificates, and passes the plaintext policy without `unsafe_`.

The compose file and the systemd units cannot be run here (no container engine or
systemd), so their command lines are run up to the point where a server would bind:
through the real argument parser and the real config loaders, against a network made
by `hotline init` and certificates made by `hotline tls-certs`.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from hotline.cli import endpoint_cmd, relay_cmd
from hotline.cli.main import build_parser, main
from hotline.endpoint.access import check_exposure
from hotline.endpoint.operators import OperatorStore, Role
from hotline.errors import ConfigError
from hotline.tls import (
    Transport,
    client_context,
    is_loopback,
    listening_transport,
    relay_transport,
    server_context,
)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_HOSTS = "relay,by,lt,lv,ee,pl,localhost,127.0.0.1"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network for wss://relay:8700 with keys and a throw-away CA, as the deploy docs make."""
    directory = tmp_path_factory.mktemp("deploy") / "net"
    assert main(["init", str(directory), "--relay-url", "wss://relay:8700/v1/ws"]) == 0
    tls = directory / "tls"
    assert main(["tls-certs", str(tls), "--network", str(directory), "--hosts", COMPOSE_HOSTS]) == 0
    return directory


def compose_commands() -> list[list[str]]:
    text = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    found = re.findall(r"^\s+command: (\[.*?\])$", text, flags=re.MULTILINE | re.DOTALL)
    return [list(json.loads(flow)) for flow in found]


def compose_mounts() -> list[list[tuple[str, str]]]:
    """Each service's bind mounts (host path under ./../net, container path), in file order."""
    text = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    found = re.findall(r"^\s+volumes: (\[.*?\])$", text, flags=re.MULTILINE | re.DOTALL)
    services = []
    for flow in found:
        binds = [v.split(":") for v in json.loads(flow) if v.startswith("./")]
        services.append([(host.removeprefix("./../net/"), inside) for host, inside, *_ in binds])
    return services


def unit_command(name: str, instance: str = "LT") -> list[str]:
    text = (ROOT / "deploy" / "systemd" / name).read_text(encoding="utf-8")
    joined = text.replace("\\\n", " ")
    line = next(ln for ln in joined.splitlines() if ln.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    return [arg.replace("%i", instance) for arg in argv[1:]]


def localised(argv: list[str], net: Path, data: Path) -> list[str]:
    """The command with the deployment's paths moved under the test's directories."""
    out = []
    for arg in argv:
        if arg == "/data" or arg.startswith("/var/lib/hotline"):
            out.append(str(data))
        elif arg.startswith("/etc/hotline"):
            out.append(str(net) + arg.removeprefix("/etc/hotline"))
        else:
            out.append(arg)
    return out


def check_starts(argv: list[str]) -> None:
    """Run the command up to binding: config loaded, TLS contexts built, policy passed safely."""
    args = build_parser().parse_args(argv)
    if argv[0] == "relay":
        relay = relay_cmd.config_from(args)
        assert not relay.tls.unsafe_plaintext
        transport = listening_transport(relay.host, relay.tls.serve, unsafe_plaintext=False,
                                        what="the relay", cert_flags="--tls-cert")
        assert transport is not Transport.UNSAFE_PLAINTEXT
        if relay.tls.serve is not None:
            server_context(relay.tls.serve)
        return
    endpoint = endpoint_cmd.config_from(args)
    assert not endpoint.tls.unsafe_plaintext
    operators = OperatorStore(endpoint.data_dir)
    if not is_loopback(endpoint.host):  # the console off loopback: TLS and an operator, or no start
        with pytest.raises(ConfigError, match="hotline operator add"):
            check_exposure(endpoint.host, endpoint.tls.serve is not None, operators)
    operators.add("duty", "a long enough password", Role.OFFICER)  # as the deploy comments say
    check_exposure(endpoint.host, endpoint.tls.serve is not None, operators)
    listening_transport(endpoint.host, endpoint.tls.serve, unsafe_plaintext=False,
                        what="the API", cert_flags="--api-tls-cert")
    if endpoint.tls.serve is not None:
        server_context(endpoint.tls.serve)
    assert relay_transport(endpoint.ws_url, endpoint.tls) is Transport.TLS
    client_context(endpoint.tls.client)


def test_compose_runs_the_relay_and_five_endpoints_over_tls(net: Path, tmp_path: Path) -> None:
    """Each compose service's command loads and serves TLS; none needs --unsafe-plaintext."""
    commands = compose_commands()
    assert [c[0] for c in commands] == ["relay"] + ["endpoint"] * 5
    assert sorted(c[c.index("--id") + 1] for c in commands[1:]) == ["BY", "EE", "LT", "LV", "PL"]
    for argv in commands:
        name = argv[argv.index("--id") + 1] if "--id" in argv else argv[0]
        check_starts(localised(argv, net, tmp_path / name))


@pytest.mark.parametrize("unit", ["hotline-relay.service", "hotline-endpoint@.service"])
def test_each_systemd_unit_starts_without_unsafe_options(
    net: Path, tmp_path: Path, unit: str
) -> None:
    """The units' ExecStart lines load their config and pass the plaintext policy."""
    check_starts(localised(unit_command(unit), net, tmp_path))


def test_each_compose_service_mounts_its_own_keys_only_and_starts_from_them(
    net: Path, tmp_path: Path
) -> None:
    """A container sees only the files it mounts: its own private keys, and enough to start."""
    commands, mounts = compose_commands(), compose_mounts()
    assert len(commands) == len(mounts)
    for argv, binds in zip(commands, mounts, strict=True):
        party = "relay" if argv[0] == "relay" else argv[argv.index("--id") + 1]
        keys = sorted(host for host, _ in binds if host.endswith(".key"))
        assert keys == [f"keys/{party}.key", f"tls/{party}.key"], (party, keys)
        seen = tmp_path / party / "etc"
        for host, inside in binds:
            target = seen / inside.removeprefix("/etc/hotline/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((net / host).read_bytes())
            target.chmod((net / host).stat().st_mode)
        check_starts(localised(argv, seen, tmp_path / party / "data"))
