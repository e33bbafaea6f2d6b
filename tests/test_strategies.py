"""`nginxsim.strategies`, and the properties the project keeps for every request they draw:
`route` answers (or refuses with RequestError), the same way twice and in a separately compiled
config, with a server and location that exist in the config; and nginx agrees (oracle)."""

from __future__ import annotations

import importlib
import ipaddress
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nginxsim
from nginxsim import Config, Place, RequestError
from nginxsim.oracle import Nginx, OracleRequest, check
from nginxsim.plan import LocationConf
from nginxsim.strategies import clients, hosts_for, requests_for, uris_for

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = {p.parent.name: str(p) for p in sorted((ROOT / "fixtures").glob("*/nginx.conf"))}
CONFIGS = {name: nginxsim.load(path) for name, path in FIXTURES.items()}


def places(cfg: Config) -> tuple[set[Place], set[Place]]:
    """Every server and every location (server level included) of a config."""
    locations: set[Place] = set()

    def walk(loc: LocationConf) -> None:
        locations.add(loc.place)
        for child in (*loc.static, *loc.regexes, *loc.named.values()):
            walk(child)

    for server in cfg.plan.servers:
        walk(server.loc)
    return {s.place for s in cfg.plan.servers}, locations


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_routes_are_total_deterministic_and_in_the_config(name: str) -> None:
    cfg, again = CONFIGS[name], nginxsim.load(FIXTURES[name])
    servers, locations = places(cfg)
    seen: set[Place] = set()

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(requests_for(cfg))
    def route_is_sound(req: dict[str, Any]) -> None:
        try:
            d = cfg.route(**req)
        except RequestError:
            return
        assert d.to_dict() == cfg.route(**req).to_dict() == again.route(**req).to_dict()
        assert d.server is None or d.server in servers
        assert d.location is None or d.location in locations
        if d.location is not None:
            seen.add(d.location)

    route_is_sound()
    reachable = {p for p in locations if p.kind not in ("named", "server")}
    missed = sorted(p.label for p in reachable - seen)
    assert len(missed) <= len(reachable) // 10, f"requests_for never reached {missed}"  # the strategy aims well


def test_clients_within_and_outside() -> None:
    inside = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "2001:db8::/32")]
    out = [ipaddress.ip_network(n) for n in ("10.1.0.0/16", "10.255.255.255/32", "2001:db8:1::/48")]
    families: set[int] = set()

    @settings(max_examples=200, derandomize=True)
    @given(clients(within=[str(n) for n in inside], outside=[str(n) for n in out]))
    def drawn(text: str) -> None:
        addr = ipaddress.ip_address(text)
        families.add(addr.version)
        assert any(addr in n for n in inside if n.version == addr.version)
        assert not any(addr in n for n in out if n.version == addr.version)

    drawn()
    assert families == {4, 6}


def test_clients_by_default_are_any_address() -> None:
    @settings(max_examples=50, derandomize=True)
    @given(clients())
    def drawn(text: str) -> None:
        ipaddress.ip_address(text)

    drawn()


GEOS = """events {}
http {
    geo $cidr {
        default other;
        10.0.0.0/8 ten;
        10.1.0.0/16 other;
        2001:db8::/32 ten;
    }
    geo $range {
        ranges;
        default other;
        10.0.0.0-10.0.0.255 ten;
        192.168.0.10-192.168.0.20 ten;
    }
    geo $arg_ip $by_arg { default x; }
    server { listen 80; listen [::]:80; return 200 "$cidr $range"; }
}
"""


@pytest.mark.parametrize(("config", "geo", "value", "variable"), [
    ("canary", "ip_range", "testers", "ip_range"),
    ("canary", "$ip_range", "employees", "ip_range"),
    ("canary", "ip_range", "public", "ip_range"),
    (None, "cidr", "ten", "cidr"),
    (None, "cidr", "other", "cidr"),
    (None, "range", "ten", "range"),
    (None, "range", "other", "range"),
])
def test_clients_from_a_geo_table_get_that_value(config: str | None, geo: str, value: str, variable: str) -> None:
    cfg = CONFIGS[config] if config else nginxsim.load(text=GEOS)
    within = ["0.0.0.0/0"] if config else ["0.0.0.0/0", "::/0"]  # the canary listens on IPv4 only

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(clients(within, cfg=cfg, geo=geo, value=value))
    def drawn(client: str) -> None:
        assert cfg.route(client, "http://localhost/").variables[variable] == value

    drawn()


def test_clients_refuse_what_they_cannot_draw() -> None:
    cfg = nginxsim.load(text=GEOS)
    with pytest.raises(ValueError, match=r"no geo \$nosuch in this config \(geo variables: \$by_arg, \$cidr"):
        clients(cfg=cfg, geo="nosuch", value="x")
    with pytest.raises(ValueError, match=r"geo \$by_arg looks up \$arg_ip"):
        clients(cfg=cfg, geo="by_arg", value="x")
    with pytest.raises(ValueError, match="needs all three"):
        clients(geo="cidr", value="ten")
    with pytest.raises(ValueError, match="no address is left"):
        clients(within=["10.0.0.0/8"], outside=["0.0.0.0/0"])
    with pytest.raises(ValueError, match="no address is left"):
        clients(cfg=cfg, geo="cidr", value="nobody-gets-this")
    with pytest.raises(ValueError):
        clients(within=["10.0.0.300/8"])


def test_hosts_reach_every_server_and_uris_are_request_targets() -> None:
    cfg = CONFIGS["basic"]
    servers, _ = places(cfg)
    reached: set[Place] = set()

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(hosts_for(cfg), uris_for(cfg))
    def drawn(host: str, uri: str) -> None:
        assert uri.startswith("/") and all("!" <= c <= "~" and c != "#" for c in uri)
        d = cfg.route("192.0.2.1", "http://localhost" + uri, headers=[("Host", host)])
        if d.server is not None:
            reached.add(d.server)

    drawn()
    assert reached == servers


_L = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"


@pytest.mark.parametrize(("name", "members", "shapes"), [
    ("*.example.com", {"example.com"}, [rf"{_L}\.example\.com", rf"{_L}\.{_L}\.example\.com"]),
    (".example.com", {"example.com"}, [rf"{_L}\.example\.com"]),
    ("www.example.*", {"www.example"}, [rf"www\.example\.{_L}"]),
    ("shop.example.com", {"shop.example.com", "SHOP.EXAMPLE.COM", "shop.example.com.", "shop.example.com:80"}, []),
    ("~^(?<tenant>[a-z]+)\\.apps\\.test$", set(), [r"[a-z]+\.apps\.test"]),
])
def test_host_shapes(name: str, members: set[str], shapes: list[str]) -> None:
    cfg = nginxsim.load(text=f"events {{}}\nhttp {{\nserver {{ server_name {name}; }}\n}}\n")
    drawn_hosts: set[str] = set()

    @settings(max_examples=80, derandomize=True)
    @given(hosts_for(cfg, unknown=False))
    def drawn(host: str) -> None:
        drawn_hosts.add(host)

    drawn()
    assert members <= drawn_hosts
    for shape in shapes:
        assert any(re.fullmatch(shape, h) for h in drawn_hosts), shape


def test_uri_edges_of_a_prefix_and_a_regex() -> None:
    text = 'events {}\nhttp {\nserver {\nlocation /api/v1 { }\nlocation ~ ^/img/[a-z]+\\.png$ { }\n}\n}\n'
    cfg = nginxsim.load(text=text)
    drawn_uris: set[str] = set()

    @settings(max_examples=300, derandomize=True)
    @given(uris_for(cfg))
    def drawn(uri: str) -> None:
        drawn_uris.add(uri)

    drawn()
    assert {"/api/v1", "/api/v", "/api/v1x", "/api/v1/", "/api/v1/x"} <= drawn_uris
    assert any(u.startswith("/img/") and u.endswith(".png") for u in drawn_uris)
    assert any(u.startswith("/img/") and u.endswith(".pn") for u in drawn_uris)  # the last character dropped
    assert any("%" in u for u in drawn_uris) and any("/../" in u or "/./" in u for u in drawn_uris)
    assert any("//" in u for u in drawn_uris) and any("?" in u for u in drawn_uris)


def test_requests_pick_the_listen_sockets() -> None:
    cfg = nginxsim.load(text="events {}\nhttp {\nserver { listen 8080; listen [::1]:8443 ssl; }\n}\n")
    sockets: set[tuple[str, str | None]] = set()

    @settings(max_examples=60, derandomize=True)
    @given(requests_for(cfg))
    def drawn(req: dict[str, Any]) -> None:
        sockets.add((req["url"].split("/")[2], req.get("server_addr")))
        assert req["headers"][0][0] == "Host"

    drawn()
    assert sockets == {("localhost:8080", None), ("localhost:8443", "::1")}


def test_a_clear_message_without_hypothesis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    monkeypatch.delitem(sys.modules, "nginxsim.strategies")
    with pytest.raises(ImportError, match=r"pip install 'nginxsim\[strategies\]'"):
        importlib.import_module("nginxsim.strategies")


# --- against nginx ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def started() -> Iterator[Callable[[str], Nginx]]:
    """One nginx per fixture config for the whole module, started on first use."""
    from conftest import require_nginx

    running: dict[str, Nginx] = {}

    def start(name: str) -> Nginx:
        if name not in running:
            running[name] = Nginx(FIXTURES[name], binary=require_nginx())
        return running[name]

    yield start
    for ng in running.values():
        ng.close()


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["basic", "canary"])
def test_generated_requests_agree_with_nginx(started: Callable[[str], Nginx], name: str) -> None:
    cfg = CONFIGS[name]
    ng = started(name)
    compared = 0

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(requests_for(cfg))
    def agree(req: dict[str, Any]) -> None:
        nonlocal compared
        try:
            d = cfg.route(**req)
        except RequestError:
            return
        oracle_request = OracleRequest(**req)
        mismatches = check(oracle_request, d, ng.request(oracle_request))
        if d.upstream is not None and len(d.upstream.shares) > 1:  # route answers as a fresh worker;
            mismatches = [m for m in mismatches if m.field != "upstream.peer"]  # this nginx's round robin moves on
        assert not mismatches, "\n".join(map(str, mismatches))
        compared += 1

    agree()
    assert compared >= 30
    print(f"strategies vs nginx ({name}): {compared} generated requests agree")


def test_strategies_compose_with_hypothesis() -> None:
    """They are ordinary strategies: mapped, combined, drawn inside `st.data()`."""
    cfg = CONFIGS["canary"]

    @settings(max_examples=20, derandomize=True)
    @given(st.data())
    def drawn(data: st.DataObject) -> None:
        client = data.draw(clients(["0.0.0.0/0"], cfg=cfg, geo="ip_range", value="employees"))
        d = cfg.route(client, "http://shop.example.com" + data.draw(uris_for(cfg)))
        assert d.status == 400 or d.variables["instance"] == "alpha"  # 400: a URI above the root

    drawn()
