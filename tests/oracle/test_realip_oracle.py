"""Differential tests of the realip module: random proxy chains (trusted and untrusted hops, IPv4,
IPv6, mapped addresses, ports, garbage, odd separators, several X-Forwarded-For headers) under
every header mode with and without recursion, location-level realip in PREACCESS with values
cached before it, and the PROXY protocol source; error messages compared with `nginx -t`.

A config that uses realip makes the harness trust loopback in each `set_real_ip_from` list (and
at http level): the configs below list loopback themselves so nginxsim loads what nginx runs, and
the requests are sent as raw bytes so the harness adds no header of its own. The peer is then the
harness's loopback connection, always trusted; untrusted first hops are covered by geo's `proxy`
tests, which share `ngx_http_get_forwarded_addr`.
"""

from __future__ import annotations

import functools
import ipaddress
import random
import re

import pytest

import nginxsim
from nginxsim.oracle import Nginx, OracleRequest

pytestmark = pytest.mark.oracle


LOOPBACK = "set_real_ip_from 127.0.0.0/8; set_real_ip_from ::1; set_real_ip_from unix:;"
TRUSTED = ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "::ffff:172.16.0.0/108", "203.0.113.7"]
SHOW = "$remote_addr|$remote_port|$realip_remote_addr|$realip_remote_port"


def address(rng: random.Random) -> str:
    """A hop: trusted or not, every family and spelling nginx's parser meets."""
    roll = rng.random()
    if roll < 0.25:
        return str(ipaddress.IPv4Address(0x0A000000 | rng.getrandbits(24)))
    if roll < 0.3:
        return f"192.168.1.{rng.randrange(256)}"
    if roll < 0.35:
        return "203.0.113.7"
    if roll < 0.55:
        return str(ipaddress.IPv4Address(rng.getrandbits(32) | 0x01000000))
    if roll < 0.65:
        return str(ipaddress.IPv6Address((0x20010DB8 << 96) | rng.getrandbits(rng.choice([16, 64]))))
    if roll < 0.7:
        return str(ipaddress.IPv6Address(rng.getrandbits(128)))
    if roll < 0.75:
        return f"::ffff:172.16.{rng.randrange(16)}.{rng.randrange(256)}"
    if roll < 0.8:
        return "::ffff:" + str(ipaddress.IPv4Address(rng.getrandbits(32)))
    if roll < 0.85:
        return f"::{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    return rng.choice(
        [
            "garbage",
            "unknown",
            "255.255.255.255",
            "1.2.3",
            "010.001.002.003",
            "10..1.2",
            "[2001:db8::1]",
            "::",
            "0.0.0.0",
            "1:2:3:4:5:6:7::",
            ":1:2:3:4:5:6:7:8",
        ]
    )


def hop(rng: random.Random) -> str:
    a = address(rng)
    roll = rng.random()
    if roll < 0.25 and ":" not in a:
        return f"{a}:{rng.choice([1, 80, 443, 8080, 65535, 0, 65536])}"
    if roll < 0.4 and ":" in a and not a.startswith("["):
        return f"[{a}]:{rng.choice([1, 443, 65535])}"
    return a


def chain(rng: random.Random) -> str:
    parts = [hop(rng) for _ in range(rng.randint(1, 5))]
    text = ""
    for i, p in enumerate(parts):
        text += (rng.choice([", ", ",", " ", " ,  ", ",,"]) if i else rng.choice(["", "", ",", " ,"])) + p
    return text + rng.choice(["", "", ",", ", "])


def raw(path: str, headers: list[tuple[str, str]]) -> bytes:
    head = "".join(f"{n}: {v}\r\n" for n, v in headers)
    return f"GET {path} HTTP/1.1\r\nHost: a.test\r\n{head}Connection: close\r\n\r\n".encode()


def run(conf: str, cases: list[tuple[str, str, list[tuple[str, str]]]], label: str) -> int:
    """Each case is (peer, path, headers): sent raw to nginx from `peer` (127.0.0.1 or ::1),
    routed by nginxsim from the same peer; the bodies must agree. nginx's own source port (the
    peer's, unknowable to nginxsim) is read from `$realip_remote_port` and stands for 50000."""
    cfg = nginxsim.load(text=conf)
    with Nginx(text=conf) as ng:
        answers = ng.request_many(
            [
                OracleRequest(
                    client=peer, url=f"http://a.test{path}", server_addr=peer, raw=raw(path, headers)
                )
                for peer, path, headers in cases
            ]
        )
    bad = []
    for (peer, path, headers), answer in zip(cases, answers, strict=True):
        d = cfg.route(
            peer,
            f"http://a.test{path}",
            headers=[*headers, ("Connection", "close")],
            server_addr=peer,
            trace=False,
        )
        got = own_port(answer.body)
        if (answer.status, got) != (d.status, d.body):
            bad.append(
                f"{peer} {path} {headers}: nginx {answer.status} {got!r}, nginxsim {d.status} {d.body!r}"
            )
    assert not bad, f"{label}: {len(bad)} of {len(cases)} differ\n" + "\n".join(bad[:8]) + "\n" + conf
    return len(cases)


def own_port(body: bytes) -> str:
    """nginx's answer with the harness's source port ($realip_remote_port, unknowable to
    nginxsim) written as nginxsim's 50000 wherever it appears."""
    fields = body.decode("utf-8", "surrogateescape").split("|")
    return "|".join("50000" if len(fields) > 3 and f == fields[3] else f for f in fields)


@functools.lru_cache(maxsize=1)
def peers() -> tuple[str, ...]:
    """127.0.0.1, and ::1 where nginx can listen on IPv6 loopback."""
    ipv6 = Nginx.test_config(text="events {}\nhttp { server { listen [::1]:80; } }\n")[0]
    return ("127.0.0.1", "::1") if ipv6 else ("127.0.0.1",)


MODES = ["X-Forwarded-For", "x-forwarded-for", "X-Real-IP", "X-Client"]


@pytest.mark.parametrize("recursive", ["on", "off"])
@pytest.mark.parametrize("mode", MODES)
def test_random_chains(mode: str, recursive: str) -> None:
    rng = random.Random(f"{mode}-{recursive}")
    trusted = " ".join(f"set_real_ip_from {t};" for t in TRUSTED)
    conf = (
        f"events {{}}\nhttp {{\n{LOOPBACK}\n{trusted}\nreal_ip_header {mode};\n"
        f"real_ip_recursive {recursive};\nserver {{\nlisten 80;\nlisten [::]:80;\n"
        f'location / {{ return 200 "{SHOW}"; }}\n}}\n}}\n'
    )
    names = ["X-Forwarded-For", "x-forwarded-for", "X-Real-IP", "X-Client", "x-client", "X-Other"]
    cases = []
    for _ in range(250):
        headers = [
            (mode if rng.random() < 0.6 else rng.choice(names), chain(rng))
            for _ in range(rng.choice([0, 1, 1, 2, 3]))
        ]
        cases.append((rng.choice(peers()), "/", headers))
    run(conf, cases, f"{mode} recursive {recursive}")


PHASES_CONF = """events {}
http {
    LOOPBACK
    geo $g { default d; 10.0.0.0/8 ten; 1.0.0.0/8 one; 127.0.0.0/8 loop; 2001:db8::/32 doc; }
    server {
        listen 80;
        listen [::]:80;
        location /srv/ { return 200 "SHOW|$g"; }
        location /loc/ {
            LOOPBACK set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; real_ip_recursive on;
            root /nonexistent;
            error_page 404 = @show;
            location /loc/early/ { set $e "$remote_addr $g"; root /nonexistent; error_page 404 = @show; }
            location /loc/ret/ { return 200 "SHOW|$g"; }
        }
        location @show { return 200 "SHOW|$g|$e"; }
    }
}
""".replace("LOOPBACK", LOOPBACK).replace("SHOW", SHOW)


def test_server_and_location_phases() -> None:
    """POST_READ (X-Real-IP from http level) against PREACCESS (the location's X-Forwarded-For),
    with values cached in the rewrite phase before PREACCESS."""
    rng = random.Random(7)
    cases = []
    for _ in range(300):
        headers = []
        if rng.random() < 0.4:
            headers.append(("X-Real-IP", hop(rng)))
        headers += [("X-Forwarded-For", chain(rng)) for _ in range(rng.choice([0, 1, 1, 2]))]
        rng.shuffle(headers)
        path = rng.choice(["/srv/", "/loc/x", "/loc/early/x", "/loc/ret/"])
        cases.append((rng.choice(peers()), path, headers))
    run(PHASES_CONF, cases, "phases")


def test_proxy_protocol() -> None:
    """`real_ip_header proxy_protocol`: the harness sends a PROXY line naming the client."""
    conf = (
        f"events {{}}\nhttp {{\n{LOOPBACK}\nreal_ip_header proxy_protocol;\nserver {{\nlisten 80;\n"
        f'location / {{ return 200 "{SHOW}|$proxy_protocol_addr|$proxy_protocol_port|'
        '$proxy_protocol_server_addr|$proxy_protocol_server_port"; }\n}\n}\n'
    )
    rng = random.Random(3)
    reqs = []
    for _ in range(200):
        a = address(rng)
        try:
            client = ipaddress.ip_address(a)
        except ValueError:
            continue
        port = rng.choice([1, 80, 65535])
        reqs.append(OracleRequest(client=str(client), url="http://a.test/", client_port=port))
    cfg = nginxsim.load(text=conf)
    with Nginx(text=conf) as ng:
        answers = ng.request_many(reqs)
    bad = []
    for req, answer in zip(reqs, answers, strict=True):
        client = ipaddress.ip_address(req.client)
        family, dst = ("TCP6", "::1") if client.version == 6 else ("TCP4", "127.0.0.1")
        line = f"PROXY {family} {client} {dst} {req.client_port} 80"
        d = cfg.route("127.0.0.1", req.url, proxy_protocol=line, trace=False)
        if (answer.status, own_port(answer.body)) != (d.status, d.body):
            bad.append(f"{line}: nginx {answer.status} {answer.body!r}, nginxsim {d.status} {d.body!r}")
    assert not bad, "\n".join(bad[:8])
    assert len(reqs) > 150


_EMERG = re.compile(r"\[emerg\] \d+#\d+: (.*?)(?: in \S+:(\d+))?$", re.M)

ERRORS = [
    "set_real_ip_from 1.2.3.4/33;",
    "set_real_ip_from 1.2.3.4/;",
    "set_real_ip_from unix:/x;",
    "set_real_ip_from 10.1;",  # a numeric host name: fine
    "set_real_ip_from 255.255.255.255;",
    "set_real_ip_from ::1/129;",
    "real_ip_header a; real_ip_header b;",
    "real_ip_recursive on; real_ip_recursive off;",
    "real_ip_recursive yes;",
    "real_ip_header;",
    "server { listen 80; location / { if ($uri) { set_real_ip_from 10.0.0.0/8; } } }",
]


@pytest.mark.parametrize("http", ERRORS)
def test_config_errors_match_nginx(http: str) -> None:
    conf = f"events {{}}\nhttp {{\n{http}\n}}\n"
    ok, stderr = Nginx.test_config(text=conf)
    if ok:
        nginxsim.load(text=conf)
        return
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(text=conf)
    m = next(_EMERG.finditer(stderr))
    assert e.value.message.startswith(m[1]) and e.value.line == (int(m[2]) if m[2] else None), stderr
