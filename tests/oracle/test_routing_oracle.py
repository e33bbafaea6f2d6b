"""Differential tests: random server-name sets, location sets, returns and proxy_pass URI forms,
each request answered by real nginx and by nginxsim, compared field by field.

Configs are generated with a seeded random source (one nginx per config, many requests each),
so a failure names the seed and can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

import nginxsim
from nginxsim.oracle import Nginx, OracleRequest, compare

pytestmark = pytest.mark.oracle

SEGMENTS = ["a", "ab", "b", "x.php", "A", "img", "a.b", "%41", "d%20e"]


def _check(conf: str, requests: list[OracleRequest], label: str) -> int:
    mismatches = compare(None, requests, text=conf)
    assert not mismatches, (
        f"{label}: {len(mismatches)} of {len(requests)} differ\n"
        + "\n\n".join(str(m) for m in mismatches[:5])
        + "\n\nconfig:\n"
        + conf
    )
    return len(requests)


# -- locations ----------------------------------------------------------------------------------


def _path(rng: random.Random, depth: int) -> str:
    return "/" + "/".join(rng.choice(SEGMENTS) for _ in range(depth))


def _location_block(
    rng: random.Random, parent: str, depth: int, counter: Iterator[int], used: set[tuple[bool, str]]
) -> str:
    """Random sibling locations under a prefix `parent` ("" at server level), some nested."""
    lines = []
    for _ in range(rng.randint(3, 8) if depth == 0 else rng.randint(1, 3)):
        i = next(counter)
        kind = rng.choice(["", "", "=", "^~", "~", "~*"])
        if kind in ("~", "~*"):
            seg = rng.choice(["a", "ab", "x\\.php", "A", "img", "d e"])
            pattern = rng.choice(
                [f"^{parent or '/'}{seg}", f"{seg}$", f"/{seg}/", f"^{parent or '/'}({seg})(/.*)?$"]
            )
            name = f'{kind} "{pattern}"'
        else:
            segs = [
                rng.choice(["a", "ab", "b", "x.php", "A", "img", "a.b", "d e"])
                for _ in range(rng.randint(0, 2))
            ]
            path = (parent.rstrip("/") + "/" + "/".join(segs)) if segs or not parent else parent
            if segs and rng.random() < 0.5:
                path += "/"
            if (kind == "=", path) in used:
                continue
            used.add((kind == "=", path))
            name = f'{kind} "{path}"' if kind else f'"{path}"'
        proxy = kind in ("", "=", "^~") and name.endswith('/"') and rng.random() < 0.4
        if proxy:
            uri = f"/L{i}/" if kind != "=" and rng.random() < 0.5 else ""
            body = f"proxy_pass http://backend{uri};"
        else:
            body = f'return 200 "L{i} $1";'
        children = ""
        if depth < 2 and kind in ("", "^~") and rng.random() < 0.35:
            children = _location_block(rng, name.split('"')[1], depth + 1, counter, used)
        lines.append(f"location {name} {{ {body} {children} }}")
    return "\n".join(lines)


def _uris(rng: random.Random, conf: str, n: int) -> list[str]:
    names = [p for p in conf.split('"')[1::2] if p.startswith("/")]
    out = []
    for _ in range(n):
        base = rng.choice(names) if names and rng.random() < 0.7 else _path(rng, rng.randint(1, 3))
        base = base.replace(" ", "%20").replace("^", "").replace("$", "").replace("\\", "")
        mutate = rng.random()
        if mutate < 0.2:
            base = base.rstrip("/")
        elif mutate < 0.4:
            base += rng.choice(SEGMENTS)
        elif mutate < 0.5:
            base = base.upper()
        elif mutate < 0.6:
            base += "/./" + rng.choice(SEGMENTS)
        elif mutate < 0.65:
            base = base.replace("/", "//", 1)
        out.append((base or "/") + rng.choice(["", "", "?q=1", "?a=%20"]))
    return out


@pytest.mark.parametrize("seed", range(80))
def test_random_locations(seed: int) -> None:
    rng = random.Random(seed)
    locations = _location_block(rng, "", 0, iter(range(1000)), set())
    conf = (
        "events {}\nhttp {\nupstream backend { server 127.0.0.1:9001; }\n"
        f"server {{\nlisten 80;\n{locations}\n}}\n}}\n"
    )
    reqs = [OracleRequest(client="10.1.2.3", url="http://a.test" + u) for u in _uris(rng, conf, 60)]
    _check(conf, reqs, f"seed {seed}")


# -- server names -------------------------------------------------------------------------------

NAMES = [
    "a.test",
    "b.a.test",
    "*.a.test",
    ".c.test",
    "www.*",
    "www.a.*",
    "~^(\\w+)\\.r\\.test$",
    "~^(?<sub>www\\d+)\\.",
    "~Upper\\.test",
    '""',
    "_",
    "x.test",
    "*.b.a.test",
    "localhost",
]
HOSTS = [
    "a.test",
    "A.TEST",
    "a.test.",
    "a.test:8080",
    "b.a.test",
    "z.b.a.test",
    "q.a.test",
    "c.test",
    "d.c.test",
    "www.a.com",
    "www.b.org",
    "www.a.b.c",
    "foo.r.test",
    "www12.x",
    "upper.test",
    "_",
    "x.test",
    "nothing.test",
    "localhost",
    "x.test.:99",
    "[::1]",
    "a..test",
    "a.test/x",
    "",
]


@pytest.mark.parametrize("seed", range(50))
def test_random_server_names(seed: int) -> None:
    rng = random.Random(1000 + seed)
    servers = []
    default = rng.randrange(-1, 5)
    for i in range(rng.randint(2, 6)):
        names = " ".join(rng.sample(NAMES, rng.randint(0, 3)))
        listen = "listen 80 default_server;" if i == default else "listen 80;"
        sn = f"server_name {names};" if names else ""
        servers.append(f'server {{ {listen} {sn} return 200 "S{i}|$server_name|$host|$1"; }}')
    conf = "events {}\nhttp {\n" + "\n".join(servers) + "\n}\n"
    reqs = []
    for _ in range(60):
        host = rng.choice(HOSTS)
        headers = [("Host", host)] if host else []
        version = rng.choice(["1.1", "1.1", "1.0"])
        reqs.append(
            OracleRequest(
                client="10.1.2.3", url="http://ignored.test/p", headers=headers, http_version=version
            )
        )
    _check(conf, reqs, f"seed {seed}")


# -- returns and redirects ----------------------------------------------------------------------

RETURNS_CONF = """
events {}
http {
    server {
        listen 80;
        listen 8080;
        server_name first.test second.test;
        location /code { return 204; }
        location /text { return 200 "hello $uri $args"; }
        location /rel { return 301 /target?a=1; }
        location /url { return https://other.test/x; }
        location /err { return 404; }
        location /r302 { return 302; }
        location /weird { return 999 "weird"; }
        location /noabs { absolute_redirect off; return 302 /t; }
        location /sname { server_name_in_redirect on; return 302 /t; }
        location /noport { port_in_redirect off; return 302 /t; }
        location /var { return 307 $scheme://$host$request_uri; }
        location /dir/ { proxy_pass http://127.0.0.1:9001; }
        location /sp\\ ace/ { proxy_pass http://127.0.0.1:9001; }
    }
}
"""


def test_returns_and_redirects() -> None:
    rng = random.Random(7)
    paths = [
        "/code",
        "/text?x=1",
        "/rel",
        "/url",
        "/err",
        "/r302",
        "/weird",
        "/noabs",
        "/sname",
        "/noport",
        "/var?z",
        "/dir",
        "/dir?x=1&y",
        "/sp%20ace",
        "/nothing",
    ]
    hosts = ["first.test", "Second.Test:8080", "other.test", ""]
    reqs = []
    for path in paths:
        for port in ("", ":8080"):
            host = rng.choice(hosts)
            reqs.append(
                OracleRequest(
                    client="10.0.0.1",
                    url=f"http://first.test{port}{path}",
                    headers=[("Host", host)] if host else [],
                    http_version="1.0" if not host else "1.1",
                )
            )
    _check(RETURNS_CONF, reqs, "returns")


# -- proxy_pass URIs ----------------------------------------------------------------------------

PROXY_CONF = """
events {}
http {
    upstream up { server 127.0.0.1:9001; }
    server {
        listen 80;
        location /p1/ { proxy_pass http://up; }
        location /p2/ { proxy_pass http://up/; }
        location /p3/ { proxy_pass http://up/x; }
        location /p4 { proxy_pass http://up/y/; }
        location = /p5 { proxy_pass http://up/z; }
        location ~ ^/p6/(.*)$ { proxy_pass http://up/r/$1; }
        location ~ ^/p7/ { proxy_pass http://up; }
        location /p8/ { rewrite ^/p8/(.*)$ /new/$1 break; proxy_pass http://up/ignored/; }
        location /p9/ { rewrite ^/p9/(.*)$ /p1/$1 last; }
        location /p12/ { proxy_pass http://up/q?a=b; }
        location /p13/ { set $args new=1; proxy_pass http://up; }
        location /p14/ { proxy_pass http://127.0.0.1:9002/base/; proxy_set_header Host $host; }
        location /p15/ { proxy_pass http://up; proxy_set_header X-Fwd $proxy_add_x_forwarded_for;
                         proxy_set_header User-Agent ""; }
    }
}
"""

PIECES = ["a", "b", "..", ".", "", "%20", "%2F", "%41", "%3F", "%25", "+", "x.php", "%C3%A9", "~", "%7E"]


def test_proxy_pass_uris_and_headers() -> None:
    rng = random.Random(11)
    reqs = []
    for _ in range(300):
        prefix = rng.choice(
            [
                "/p1/",
                "/p2/",
                "/p3/",
                "/p4",
                "/p4/",
                "/p5",
                "/p6/",
                "/p7/",
                "/p8/",
                "/p9/",
                "/p12/",
                "/p13/",
                "/p14/",
                "/p15/",
            ]
        )
        rest = "/".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3)))
        query = rng.choice(["", "?x=1", "?a=%20&b", "?"])
        headers = [("User-Agent", "t"), ("X-Forwarded-For", "1.1.1.1")] if rng.random() < 0.3 else []
        reqs.append(
            OracleRequest(client="10.9.8.7", url=f"http://px.test{prefix}{rest}{query}", headers=headers)
        )
    _check(PROXY_CONF, reqs, "proxy_pass")
    cfg = nginxsim.load(text=PROXY_CONF)
    with Nginx(text=PROXY_CONF) as ng:
        responses = ng.request_many(reqs)
    compared = 0
    for req, resp in zip(reqs, responses, strict=True):
        d = cfg.route(req.client, req.url, headers=list(req.headers))
        if d.upstream is None or resp.upstream is None:
            continue
        sent = resp.upstream
        assert d.upstream.request_line == f"{sent.method} {sent.uri} HTTP/{sent.http_version}", req.url
        assert d.upstream.headers.items_list() == list(sent.headers), req.url
        compared += 1
    assert compared > 250


# -- URI normalisation and the request line -----------------------------------------------------

URI_ATOMS = ["a", "b", "/", "//", ".", "..", "/./", "/../", "%2e", "%2E%2e", "%2F", "%2f", "%20", "%25", "%3F", "%23",
             "%41", "%00", "%zz", "%2", "+", "#frag", "?", "?q=%20", "&", "%C3%A9", "~", "%7e"]


@pytest.mark.parametrize("merge", ["on", "off"])
def test_uri_normalisation(merge: str) -> None:
    rng = random.Random(21 if merge == "on" else 22)
    conf = ("events {}\nhttp {\nserver {\nlisten 80;\n" f"merge_slashes {merge};\n"
            'location / { return 200 "uri=[$uri] args=[$args] ru=[$request_uri] is=[$is_args]"; }\n}\n}\n')
    reqs = []
    for _ in range(400):
        target = "/" + "".join(rng.choice(URI_ATOMS) for _ in range(rng.randint(1, 6)))
        reqs.append(OracleRequest(client="10.2.3.4", url="http://u.test" + target))
    _check(conf, reqs, f"merge_slashes {merge}")


def test_absolute_form_and_missing_host() -> None:
    conf = ("events {}\nhttp {\n"
            'server { listen 80; return 200 "default $host|$http_host|$uri|$request_uri"; }\n'
            'server { listen 80; server_name abs.test; return 200 "abs $host|$http_host|$uri|$request_uri"; }\n'
            'server { listen 80; server_name ""; return 200 "empty $host"; }\n}\n')
    reqs = []
    for url in ["http://abs.test/p?q", "http://Abs.Test:80/h/p?q", "http://abs.test", "http://abs.test?x=1",
                "http://other.test/x", "ftp://abs.test/x"]:
        for headers in ([], [("Host", "other.test")], [("Host", "a..b")]):
            for version in ("1.1", "1.0"):
                reqs.append(OracleRequest(client="10.2.3.5", url=url.replace("ftp://", "http://"), headers=headers,
                                          http_version=version, absolute_form=True))
    for version in ("1.0", "1.1"):
        reqs.append(OracleRequest(client="10.2.3.5", url="http://x.test/none", http_version=version,
                                  headers=[("Host", "")]))
    _check(conf, reqs, "absolute form")


# -- error_page and add_header ------------------------------------------------------------------

ERROR_PAGES_CONF = """
events {}
http {
    add_header X-Http http always;
    server {
        listen 80;
        error_page 404 /e404;
        add_header X-Server srv;
        location /plain { return 404; }
        location /eq { error_page 404 = /ok; return 404; }
        location /eqcode { error_page 404 =410 /ok; return 404; }
        location /named { error_page 404 = @fallback; return 404; }
        location /redir { error_page 404 https://elsewhere.test/x; return 404; }
        location /redir301 { error_page 404 =301 /moved; return 404; }
        location /args { error_page 404 /show?from=ep; return 404; }
        location /text { error_page 404 /ok; return 404 "not intercepted"; }
        location /chain { error_page 404 /plain; return 404; }
        location /rec { recursive_error_pages on; error_page 404 /plain; return 404; }
        location /hdr { add_header X-Loc loc; add_header X-Always always always; return 404; }
        location /hdr200 { add_header X-Loc loc; return 200 "x"; }
        location = /e404 { add_header X-Page e404 always; return 200 "page $uri $args $request_method"; }
        location = /ok { return 200 "ok $uri"; }
        location /show { return 200 "show $args"; }
        location @fallback { return 200 "fallback $uri $request_method"; }
    }
}
"""


def test_error_pages_and_add_header() -> None:
    reqs = []
    for path in ["/plain", "/eq", "/eqcode", "/named", "/redir", "/redir301", "/args?a=1", "/text", "/chain", "/rec",
                 "/hdr", "/hdr200", "/missing"]:
        for method in ("GET", "POST"):
            reqs.append(OracleRequest(client="10.3.3.3", url=f"http://ep.test{path}", method=method))
    _check(ERROR_PAGES_CONF, reqs, "error_page")
    cfg = nginxsim.load(text=ERROR_PAGES_CONF)
    with Nginx(text=ERROR_PAGES_CONF) as ng:
        responses = ng.request_many(reqs)
    for req, resp in zip(reqs, responses, strict=True):
        d = cfg.route(req.client, req.url, method=req.method)
        for name in ("X-Http", "X-Server", "X-Loc", "X-Always", "X-Page"):
            assert d.headers.get(name) == resp.header(name), (req.url, req.method, name)
