"""Differential tests of the rewrite module and the script engine against real nginx: random
rewrite chains (flags, '?', captures, args), if/set, capture escaping, the 10-change budget,
built-in variables and interpolation edge cases.
"""

from __future__ import annotations

import random

import pytest

from nginxsim.oracle import OracleRequest, compare

pytestmark = pytest.mark.oracle

ATOMS = ["a", "b", "+", "=", "&", ";", "%20", "%25", "%3F", "%3f", "%23", "%26", "%2B", "%C3%A9", "%7E", "%22",
         "%41", "'", "(", "*", "x.y", "-"]


def _assert_same(conf: str, requests: list[OracleRequest]) -> None:
    mismatches = compare(None, requests, text=conf)
    assert not mismatches, f"{len(mismatches)} of {len(requests)} differ\n" + "\n".join(
        str(m) for m in mismatches[:8]) + "\n\nconfig:\n" + conf


ESCAPING_CONF = """
events {}
http {
    server {
        listen 80;
        location /r1/ { rewrite ^/r1/(.*)$ http://e.com/$1 redirect; }
        location /r2/ { rewrite ^/r2/(.*)$ http://e.com/$1?z=$1; }
        location /r3/ { rewrite ^/r3/(.*)$ /show/$1?c=$1 last; }
        location /r4/ { rewrite ^/r4/(.*)$ /show/$1 last; }
        location ~ ^/r5/(.*)$ { set $v $1; return 200 "set=[$v] ret=[$1]"; }
        location ~ ^/r6/(.*)$ { if ($arg_k = $1) { return 200 "equal $1"; } return 200 "differ [$1]"; }
        location ~ ^/r7/(.*)$ { rewrite ^ /show?w=$1; }
        location /show { return 200 "uri=[$uri] args=[$args] is_args=[$is_args]"; }
    }
}
"""


def test_capture_escaping() -> None:
    rng = random.Random(5)
    reqs = []
    for _ in range(400):
        path = "".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 4)))
        prefix = rng.choice(["/r1/", "/r2/", "/r3/", "/r4/", "/r5/", "/r6/", "/r7/"])
        query = rng.choice(["", "?o=1", "?k=a", "?k=a%20b", "?a=%20&b=c"])
        reqs.append(OracleRequest(client="10.0.0.1", url=f"http://e.test{prefix}{path}{query}"))
    _assert_same(ESCAPING_CONF, reqs)


def _chain_conf(rng: random.Random) -> str:
    """Locations /c0../c7 whose rewrites send requests to each other, with flags, '?', set, if."""
    locations = []
    for i in range(8):
        lines = []
        for _ in range(rng.randint(1, 3)):
            target = rng.randrange(8)
            flag = rng.choice(["", "last", "break", "redirect", "permanent", "last"])
            args = rng.choice(["", "?n=$1", "?", "?m=1?", "?x=$arg_q"])
            lines.append(rf"rewrite ^/c{i}/(\w*)(.*)$ /c{target}/$1$2{args} {flag};")
            if rng.random() < 0.3:
                lines.append(f'set $s{i} "$1-{i}";')
            if rng.random() < 0.3:
                lines.append(f'if ($arg_q ~ "^(?<qq>[a-z]+)$") {{ return 200 "if {i} $qq $1"; }}')
        if rng.random() < 0.5:
            lines.append(f'return 200 "end {i} uri=$uri args=$args s=$s0$s1$s2 one=$1";')
        locations.append(f"location /c{i}/ {{ {' '.join(lines)} }}")
    server_rw = rng.choice(["", r"rewrite ^/s/(.*)$ /c0/$1;", r"if ($arg_stop) { return 418; }"])
    return ("events {}\nhttp {\nserver {\nlisten 80;\nset $s0 S0; set $s1 S1; set $s2 S2;\n" + server_rw + "\n"
            + "\n".join(locations)
            + '\nlocation / { return 200 "fallback $uri $args"; }\n}\n}\n')


@pytest.mark.parametrize("seed", range(40))
def test_random_rewrite_chains(seed: int) -> None:
    rng = random.Random(500 + seed)
    conf = _chain_conf(rng)
    reqs = []
    for _ in range(40):
        start = rng.choice([f"/c{rng.randrange(8)}/", "/s/"])
        path = rng.choice(["", "abc", "ab/c", "x%20y", "a+b", "deep/er/path"])
        query = rng.choice(["", "?q=abc", "?q=1", "?stop=1", "?q=abc&z=%20"])
        reqs.append(OracleRequest(client="10.0.0.2", url=f"http://c.test{start}{path}{query}"))
    _assert_same(conf, reqs)


VARIABLES_CONF = r"""
events {}
http {
    server {
        listen 80;
        listen [::]:80;
        server_name vars.test;
        location /h { return 200 "ua=[$http_user_agent] x=[$http_x_multi] xff=[$http_x_forwarded_for] cookie=[$http_cookie] host=[$host] http_host=[$http_host]"; }
        location /c { return 200 "a=[$cookie_a] b=[$cookie_b] ab=[$cookie_ab] a_b=[$cookie_a_b]"; }
        location /a { return 200 "a=[$arg_a] b=[$arg_b] ab=[$arg_ab] a_b=[$arg_a_b] args=[$args] q=[$query_string] is=[$is_args]"; }
        location /n { return 200 "[$arg_a.txt][$arg_a-x][$arg_a[0]][${arg_a}b][$10]"; }
        location /r { return 200 "uri=[$uri] doc=[$document_uri] ru=[$request_uri] m=[$request_method] p=[$server_protocol] s=[$scheme] https=[$https] sn=[$server_name] ct=[$content_type] cl=[$content_length] req=[$request]"; }
        location /addr { return 200 "ra=[$remote_addr] bin=[$binary_remote_addr] xff=[$proxy_add_x_forwarded_for]"; }
    }
}
"""


def test_builtin_variables() -> None:
    rng = random.Random(9)
    reqs = []
    cookie_atoms = ["a", "A", "b", "ab", "=", ";", ",", " ", "x", "1", "_", "-"]
    arg_atoms = ["a", "A", "b", "ab", "=", "&", ";", "x", "1", "%", "+", "_", "-"]
    for _ in range(300):
        kind = rng.choice(["/h", "/c", "/a", "/n", "/r", "/addr"])
        headers: list[tuple[str, str]] = []
        query = ""
        if kind == "/c":
            for _ in range(rng.randint(1, 3)):
                headers.append(("Cookie", "".join(rng.choice(cookie_atoms) for _ in range(rng.randint(1, 12)))))
        elif kind in ("/a", "/n"):
            query = "?" + "".join(rng.choice(arg_atoms) for _ in range(rng.randint(0, 14))).replace("%", "%25")
        else:
            for name in rng.sample(["User-Agent", "X-Multi", "X-Multi", "X-Forwarded-For", "X-Forwarded-For",
                                    "Cookie", "Content-Type", "Content-Length"], rng.randint(0, 5)):
                value = rng.choice(["v1", "1.2.3.4", "", "a, b", "7", "text/html"])
                if name == "Content-Length":
                    value = "0"
                headers.append((name, value))
        method = rng.choice(["GET", "GET", "HEAD", "POST", "FOO_BAR"])
        version = rng.choice(["1.1", "1.1", "1.0"])
        reqs.append(OracleRequest(client=rng.choice(["10.0.0.3", "2001:db8::1", "192.0.2.9"]),
                                  url=f"http://vars.test{kind}{rng.choice(['', '/x', '/%41%20b'])}{query}",
                                  method=method, headers=headers, http_version=version))
    _assert_same(VARIABLES_CONF, reqs)


def test_uri_change_budget() -> None:
    chain = "\n".join(f"location = /c{i} {{ rewrite ^ /c{i + 1} last; }}" for i in range(14))
    pages = "\n".join(f"location = /e{i} {{ error_page 404 = /e{i + 1}; return 404; }}" for i in range(14))
    conf = ("events {}\nhttp {\nserver {\nlisten 80;\nrecursive_error_pages on;\n" + chain + "\n" + pages
            + '\nlocation / { return 200 "end $uri"; }\n}\n}\n')
    reqs = [OracleRequest(client="10.0.0.4", url=f"http://b.test/{p}{i}") for p in ("c", "e") for i in range(14)]
    _assert_same(conf, reqs)
