"""Unit tests of the headers filter (`expires`, `add_header`) and of the upstream answer
(`Upstream.reply`: proxy_redirect, hidden headers). The differential tests against nginx are in
tests/oracle/test_headers_oracle.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import nginxsim
from nginxsim.decision import Headers, Upstream
from nginxsim.modules.headers import http_time, parse_expires, parse_http_time, parse_time

NOW = 1700000000  # Tue, 14 Nov 2023 22:13:20 GMT
PIN = {"msec": f"{NOW}.250"}


@pytest.mark.parametrize(("text", "seconds"), [
    (b"0", 0), (b"90", 90), (b"1h", 3600), (b"1h30m", 5400), (b"1h 30m", 5400), (b"1y", 365 * 86400),
    (b"2M", 60 * 86400), (b"1w2d", 9 * 86400), (b"1d1", 86401), (b"10 20", 30), (b" 5", 5),
    (b"1m1s", 61), (b"9223372036854775807", 2**63 - 1),
])
def test_parse_time(text: bytes, seconds: int) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", [b"", b"h", b"1ms", b"1h1d", b"1h1h", b"1x", b"1.5h", b"9223372036854775808",
                                  b"292471208678y", b"-1"])
def test_parse_time_refuses(text: bytes) -> None:
    assert parse_time(text) is None


def test_parse_expires() -> None:
    assert parse_expires(b"epoch", "access") == ("epoch", 0)
    assert parse_expires(b"-1h", "access") == ("access", -3600)
    assert parse_expires(b"+1h", "modified") == ("modified", 3600)
    assert parse_expires(b"@1h", "access") == ("daily", 3600)
    assert parse_expires(b"@24h", "access") == ("daily", 86400)
    for text, kind, message in [(b"@1h", "modified", 'daily time cannot be used with "modified" parameter'),
                                (b"@24h1s", "access", "daily time value must be less than 24 hours"),
                                (b"max", "modified", "invalid value"), (b"", "access", "invalid value")]:
        with pytest.raises(ValueError, match=message):
            parse_expires(text, kind)


def test_http_time() -> None:
    assert http_time(NOW) == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert http_time(-5) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_time(2**62) == "Fri, 31 Dec 9999 23:59:59 GMT"


@pytest.mark.parametrize("text", [b"Sun, 06 Nov 1994 08:49:37 GMT", b"Sunday, 06-Nov-94 08:49:37 GMT",
                                  b"Sun Nov  6 08:49:37 1994"])
def test_parse_http_time(text: bytes) -> None:
    assert parse_http_time(text) == 784111777


@pytest.mark.parametrize("text", [b"garbage", b"Sun, 06 Nov 1994 24:00:00 GMT", b"Mon, 29 Feb 2100 00:00:00 GMT",
                                  b"Sun, 31 Apr 1994 08:49:37 GMT", b"Sun, 06 Xov 1994 08:49:37 GMT"])
def test_parse_http_time_refuses(text: bytes) -> None:
    assert parse_http_time(text) == -1


def load(body: str) -> nginxsim.Config:
    return nginxsim.load(text=f"events {{}}\nhttp {{\n{body}\n}}\n")


def headers(cfg: nginxsim.Config, path: str) -> list[tuple[str, str]]:
    return cfg.route("10.0.0.1", f"http://a.test{path}", pinned=PIN).headers.items_list()


EXPIRES = load("""
server {
    listen 80;
    expires 1h;
    location /a { return 200 x; }
    location /off { expires off; return 200 x; }
    location /epoch { expires epoch; add_header X-A a; add_header Cache-Control private; return 302 /to; }
    location /max { expires max; return 404; }
    location /neg { expires -30m; return 200 x; }
    location /zero { expires 0; return 200 x; }
    location /daily { expires @23h; return 200 x; }
    location /early { expires @1h; return 200 x; }
    location /var { expires $arg_e; return 200 x; }
    location /always { expires 1h; add_header X-A a; add_header X-B b always; return 500; }
    location /if { if ($arg_x) { return 200 x; } expires 5s; return 200 y; }
    location /close { add_header X-B b always; return 444; }
}
""")


def test_expires_values() -> None:
    assert headers(EXPIRES, "/a") == [("Expires", "Tue, 14 Nov 2023 23:13:20 GMT"), ("Cache-Control", "max-age=3600")]
    assert headers(EXPIRES, "/off") == []
    assert headers(EXPIRES, "/epoch") == [
        ("Location", "http://a.test/to"), ("Expires", "Thu, 01 Jan 1970 00:00:01 GMT"), ("Cache-Control", "no-cache"),
        ("X-A", "a"), ("Cache-Control", "private")]
    assert headers(EXPIRES, "/max") == []  # 404 is not a status expires applies to
    assert headers(EXPIRES, "/neg") == [("Expires", "Tue, 14 Nov 2023 21:43:20 GMT"), ("Cache-Control", "no-cache")]
    assert headers(EXPIRES, "/zero") == [("Expires", "Tue, 14 Nov 2023 22:13:20 GMT"), ("Cache-Control", "max-age=0")]
    assert headers(EXPIRES, "/daily") == [("Expires", "Tue, 14 Nov 2023 23:00:00 GMT"),
                                          ("Cache-Control", "max-age=2800")]
    assert headers(EXPIRES, "/early") == [("Expires", "Wed, 15 Nov 2023 01:00:00 GMT"),
                                          ("Cache-Control", "max-age=10000")]
    assert headers(EXPIRES, "/always") == [("X-B", "b")]
    assert headers(EXPIRES, "/if?x=1") == [("Expires", "Tue, 14 Nov 2023 22:13:25 GMT"), ("Cache-Control", "max-age=5")]
    assert headers(EXPIRES, "/close") == []


def test_expires_with_variables() -> None:
    assert headers(EXPIRES, "/var?e=max") == [("Expires", "Thu, 31 Dec 2037 23:55:55 GMT"),
                                              ("Cache-Control", "max-age=315360000")]
    assert headers(EXPIRES, "/var?e=2m") == [("Expires", "Tue, 14 Nov 2023 22:15:20 GMT"),
                                             ("Cache-Control", "max-age=120")]
    for value in ("off", "junk", "", "@25h"):  # nothing set: not even the server's `expires 1h`
        assert headers(EXPIRES, f"/var?e={value}") == []


def test_expires_follows_the_clock() -> None:
    d = EXPIRES.route("10.0.0.1", "http://a.test/a")  # unpinned: the fixed default clock
    assert d.headers["Expires"] == "Thu, 01 Jan 2026 01:00:00 GMT"


def test_expires_modified(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("x")
    os.utime(page, (NOW - 600, NOW - 600))
    cfg = load(f"""server {{ listen 80; root {tmp_path};
        location /page.html {{ expires modified 1h; }}
        location /neg {{ alias {page}; expires modified -1h; }}
        location /zero {{ alias {page}; expires modified 0; }}
        location /ret {{ expires modified 1h; return 200 x; }} }}""")
    assert headers(cfg, "/page.html") == [("Expires", "Tue, 14 Nov 2023 23:03:20 GMT"),
                                          ("Cache-Control", "max-age=3000")]
    assert headers(cfg, "/neg") == [("Expires", "Tue, 14 Nov 2023 21:03:20 GMT"), ("Cache-Control", "no-cache")]
    assert headers(cfg, "/zero") == [("Expires", "Tue, 14 Nov 2023 22:13:20 GMT"), ("Cache-Control", "max-age=0")]
    # no file, no Last-Modified: counted from now
    assert headers(cfg, "/ret") == [("Expires", "Tue, 14 Nov 2023 23:13:20 GMT"), ("Cache-Control", "max-age=3600")]


@pytest.mark.parametrize(("directive", "message"), [
    ("expires 1h; expires 1h;", '"expires" directive is duplicate'),
    ("expires 1h; expires junk;", '"expires" directive is duplicate'),
    ("expires junk;", '"expires" directive invalid value'),
    ("expires often 1h;", '"expires" directive invalid value'),
    ("expires modified @1h;", '"expires" directive daily time cannot be used with "modified" parameter'),
    ("expires @30h;", '"expires" directive daily time value must be less than 24 hours'),
    ("proxy_redirect off; proxy_redirect / /;", '"proxy_redirect" directive is duplicate'),
    ("proxy_redirect / /; proxy_redirect off;", '"proxy_redirect" directive is duplicate'),
    ("proxy_redirect on;", 'invalid parameter "on"'),
    ("proxy_redirect default;", '"proxy_redirect default" should be placed after the "proxy_pass" directive'),
    ("location / { proxy_pass http://b$uri; proxy_redirect default; }",
     '"proxy_redirect default" cannot be used with "proxy_pass" directive with variables'),
])
def test_config_errors(directive: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(f"server {{ listen 80;\n{directive}\n}}")
    assert (e.value.message, e.value.line) == (message, 4)


PROXY = load("""
upstream b { server 10.0.0.9; }
server {
    listen 80;
    add_header X-S s;
    location /app/ {
        proxy_pass http://b/x/;
        location /app/in/ { proxy_pass http://b/y/; }
        location /app/own/ { proxy_pass http://b/z/; proxy_redirect default; }
    }
    location /root { proxy_pass http://b; }
    location /off/ { proxy_pass http://b/; proxy_redirect off; }
    location ~ ^/re/(?<tail>.*)$ {
        proxy_pass http://b;
        proxy_redirect ~^http://b/(\\w+)/(?<rest>.*)$ https://$host/$1/$rest;
        proxy_redirect ~*^HTTP://OTHER/ /;
        add_header X-Tail $tail;
    }
    location ~ ^/nogroup/(\\w+) { proxy_pass http://b; proxy_redirect ~^http://b/ /[$1]/; add_header X-One $1; }
    location /vars/ { proxy_pass http://b/; proxy_redirect http://$proxy_host/ http://$host:8080/; }
    location /hide/ {
        proxy_pass http://b/;
        proxy_hide_header X-Secret;
        proxy_pass_header Server;
        expires 1h;
        add_header ETag new;
        add_header Last-Modified "";
        add_header X-Always a always;
    }
    location /ucgi/ { uwsgi_pass 10.0.0.8:3031; }
    location /fcgi/ { fastcgi_pass 10.0.0.8:9000; }
}
server {
    listen 81;
    proxy_redirect http://b/ /srv/;
    location /a/ { proxy_pass http://b/x/; }
    location /b/ { proxy_redirect off; location /b/c/ { proxy_pass http://b/; } }
}
""")


def upstream(path: str, port: int = 80) -> Upstream:
    up = PROXY.route("10.0.0.1", f"http://a.test:{port}{path}" if port != 80 else f"http://a.test{path}",
                     pinned=PIN).upstream
    assert up is not None
    return up


def location(path: str, value: str, port: int = 80) -> str | None:
    return upstream(path, port).reply(302, [("Location", value)]).headers.get("Location")


def test_default_redirect() -> None:
    assert location("/app/p", "http://b/x/q") == "http://a.test/app/q"  # with a URI part: to the location
    assert location("/app/p", "http://b/q") == "http://b/q"
    assert location("/root", "http://b/q") == "http://a.test/q"  # without: "/" to "/"
    assert location("/app/in/p", "http://b/x/q") == "http://a.test/app/q"  # the parent's default is inherited
    assert location("/app/in/p", "http://b/y/q") == "http://b/y/q"
    assert location("/app/own/p", "http://b/z/q") == "http://a.test/app/own/q"
    assert location("/app/p", "/x/rel") == "/x/rel"  # not rewritten: relative stays relative


def test_redirect_off_and_server_rules() -> None:
    assert location("/off/p", "http://b/q") == "http://b/q"
    assert location("/a/p", "http://b/x/q", 81) == "http://a.test:81/srv/x/q"  # server rules: no default here
    assert location("/b/c/p", "http://b/q", 81) == "http://b/q"  # off above: nothing, not even a default


def test_regex_redirect_and_refresh() -> None:
    up = upstream("/re/t1")
    got = up.reply(301, [("Location", "http://b/one/two/three"), ("Refresh", "5; URL=HTTP://Other/p"),
                         ("refresh", "7")])
    assert got == up.reply(301, {"Location": "http://b/one/two/three", "Refresh": "5; URL=HTTP://Other/p",
                                 "refresh": "7"})
    # a regex rewrites all that follows "url=": "/" replaces the whole "HTTP://Other/p"
    assert got.headers.items_list() == [("Location", "https://a.test/one/two/three"), ("Refresh", "5; URL=/"),
                                        ("refresh", "7"), ("X-Tail", "t1")]
    assert location("/vars/p", "http://b/q") == "http://a.test:8080/q"
    # a regex without groups leaves `$1` empty, for the replacement and for add_header after it
    assert upstream("/nogroup/abc").reply(302, [("Location", "http://b/q")]).headers.items_list() == [
        ("Location", "http://a.test/[]/")]
    assert upstream("/nogroup/abc").reply(302, [("Location", "http://c/q")]).headers.items_list() == [
        ("Location", "http://c/q"), ("X-One", "abc")]
    twice = Headers([("Location", "http://b/a/x"), ("Location", "http://b/b/y")])
    assert up.reply(302, twice).headers.get_all("Location") == ["https://a.test/a/x", "https://a.test/b/y"]


def test_reply_leaves_the_decision_alone() -> None:
    d = PROXY.route("10.0.0.1", "http://a.test/re/t1", pinned=PIN)
    assert d.upstream is not None
    d.upstream.reply(301, [("Location", "http://b/one/two/three")])
    assert "rest" not in d.variables
    assert d.headers.items_list() == [("X-Tail", "t1")]


def test_hidden_headers_expires_and_add_header() -> None:
    up = upstream("/hide/p")
    answer = [("Server", "up"), ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"), ("X-Secret", "s"), ("X-Accel-Expires", "5"),
              ("Content-Type", "text/html"), ("Content-Length", "10"), ("Connection", "close"), ("ETag", '"e"'),
              ("Cache-Control", "public"), ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"), ("X-Pad", "p"),
              ("Cache-Control", "no-store"), ("Expires", "0"), ("X-Up", "u")]
    assert up.reply(200, answer).headers.items_list() == [
        ("Content-Type", "text/html"), ("Server", "up"), ("ETag", "new"), ("Cache-Control", "max-age=3600"),
        ("Expires", "Tue, 14 Nov 2023 23:13:20 GMT"), ("X-Up", "u"), ("X-Always", "a")]
    assert up.reply(404, answer).headers.items_list() == [
        ("Content-Type", "text/html"), ("Server", "up"), ("ETag", '"e"'), ("Cache-Control", "public"),
        ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"), ("Cache-Control", "no-store"), ("Expires", "0"),
        ("X-Up", "u"), ("X-Always", "a")]


def test_cgi_protocols() -> None:
    answer = [("Status", "302 Found"), ("Location", "/x"), ("X-Pad", "p"), ("Date", "d")]
    # uwsgi hides only X-Accel-*; neither rewrites nor absolutizes Location
    assert upstream("/ucgi/p").reply(302, answer).headers == Headers([*answer, ("X-S", "s")])
    assert upstream("/fcgi/p").reply(302, answer).headers.items_list() == [*answer[1:], ("X-S", "s")]


def test_reply_needs_a_model() -> None:
    with pytest.raises(ValueError):
        Upstream("http", "b", "10.0.0.9:80", "/", "GET", "1.0", lambda: (Headers(), None)).reply(200)
