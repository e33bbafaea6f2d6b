"""Differential tests of split_clients: random layouts (fractional percentages, with and without
`*`, sums under 100%, exactly 100%) × random keys and clients, the canary fixture client by
client, stickiness and shares as nginx shows them, and config errors against `nginx -t`.

One nginx per generated config, many requests each; configs come from seeded random sources, so
a failure names its seed.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nginxsim
from nginxsim.oracle import Nginx, OracleRequest, compare

pytestmark = pytest.mark.usefixtures("nginx_binary")

KEYS = ('"$arg_k"', '"${remote_addr}AAA"', '"x${arg_k}y$http_x_extra"', '"$remote_addr"')
TOP_KEYS = ("k580015", "k1213476", "k1492559", "k1859066")  # hashes >= 4294960000
KEY_CHARS = string.ascii_letters + string.digits + "-._~"


def random_layout(rng: random.Random) -> list[str]:
    """Lines of one block: percentages with 0-2 decimals in the spellings nginx accepts."""
    kind = rng.choice(["star", "under", "exact", "star", "tiny"])
    budget = 10000
    lines: list[str] = []
    for i in range(rng.randint(1, 7)):
        if budget <= 0:
            break
        top = 20 if kind == "tiny" else min(budget, rng.choice([50, 500, 3000, 10000]))
        p = rng.randint(1, top)
        budget -= p
        whole, frac = divmod(p, 100)
        spellings = [f"{whole}.{frac:02d}"]
        if frac == 0:
            spellings += [f"{whole}", f"{whole}.", f"{whole}.0"]
        elif frac % 10 == 0:
            spellings.append(f"{whole}.{frac // 10}")
        if whole == 0:
            spellings.append(f".{frac:02d}")
        lines.append(f"{rng.choice(spellings)}% v{i}_{p};")
    if kind == "exact" and budget > 0:
        whole, frac = divmod(budget, 100)
        lines.append(f"{whole}.{frac:02d}% last;")
    if kind in ("star", "tiny") or (kind == "exact" and rng.random() < 0.2):
        lines.append(rng.choice(["* rest;", '* "";', "* rest extra;"]))
    return lines


def random_key(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(TOP_KEYS)
    return "".join(rng.choice(KEY_CHARS) for _ in range(rng.randint(0, 12)))


def random_ip(rng: random.Random) -> str:
    return ".".join(str(rng.randrange(256)) for _ in range(4))


def config(blocks: list[tuple[str, list[str]]]) -> str:
    """Each block as `$s<i>`; every request answers "$s0|$s1|..."."""
    splits = "".join(
        f"    split_clients {key} $s{i} {{\n" + "".join(f"        {ln}\n" for ln in lines) + "    }\n"
        for i, (key, lines) in enumerate(blocks)
    )
    values = "|".join(f"$s{i}" for i in range(len(blocks)))
    return (
        f"events {{}}\nhttp {{\n{splits}    server {{\n        listen 80;\n"
        f'        location / {{ return 200 "{values}\\n"; }}\n    }}\n}}\n'
    )


def request(rng: random.Random) -> OracleRequest:
    headers = [("X-Extra", random_key(rng))] if rng.random() < 0.5 else []
    return OracleRequest(client=random_ip(rng), url=f"http://a.test/?k={random_key(rng)}", headers=headers)


def check(conf: str, requests: list[OracleRequest], label: str, files: dict[str, str] | None = None) -> None:
    """nginx and nginxsim answer every request alike (status, body, upstream)."""
    wrong = compare(None, requests, text=conf, files=files)
    shown = "\n".join(map(str, wrong[:5]))
    assert not wrong, f"{label}: {len(wrong)} of {len(requests)} differ\n{shown}\n{conf}"


def bodies(conf: str, requests: list[OracleRequest]) -> list[str]:
    """nginx's bodies, from a freshly started nginx."""
    with Nginx(text=conf) as ng:
        return [r.body.decode("utf-8", "surrogateescape") for r in ng.request_many(requests)]


@pytest.mark.parametrize("seed", range(16))
def test_random_layouts(seed: int) -> None:
    """16 configs × 6 blocks × 300 requests: 28 800 lookups."""
    rng = random.Random(seed)
    blocks = [(rng.choice(KEYS), random_layout(rng)) for _ in range(6)]
    check(config(blocks), [request(rng) for _ in range(300)], f"seed {seed}")


def test_exactly_100_percent_leaves_the_top_empty() -> None:
    """1.22.1: 10000 × 0.01% ends at 4294960000; keys hashing above it get ""."""
    conf = config([('"$arg_k"', [f"0.01% v{i};" for i in range(10000)])])
    rng = random.Random(1)
    keys = [*TOP_KEYS, *(random_key(rng) for _ in range(100))]
    reqs = [OracleRequest("1.2.3.4", f"http://a/?k={k}") for k in keys]
    check(conf, reqs, "10000 parts")
    assert bodies(conf, reqs[:4]) == ["\n"] * 4


def test_odd_lines() -> None:
    """A one-word line takes the previous statement's second word; absurd percentages wrap in 32
    bits (42949672.96% is a catch-all, 42949673% is 0.04%); values are literal."""
    blocks = [
        ('"$arg_k"', ["10% x y z;", "40%;", "*;"]),
        ('"${arg_k}"', ["50%;", "* b;"]),
        ('"$arg_k"', ["10% a;", "42949672.96% b;", "* c;"]),
        ('"$arg_k"', ["42949673% a;", "* b;"]),
        ('"$arg_k"', ['50% "$remote_addr";', "* '${x}';"]),
        ('"$arg_nothing"', ["0.01% first;", "* rest;"]),
    ]
    rng = random.Random(2)
    check(config(blocks), [request(rng) for _ in range(200)], "odd lines")


def canary() -> tuple[str, dict[str, str]]:
    """The canary fixture with a probe location answering "$ip_range $split $instance"."""
    with open("fixtures/canary/nginx.conf", encoding="utf-8") as f:
        text = f.read()
    with open("fixtures/canary/uwsgi_params", encoding="utf-8") as f:
        params = f.read()
    at = text.index("        location / {")
    probe = '        location = /which { return 200 "$ip_range $split $instance\\n"; }\n'
    return text[:at] + probe + text[at:], {"uwsgi_params": params}


def test_canary_fixture_client_by_client() -> None:
    """geo + split_clients + map: 600 clients (a third employees, a third testers), each one's
    bucket and instance, and the uwsgi upstream its requests go to."""
    conf, files = canary()
    rng = random.Random(7)
    clients = [f"69.12.{rng.randrange(128, 256)}.{rng.randrange(256)}" for _ in range(200)]
    clients += [f"128.32.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(200)]
    clients += [random_ip(rng) for _ in range(200)]
    reqs = [OracleRequest(c, "http://shop.example.com/which") for c in clients]
    reqs += [OracleRequest(c, "http://shop.example.com/cart") for c in clients[::4]]
    check(conf, reqs, "canary", files)


STICKY = config(
    [
        ('"${remote_addr}AAA"', ["0.5% a;", "2% b;", "12.34% c;", "33.33% d;", "* e;"]),
        ('"$arg_k"', ["10% x;", "20.5% y;", "69.5% z;"]),
    ]
)
IPS = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


@pytest.fixture(scope="module")
def servers() -> Iterator[list[Nginx]]:
    """Two nginx processes started on the same config, on first use (nginx_binary has checked
    that nginx exists by then)."""
    started: list[Nginx] = []
    yield started
    for ng in started:
        ng.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(IPS, st.text(KEY_CHARS, max_size=12)), min_size=1, max_size=12))
def test_stickiness_in_nginx(servers: list[Nginx], pairs: list[tuple[str, str]]) -> None:
    """A key's bucket is the same on every request, from a second nginx started on the same
    config, and in two separately loaded nginxsim configs."""
    while len(servers) < 2:
        servers.append(Nginx(text=STICKY))
    reqs = [OracleRequest(ip, f"http://a/?k={k}") for ip, k in pairs]
    first = servers[0].request_many(reqs + reqs[::-1])
    second = servers[1].request_many(reqs)
    sims = [nginxsim.load(text=STICKY) for _ in range(2)]
    for i, req in enumerate(reqs):
        answers = {first[i].body.decode(), first[-1 - i].body.decode(), second[i].body.decode()}
        answers |= {sim.route(req.client, req.url, trace=False).body or "" for sim in sims}
        assert len(answers) == 1, (req, answers)


def test_shares_in_nginx() -> None:
    """Over 3000 random clients each bucket's count in nginx is within a 99.9% binomial interval
    of its share; each share is the configured percentage floored to nginx's 32-bit bounds."""
    conf = config([('"${remote_addr}AAA"', ["0.5% a;", "2% b;", "12.34% c;", "33.33% d;", "* e;"])])
    rng = random.Random(4)
    reqs = [OracleRequest(random_ip(rng), "http://a/") for _ in range(3000)]
    got = bodies(conf, reqs)
    cfg = nginxsim.load(text=conf)
    assert got == [cfg.route(r.client, r.url, trace=False).body for r in reqs]
    (split,) = cfg.plan.modules_state["split_clients"]
    for part, pct in zip(split.parts, (50, 200, 1234, 3333, None), strict=True):
        if pct is not None:
            assert part.hi - part.lo == pct * 0xFFFFFFFF // 10000
        count = got.count(part.value.decode() + "\n")
        sigma = math.sqrt(len(reqs) * part.share * (1 - part.share))
        assert abs(count - len(reqs) * part.share) <= 3.29 * sigma + 1, (part.value, count, part.share)


# -- config errors --------------------------------------------------------------------------------

EMERG = re.compile(r"\[emerg\] (?:\d+#\d+: )?(.*?)(?: in \S+:(\d+))?$", re.MULTILINE)


def nginx_error(conf: str) -> tuple[str, int | None] | None:
    """`nginx -t`'s [emerg] message and line, None if it accepts the config."""
    ok, stderr = Nginx.test_config(text=conf)
    if ok:
        return None
    m = EMERG.search(stderr)
    assert m is not None, stderr
    return m.group(1), int(m.group(2)) if m.group(2) else None


def sim_error(conf: str) -> tuple[str, int | None] | None:
    try:
        nginxsim.load(text=conf)
    except nginxsim.ConfigError as e:
        return e.message, e.line
    return None


@pytest.mark.parametrize(
    "block",
    [
        "0% a;",
        "0.00% a;",
        "-5% a;",
        "5 a;",
        "abc a;",
        "1.5.% a;",
        "0.500% a;",
        "% a;",
        '"" a;',
        "** a;",
        "5%% a;",
        "+5% a;",
        " 5 % a;",
        "1,5% a;",
        "10% a;\n95% b;",
        "60% a;\n50% b;\n\n",
        "* a;\n1% b;",
        "99.99% a;\n0.02% b;",
        "50% a;\n* b;\n* c;",
        "100% a;",
        "100.01% a;",
        "92233720368547758.08% a;",
        "10%;",
        "*;\n*;",
    ],
)
def test_config_errors_match_nginx(block: str) -> None:
    conf = config([('"$arg_k"', block.split("\n"))])
    assert sim_error(conf) == nginx_error(conf)


@pytest.mark.parametrize(
    "header",
    [
        'split_clients "$arg_k" s {',
        'split_clients "$arg_k" $ {',
        'split_clients "$arg_k" $uri {',
        'split_clients "${arg_k" $s {',
        'split_clients "$arg_k" $URI {',
        'split_clients "$" $s {',
        'split_clients "$arg_k" $Args {',
    ],
)
def test_directive_errors_match_nginx(header: str) -> None:
    conf = f"events {{}}\nhttp {{\n    {header}\n        * a;\n    }}\n    server {{ listen 80; }}\n}}\n"
    assert sim_error(conf) == nginx_error(conf)
