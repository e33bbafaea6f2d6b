"""Access control without nginx: allow/deny lists, satisfy, auth_basic, limit_except, phase order.

Every behaviour here is also compared with real nginx in tests/oracle/test_access_oracle.py;
these pin the details (rule choice, traces, hash formats, the user-file scan) in isolation.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os

import pytest

import nginxsim
from nginxsim.modules.access import AccessRules, Rule
from nginxsim.modules.auth_basic import _libc_crypt, find_password, ngx_crypt
from requires import require

PW = "/etc/nginxsim-test/htpasswd"


def load(body: str, fs: dict[str, str | bytes | None] | None = None) -> nginxsim.Config:
    conf = f"events {{}}\nhttp {{\nroot /srv;\nserver {{\nlisten 80;\nlisten [::]:80;\n{body}\n}}\n}}\n"
    return nginxsim.load(text=conf, fs=fs if fs is not None else {"/srv/": None})


def basic(creds: bytes) -> list[tuple[str, str]]:
    return [("Authorization", "Basic " + base64.b64encode(creds).decode())]


def status(cfg: nginxsim.Config, client: str, path: str, method: str = "GET",
           headers: list[tuple[str, str]] | None = None) -> int | None:
    return cfg.route(client, "http://a.test" + path, method=method, headers=headers or []).status


# -- the rule lists -----------------------------------------------------------------------------


def rule(deny: bool, family: int, net: str = "0.0.0.0/0") -> Rule:
    n = ipaddress.ip_network(net)
    return Rule(deny, family, int(n.network_address), int(n.netmask), net, "f", 1)


def test_check_is_a_pure_function_of_the_client() -> None:
    rules = AccessRules([rule(False, 4, "10.0.0.0/8"), rule(True, 6, "2001:db8::/32"), rule(True, -1)])
    ip = ipaddress.ip_address
    assert rules.check(ip("10.1.2.3")) == rules.v4[0]
    assert rules.check(ip("11.0.0.1")) == rules.v4[1]  # `all`
    assert rules.check(ip("2001:db8::1")) == rules.v6[0]
    assert rules.check(ip("::ffff:10.0.0.1")) == rules.v4[0]  # mapped: the IPv4 list
    assert rules.check(None) == rules.unix[0]


def test_no_list_for_the_family_declines() -> None:
    only_v6 = AccessRules([rule(True, 6, "::/0")])
    assert only_v6.check(ipaddress.ip_address("10.0.0.1")) is None
    assert only_v6.check(None) is None
    # a mapped client meets the IPv6 list when there is no IPv4 one
    assert only_v6.check(ipaddress.ip_address("::ffff:10.0.0.1")) is not None
    only_v4 = AccessRules([rule(True, 4, "192.168.0.0/16")])
    assert only_v4.check(ipaddress.ip_address("::ffff:10.0.0.1")) is None  # no IPv4 match, IPv6 never tried
    assert only_v4.check(ipaddress.ip_address("2001:db8::1")) is None


def test_first_match_wins_and_no_match_allows() -> None:
    cfg = load("location /a { deny 10.1.0.0/16; allow 10.0.0.0/8; deny all; }\n"
               "location /b { allow 10.0.0.5; }")
    assert status(cfg, "10.1.2.3", "/a") == 403
    assert status(cfg, "10.2.0.1", "/a") == 404
    assert status(cfg, "11.0.0.1", "/a") == 403
    assert status(cfg, "11.0.0.1", "/b") == 404  # only allow rules: nobody is refused
    assert status(cfg, "::ffff:10.1.0.1", "/a") == 403
    assert status(cfg, "2001:db8::1", "/a") == 403  # `all` is in the IPv6 list too


def test_inheritance_is_all_or_nothing() -> None:
    cfg = load("deny all;\nlocation /a { }\nlocation /b { allow 10.0.0.1; }\n"
               "location /c { deny 10.0.0.2; location /c/d { } }")
    assert status(cfg, "10.0.0.9", "/a") == 403
    assert status(cfg, "10.0.0.9", "/b") == 404  # its own list replaced the server's deny all
    assert status(cfg, "10.0.0.9", "/c/d/x") == 404
    assert status(cfg, "10.0.0.2", "/c/d/x") == 403


def test_trace_names_the_deciding_rule() -> None:
    cfg = load("location /a {\nallow 10.0.0.0/8;\ndeny all;\n}")
    d = cfg.route("192.0.2.1", "http://a.test/a")
    step = next(s for s in d.trace if s.phase == "access")
    assert (step.result, step.line) == ("deny all: 403", 9)


@pytest.mark.parametrize(("rule_text", "message"), [
    ("allow 10.0.0.0/33;", 'invalid parameter "10.0.0.0/33"'),
    ("deny ALL;", 'invalid parameter "ALL"'),
    ("allow unix:/x;", 'invalid parameter "unix:/x"'),
    ("allow 255.255.255.255;", 'invalid parameter "255.255.255.255"'),
    ("satisfy some;", 'invalid value "some"'),
    ("satisfy any; satisfy all;", '"satisfy" directive is duplicate'),
    ("auth_basic a; auth_basic b;", '"auth_basic" directive is duplicate'),
])
def test_config_errors(rule_text: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(f"location / {{ {rule_text} }}")
    assert e.value.message == message


def test_host_bits_warn() -> None:
    cfg = load("location / {\nallow 10.1.2.3/8;\ndeny 2001:db8::1/32;\nallow 10.0.0.0/8;\n}")
    assert [w.rsplit(" in ", 1)[0] for w in cfg.warnings] == [
        "low address bits of 10.1.2.3/8 are meaningless", "low address bits of 2001:db8::1/32 are meaningless"]
    assert status(cfg, "10.200.0.1", "/x") == 404


# -- phase order and limit_except ---------------------------------------------------------------


def test_return_and_rewrite_run_before_access() -> None:
    cfg = load("location /r { deny all; return 200 ok; }\nlocation /w { deny all; rewrite ^ /open/x; }\n"
               "location /open { }\nlocation /closed { deny all; }\nlocation /l { rewrite ^ /closed/x last; }")
    assert status(cfg, "1.2.3.4", "/r") == 200
    assert status(cfg, "1.2.3.4", "/w") == 404  # rewrite without flag: access of the new location
    assert status(cfg, "1.2.3.4", "/l") == 403


def test_limit_except_block_skips_the_location_return() -> None:
    cfg = load("location /le { limit_except GET { deny all; } return 200 le; }")
    assert [status(cfg, "1.2.3.4", "/le", m) for m in ("GET", "HEAD", "POST", "PUT", "FOO")] == [
        200, 200, 403, 403, 403]


# -- satisfy and auth_basic ---------------------------------------------------------------------

FILE = (b"# comment\n\nalice:{PLAIN}secret\r\nbob:{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest())
        + b"\ncarol:$apr1$abc$.kub6C9IpUJdLZraWLyC4.\n")


def auth_cfg(body: str) -> nginxsim.Config:
    return load(body, fs={"/srv/": None, PW: FILE, "/etc/nginxsim-test/dir/": None})


def test_challenge_and_credentials() -> None:
    cfg = auth_cfg(f'location / {{ auth_basic "Zone $host"; auth_basic_user_file {PW}; }}')
    d = cfg.route("1.2.3.4", "http://a.test/x")
    assert (d.status, d.headers.get_all("WWW-Authenticate")) == (401, ['Basic realm="Zone a.test"'])
    assert status(cfg, "1.2.3.4", "/x", headers=basic(b"alice:secret")) == 404
    assert status(cfg, "1.2.3.4", "/x", headers=basic(b"bob:pw")) == 404
    assert status(cfg, "1.2.3.4", "/x", headers=basic("carol:pässwörd".encode())) == 404
    assert status(cfg, "1.2.3.4", "/x", headers=basic(b"alice:wrong")) == 401
    assert status(cfg, "1.2.3.4", "/x", headers=basic(b"nobody:x")) == 401
    assert status(cfg, "1.2.3.4", "/x", headers=[("Authorization", "basic   YWxpY2U6c2VjcmV0")]) == 404
    assert status(cfg, "1.2.3.4", "/x", headers=[("Authorization", "Bearer x")]) == 401
    assert status(cfg, "1.2.3.4", "/x", headers=basic(b"alice:secret") * 2) == 400  # a second Authorization


def test_user_file_failures() -> None:
    cfg = auth_cfg("location /m { auth_basic a; auth_basic_user_file /nope; }\n"
                   "location /d { auth_basic a; auth_basic_user_file /etc/nginxsim-test/dir; }\n"
                   "location /o { auth_basic off; auth_basic_user_file /nope; }\n"
                   "location /v { auth_basic $arg_r; auth_basic_user_file /nope; }")
    assert status(cfg, "1.2.3.4", "/m") == 401  # no credentials: the file is never opened
    assert status(cfg, "1.2.3.4", "/m", headers=basic(b"a:b")) == 403
    assert status(cfg, "1.2.3.4", "/d", headers=basic(b"a:b")) == 500
    assert status(cfg, "1.2.3.4", "/o") == 404
    assert status(cfg, "1.2.3.4", "/v?r=off") == 404
    assert status(cfg, "1.2.3.4", "/v?r=on") == 401


def test_satisfy_all_and_any() -> None:
    cfg = auth_cfg(f"auth_basic Z; auth_basic_user_file {PW};\n"
                   "location /all { allow 10.0.0.0/8; deny all; }\n"
                   "location /any { satisfy any; allow 10.0.0.0/8; deny all; }\n"
                   "location /anymissing { satisfy any; deny all; auth_basic_user_file /nope; }")
    good = basic(b"alice:secret")
    assert status(cfg, "10.0.0.1", "/all") == 401
    assert status(cfg, "10.0.0.1", "/all", headers=good) == 404
    assert status(cfg, "11.0.0.1", "/all", headers=good) == 403
    assert status(cfg, "10.0.0.1", "/any") == 404
    assert status(cfg, "11.0.0.1", "/any") == 401  # denied, no credentials: 401 wins over 403
    assert status(cfg, "11.0.0.1", "/any", headers=good) == 404
    assert status(cfg, "11.0.0.1", "/anymissing", headers=good) == 403


def test_satisfy_any_cancels_a_challenge_of_an_earlier_pass() -> None:
    cfg = auth_cfg(f"location /a {{ auth_basic one; auth_basic_user_file {PW}; error_page 401 /b/x; }}\n"
                   f"location /b {{ satisfy any; allow 10.0.0.0/8; auth_basic two; auth_basic_user_file {PW}; }}")
    d = cfg.route("10.0.0.1", "http://a.test/a")  # /b allows, and answers 404 itself
    assert (d.status, d.headers.get_all("WWW-Authenticate")) == (404, [])
    d = cfg.route("11.0.0.1", "http://a.test/a")
    assert (d.status, d.headers.get_all("WWW-Authenticate")) == (401, ['Basic realm="one"', 'Basic realm="two"'])


def test_real_user_file(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "users")
    with open(path, "wb") as f:
        f.write(b"u:{PLAIN}p\n")
    cfg = nginxsim.load(text=f"events {{}}\nhttp {{ server {{ listen 80; location / {{ auth_basic a; "
                             f"auth_basic_user_file {path}; return 200; }} }} }}\n")
    # return runs before access: the file matters only without it
    assert cfg.route("1.2.3.4", "http://a.test/").status == 200
    cfg = nginxsim.load(text=f"events {{}}\nhttp {{ server {{ listen 80; root {tmp_path}; location / {{ "
                             f"auth_basic a; auth_basic_user_file {path}; }} }} }}\n")
    assert cfg.route("1.2.3.4", "http://a.test/users", headers=basic(b"u:p")).status == 200
    assert cfg.route("1.2.3.4", "http://a.test/users", headers=basic(b"u:x")).status == 401


# -- the user-file scan and the hash formats ----------------------------------------------------


def test_find_password_scan() -> None:
    data = b"#u:{PLAIN}c\n\r\nu\nu:{PLAIN}skipped\nv:{PLAIN}a:b\r\nw:x"
    assert find_password(data, b"u") is None  # "u\n" breaks the match at LF, which skips the next line
    assert find_password(data, b"v") == b"{PLAIN}a"
    assert find_password(data, b"w") == b"x"
    assert find_password(b"long:" + b"x" * 3000, b"long") == b"x" * 2048
    assert find_password(b"partial", b"partial") is None


def test_hash_formats() -> None:
    assert ngx_crypt(b"pw", b"{PLAIN}x") == b"{PLAIN}pw"
    assert ngx_crypt(b"pw\0tail", b"{PLAIN}x") == b"{PLAIN}pw"
    assert ngx_crypt(b"pw", b"{SHA}") == b"{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest())
    stored = b"{SSHA}" + base64.b64encode(hashlib.sha1(b"pw" + b"salt").digest() + b"salt")
    assert ngx_crypt(b"pw", stored) == stored
    assert ngx_crypt(b"pw", b"{SSHA}!!") == b"{SSHA}" + base64.b64encode(hashlib.sha1(b"pw").digest())
    # `openssl passwd -apr1 -salt abc pässwörd`, and a salt cut at 8 bytes
    assert ngx_crypt("pässwörd".encode(), b"$apr1$abc$") == b"$apr1$abc$.kub6C9IpUJdLZraWLyC4."
    assert ngx_crypt("pässwörd".encode(), b"$apr1$123456789") == b"$apr1$12345678$0NJU6izOW5MGH4BL2C/sK/"


def test_system_crypt() -> None:
    require(_libc_crypt() is not None, "no libcrypt on this machine")
    assert ngx_crypt(b"pw", b"$1$xy$") == b"$1$xy$sCW6WZJsSz7hVuvH0BCaf."  # openssl passwd -1 -salt xy pw
    assert ngx_crypt(b"pw", b"!") != b"!"


# -- decisions shared between clients -----------------------------------------------------------


def test_shared_decisions_follow_the_client_and_the_user_file(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "users")
    with open(path, "wb") as f:
        f.write(b"u:{PLAIN}p\n")
    cfg = nginxsim.load(text=f"events {{}}\nhttp {{ server {{ listen 80; root {tmp_path}/www;\n"
                             f"location /a {{ allow 10.0.0.0/8; deny all; }}\n"
                             f"location /b {{ auth_basic b; auth_basic_user_file {path}; }} }} }}\n")
    for i in range(6):  # the same request from alternating clients: access reads the client
        assert status(cfg, f"10.0.0.{i}", "/a") == 404
        assert status(cfg, f"11.0.0.{i}", "/a") == 403
    good = basic(b"u:p")
    assert [status(cfg, f"1.1.1.{i}", "/b/x", headers=good) for i in range(3)] == [404, 404, 404]
    with open(path, "wb") as f:
        f.write(b"u:{PLAIN}other\n")
    assert status(cfg, "1.1.1.9", "/b/x", headers=good) == 401  # the file is read again
    os.remove(path)
    assert status(cfg, "1.1.1.10", "/b/x", headers=good) == 403
