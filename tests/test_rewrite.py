"""The rewrite module's documented behaviours (variables.md §1.5, §6, verified against 1.22.1).

Random differential checks against nginx live in tests/oracle/test_rewrite_oracle.py.
"""

from __future__ import annotations

import pytest

import nginxsim
from nginxsim.modules.rewrite import redirect_unescape


def cfg(server: str, http: str = "") -> nginxsim.Config:
    return nginxsim.load(text=f"events {{}}\nhttp {{\n{http}\nserver {{\nlisten 80;\n{server}\n}}\n}}\n")


ARGS = cfg("""
location /b/ {
    rewrite ^/b/keep$ /show last;
    rewrite ^/b/new$ /show?new=1 last;
    rewrite ^/b/drop$ /show? last;
    rewrite ^/b/newdrop$ /show?new=1? last;
    rewrite ^/b/chain$ /b/chain2?a=1;
    rewrite ^/b/chain2$ /show?b=2 last;
}
location /raw/ { rewrite ^/raw/(.*)$ /show/a%20b//c/../$1 last; }
location /show { return 200 "uri=$uri args=$args"; }
""")


@pytest.mark.parametrize(("target", "body"), [
    ("/b/keep?o=1", "uri=/show args=o=1"),
    ("/b/new?o=1", "uri=/show args=new=1&o=1"),
    ("/b/drop?o=1", "uri=/show args="),
    ("/b/newdrop?o=1", "uri=/show args=new=1"),
    ("/b/chain?o=1", "uri=/show args=b=2&a=1&o=1"),
    ("/raw/d", "uri=/show/a%20b//c/../d args="),  # a rewritten URI is not normalised
    ("/raw/a%20b", "uri=/show/a%20b//c/../a b args="),  # captures are copied decoded
])
def test_internal_rewrite_uri_and_args(target: str, body: str) -> None:
    d = ARGS.route("1.2.3.4", f"http://a.test{target}")
    assert (d.status, d.body) == (200, body), d.explain()


REDIRECTS = cfg("""
location /r1 { rewrite ^ http://example.com/path; }
location /r2 { rewrite ^ http://example.com/path?x=1; }
location /r3 { rewrite ^ https://foo.example/%7Euser%20x%3Fy%2Fz; }
location /r7/ { rewrite ^/r7/(.*)$ http://e.com/$1; }
location /r8 { rewrite ^ HTTP://example.com/x; return 200 "internal $uri"; }
location /r9 { rewrite ^ /rel permanent; }
""")


@pytest.mark.parametrize(("target", "status", "location"), [
    ("/r1?o=1", 302, "http://example.com/path?o=1"),
    ("/r2?o=1", 302, "http://example.com/path?x=1&o=1"),
    ("/r3", 302, "https://foo.example/~user%20x?y%2Fz"),
    ("/r7/a%20b+c", 302, "http://e.com/a%20b+c"),
    ("/r9?q", 301, "http://a.test/rel?q"),
])
def test_redirect_rewrites(target: str, status: int, location: str) -> None:
    d = REDIRECTS.route("1.2.3.4", f"http://a.test{target}")
    assert d.status == status, d.explain()
    assert d.headers["Location"] == location


def test_uppercase_scheme_is_an_internal_rewrite() -> None:
    d = REDIRECTS.route("1.2.3.4", "http://a.test/r8")
    assert (d.status, d.body) == (200, "internal HTTP://example.com/x")


CAPTURES = cfg("""
location ~ ^/esc/(.*)$ { set $x $1; return 200 "set=$x ret=$1"; }
location ~ ^/cap2/(.*)$ { if ($arg_a = no) { } return 200 "[$1]"; }
location ~ ^/cap3/(.*)$ { rewrite ^/nomatch$ /x; return 200 "[$1]"; }
location ~ ^/caps/(.)(.)(.)(.)(.)(.)(.)(.)(.)(.) { return 200 "$10"; }
location /ifset { if ($arg_x) { set $v inner; } set $w after; return 200 "$v $w"; }
""")


@pytest.mark.parametrize(("target", "body"), [
    ("/esc/a%20b", "set=a%20b ret=a b"),        # captures are ARGS-escaped in set values
    ("/esc/x+y", "set=x%2By ret=x+y"),
    ("/esc/ab?x=%20", "set=ab ret=ab"),         # only a % in the path counts
    ("/cap2/abc?a=yes", "[abc]"),
    ("/cap3/abc", "[]"),                        # a failed rewrite wipes $1
    ("/caps/abcdefghij", "a0"),                 # $10 is $1 followed by 0
    ("/ifset?x=1", "inner after"),              # directives after a true if still run
    ("/ifset", " after"),
])
def test_captures(target: str, body: str) -> None:
    d = CAPTURES.route("1.2.3.4", f"http://a.test{target}")
    assert (d.status, d.body) == (200, body), d.explain()


def test_ten_uri_changes_then_500() -> None:
    chain = "\n".join(f"location = /c{i} {{ rewrite ^ /c{i + 1} last; }}" for i in range(12))
    c = cfg(chain + '\nlocation /c { return 200 "end $uri"; }')
    assert c.route("1.2.3.4", "http://a.test/c2").body == "end /c12"     # 10 changes
    assert c.route("1.2.3.4", "http://a.test/c1").status == 500          # the 11th


@pytest.mark.parametrize(("value", "expected"), [
    (b"http://e.com/%7Euser%20x%3Fy%2Fz", b"http://e.com/~user%20x?y%2Fz"),
    (b"/a%zz", b"/azz"),         # '%' before a non-hex char is dropped
    (b"/a%4zq", b"/aq"),         # '%X' before a non-hex char drops the three
    (b"/a%4", b"/a"),            # dangling escape dropped
    (b"/a?%41", b"/a?%41"),      # nothing after a literal '?' is touched
])
def test_redirect_unescape(value: bytes, expected: bytes) -> None:
    assert redirect_unescape(value) == expected


@pytest.mark.parametrize(("directive", "message"), [
    ("return /foo;", 'invalid return code "/foo"'),
    ("return 1000;", 'invalid return code "1000"'),
    ("rewrite ^ /x bogus;", 'invalid parameter "bogus"'),
    ("if (abc) { }", 'invalid condition "abc"'),
    ("if ($a == b) { }", 'unexpected "==" in condition'),
    ("set $uri x;", 'the duplicate "uri" variable'),
    ("return 200 $nope;", 'unknown "nope" variable'),
])
def test_config_errors(directive: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        cfg(f"location / {{ {directive} }}")
    assert e.value.message == message


def test_undefined_capture_escape_after_rewrite_with_args_is_refused() -> None:
    c = cfg('location /l/ { rewrite ^/l/(.*)$ /x?a=$1; set $v $1; return 200 "[$v]"; }')
    assert c.route("1.2.3.4", "http://a.test/l/ab").body == "[ab]"   # nothing to escape: defined
    with pytest.raises(nginxsim.UndefinedBehavior) as e:
        c.route("1.2.3.4", "http://a.test/l/a%20b")
    assert e.value.line == 6
