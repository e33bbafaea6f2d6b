"""The peer a fresh nginx worker picks, per balancer, against real nginx: round robin's first pick,
ip_hash over client addresses, hash over keys, hash consistent, down and backup peers, and
"no live upstreams".

Round-robin picks get a fresh nginx each (its state is per worker and moves with every
request); ip_hash and hash picks with a key do not depend on earlier requests.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

import nginxsim
from nginxsim.oracle import Nginx, OracleRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_regex import NginxRunner, free_port  # noqa: E402  (the minimal runner with real backends)

pytestmark = pytest.mark.oracle

GROUPS = """
    upstream rr { server 10.0.0.1:80 weight=2; server 10.0.0.2:80 weight=5; server 10.0.0.3:80 weight=5; }
    upstream rrdown { server 10.0.0.1:80 weight=9 down; server 10.0.0.2:80; server 10.0.0.3:80 weight=3; }
    upstream bk { server 10.0.0.1:80 down; server 10.0.0.2:80 down; server 10.0.0.9:80 backup; }
    upstream dead { server 10.0.0.1:80 down; }
    upstream iph { ip_hash; server 10.0.0.1:80; server 10.0.0.2:80 weight=2; server 10.0.0.3:80 down;
                   server 10.0.0.4:80; }
    upstream hsh { hash $arg_k; server 10.0.0.1:80; server 10.0.0.2:80 weight=3; server 10.0.0.3:80 down;
                   server 10.0.0.4:80; }
"""


def _conf() -> str:
    locations = "".join(f"location /{g} {{ proxy_pass http://{g}; }}\n" for g in
                        ("rr", "rrdown", "bk", "dead", "iph", "hsh"))
    return f"events {{}}\nhttp {{\n{GROUPS}\nserver {{ listen 80; listen [::]:80;\n{locations}}}\n}}\n"


def _agree(cfg: nginxsim.Config, req: OracleRequest, resp: object) -> str | None:
    d = cfg.route(req.client, req.url)
    nginx_peer = resp.upstream.peer if resp.upstream is not None else None  # type: ignore[attr-defined]
    status = resp.status  # type: ignore[attr-defined]
    sim_peer = d.upstream.peer if d.upstream is not None else None
    if (nginx_peer, status if nginx_peer is None else None) != (sim_peer, d.status if sim_peer is None else None):
        return f"{req.client} {req.url}: nginx {nginx_peer or status}, nginxsim {sim_peer or d.status}"
    return None


def test_first_pick_of_a_fresh_worker() -> None:
    conf = _conf()
    cfg = nginxsim.load(text=conf)
    for path in ("rr", "rrdown", "bk", "dead", "hsh?k="):  # an empty hash key means round robin
        req = OracleRequest("10.9.9.9", f"http://b.test/{path}")
        with Nginx(text=conf) as ng:
            resp = ng.request(req)
        assert _agree(cfg, req, resp) is None, _agree(cfg, req, resp)


def test_ip_hash_and_hash() -> None:
    conf = _conf()
    cfg = nginxsim.load(text=conf)
    rng = random.Random(31)
    reqs = []
    for _ in range(150):
        client = rng.choice([f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                             f"2001:db8::{rng.randrange(65536):x}", f"::ffff:10.1.{rng.randrange(256)}.7"])
        reqs.append(OracleRequest(client, "http://b.test/iph"))
        key = "".join(rng.choice("abcXYZ019-_.~") for _ in range(rng.randint(1, 10)))
        reqs.append(OracleRequest("10.9.9.9", f"http://b.test/hsh?k={key}"))
    with Nginx(text=conf) as ng:
        responses = ng.request_many(reqs)
    problems = [p for req, resp in zip(reqs, responses, strict=True) if (p := _agree(cfg, req, resp))]
    assert not problems, "\n".join(problems[:10])


def test_hash_consistent_with_real_backends() -> None:
    """Consistent hashing hashes the server text, so the backends here are real loopback servers
    that say who they are (the oracle harness would rewrite their addresses)."""
    servers = [f"127.0.0.1:{free_port()}" for _ in range(4)]
    weights = [1, 2, 1, 3]
    peers = "".join(f"server {s} weight={w}{' down' if i == 2 else ''}; "
                    for i, (s, w) in enumerate(zip(servers, weights, strict=True)))
    backends = "".join(f'server {{ listen {s}; return 200 "{s}"; }}\n' for s in servers)
    http = f"upstream c {{ hash $arg_k consistent; {peers}}}\n{backends}"
    front = "server { listen 127.0.0.1:PORT; location / { proxy_pass http://c; } }"
    cfg = nginxsim.load(text=f"events {{}}\nhttp {{\n{http}\n{front.replace('PORT', '8080')}\n}}\n")
    rng = random.Random(32)
    keys = ["".join(rng.choice("abcXYZ019-_") for _ in range(rng.randint(1, 12))) for _ in range(200)]
    with NginxRunner(http + front) as ng:
        for key in keys:
            status, body = ng.get(f"/?k={key}".encode())
            d = cfg.route("10.0.0.1", f"http://a.test:8080/?k={key}")
            assert d.upstream is not None and (status, body.decode()) == (200, d.upstream.peer), key


def test_what_if_a_peer_is_down() -> None:
    """route(down=...) answers as nginx does with those peers marked `down` in the config."""
    base = ("events {{}}\nhttp {{\n"
            "upstream rr {{ server 10.0.0.1:80 weight=5{a}; server 10.0.0.2:80{b}; server 10.0.0.9:80 backup; }}\n"
            "upstream iph {{ ip_hash; server 10.0.0.1:80{a}; server 10.0.0.2:80{b}; }}\n"
            "server {{ listen 80; location /rr {{ proxy_pass http://rr; }}\n"
            "location /iph {{ proxy_pass http://iph; }} }}\n}}\n")
    healthy = nginxsim.load(text=base.format(a="", b=""))
    for down in ({"10.0.0.1:80"}, {"10.0.0.2:80"}, {"10.0.0.1:80", "10.0.0.2:80"}):
        marked = base.format(a=" down" if "10.0.0.1:80" in down else "", b=" down" if "10.0.0.2:80" in down else "")
        for path, client in (("rr", "10.9.9.9"), ("iph", "10.1.2.3"), ("iph", "192.0.2.77")):
            req = OracleRequest(client, f"http://b.test/{path}")
            with Nginx(text=marked) as ng:
                resp = ng.request(req)
            d = healthy.route(client, req.url, down=down)
            nginx_peer = resp.upstream.peer if resp.upstream is not None else None
            assert (d.upstream.peer if d.upstream else None, d.status) == (
                nginx_peer, None if nginx_peer else resp.status), (down, path, client)
