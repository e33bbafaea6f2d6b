"""Routing answers taken from routing.md's tables, verified there against nginx 1.22.1.

The differential tests in tests/oracle/ check random configs against the real binary; these
pin down the documented cases so a regression names the rule it broke.
"""

from __future__ import annotations

import pytest

import nginxsim


def cfg(body: str, http: str = "") -> nginxsim.Config:
    return nginxsim.load(text=f"events {{}}\nhttp {{\n{http}\n{body}\n}}\n")


LOCATIONS = cfg("""
server {
    listen 80;
    location = /exact { return 200 "exact"; }
    location /exact { return 200 "prefix-exact"; }
    location / { return 200 "root"; }
    location ^~ /static/ { return 200 "static"; }
    location /static/img/ { return 200 "static-img"; }
    location /n/ {
        location ~ \\.php$ { return 200 "nested-php"; }
        location ^~ /n/deep/ { return 200 "n-deep"; }
        location = /n/exact { return 200 "n-exact"; }
    }
    location /m/ {
        location ~ \\.php$ { return 200 "m-php"; }
    }
    location ~ \\.php$ { return 200 "php"; }
    location ~* \\.JPG$ { return 200 "jpg"; }
    location ~ ^/n/ { return 200 "n-regex"; }
    location /proxy/ { proxy_pass http://127.0.0.1:9000; }
    location ~ ^/proxy { return 200 "proxy-regex"; }
    location /px/ { proxy_pass http://127.0.0.1:9000; }
    location /px { return 200 "px"; }
    location @named { return 200 "named"; }
}
""")


@pytest.mark.parametrize(("uri", "body"), [
    ("/exact", "exact"),
    ("/exactly", "prefix-exact"),
    ("/", "root"),
    ("/static/a.php", "static"),
    ("/static/img/x.php", "php"),          # ^~ counts only when it is the longest prefix
    ("/n/x.php", "nested-php"),            # a nested regex beats top-level regexes
    ("/n/deep/x.php", "php"),              # nested ^~ stops only /n/'s regexes
    ("/n/exact", "n-exact"),               # nested exact is final
    ("/n/other", "n-regex"),
    ("/m/x.php", "m-php"),
    ("/A.jpg", "jpg"),                     # ~* is caseless
    ("/proxy/", "proxy-regex"),
    ("/px", "px"),                         # a location named exactly $uri suppresses auto-redirect
    ("/@named", "root"),                   # named locations are unreachable by URI
])
def test_location_precedence(uri: str, body: str) -> None:
    d = LOCATIONS.route("1.2.3.4", f"http://a.test{uri}")
    assert (d.status, d.body) == (200, body), d.explain()


def test_auto_redirect_beats_regexes() -> None:
    d = LOCATIONS.route("1.2.3.4", "http://a.test/proxy?x=1")
    assert d.status == 301
    assert d.headers["Location"] == "http://a.test/proxy/?x=1"


NAMES = cfg("""
server { listen 80; return 200 "default"; }
server { listen 80; server_name exact.test; return 200 "exact"; }
server { listen 80; server_name *.wild.test; return 200 "head"; }
server { listen 80; server_name *.x.wild.test; return 200 "head-longer"; }
server { listen 80; server_name www.wild.*; return 200 "tail"; }
server { listen 80; server_name .dot.test; return 200 "dot"; }
server { listen 80; server_name ~^(?<sub>[a-z]+)\\.re\\.test$; return 200 "re $sub $1 $server_name"; }
server { listen 80; server_name ~Upper\\.test; return 200 "caseless"; }
server { listen 80; server_name _; return 200 "underscore"; }
""")


@pytest.mark.parametrize(("host", "body"), [
    ("exact.test", "exact"),
    ("EXACT.test.", "exact"),
    ("exact.test:8080", "exact"),
    ("a.wild.test", "head"),
    ("a.x.wild.test", "head-longer"),
    ("www.wild.com", "tail"),
    ("www.wild.co.uk", "tail"),
    ("dot.test", "dot"),
    ("a.dot.test", "dot"),
    ("abc.re.test", "re abc abc ~^(?<sub>[a-z]+)\\.re\\.test$"),
    ("upper.test", "caseless"),
    ("_", "underscore"),
    ("unknown.test", "default"),
])
def test_server_name_precedence(host: str, body: str) -> None:
    d = NAMES.route("1.2.3.4", "http://x/", headers=[("Host", host)])
    assert (d.status, d.body) == (200, body), d.explain()


@pytest.mark.parametrize(("headers", "version", "status"), [
    ([("Host", "a..b")], "1.1", 400),
    ([("Host", "a.test"), ("Host", "b.test")], "1.1", 400),
])
def test_bad_host_is_400(headers: list[tuple[str, str]], version: str, status: int) -> None:
    assert NAMES.route("1.2.3.4", "http://x/", headers=headers, http_version=version).status == status


PROXY = cfg("""
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
    location /p12/ { proxy_pass http://up/q?a=b; }
    location /p20/ { rewrite ^/p20/(.*)$ /n20/$1?added=1 break; proxy_pass http://up; }
    location /p21/ { rewrite ^/p21/(.*)$ /n21/$1? break; proxy_pass http://up; }
}
""")


@pytest.mark.parametrize(("target", "sent"), [
    ("/p1/a/../b%20c?x=1", "/p1/a/../b%20c?x=1"),
    ("/p2/a/../b%20c?x=1", "/b%20c?x=1"),
    ("/p2/%41", "/A"),
    ("/p2/a%2Fb", "/a/b"),
    ("/p2/a%3Fb?q", "/a%3Fb?q"),
    ("/p3/foo?x", "/xfoo?x"),
    ("/p4/foo", "/y//foo"),
    ("/p4", "/y/"),
    ("/p4x", "/y/x"),
    ("/p5?x=1", "/z?x=1"),
    ("/p6/a%20b?x=1", "/r/a b"),
    ("/p7/a//b?x", "/p7/a//b?x"),
    ("/p8/a%20b?x=1", "/new/a%20b?x=1"),
    ("/p12/foo?x", "/q?a=bfoo?x"),
    ("/p20/x?y=2", "/n20/x?added=1&y=2"),
    ("/p21/x?y=2", "/n21/x"),
])
def test_proxy_pass_uri(target: str, sent: str) -> None:
    d = PROXY.route("1.2.3.4", f"http://a.test{target}")
    assert d.upstream is not None, d.explain()
    assert (d.upstream.name, d.upstream.peer, d.upstream.uri) == ("up", "127.0.0.1:9001", sent)


def test_proxy_headers_default_block() -> None:
    d = PROXY.route("1.2.3.4", "http://a.test/p1/x", headers=[("User-Agent", "t"), ("Connection", "keep-alive")])
    assert d.upstream is not None
    assert d.upstream.request_line == "GET /p1/x HTTP/1.0"
    assert d.upstream.headers.items_list() == [("Host", "up"), ("Connection", "close"), ("User-Agent", "t")]


RETURNS = cfg("""
server {
    listen 80;
    server_name first.test;
    location /code { return 204; }
    location /text { return 200 "hello $uri"; }
    location /rel { return 301 /target?a=1; }
    location /url { return https://other.test/x; }
    location /err { return 404; }
    location /noabs { absolute_redirect off; return 302 /t; }
    location /sname { server_name_in_redirect on; return 302 /t; }
    location /noport { port_in_redirect off; return 302 /t; }
}
server { listen 8080; location / { return 302 /t; } }
""")


@pytest.mark.parametrize(("url", "status", "location", "body"), [
    ("http://a.test/code", 204, None, ""),
    ("http://a.test/text", 200, None, "hello /text"),
    ("http://a.test/rel", 301, "http://a.test/target?a=1", None),
    ("http://a.test/url", 302, "https://other.test/x", None),
    ("http://a.test/err", 404, None, None),
    ("http://a.test/noabs", 302, "/t", None),
    ("http://a.test/sname", 302, "http://first.test/t", None),
    ("http://Q.Test:8080/", 302, "http://q.test:8080/t", None),
])
def test_return_forms(url: str, status: int, location: str | None, body: str | None) -> None:
    d = RETURNS.route("1.2.3.4", url)
    assert d.status == status, d.explain()
    assert d.headers.get("Location") == location
    assert d.body == body


def test_nothing_serves_is_404() -> None:
    d = cfg("server { listen 80; location /x { } }").route("1.2.3.4", "http://a.test/y")
    assert d.status == 404
    assert d.upstream is None


def test_bad_request_input_is_an_error() -> None:
    with pytest.raises(nginxsim.RequestError):
        RETURNS.route("300.1.1.1", "http://a.test/")


def test_root_at_http_level_is_inherited() -> None:
    c = cfg("server { listen 80; location /x { } }", http="root /srv/site;")
    d = c.route("1.2.3.4", "http://a.test/x/y")
    assert d.status == 404
    assert "/srv/site/x/y" in d.explain()


def test_upstream_pick_agrees_with_route() -> None:
    import ipaddress

    c = cfg("""
        upstream iph { ip_hash; server 10.0.0.1:80; server 10.0.0.2:80 weight=2; server 10.0.0.3:80 down; }
        upstream hsh { hash $arg_k consistent; server 10.0.0.1:80; server 10.0.0.2:80 weight=2; }
        server { listen 80; location /i { proxy_pass http://iph; } location /h { proxy_pass http://hsh; } }
    """)
    for n in range(50):
        client = f"10.{n}.{n * 7 % 256}.9"
        d = c.route(client, "http://a.test/i")
        peer = c.upstream("IPH").pick(client=ipaddress.ip_address(client))
        assert d.upstream is not None and peer is not None and d.upstream.peer == peer.address
        d = c.route(client, f"http://a.test/h?k=key{n}")
        peer = c.upstream("hsh").pick(key=f"key{n}".encode())
        assert d.upstream is not None and peer is not None and d.upstream.peer == peer.address
    with pytest.raises(KeyError):
        c.upstream("nope")


def test_pass_request_body_off_is_noted() -> None:
    cfg = nginxsim.load(text="""events {} http { server { listen 80;
        location / { proxy_pass_request_body off; proxy_pass http://127.0.0.1:9/x; }
        location /u { uwsgi_pass_request_body off; uwsgi_pass 127.0.0.1:9; } } }""")
    posted = cfg.route("1.2.3.4", "http://a/p", method="POST", headers={"Content-Length": "3"})
    assert any(n.startswith("proxy_pass_request_body off") for n in posted.notes)
    assert posted.upstream is not None and posted.upstream.headers["Content-Length"] == "3"
    assert not cfg.route("1.2.3.4", "http://a/p").notes  # no body, nothing to say
    uwsgi = cfg.route("1.2.3.4", "http://a/u", method="POST", headers={"Content-Length": "3"})
    assert any(n.startswith("uwsgi_pass_request_body off") for n in uwsgi.notes)
