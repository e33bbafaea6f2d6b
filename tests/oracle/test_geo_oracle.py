"""Differential tests of the geo module: random geo blocks (networks and ranges, IPv4 and IPv6,
defaults, deletes, duplicates, overlaps, proxies), random clients and `$src` texts, each request
answered by real nginx and by nginxsim; warnings and error messages compared with `nginx -t`.

Every config comes from a seeded random source (one nginx per config, many requests each), so a
failure names its seed.
"""

from __future__ import annotations

import ipaddress
import random
import re

import pytest
from nginx_t import assert_same_verdict, nginx_warnings, nginxsim_warnings

import nginxsim
from nginxsim.modules.geo import Entry, Ranges
from nginxsim.oracle import Nginx, OracleRequest

pytestmark = pytest.mark.oracle


V4, V6 = 32, 128


# -- addresses ----------------------------------------------------------------------------------


class Spots:
    """A few "hot" networks most entries and clients fall into, so entries nest and collide."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.v4 = [rng.getrandbits(32) & 0xFFFF0000 for _ in range(3)] + [0x0A000000, 0xFFFFFF00]
        self.v6 = [rng.getrandbits(128) & ~((1 << 96) - 1) for _ in range(2)] + [0x20010DB8 << 96]

    def v4_addr(self) -> int:
        rng = self.rng
        if rng.random() < 0.15:
            return rng.getrandbits(32)
        return (rng.choice(self.v4) | rng.getrandbits(rng.choice([8, 12, 16]))) & 0xFFFFFFFF

    def v6_addr(self) -> int:
        rng = self.rng
        if rng.random() < 0.15:
            return rng.getrandbits(128)
        return rng.choice(self.v6) | rng.getrandbits(rng.choice([8, 16, 40, 96]))

    def network(self, family: int) -> tuple[int, int]:
        """(address, prefix length): mostly long prefixes, a tenth of any length."""
        bits = V4 if family == 4 else V6
        addr = self.v4_addr() if family == 4 else self.v6_addr()
        shortest = 0 if self.rng.random() < 0.1 else (8 if family == 4 else 64)
        return addr, self.rng.randint(shortest, bits)


def v6_text(rng: random.Random, n: int) -> str:
    a = ipaddress.IPv6Address(n)
    form = rng.random()
    if form < 0.2:
        return a.exploded
    if form < 0.3:
        return str(a).upper()
    if form < 0.4 and n >> 32 == 0:
        return "::" + str(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    return str(a)


def net_text(rng: random.Random, family: int, addr: int, length: int) -> str:
    """`addr/len`; host bits are kept a fifth of the time (nginx warns and masks them)."""
    bits = V4 if family == 4 else V6
    if rng.random() > 0.2:
        addr &= ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)
    text = str(ipaddress.IPv4Address(addr)) if family == 4 else v6_text(rng, addr)
    if text == "255.255.255.255":
        return text
    return text if length == bits and rng.random() < 0.5 else f"{text}/{length}"


def client(rng: random.Random, spots: Spots, edges: list[str]) -> str:
    """A client address (the harness poses it with a PROXY line, so never 255.255.255.255)."""
    roll = rng.random()
    if roll < 0.15 and edges:
        text = rng.choice(edges)
    elif roll < 0.6:
        text = str(ipaddress.IPv4Address(spots.v4_addr()))
    elif roll < 0.7:
        text = "::ffff:" + str(ipaddress.IPv4Address(spots.v4_addr()))
    else:
        text = str(ipaddress.IPv6Address(spots.v6_addr()))
    return "255.255.255.254" if text == "255.255.255.255" else text


def source_text(rng: random.Random, spots: Spots, edges: list[str]) -> str:
    """What `$arg_a` holds: addresses written every way nginx's parsers accept or refuse."""
    roll = rng.random()
    v4 = ipaddress.IPv4Address(spots.v4_addr())
    if roll < 0.3:
        return client(rng, spots, edges)
    if roll < 0.4:
        return ".".join(f"{int(o):03d}" if rng.random() < 0.5 else o for o in str(v4).split("."))
    if roll < 0.45:
        octets = str(v4).split(".")
        octets[rng.randrange(4)] = ""
        return ".".join(octets)
    if roll < 0.55:
        return v6_text(rng, spots.v6_addr())
    if roll < 0.6:
        return f"{v4}:{rng.randint(1, 65535)}"
    if roll < 0.65:
        return f"[{ipaddress.IPv6Address(spots.v6_addr())}]"
    if roll < 0.7:
        return "::" + str(v4)
    return rng.choice(
        [
            "",
            "abc",
            "255.255.255.255",
            "1.2.3",
            "1.2.3.4.5",
            "::",
            ":::",
            "1::2::3",
            "256.1.1.1",
            "::ffff:255.255.255.255",
            "0.0.0.0",
            "%20",
            "-",
        ]
    )


# -- geo blocks ---------------------------------------------------------------------------------


def value(rng: random.Random) -> str:
    return rng.choice(["a", "b", "c", "d", "e", "v1", "v2", "x-y", "$host", "1"]) + str(rng.randrange(20))


def cidr_block(rng: random.Random, spots: Spots) -> tuple[list[str], list[str]]:
    """Lines of a networks-mode geo block, and addresses at the edges of its networks."""
    lines: list[str] = []
    edges: list[str] = []
    nets: list[str] = []
    for _ in range(rng.randint(10, 50)):
        roll = rng.random()
        if roll < 0.05:
            lines.append(f"default {value(rng)};")
        elif roll < 0.12 and nets:
            lines.append(f"{rng.choice(nets)} {value(rng)};")  # a duplicate
        elif roll < 0.2:
            target = rng.choice(nets) if nets and rng.random() < 0.7 else net_text(rng, 4, *spots.network(4))
            lines.append(f"delete {target};")
        elif roll < 0.22:
            lines.append(
                rng.choice(["0.0.0.0/0", "::/0", "255.255.255.255", "240.0.0.0/4", "::ffff:0:0/96"])
                + f" {value(rng)};"
            )
        else:
            family = 4 if rng.random() < 0.65 else 6
            addr, length = spots.network(family)
            text = net_text(rng, family, addr, length)
            nets.append(text)
            lines.append(f"{text} {value(rng)};")
            bits = V4 if family == 4 else V6
            low = addr & ~((1 << (bits - length)) - 1)
            for edge in (low - 1, low, low + (1 << (bits - length)) - 1, low + (1 << (bits - length))):
                if 0 <= edge < 1 << bits:
                    edges.append(addr_text(family, edge))
    return lines, edges


def addr_text(family: int, n: int) -> str:
    return str(ipaddress.IPv4Address(n) if family == 4 else ipaddress.IPv6Address(n))


def range_text(a: int, b: int) -> str:
    return f"{ipaddress.IPv4Address(a)}-{ipaddress.IPv4Address(b)}"


def ranges_block(rng: random.Random, spots: Spots) -> tuple[list[str], list[str]]:
    """Lines of a ranges-mode geo block nginx accepts (a candidate that overlaps is left out; the
    overlap errors are tested on their own), and the edges of its ranges."""
    lines = ["ranges;"]
    edges: list[str] = []
    ops: list[tuple[bool, int, int]] = []  # (add?, start, end) as accepted so far
    for _ in range(rng.randint(10, 40)):
        roll = rng.random()
        if roll < 0.06:
            lines.append(f"default {value(rng)};")
            continue
        if roll < 0.14 and ops:
            _, start, end = rng.choice(ops)
            if rng.random() < 0.3:
                end = min(end + 1, 0xFFFFFFFE)  # not a fragment: nginx warns
            ops.append((False, start, end))
            lines.append(f"delete {range_text(start, end)};")
            continue
        if rng.random() < 0.1 and ops:
            _, start, end = rng.choice(ops)  # a duplicate
        else:
            start = spots.v4_addr()
            end = min(start + rng.choice([0, 1, 255, 4096, 70000, 1 << 20]), 0xFFFFFFFE)
        if _replay([*ops, (True, start, end)]) is None:
            continue
        ops.append((True, start, end))
        lines.append(f"{range_text(start, end)} {value(rng)};")
        edges += [addr_text(4, x) for x in (start - 1, start, end, end + 1) if 0 <= x <= 0xFFFFFFFF]
    return lines, edges


def _replay(ops: list[tuple[bool, int, int]]) -> Ranges | None:
    """The table after `ops`, or None when an add overlaps."""
    table = Ranges()
    for add, start, end in ops:
        if not add:
            table.delete(start, end)
        elif table.add(start, end, Entry(b"v", range_text(start, end), "x", 1), []) is not None:
            return None
    return table


def proxy_lines(rng: random.Random, spots: Spots) -> list[str]:
    """Trusted proxies: two hot spots whole (so many clients are proxies), and a few networks."""
    lines = [f"proxy {addr_text(4, spots.v4[i])}/{rng.choice([12, 16])};" for i in rng.sample(range(5), 2)]
    lines.append(f"proxy {addr_text(6, rng.choice(spots.v6))}/{rng.choice([16, 32])};")
    lines += [f"proxy {net_text(rng, 4, *spots.network(4))};" for _ in range(rng.randint(0, 3))]
    rng.shuffle(lines)
    return lines


def xff_headers(rng: random.Random, spots: Spots, edges: list[str]) -> list[tuple[str, str]]:
    headers = []
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        tokens = []
        for _ in range(rng.randint(1, 4)):
            roll = rng.random()
            if roll < 0.6:
                tokens.append(client(rng, spots, edges))
            elif roll < 0.7:
                tokens.append(f"{ipaddress.IPv4Address(spots.v4_addr())}:{rng.randint(1, 65535)}")
            elif roll < 0.8:
                tokens.append(f"[{ipaddress.IPv6Address(spots.v6_addr())}]:{rng.randint(1, 65535)}")
            else:
                tokens.append(rng.choice(["junk", "", "unknown", "[::1]", "255.255.255.255"]))
        sep = rng.choice([", ", ",", " ", " , "])
        headers.append(("X-Forwarded-For", sep.join(tokens) + rng.choice(["", "", ",", " ,"])))
    return headers


# -- the tests ----------------------------------------------------------------------------------

BODY = '"$g1|$g2|$g3|$g4|$g5|$g6|$remote_addr"'


def geo_config(rng: random.Random) -> tuple[str, list[str]]:
    spots = Spots(rng)
    cidr, edges1 = cidr_block(rng, spots)
    ranges, edges2 = ranges_block(rng, spots)
    proxies = proxy_lines(rng, spots)
    cidr2, edges3 = cidr_block(rng, spots)
    blocks = {
        "g1": ("$g1", cidr),
        "g2": ("$g2", ranges),
        "g3": ("$arg_a $g3", cidr),
        "g4": ("$arg_a $g4", ranges),
        "g5": ("$g5", proxies + cidr2),
        "g6": ("$arg_a $g6", ["proxy_recursive;", *proxies, *cidr2]),
    }
    http = "\n".join(f"geo {head} {{\n    " + "\n    ".join(lines) + "\n}" for head, lines in blocks.values())
    conf = (
        f"events {{}}\nhttp {{\n{http}\nserver {{\n    listen 80;\n    listen [::]:80;\n"
        f"    location / {{ return 200 {BODY}; }}\n}}\n}}\n"
    )
    return conf, edges1 + edges2 + edges3


def requests(rng: random.Random, conf_edges: list[str], n: int) -> list[OracleRequest]:
    spots = Spots(rng)
    out = []
    for _ in range(n):
        c = client(rng, spots, conf_edges)
        a = source_text(rng, spots, conf_edges)
        headers = xff_headers(rng, spots, conf_edges)
        out.append(OracleRequest(client=c, url=f"http://a.test/?a={a}", headers=headers))
    return out


def assert_same(conf: str, reqs: list[OracleRequest], label: str) -> int:
    cfg = nginxsim.load(text=conf)
    with Nginx(text=conf) as ng:
        answers = ng.request_many(reqs)
    bad = []
    for req, answer in zip(reqs, answers, strict=True):
        d = cfg.route(req.client, req.url, headers=list(req.headers), trace=False)
        got = answer.body.decode("utf-8", "surrogateescape")
        if (answer.status, got) != (d.status, d.body):
            bad.append(
                f"{req.client} {req.url} {list(req.headers)}: nginx {answer.status} {got!r}, "
                f"nginxsim {d.status} {d.body!r}"
            )
    assert not bad, f"{label}: {len(bad)} of {len(reqs)} differ\n" + "\n".join(bad[:8]) + "\nconfig:\n" + conf
    return len(reqs)


@pytest.mark.parametrize("seed", range(8))
def test_random_geo_blocks(seed: int) -> None:
    rng = random.Random(seed)
    conf, edges = geo_config(rng)
    assert_same(conf, requests(rng, edges, 300), f"seed {seed}")
    assert nginx_warnings(conf) == [
        (w.rsplit(" in ", 1)[0], int(w.rsplit(":", 1)[1])) for w in nginxsim.load(text=conf).warnings
    ]


@pytest.mark.parametrize("seed", range(10))
def test_random_overlaps(seed: int) -> None:
    """Ranges added in random order: nginx and nginxsim agree on which one fails, and how."""
    rng = random.Random(100 + seed)
    spots = Spots(rng)
    lines = ["ranges;"]
    for _ in range(12):
        start = spots.v4_addr() & 0xFFFFFF00
        end = min(start + rng.choice([0, 255, 65535, 1 << 18]), 0xFFFFFFFE)
        lines.append(f"{range_text(start, end)} v{len(lines)};")
    conf = "events {}\nhttp {\ngeo $g {\n" + "\n".join(lines) + "\n}\n}\n"
    assert_same_verdict(conf)


GEO_ERRORS = [
    "geo g { }",
    "geo $ { }",
    "geo $x $ { }",
    "geo $ $x { }",
    "geo $Remote_Addr { }",
    "geo $g { a b c; }",
    "geo $g { default; }",
    "geo $g { proxy_recursive on; }",
    "geo $g { default x; ranges; }",
    "geo $g { delete 1.2.3.4; ranges; }",
    "geo $g { proxy unix:; }",
    "geo $g { proxy 10.0.0.0/33; }",
    "geo $g { 1.2.3.4/33 x; }",
    "geo $g { 255.255.255.255/32 x; }",
    "geo $g { 1.2.3 x; }",
    "geo $g { ranges x; }",
    "geo $g { ranges; 1.2.3.4/24 b; }",
    "geo $g { ranges; 1.2.3.4 b; }",
    "geo $g { ranges; 1.2.3.4-255.255.255.255 a; }",
    "geo $g { ranges; 1.2.3.5-1.2.3.4 a; }",
    "geo $g { ranges; delete 1.2.3.5-x; }",
    "geo $g { ranges; 10.1.2.0-10.1.2.9 a; 10.0.0.0-10.255.255.255 b; }",
    "geo $g { ranges; 10.1.2.0-10.1.2.9 a; 10.1.2.5-10.1.3.0 b; }",
    "geo $g { include nofile; }",
    "geo $nosuch $g { }",
    "geo $g { } geo $g { default x; }",  # not an error: the second one wins
    "geo $g { ranges; proxy 1.2.3.4; proxy_recursive; default x; ranges; }",
]


@pytest.mark.parametrize("geo", GEO_ERRORS)
def test_config_errors_match_nginx(geo: str) -> None:
    conf = f"events {{}}\nhttp {{\n{geo}\nserver {{ listen 80; return 200 $g; }}\n}}\n"
    # the harness runs nginx on a copy: compare the base names of files in open() errors
    assert_same_verdict(conf, normalize=lambda message: re.sub(r'"[^"]*/', '"', message))


FIXED_CONF = """events {}
http {
    geo $g1 { default first; 10.0.0.0/8 ten; }
    geo $G1 { default second; include geo.d/nets.conf; }
    geo $g2 {
        ranges;
        include geo.d/ranges.conf;
        10.0.0.5-10.0.0.5 five;
    }
    geo $remote_addr $g3 { 1.2.3.0/24 net; }
    geo $arg_a $g4 { proxy 10.0.0.0/8; proxy 2001:db8::/32; proxy_recursive; default d; 1.2.3.0/24 net; }
    server {
        listen 80;
        listen [::]:80;
        location / { return 200 "$g1|$g2|$g3|$g4"; }
        location /set/ { set $g1 "$g1-set"; set $g2 x; return 200 "$g1|$g2|$g3|$g4"; }
    }
}
"""
FIXED_FILES = {
    "geo.d/nets.conf": "10.0.0.0/8 inc-ten;\n10.0.0.1/8 inc-again;\n2001:db8::/32 doc;\n"
    "delete 10.9.0.0/16;\n",
    "geo.d/ranges.conf": "default rd;\n10.0.0.0-10.0.255.255 r10;\n10.0.0.0-10.0.255.255 r10b;\n",
}


def test_includes_redefinitions_and_set() -> None:
    """Includes relative to the conf dir, a second geo of the same variable, `set` over a geo,
    a `$src` holding an XFF-replaced address."""
    cfg = nginxsim.load(text=FIXED_CONF, files=FIXED_FILES)
    reqs = []
    for client in ["10.0.0.5", "10.9.1.1", "1.2.3.4", "2001:db8::1", "::ffff:10.0.0.5", "8.8.8.8"]:
        for path in ["/", "/set/"]:
            for a in ["10.0.0.1", "2001:db8::5", "1.2.3.9", "x"]:
                for xff in (
                    [],
                    [("X-Forwarded-For", "1.2.3.4, 10.1.1.1")],
                    [("X-Forwarded-For", "[::1]:80")],
                ):
                    reqs.append(OracleRequest(client=client, url=f"http://a.test{path}?a={a}", headers=xff))
    with Nginx(text=FIXED_CONF, files=FIXED_FILES) as ng:
        answers = ng.request_many(reqs)
    for req, answer in zip(reqs, answers, strict=True):
        d = cfg.route(req.client, req.url, headers=list(req.headers), trace=False)
        assert (answer.status, answer.body.decode()) == (d.status, d.body), (req, answer.body, d.body)
    expected = nginx_warnings(FIXED_CONF, FIXED_FILES)
    assert nginxsim_warnings(cfg) == expected
    assert len(expected) == 4
