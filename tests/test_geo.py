"""The geo module (variables.md §3, verified against 1.22.1): the radix-tree and range tables,
their warnings and errors, and geo variables through `Config.route`. Differential checks against
a real nginx live in tests/oracle/test_geo_oracle.py."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nginxsim
from nginxsim.modules.geo import Entry, Radix, Ranges

# ---------------------------------------------------------------------------------------------
# The tables


def _entry(value: str) -> Entry:
    return Entry(value.encode(), value, "f", 1)


NAMES = st.sampled_from("abcdef")
PREFIXES = st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 16), NAMES), max_size=30)


def _holds(prefix: int, length: int, key: int) -> bool:
    return length == 0 or key >> (32 - length) == prefix >> (32 - length)


@given(PREFIXES, st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=40))
def test_radix_intervals_are_longest_prefix_match(
        prefixes: list[tuple[int, int, str]], keys: list[int]) -> None:
    """16-bit keys in the top of a 32-bit tree: dense enough for nesting and duplicates."""
    tree = Radix(32)
    naive: dict[tuple[int, int], Entry] = {}
    root = _entry("root")
    tree.insert(0, 0, root)
    naive[(0, 0)] = root
    for value, length, name in prefixes:
        key = (value << 16) & ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0)
        e = _entry(name)
        if not tree.insert(key, length, e):
            tree.delete(key, length)
            assert tree.insert(key, length, e)
        naive[(key, length)] = e
    table = tree.intervals()
    assert table.starts == sorted(set(table.starts)) and table.starts[0] == 0
    for k in keys:
        key = k << 16 | (k & 0xFF)
        best = max(length for (p, length) in naive if _holds(p, length, key))
        expected = next(e for (p, length), e in naive.items() if length == best and _holds(p, length, key))
        assert table.find(key) is expected
        assert tree.find(key) is expected


def test_radix_delete_follows_nodes_not_values() -> None:
    """A valueless node that exists (preallocated down to /6) deletes quietly; a missing or a
    valueless inner node is "no network to delete"; deleting a leaf prunes valueless parents."""
    tree = Radix(32)
    assert tree.delete(0x04000000, 6)  # 4.0.0.0/6: a preallocated leaf
    assert not tree.delete(0, 5)  # 0.0.0.0/5: valueless with children
    assert not tree.delete(0x0A000000, 8)  # never inserted
    assert tree.insert(0x0A000000, 8, _entry("ten"))
    assert tree.delete(0x0A000000, 8)
    assert not tree.delete(0x08000000, 6)  # pruned with 10.0.0.0/8


@given(st.lists(st.tuples(st.integers(0, 0x3FFFF), st.integers(0, 0x2FFFF), NAMES), max_size=25),
       st.lists(st.integers(0, 0x7FFFF), min_size=1, max_size=40))
def test_ranges_accepted_sequences_give_the_latest_covering_range(
        ranges: list[tuple[int, int, str]], keys: list[int]) -> None:
    """A range is accepted when it refines one fragment or touches none; then the most recently
    added range holding an address gives its value."""
    accepted: list[tuple[int, int, Entry]] = []
    for start, length, name in ranges:
        trial = Ranges()
        for s, e, entry in accepted:
            assert trial.add(s, e, entry, []) is None
        new = _entry(name)
        if trial.add(start, start + length, new, []) is None:
            accepted.append((start, start + length, new))
    table = Ranges()
    for s, e, entry in accepted:
        table.add(s, e, entry, [])
    default = _entry("default")
    intervals = table.intervals(default)
    for k in keys:
        expected = next((entry for s, e, entry in reversed(accepted) if s <= k <= e), default)
        assert intervals.find(k) is expected


def test_ranges_fragments_per_16() -> None:
    r = Ranges()
    warnings: list[str] = []
    assert r.add(0x0A000000, 0x0AFFFFFF, _entry("a"), warnings) is None
    assert r.add(0x0A010000, 0x0A01FFFF, _entry("b"), warnings) is None  # equals one whole fragment
    assert warnings == ['duplicate range "b", value: "b", old value: "a"']
    assert r.add(0x0A010200, 0x0A020005, _entry("c"), warnings) is None  # splits two fragments
    overlap = r.add(0x0A010000, 0x0A010300, _entry("x"), warnings)
    assert overlap == 'range "x" overlaps "10.1.2.0-10.1.255.255"'
    assert r.add(0x0A020000, 0x0A020005, _entry("d"), warnings) is None  # shares the start: split
    assert r.delete(0x0A020000, 0x0A020005)
    assert not r.delete(0x0A020000, 0x0A020006)
    assert r.add(0xFFFF0000, 0xFFFFFFFE, _entry("top"), warnings) is None


# ---------------------------------------------------------------------------------------------
# Through Config.route

SHOW = 'return 200 "$g";'


def load(geo: str, files: dict[str, str] | None = None, extra: str = "", location: str = SHOW
         ) -> nginxsim.Config:
    text = (f"events {{}}\nhttp {{\n{geo}\n{extra}\nserver {{ listen 80; listen [::]:80;\n"
            f"location / {{ {location} }}\n}}\n}}\n")
    return nginxsim.load(text=text, files=files)


def value(cfg: nginxsim.Config, client: str, url: str = "http://a/",
          headers: list[tuple[str, str]] | None = None) -> str | None:
    return cfg.route(client, url, headers=headers or []).body


CIDR = load("""geo $g {
    default       dflt;
    10.0.0.0/8    ten;
    10.1.0.0/16   ten-one;
    10.1.2.3      host;
    240.0.0.0/4   class-e;
    2001:db8::/32 doc;
    ::ffff:0:0/96 never;
}""")


@pytest.mark.parametrize(("client", "expected"), [
    ("10.2.0.1", "ten"),
    ("10.1.9.9", "ten-one"),
    ("10.1.2.3", "host"),
    ("11.0.0.1", "dflt"),
    ("::ffff:10.1.2.3", "host"),  # IPv4-mapped: the IPv4 table
    ("2001:db8:1::1", "doc"),
    ("2001:db9::1", "dflt"),
    ("unix:", "class-e"),  # unix peers look up 255.255.255.255
])
def test_cidr_longest_prefix(client: str, expected: str) -> None:
    assert value(CIDR, client) == expected


def test_trace_names_the_matching_entry() -> None:
    d = CIDR.route("10.1.9.9", "http://a/")
    step = next(s for s in d.trace if s.phase == "variable")
    assert (step.what, step.result, step.line) == ("geo $g for 10.1.9.9", "ten-one (10.1.0.0/16)", 6)
    d = load("geo $g { 1.0.0.0/8 x; }").route("2.0.0.1", "http://a/")
    step = next(s for s in d.trace if s.phase == "variable")
    assert (step.result, step.line) == ('"" (no default)', 3)


SRC = load("""geo $arg_ip $g {
    default          dflt;
    10.0.0.0/8       ten;
    255.255.255.255  none;
    2001:db8::/32    doc;
}""")


@pytest.mark.parametrize(("ip", "expected"), [
    ("10.1.2.3", "ten"),
    ("010.001.002.003", "ten"),  # lenient IPv4
    ("10..2.3", "ten"),
    ("2001:db8::9", "doc"),
    ("::ffff:10.0.0.1", "ten"),
    ("abc", "none"),
    ("", "none"),
    ("10.1.2.3:80", "none"),
    ("[2001:db8::9]", "none"),
    ("255.255.255.255", "none"),
])
def test_source_variable(ip: str, expected: str) -> None:
    assert value(SRC, "1.1.1.1", f"http://a/?ip={ip}") == expected
    assert value(SRC, "1.1.1.1", "http://a/") == "none"  # not found: 255.255.255.255 too


RANGES = load("""geo $g {
    ranges;
    default                  dflt;
    10.0.0.0-10.255.255.255  ten;
    10.1.0.0-10.1.255.255    ten-one;
    10.2.3.4-10.2.3.9        few;
    10.2.3.6-10.2.3.6        one;
}""")


@pytest.mark.parametrize(("client", "expected"), [
    ("10.2.3.5", "few"),
    ("10.2.3.6", "one"),
    ("10.2.3.7", "few"),
    ("10.2.3.10", "ten"),
    ("10.1.0.0", "ten-one"),
    ("9.255.255.255", "dflt"),
    ("::ffff:10.2.3.6", "one"),
    ("2001:db8::1", "dflt"),  # ranges are IPv4 only
    ("unix:", "dflt"),
])
def test_ranges(client: str, expected: str) -> None:
    assert value(RANGES, client) == expected


PROXY = load("""geo $g {
    proxy 127.0.0.1;
    proxy 9.9.9.0/24;
    default d;
    1.2.3.4 net1;
    5.6.7.8 net5;
    9.9.9.0/24 proxynet;
}""", extra="geo $g2 { proxy_recursive; proxy 127.0.0.1; proxy 9.9.9.0/24; default d; 1.2.3.4 net1; "
             "5.6.7.8 net5; 9.9.9.0/24 proxynet; }", location='return 200 "$g|$g2";')


@pytest.mark.parametrize(("xff", "expected"), [
    (["5.6.7.8, 1.2.3.4"], "net1|net1"),
    (["1.2.3.4, 9.9.9.1"], "proxynet|net1"),
    (["junk, 9.9.9.1"], "proxynet|proxynet"),
    (["5.6.7.8, 9.9.9.4", "9.9.9.3"], "proxynet|net5"),
    (["[2001:db8::1]:80"], "d|d"),
    ([], "d|d"),
])
def test_proxy_and_x_forwarded_for(xff: list[str], expected: str) -> None:
    """variables.md §9.3's table (peer 127.0.0.1)."""
    assert value(PROXY, "127.0.0.1", headers=[("X-Forwarded-For", x) for x in xff]) == expected
    assert value(PROXY, "8.8.8.8", headers=[("X-Forwarded-For", x) for x in xff]) == "d|d"  # untrusted


def test_proxy_needs_proxy_lines_and_applies_to_source() -> None:
    cfg = load("geo $g { default d; 1.2.3.4 one; }", extra="geo $arg_ip $h { proxy 10.0.0.0/8; default d; "
               "1.2.3.4 one; }", location='return 200 "$g|$h";')
    xff = [("X-Forwarded-For", "1.2.3.4")]
    assert value(cfg, "127.0.0.1", headers=xff) == "d|d"
    assert value(cfg, "127.0.0.1", "http://a/?ip=10.9.9.9", headers=xff) == "d|one"
    assert value(cfg, "127.0.0.1", "http://a/?ip=bad", headers=xff) == "d|d"  # no address: XFF unused


def test_geo_is_cached_before_location_realip() -> None:
    """A geo of the client evaluated in the rewrite phase keeps the proxy's value (§5.2)."""
    cfg = nginxsim.load(text="""events {}
http {
  geo $g { default d; 1.2.3.4 real; 127.0.0.1 proxy; }
  server { listen 80;
    location / { set_real_ip_from 127.0.0.1; root /nonexistent; error_page 404 = @show;
                 location /early/ { set $e $g; root /nonexistent; error_page 404 = @show; } }
    location @show { return 200 "$g|$remote_addr"; }
  }
}""")
    xri = [("X-Real-IP", "1.2.3.4")]
    assert value(cfg, "127.0.0.1", headers=xri) == "real|1.2.3.4"
    assert value(cfg, "127.0.0.1", "http://a/early/", headers=xri) == "proxy|1.2.3.4"


def test_include_and_values_are_literal() -> None:
    cfg = load("geo $g {\n default $host;\n include geo.d/nets.conf;\n}",
               files={"geo.d/nets.conf": "10.0.0.0/8 ten;\n1.2.3.4 'a b';\n"})
    assert [value(cfg, c) for c in ("10.0.0.1", "1.2.3.4", "2.2.2.2")] == ["ten", "a b", "$host"]
    step = next(s for s in cfg.route("10.0.0.1", "http://a/").trace if s.phase == "variable")
    assert step.file is not None and step.file.endswith("geo.d/nets.conf") and step.line == 1


def test_variable_redefinition_and_set() -> None:
    cfg = load("geo $g { default first; }\ngeo $G { default second; }", location='set $g "$g-set"; ' + SHOW)
    assert value(cfg, "1.1.1.1") == "second-set"


WARNINGS = [
    ("10.0.0.1/8 a;", ["low address bits of 10.0.0.1/8 are meaningless"]),
    ("10.0.0.0/8 a; 10.0.0.0/16 b; 10.0.0.0/8 c;",
     ['duplicate network "10.0.0.0/8", value: "c", old value: "b"']),
    ("default a; default b; ::/0 c;", ['duplicate network "default", value: "b", old value: "a"'] * 2
     + ['duplicate network "::/0", value: "c", old value: "b"']),
    ("delete 10.0.0.0/8; delete 4.0.0.0/6; delete 0.0.0.0/5; delete 0.0.0.0/0; delete ::/0; delete 4::/6;",
     ['no network "10.0.0.0/8" to delete', 'no network "0.0.0.0/5" to delete',
      'no network "0.0.0.0/0" to delete', 'no network "::/0" to delete',
      "low address bits of 4::/6 are meaningless"]),
    ("10.0.0.0/8 a; delete 10.0.0.0/8; delete 8.0.0.0/6;", ['no network "8.0.0.0/6" to delete']),
    ("ranges; 10.0.0.0-10.255.255.255 a; 10.1.0.0-10.1.255.255 b;",
     ['duplicate range "10.1.0.0-10.1.255.255", value: "b", old value: "a"']),
    ("ranges; default x; default y; delete 1.2.3.4-1.2.3.5;",
     ['duplicate default geo range value: "y", old value: "x"',
      'no address range "1.2.3.4-1.2.3.5" to delete']),
]


@pytest.mark.parametrize(("lines", "expected"), WARNINGS)
def test_warnings(lines: str, expected: list[str]) -> None:
    cfg = load("geo $g { " + lines + " }")
    assert [w.rsplit(" in ", 1)[0] for w in cfg.warnings] == expected
    assert all(w.endswith("nginx.conf:3") for w in cfg.warnings)


ERRORS = [
    ("geo g { }", 'invalid variable name "g"'),
    ("geo $ { }", 'invalid variable name "$"'),
    ("geo $x $ { }", 'invalid variable name "$"'),
    ("geo $Remote_Addr { }", 'the duplicate "Remote_Addr" variable'),
    ("geo $g { a b c; }", "invalid number of the geo parameters"),
    ("geo $g { default; }", "invalid number of the geo parameters"),
    ("geo $g { default x; ranges; }",
     'the "ranges" directive must be the first directive inside "geo" block'),
    ("geo $g { proxy unix:; }", 'invalid network "unix:"'),
    ("geo $g { 1.2.3.4/33 x; }", 'invalid network "1.2.3.4/33"'),
    ("geo $g { 255.255.255.255/32 x; }", 'invalid network "255.255.255.255/32"'),
    ("geo $g { ranges x; }", 'invalid network "ranges"'),
    ("geo $g { ranges; 1.2.3.4/24 b; }", 'invalid range "1.2.3.4/24"'),
    ("geo $g { ranges; 1.2.3.4-255.255.255.255 a; }", 'invalid range "1.2.3.4-255.255.255.255"'),
    ("geo $g { ranges; 1.2.3.5-1.2.3.4 a; }", 'invalid range "1.2.3.5-1.2.3.4"'),
    ("geo $g { ranges; 10.1.2.0-10.1.2.9 a; 10.0.0.0-10.255.255.255 b; }",
     'range "10.0.0.0-10.255.255.255" overlaps "10.1.2.0-10.1.2.9"'),
    ("geo $g { include nofile; }", 'open() "'),
]


@pytest.mark.parametrize(("geo", "message"), ERRORS)
def test_errors(geo: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(geo)
    assert e.value.message.startswith(message) and e.value.line == 3


def test_unknown_source_variable() -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load("geo $nosuch $g { }")
    assert (e.value.message, e.value.line) == ('unknown "nosuch" variable', None)


def test_address_sweep() -> None:
    """Every IPv4 address of a /20 gets the value of the smallest network holding it, through
    the compiled table (`Plan.modules_state["geo"]`, for sweeps) and through `route`."""
    nets = ["10.0.0.0/20", "10.0.1.0/24", "10.0.1.128/25", "10.0.1.200/32", "10.0.8.0/21", "10.0.12.0/22"]
    cfg = load("geo $g { default d; " + " ".join(f"{n} {n};" for n in nets) + " }")
    geo = cfg.plan.modules_state["geo"]["g"]
    for i in range(1 << 12):
        a = ipaddress.IPv4Address(0x0A000000 + i)
        expected = max((ipaddress.ip_network(n) for n in nets if a in ipaddress.ip_network(n)),
                       key=lambda n: n.prefixlen)
        assert geo.find(a).value == str(expected).encode()
        if i % 61 == 0:
            assert value(cfg, str(a)) == str(expected)
