"""Decisions shared between clients of a kind (http/replay.py) must be exactly the decisions
of a full route: every field, including the trace, variables and the upstream request, which a
shared decision computes from the client's own route when read."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import nginxsim
from nginxsim.http import engine, replay
from nginxsim.http.request import parse_address, prepare_request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def full_route(cfg: nginxsim.Config, client: str, url: str, **kw: Any) -> nginxsim.Decision:
    """The engine without any memo: the reference."""
    pinned = {k: v.encode() for k, v in kw.pop("pinned", {}).items()}
    down = frozenset(kw.pop("down", ()))
    trace = kw.pop("trace", True)
    template = prepare_request(url, **kw)
    return engine.route(cfg.plan, template.with_client(parse_address(client), text=client), pinned=pinned,
                        trace=trace, down=down)


def same(cfg: nginxsim.Config, client: str, url: str, **kw: Any) -> None:
    got = cfg.route(client, url, **kw).to_dict()
    want = full_route(cfg, client, url, **kw).to_dict()
    assert got == want, f"{client} {url} {kw}"


def clients(rnd: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        kind = rnd.random()
        if kind < 0.3:
            out.append(f"10.{rnd.choice((0, 1, 2))}.{rnd.randrange(256)}.{rnd.randrange(256)}")
        elif kind < 0.8:
            out.append(".".join(str(rnd.randrange(256)) for _ in range(4)))
        elif kind < 0.95:
            v6 = rnd.random() < 0.5
            out.append(f"2001:db8::{rnd.randrange(65536):x}" if v6 else f"::ffff:10.1.0.{rnd.randrange(256)}")
        else:
            out.append("unix:")
    return out


@pytest.mark.parametrize("fixture,url", [("canary", "http://shop.example.com/"),
                                         ("canary", "http://shop.example.com/static/app.css"),
                                         ("basic", "http://example.com/")])
def test_fixtures_every_field(fixture: str, url: str) -> None:
    cfg = nginxsim.load(str(FIXTURES / fixture / "nginx.conf"))
    rnd = random.Random(fixture + url)
    for client in clients(rnd, 300):
        if client.startswith(("2001", "::", "unix")):
            continue  # the fixtures listen on IPv4 only
        same(cfg, client, url, trace=rnd.random() < 0.5)


# Statements for a random location: leaves (geo, split_clients, map of them) that can be
# shared, and reads of the client that make a decision the client's own.
STATEMENTS = [
    'return 200 "$m";',
    'if ($g = a) { return 301 /x/$s; }',
    'add_header X-M "$m $g2";',
    'add_header X-R $remote_addr;',
    'add_header X-P $remote_port always;',
    'set $v "$s-$g"; rewrite ^ /r/$v last;',
    'if ($remote_addr ~ "^10\\.1\\.") { return 403; }',
    'if ($binary_remote_addr = "") { return 500; }',
    'return 200 "$s2 $request_id";',
    'error_page 418 = @n; return 418;',
    'return 302 /to/$g2/$m2;',
    'deny 10.1.0.0/16;',
    'allow 10.0.0.0/8; allow 2001:db8::/32; deny all;',
]
PASSES = ['proxy_pass http://u1;', 'proxy_pass http://uh;', 'proxy_pass http://hk;', 'proxy_pass http://hs;',
          'uwsgi_pass unix:/run/$m.sock;', 'proxy_pass http://$m2;', '']

CONFIG = """
events {{}}
http {{
    geo $g {{ default d; 10.0.0.0/8 a; 10.1.0.0/16 b; 2001:db8::/33 v6; }}
    geo $remote_addr $g2 {{ ranges; default none; 10.0.0.0-10.0.255.255 r0; 10.1.0.0-10.1.0.127 r1; }}
    geo $xff {{ proxy 10.0.0.0/8; default pub; 10.2.0.0/16 inner; }}
    split_clients "{key}" $s {{ 10% p; 50.5% q; {star} }}
    split_clients "$binary_remote_addr$remote_port" $s2 {{ 33.33% x; * y; }}
    map "$g:$s" $m {{ ~^a: alpha; ~^b:(?<part>.*) beta-$part; default ga; }}
    map $xff $m2 {{ inner in; default out; }}
    upstream u1 {{ server 10.0.0.1:80; server 10.0.0.2:80 weight=2; }}
    upstream uh {{ ip_hash; server 10.0.0.1:80; server 10.0.0.2:80; server 10.0.0.3:80; }}
    upstream hk {{ hash $s; server 10.0.0.1:80; server 10.0.0.2:80; }}
    upstream hs {{ hash $remote_addr consistent; server 10.0.0.1:80; server 10.0.0.2:80; }}
    {realip}
    server {{
        listen 80; listen [::]:80; server_name a.test;
        location / {{ {body} }}
        location /r/ {{ return 200 "r $uri $m"; }}
        location @n {{ return 200 "named $m2 $g"; }}
    }}
}}
"""


@pytest.mark.parametrize("seed", range(40))
def test_random_configs_every_field(seed: int) -> None:
    rnd = random.Random(seed)
    body = " ".join(rnd.sample(STATEMENTS, rnd.randint(0, 3))) + " " + rnd.choice(PASSES)
    key = rnd.choice(["${remote_addr}AAA", "$remote_addr", "x$binary_remote_addr", "$remote_addr$uri"])
    realip = "set_real_ip_from 10.0.0.0/8; real_ip_header X-Real-IP;" if rnd.random() < 0.2 else ""
    cfg = nginxsim.load(text=CONFIG.format(key=key, star="* r;" if rnd.random() < 0.5 else "", realip=realip,
                                           body=body))
    headers = {"X-Forwarded-For": "10.2.3.4", "X-Real-IP": "10.1.0.9"} if rnd.random() < 0.5 else {}
    for client in clients(rnd, 120):
        same(cfg, client, "http://a.test/p?q=1", headers=headers, trace=rnd.random() < 0.7,
             down=("10.0.0.2:80",) if rnd.random() < 0.2 else (),
             pinned={"request_id": "0123"} if rnd.random() < 0.3 else {})


def test_clients_of_a_kind_share_one_route(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = nginxsim.load(str(FIXTURES / "canary" / "nginx.conf"))
    runs = []
    real_run = engine.run
    monkeypatch.setattr(engine, "run", lambda *a, **k: runs.append(1) or real_run(*a, **k))
    rnd = random.Random(7)
    decisions = [cfg.route(c, "http://shop.example.com/") for c in clients(rnd, 2000) if c.startswith(
        tuple("0123456789")) and ":" not in c]
    # one full route per (geo group, split bucket) reached, not per client
    assert len(runs) <= 3 * 3
    assert sum(not isinstance(d, replay.SharedDecision) for d in decisions) == len(runs)


def test_a_decision_that_shows_the_client_is_never_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = nginxsim.load(text='events {} http { server { listen 80; return 200 "$remote_addr"; } }')
    bodies = {cfg.route(f"192.0.2.{i}", "http://a/").body for i in range(50)}
    assert bodies == {f"192.0.2.{i}" for i in range(50)}


def test_shared_decisions_ask_the_file_system_again(tmp_path: Path) -> None:
    """A shared decision that depended on files is reused only while they answer the same."""
    conf = f"""events {{}} http {{
        split_clients "$remote_addr" $half {{ 50% a; * b; }}
        server {{ listen 80; root {tmp_path}/$half; location / {{ }} }} }}"""
    cfg = nginxsim.load(text=conf)
    addrs = [f"198.51.100.{i}" for i in range(40)]
    assert {cfg.route(a, "http://x/f.txt").status for a in addrs} == {404}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    for a in addrs:
        d = cfg.route(a, "http://x/f.txt")
        want = full_route(cfg, a, "http://x/f.txt")
        assert (d.status, d.file) == (want.status, want.file)
    assert {cfg.route(a, "http://x/f.txt").status for a in addrs} == {200, 404}
