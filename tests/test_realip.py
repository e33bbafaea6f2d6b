"""The realip module and nginx's address text handling (variables.md §5, §7.4, verified against
1.22.1). Differential checks against a real nginx live in tests/oracle/test_realip_oracle.py."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nginxsim
from nginxsim.conf.directive import Directive
from nginxsim.http.variables import inet6_ntop, text_addr
from nginxsim.modules.realip import (
    DECLINED,
    DONE,
    OK,
    cidr_match,
    forwarded_addr,
    inet6_addr,
    inet_addr,
    parse_addr_port,
    ptocidr,
)

D = Directive("set_real_ip_from", (), "/t/nginx.conf", 1)


@pytest.mark.parametrize(("text", "value"), [
    ("1.2.3.4", "1.2.3.4"),
    ("010.001.002.003", "10.1.2.3"),
    ("1..2.3", "1.0.2.3"),
    ("1.2.3.", "1.2.3.0"),
    (".1.2.3", "0.1.2.3"),
    ("255.255.255.254", "255.255.255.254"),
    ("255.255.255.255", None),  # nginx's INADDR_NONE
    ("1.2.3.256", None),
    ("1.2.3", None),
    ("1.2.3.4.5", None),
    ("1.2.3.4 ", None),
    ("", None),
    ("0x1.2.3.4", None),
])
def test_inet_addr(text: str, value: str | None) -> None:
    got = inet_addr(text.encode())
    assert (None if got is None else str(ipaddress.IPv4Address(got))) == value


@pytest.mark.parametrize(("text", "value"), [
    ("::1", "::1"),
    ("::", "::"),
    ("1::", "1::"),
    ("2001:DB8::1", "2001:db8::1"),
    ("::ffff:1.2.3.4", "::ffff:102:304"),
    ("::1.2.3.4", "::102:304"),
    ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
    (":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),  # one leading ':' is skipped
    ("1:2:3:4:5:6:7::", None),
    ("1:2:3:4:5:6:7:8:9", None),
    ("1:2:3:4:5:6:7:8:", None),
    ("1:2:3:4:5:6:7", None),
    ("1::2::3", None),
    (":::", None),
    ("12345::", None),
    ("fe80::1%eth0", None),
    ("1:2:3:4:5:6:7:1.2.3.4", None),  # no room for the IPv4 tail
    ("::1.2.3", None),
    ("1.2.3.4", None),
    ("[::1]", None),
    ("", None),
    ("g::", None),
])
def test_inet6_addr(text: str, value: str | None) -> None:
    got = inet6_addr(text.encode())
    assert (None if got is None else str(ipaddress.IPv6Address(got))) == value


@given(st.integers(0, (1 << 128) - 1), st.booleans())
def test_inet6_addr_reads_what_inet_ntop_writes(n: int, exploded: bool) -> None:
    a = ipaddress.IPv6Address(n)
    for text in (a.exploded if exploded else socket.inet_ntop(socket.AF_INET6, a.packed), inet6_ntop(n)):
        # a dotted tail goes through ngx_inet_addr, which refuses 255.255.255.255
        assert inet6_addr(text.encode()) == (None if text.endswith(":255.255.255.255") else n)


@pytest.mark.parametrize(("text", "shown"), [
    ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
    ("::1.2.3.4", "::1.2.3.4"),
    ("::102", "::0.0.1.2"),
    ("::1:2", "::0.1.0.2"),
    ("::100", "::0.0.1.0"),
    ("::1", "::1"),
    ("::2", "::2"),
    ("::101", "::101"),
    ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
    ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
    ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),  # the first of two equal runs
    ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
    ("2001:db8::", "2001:db8::"),
    ("::", "::"),
])
def test_inet6_ntop(text: str, shown: str) -> None:
    assert inet6_ntop(int(ipaddress.IPv6Address(text))) == shown
    assert text_addr(ipaddress.IPv6Address(text)) == shown.encode()


@pytest.mark.parametrize(("text", "addr", "port"), [
    ("1.2.3.4", "1.2.3.4", 0),
    ("1.2.3.4:5678", "1.2.3.4", 5678),
    ("2001:db8::1", "2001:db8::1", 0),
    ("[2001:db8::1]:443", "2001:db8::1", 443),
    ("[1.2.3.4]:80", "1.2.3.4", 80),
    ("::1:80", "::1:80", 0),  # parses as an address first
    ("[2001:db8::1]", None, 0),  # 1.22.1 wants a port after brackets
    ("[2001:db8::1]:", None, 0),
    ("[2001:db8::1]x", None, 0),
    ("1.2.3.4:0", None, 0),
    ("1.2.3.4:65536", None, 0),
    ("1.2.3.4:+1", None, 0),
    ("host:80", None, 0),
    ("255.255.255.255", None, 0),
    ("", None, 0),
])
def test_parse_addr_port(text: str, addr: str | None, port: int) -> None:
    got = parse_addr_port(text.encode())
    assert (None if got is None else (str(got[0]), got[1])) == (None if addr is None else (addr, port))


@pytest.mark.parametrize(("text", "net", "low_bits"), [
    ("10.0.0.0/8", (4, 0x0A000000, 0xFF000000), False),
    ("10.0.0.1/8", (4, 0x0A000000, 0xFF000000), True),
    ("10.0.0.1", (4, 0x0A000001, 0xFFFFFFFF), False),
    ("0.0.0.0/0", (4, 0, 0), False),
    ("1.2.3.4/0", (4, 0, 0), True),
    ("10.0.0.0/08", (4, 0x0A000000, 0xFF000000), False),
    ("2001:db8::/32", (6, 0x20010DB8 << 96, ((1 << 32) - 1) << 96), False),
    ("2001:db8::1/32", (6, 0x20010DB8 << 96, ((1 << 32) - 1) << 96), True),
    ("::1", (6, 1, (1 << 128) - 1), False),
    ("10.0.0.0/33", None, False),
    ("::/129", None, False),
    ("10.0.0.0/", None, False),
    ("10.0.0.0/-1", None, False),
    ("255.255.255.255", None, False),
    ("10.1", None, False),
    ("unix:", None, False),
])
def test_ptocidr(text: str, net: tuple[int, int, int] | None, low_bits: bool) -> None:
    got = ptocidr(text, D)
    if net is None:
        assert got is None
    else:
        assert got is not None
        cidr, low = got
        assert ((cidr.family, cidr.addr, cidr.mask), low) == (net, low_bits)


def test_cidr_match_maps_ipv4_mapped_and_unix() -> None:
    v4 = ptocidr("10.0.0.0/8", D)
    v6 = ptocidr("::ffff:0:0/96", D)
    assert v4 is not None and v6 is not None
    cidrs = (v4[0],)
    assert cidr_match(ipaddress.ip_address("::ffff:10.1.2.3"), cidrs) is v4[0]
    assert cidr_match(ipaddress.ip_address("::ffff:10.1.2.3"), (v6[0],)) is None  # compared as IPv4
    assert cidr_match(None, cidrs) is None


TRUSTED = tuple(c for c, _ in filter(None, (ptocidr(t, D) for t in (
    "127.0.0.1", "10.0.0.0/8", "2001:db8::/32"))))
PEER = ipaddress.ip_address("127.0.0.1")


@pytest.mark.parametrize(("headers", "recursive", "rc", "addr", "port"), [
    (["5.6.7.8, 10.0.0.1"], False, OK, "10.0.0.1", 0),  # the last one, even if trusted
    (["5.6.7.8, 10.0.0.1"], True, OK, "5.6.7.8", 0),
    (["10.0.0.2, 10.0.0.1"], True, OK, "10.0.0.2", 0),  # all trusted: the leftmost
    (["garbage, 10.0.0.1"], True, DONE, "10.0.0.1", 0),  # keeps the last good one
    (["garbage"], False, DECLINED, "127.0.0.1", 50000),
    (["5.6.7.8 10.0.0.3"], True, OK, "5.6.7.8", 0),  # spaces separate too
    (["5.6.7.8,,  ,10.0.0.3, ,"], True, OK, "5.6.7.8", 0),
    ([",5.6.7.8"], False, DECLINED, "127.0.0.1", 50000),  # a leading ',' sticks to the first token
    ([", 5.6.7.8"], False, OK, "5.6.7.8", 0),
    ([", 10.0.0.1"], True, DONE, "10.0.0.1", 0),  # then the ',' alone does not parse
    (["1.2.3.4:5678"], False, OK, "1.2.3.4", 5678),
    (["[2001:db8::1]:443"], False, OK, "2001:db8::1", 443),
    (["[2001:db8::1]"], False, DECLINED, "127.0.0.1", 50000),
    (["255.255.255.255"], False, DECLINED, "127.0.0.1", 50000),
    ([""], False, DECLINED, "127.0.0.1", 50000),
    (["5.6.7.8, 9.9.9.9", "10.0.0.4"], False, OK, "10.0.0.4", 0),  # only the last header
    (["5.6.7.8, 9.9.9.9", "10.0.0.4"], True, DONE, "9.9.9.9", 0),
    (["5.6.7.8", "10.0.0.3, 10.0.0.4"], True, OK, "5.6.7.8", 0),
    (["junk", "10.0.0.4"], True, DONE, "10.0.0.4", 0),  # DECLINED after a success is DONE
    (["5.6.7.8", "junk, 10.0.0.4"], True, DONE, "10.0.0.4", 0),
    (["::ffff:10.0.0.9, ::ffff:10.0.0.1"], True, OK, "::ffff:a00:9", 0),  # mapped: trusted as IPv4
    (["1.1.1.1, 2001:db8::5"], True, OK, "1.1.1.1", 0),
])
def test_forwarded_addr(headers: list[str], recursive: bool, rc: str, addr: str, port: int) -> None:
    values = [h.encode() for h in headers]
    got_rc, got_addr, got_port = forwarded_addr(PEER, 50000, values, False, TRUSTED, recursive)
    assert (got_rc, str(got_addr), got_port) == (rc, addr, port)


def test_forwarded_addr_one_string_and_untrusted_peer() -> None:
    one = forwarded_addr(PEER, 1, [b"1.2.3.4, 5.6.7.8"], True, TRUSTED, False)
    assert one == (OK, ipaddress.ip_address("5.6.7.8"), 0)
    untrusted = ipaddress.ip_address("9.9.9.9")
    assert forwarded_addr(untrusted, 1, [b"1.2.3.4"], True, TRUSTED, True) == (DECLINED, untrusted, 1)


# ---------------------------------------------------------------------------------------------
# Through Config.route

SHOW = 'return 200 "$remote_addr|$remote_port|$realip_remote_addr|$realip_remote_port";'


def load(http: str, server: str = "", location: str = SHOW) -> nginxsim.Config:
    return nginxsim.load(text=f"events {{}}\nhttp {{\n{http}\nserver {{\nlisten 80;\nlisten [::]:80;\n"
                              f"{server}\nlocation / {{ {location} }}\n"
                              "location @show { " + SHOW + " }\n}\n}\n")


def body(cfg: nginxsim.Config, headers: list[tuple[str, str]], client: str = "127.0.0.1",
         url: str = "http://a/", proxy_protocol: str | None = None) -> str | None:
    return cfg.route(client, url, headers=headers, proxy_protocol=proxy_protocol).body


def test_x_real_ip_is_a_list_too_and_the_first_header_counts() -> None:
    cfg = load("set_real_ip_from 127.0.0.1;")
    assert body(cfg, [("X-Real-IP", "1.2.3.4, 5.6.7.8")]) == "5.6.7.8||127.0.0.1|50000"
    assert body(cfg, [("x-real-ip", "1.2.3.4:99"), ("X-Real-IP", "5.6.7.8")]) == "1.2.3.4|99|127.0.0.1|50000"
    assert body(cfg, [("X-Real-IP", "1.2.3.4")], client="10.0.0.1") == "10.0.0.1|50000|10.0.0.1|50000"
    assert body(cfg, [("X-Forwarded-For", "1.2.3.4")]) == "127.0.0.1|50000|127.0.0.1|50000"


def test_only_the_exact_keyword_uses_every_x_forwarded_for_header() -> None:
    two = [("X-Forwarded-For", "5.6.7.8"), ("X-Forwarded-For", "1.2.3.4")]
    keyword = load("set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;")
    generic = load("set_real_ip_from 127.0.0.1; real_ip_header x-forwarded-for;")
    assert body(keyword, two) == "1.2.3.4||127.0.0.1|50000"
    assert body(generic, two) == "5.6.7.8||127.0.0.1|50000"


def test_named_header_is_matched_case_insensitively() -> None:
    cfg = load("set_real_ip_from 127.0.0.1; real_ip_header CF-Connecting-IP;")
    assert body(cfg, [("cf-connecting-ip", "2001:db8::7")]) == "2001:db8::7||127.0.0.1|50000"
    assert body(cfg, [("cf_connecting_ip", "2001:db8::7")]) == "127.0.0.1|50000|127.0.0.1|50000"


def test_ipv6_peer_and_mapped_addresses() -> None:
    cfg = load("set_real_ip_from ::1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; "
               "real_ip_recursive on;")
    assert body(cfg, [("X-Forwarded-For", "::ffff:1.2.3.4, ::ffff:10.9.9.9")], client="::1") == \
        "::ffff:1.2.3.4||::1|50000"


def test_unix_peer_is_trusted_by_unix_entry() -> None:
    cfg = load("set_real_ip_from unix:;")
    assert body(cfg, [("X-Real-IP", "1.2.3.4")], client="unix:") == "1.2.3.4||unix:|"
    cfg = load("set_real_ip_from 0.0.0.0/0;")
    assert body(cfg, [("X-Real-IP", "1.2.3.4")], client="unix:") == "unix:||unix:|"


def test_location_level_realip_runs_in_preaccess() -> None:
    """Rewrite-phase code sees the proxy; values cached then stay (variables.md §5.2)."""
    cfg = load("", location="set_real_ip_from 127.0.0.1; root /nonexistent; error_page 404 = @show; "
                            "location /ret/ { return 200 $remote_addr; } "
                            "location /early/ { set $e $remote_addr; root /nonexistent; "
                            "error_page 404 = @show; }")
    xri = [("X-Real-IP", "1.2.3.4")]
    assert body(cfg, xri) == "1.2.3.4||127.0.0.1|50000"
    assert body(cfg, xri, url="http://a/ret/") == "127.0.0.1"
    assert body(cfg, xri, url="http://a/early/") == "127.0.0.1||127.0.0.1|50000"


def test_realip_runs_once_and_server_level_first() -> None:
    cfg = load("set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP;",
               location="set_real_ip_from 0.0.0.0/0; real_ip_header X-Forwarded-For; root /nonexistent; "
                        "error_page 404 = @show;")
    both = [("X-Real-IP", "1.2.3.4"), ("X-Forwarded-For", "5.6.7.8")]
    assert body(cfg, both) == "1.2.3.4||127.0.0.1|50000"
    assert body(cfg, both[1:]) == "5.6.7.8||127.0.0.1|50000"  # POST_READ declined: PREACCESS tries


def test_proxy_protocol_source() -> None:
    cfg = load("set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;",
               location=SHOW.replace('";', '|$proxy_protocol_addr|$proxy_protocol_port|'
                                          '$proxy_protocol_server_addr|$proxy_protocol_server_port";'))
    pp = "PROXY TCP6 ::ffff:102:304 ::1 0 80"
    assert body(cfg, [], proxy_protocol=pp) == "::ffff:1.2.3.4||127.0.0.1|50000|::ffff:102:304||::1|80"
    assert body(cfg, [], proxy_protocol="PROXY TCP4 1.2.3.4 10.0.0.1 5555 443\r\n") == \
        "1.2.3.4|5555|127.0.0.1|50000|1.2.3.4|5555|10.0.0.1|443"
    assert body(cfg, [], proxy_protocol="PROXY UNKNOWN") == "127.0.0.1|50000|127.0.0.1|50000||||"
    assert body(cfg, [("X-Real-IP", "9.9.9.9")]) == "127.0.0.1|50000|127.0.0.1|50000||||"
    with pytest.raises(nginxsim.RequestError, match="broken PROXY header"):
        cfg.route("127.0.0.1", "http://a/", proxy_protocol="PROXY TCP4 1.2.3.4 10.0.0.1 70000 80")


def test_hostnames_in_set_real_ip_from() -> None:
    cfg = load("set_real_ip_from 127.1; set_real_ip_from localhost;")  # getaddrinfo's numeric forms
    assert body(cfg, [("X-Real-IP", "1.2.3.4")]) == "1.2.3.4||127.0.0.1|50000"
    with pytest.raises(nginxsim.ConfigError, match='host not found in set_real_ip_from "backend.internal"'):
        load("set_real_ip_from backend.internal;")


def test_trace_names_the_trusting_line() -> None:
    cfg = load("set_real_ip_from 10.0.0.0/8;\nset_real_ip_from 127.0.0.1;")
    d = cfg.route("127.0.0.1", "http://a/", headers=[("X-Real-IP", "1.2.3.4")])
    step = next(s for s in d.trace if s.phase == "realip")
    assert (step.result, step.line) == ("client address 1.2.3.4", 4)


@pytest.mark.parametrize(("http", "message"), [
    ("set_real_ip_from 1.2.3.4/33;", 'host not found in set_real_ip_from "1.2.3.4/33"'),
    ("set_real_ip_from unix:/x;", 'host not found in set_real_ip_from "unix:/x"'),
    ("real_ip_header a; real_ip_header b;", '"real_ip_header" directive is duplicate'),
    ("real_ip_recursive on; real_ip_recursive off;", '"real_ip_recursive" directive is duplicate'),
    ("real_ip_recursive yes;",
     'invalid value "yes" in "real_ip_recursive" directive, it must be "on" or "off"'),
])
def test_config_errors(http: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(http)
    assert e.value.message.startswith(message) and e.value.line == 3


def test_low_bits_warning() -> None:
    cfg = load("set_real_ip_from 10.0.0.1/8;")
    assert [w.rsplit(" in ", 1)[0] for w in cfg.warnings] == [
        "low address bits of 10.0.0.1/8 are meaningless"]
