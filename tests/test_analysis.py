"""Traffic analysis (nginxsim.analysis): exact shares from hash slices and geo sets, checked
against brute force (every client routed by `Config.route`) and against exhaustive hashing;
diffs of constructed changes whose answers are known; sampled shares and their intervals."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction
from pathlib import Path

import pytest

import nginxsim
from nginxsim import analysis
from nginxsim.analysis import AnalysisError
from nginxsim.hashing import murmurhash2

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPACE = 1 << 32
F1, F2 = 42949672, 42949672 + 1288490188  # the canary's bounds: 1% and 30% of 0xffffffff, floored
F1_5PCT, F2_5PCT = 214748364, 214748364 + 1288490188  # with 5% instead of 1%
SHOP = "http://shop.example.com/"


@pytest.fixture(scope="module")
def canary() -> nginxsim.Config:
    return nginxsim.load(str(FIXTURES / "canary" / "nginx.conf"))


@pytest.fixture(scope="module")
def canary5() -> nginxsim.Config:
    return nginxsim.load(str(FIXTURES / "canary-5pct" / "nginx.conf"))


def ip(n: int) -> str:
    return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def instance(cfg: nginxsim.Config, client: str, url: str = SHOP) -> str:
    """The brute-force answer: a full route, read as nginx's upstream name."""
    d = cfg.route(client, url, trace=False)
    assert d.upstream is not None
    return d.upstream.name.split("_")[1]


# -- exact shares ------------------------------------------------------------------------------


def test_canary_exact_shares(canary: nginxsim.Config) -> None:
    t = analysis.shares(canary, "instance", url=SHOP)
    assert (t.mode, t.by, t.var) == ("exact", "ip_range", "instance")
    assert [g.name for g in t.groups] == ["employees", "public", "testers"]
    emp, pub, tst = t.groups
    assert (emp.addresses, tst.addresses, pub.addresses) == (1 << 15, 1 << 16, SPACE - (1 << 15) - (1 << 16))
    assert [(s.value, s.fraction) for s in emp.shares] == [("alpha", 1)]
    assert [(s.value, s.fraction) for s in pub.shares] == [("ga", 1 - Fraction(F1, SPACE)),
                                                           ("beta", Fraction(F1, SPACE))]
    assert tst.shares[1].value == "alpha" and tst.shares[1].fraction == Fraction(F2 - F1, SPACE)
    assert t.share("testers", "beta") == pytest.approx(0.7) and t.share("public", "beta") == pytest.approx(0.01)
    assert t.share("testers", "ga") == 0.0
    assert all(s.exact and s.low == s.share == s.high for g in t.groups for s in g.shares)
    with pytest.raises(KeyError, match="no group 'x'"):
        t.group("x")


def test_canary_enumeration_is_exhaustive_hashing(canary: nginxsim.Config) -> None:
    """The small groups are hashed address by address: the counts are exactly what MurmurHash2
    and nginx's bounds give for every key "a.b.c.dAAA" of 128.32.0.0/16."""
    t = analysis.shares(canary, "instance", url=SHOP)
    tst = t.group("testers")
    assert tst.enumerated == 1 << 16 and t.group("public").enumerated is None
    alpha = sum(F1 <= murmurhash2(f"128.32.{c}.{d}AAA".encode()) < F2 for c in range(256) for d in range(256))
    assert {s.value: s.enumerated for s in tst.shares} == {"alpha": alpha / (1 << 16), "beta": 1 - alpha / (1 << 16)}
    assert t.group("employees").shares[0].enumerated == 1.0


def test_exact_matches_brute_force_sampling(canary: nginxsim.Config) -> None:
    """Random testers and public clients routed one by one: the shares are within a 99.9%
    binomial band of the exact ones."""
    t = analysis.shares(canary, "instance", url=SHOP)
    rng = random.Random(5)
    for group, make in (("testers", lambda: f"128.32.{rng.randrange(256)}.{rng.randrange(256)}"),
                        ("public", lambda: ip(rng.choice((rng.randrange(0, 0x45000000), rng.randrange(0x90000000,
                                                                                                      SPACE)))))):
        clients = [make() for _ in range(3000)]
        got = [instance(canary, c) for c in clients]
        for s in t.group(group).shares:
            k = got.count(s.value)
            sigma = math.sqrt(len(got) * s.share * (1 - s.share))
            assert abs(k - len(got) * s.share) <= 3.29 * sigma + 1, (group, s.value, k)


LAYOUTS = [
    # two splits of the same key: their slices intersect (a&x is 25%, b&x is 0%)
    ('"${remote_addr}K"', "50% a; * b;", '"${remote_addr}K"', "25% x; * y;"),
    # different keys: independent
    ('"${remote_addr}K"', "50% a; * b;", '"x${remote_addr}"', "25% x; * y;"),
    # under 100%: some hashes get ""; a binary key and the text key hash differently
    ('"${remote_addr}"', "10% a; 20.5% b;", '"$binary_remote_addr"', "33.33% x; 33.33% y; * z;"),
]


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
def test_joint_slices_match_brute_force(layout: int) -> None:
    key1, parts1, key2, parts2 = LAYOUTS[layout]
    conf = (f"events {{}}\nhttp {{\n  geo $g {{ default pub; 10.0.0.0/8 lan; 10.1.0.0/16 lab; }}\n"
            f"  split_clients {key1} $s {{ {parts1} }}\n  split_clients {key2} $t {{ {parts2} }}\n"
            f'  map "$g:$s:$t" $m {{ ~^lab: lab; ~^(lan|pub):a:x$ ax; ~:b: b$t; default "other $s"; }}\n'
            f'  server {{ listen 80; location / {{ return 200 "$m"; }} }}\n}}\n')
    cfg = nginxsim.load(text=conf)
    t = analysis.shares(cfg, "m", url="http://a/")
    assert t.mode == "exact" and t.by == "g"
    assert [g.name for g in t.groups] == ["lab", "lan", "pub"]
    assert t.group("lab").addresses == 1 << 16 and t.group("lan").addresses == (1 << 24) - (1 << 16)
    assert t.group("lab").shares[0].value == "lab" and t.group("lab").shares[0].share == 1
    if layout == 0:
        assert t.share("pub", "ax") == pytest.approx(0.25) and t.share("pub", "bx") == 0
    if layout == 1:
        assert t.share("pub", "ax") == pytest.approx(0.125) and t.share("pub", "bx") == pytest.approx(0.125)
    rng = random.Random(layout)
    for group, lo, size in (("lan", 0x0A000000, 1 << 16), ("pub", 0xC0000000, 1 << 28)):
        clients = [ip(lo + rng.randrange(size)) for _ in range(2000)]
        got = [cfg.route(c, "http://a/", trace=False).body for c in clients]
        assert analysis.classify(cfg, clients, "m", url="http://a/") == got
        for s in t.group(group).shares:
            k = got.count(s.value)
            sigma = math.sqrt(len(got) * s.share * (1 - s.share))
            assert abs(k - len(got) * s.share) <= 3.29 * sigma + 1, (group, s.value, k)


def test_a_template_without_leaves_is_one_exact_cell() -> None:
    cfg = nginxsim.load(str(FIXTURES / "basic" / "nginx.conf"))
    t = analysis.shares(cfg, url="http://shop.example.com/cart")
    assert t.mode == "exact" and t.by is None and [g.name for g in t.groups] == ["all"]
    (s,) = t.group("all").shares
    assert s.share == 1 and s.value.startswith("upstream http shop_backend")
    assert t.group("all").addresses == SPACE


SENSITIVE = """events {}
http {
  geo $g { default pub; 10.0.0.0/8 lan; }
  split_clients "${remote_addr}x" $s { 50% a; * b; }
  server { listen 80;
    location / { if ($remote_addr ~ "^10\\.1\\.") { return 403; } return 200 "$g $s"; }
  }
}
"""


def test_a_route_reading_the_client_otherwise_is_sampled() -> None:
    cfg = nginxsim.load(text=SENSITIVE)
    t = analysis.shares(cfg, "s", by="g", url="http://a/")
    assert t.mode == "sampled" and "not exact" in t.notes[0]
    assert t.clients == analysis.FALLBACK_SAMPLE and {g.name for g in t.groups} == {"lan", "pub"}
    for g in t.groups:
        assert g.clients == analysis.FALLBACK_SAMPLE // 2 and g.shares[0].low < 0.5 < g.shares[0].high
    lan = analysis.shares(cfg, by="g", url="http://a/", population=4000).group("lan")
    forbidden = next(s for s in lan.shares if s.value.startswith("403"))
    assert forbidden.share == pytest.approx(1 / 256, abs=0.004)  # 10.1/16 of 10/8
    with pytest.raises(AnalysisError, match="reads the client"):
        analysis.diff(cfg, cfg, url="http://a/", exact_only=True)
    mixed = nginxsim.load(text='events {}\nhttp {\n  split_clients "${remote_addr}$http_x" $s { 50% a; * b; }\n'
                               '  server { listen 80; location / { return 200 "$s"; } }\n}\n')
    t = analysis.shares(mixed, "s", url="http://a/x", headers=[("X", "1")], population=2000)
    assert t.mode == "sampled" and 0.4 < t.share("all", "a") < 0.6  # a key with a header: no leaf
    assert analysis.shares(mixed, "s", url="http://a/x").notes[0].startswith("not exact")


def test_classify_agrees_with_route_client_by_client(canary: nginxsim.Config) -> None:
    rng = random.Random(3)
    clients = [f"128.32.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(300)]
    clients += [f"69.12.{rng.randrange(128, 256)}.{rng.randrange(256)}" for _ in range(100)]
    clients += [ip(rng.getrandbits(32)) for _ in range(600)] + ["unix:"]
    assert analysis.classify(canary, clients, "instance", url=SHOP) == [instance(canary, c) for c in clients]
    odd = analysis.classify(canary, ["not-an-ip", "2001:db8::1"], "instance", url=SHOP)
    assert odd[0] is None and odd[1] is not None and odd[1].startswith("error: no listen accepts an IPv6")


def test_sampled_and_given_populations(canary: nginxsim.Config) -> None:
    t = analysis.shares(canary, "instance", url=SHOP, population=30000, seed=1)
    assert t.mode == "sampled" and t.clients == 30000
    for g in t.groups:
        assert g.clients == 10000
        for s in g.shares:
            assert s.count is not None and s.low <= s.share <= s.high
    assert t.group("testers").shares[0].low < 0.7 < t.group("testers").shares[0].high
    assert analysis.shares(canary, "instance", url=SHOP, population=30000, seed=1) .groups == t.groups  # seeded
    given = analysis.shares(canary, "instance", url=SHOP, population=["128.32.1.5", "128.32.1.5", "69.12.200.1",
                                                                      "bogus", "1.2.3.4"])
    assert given.mode == "clients" and given.clients == 4 and given.notes == ("1 clients skipped: not an address",)
    assert given.group("testers").clients == 2 and given.share("testers", "alpha") == 1
    with pytest.raises(AnalysisError, match="sample size"):
        analysis.shares(canary, population=0)
    with pytest.raises(AnalysisError, match="unknown population"):
        analysis.shares(canary, population="all")


def test_by_and_var_choices(canary: nginxsim.Config) -> None:
    none = analysis.shares(canary, "instance", by=None, url=SHOP)
    assert [g.name for g in none.groups] == ["all"] and none.group("all").addresses == SPACE
    assert none.share("all", "beta") == pytest.approx((0.7 * (1 << 16) + 0.01 * (SPACE - 3 * (1 << 15))) / SPACE)
    by_split = analysis.shares(canary, "ip_range", by="$split", url=SHOP)
    assert by_split.group("fraction1").addresses == Fraction(F1, SPACE) * SPACE
    with pytest.raises(AnalysisError, match='unknown variable "\\$nope"'):
        analysis.shares(canary, "nope")


# -- diff --------------------------------------------------------------------------------------


def test_canary_1_to_5_percent(canary: nginxsim.Config, canary5: nginxsim.Config) -> None:
    """Raising 1% to 5% moves exactly 4% of the public ga -> beta, and, because the 30% slice
    moves up with it, 4% of testers alpha -> beta and 4% beta -> alpha."""
    r = analysis.diff(canary, canary5, "instance", url=SHOP)
    assert r.mode == "exact" and r.by == "ip_range"
    moved = Fraction(F1_5PCT - F1, SPACE)
    assert r.cell("public", "ga", "beta").fraction == moved  # type: ignore[union-attr]
    assert r.cell("public", "beta", "ga") is None
    assert r.cell("testers", "alpha", "beta").fraction == Fraction(F1_5PCT - F1, SPACE)  # type: ignore[union-attr]
    assert r.cell("testers", "beta", "alpha").fraction == Fraction(F2_5PCT - F2, SPACE)  # type: ignore[union-attr]
    assert r.group("testers").changed == pytest.approx(0.08) and r.group("public").changed == pytest.approx(0.04)
    assert r.group("employees").changed == 0 and r.changed == pytest.approx(0.04, abs=1e-4)
    for g in r.groups:
        assert sum(c.share for c in g.cells) == pytest.approx(1)
        for c in g.cells:
            if c.changed:
                assert len(c.examples) == 3 and c.explain_old and c.explain_new
            for e in c.examples:  # every example really moves so
                assert (instance(canary, e), instance(canary5, e)) == (c.old, c.new)
    assert r.violations() == []
    assert r.violations(max_shift=5) == ["http://shop.example.com/ testers: 8.00% of clients change (max 5%)"]
    assert r.violations(max_shift=8.1) == []
    assert r.violations(allow=["ga->beta", "alpha->beta"]) == [
        "http://shop.example.com/ testers: beta -> alpha (4.00%) is not allowed"]
    assert r.violations(allow=["*->*"]) == []
    with pytest.raises(AnalysisError, match="FROM->TO"):
        r.violations(allow=["ga"])


def test_canary_diff_of_the_whole_decision_sampled(canary: nginxsim.Config, canary5: nginxsim.Config) -> None:
    r = analysis.diff(canary, canary5, url=SHOP, population=6000)
    assert r.mode == "sampled" and r.clients == 6000
    ga = "upstream uwsgi app_ga_django (unix:///opt/app_ga/uwsgi.sock) @ shop.example.com location /"
    beta = ga.replace("ga", "beta")
    cell = r.cell("public", ga, beta)
    assert cell is not None and cell.low < 0.04 < cell.high and not cell.exact
    assert r.changed_low < 0.04 < r.changed_high  # weighted by the groups' sizes
    assert all(instance(canary5, e) == "beta" for e in cell.examples)


def with_geo_line(path: Path, line: str) -> str:
    text = path.read_text()
    return text.replace("        128.32.0.0/16    testers;\n", f"        128.32.0.0/16    testers;\n        {line}\n")


def load_canary(text: str) -> nginxsim.Config:
    params = (FIXTURES / "canary" / "uwsgi_params").read_text()
    return nginxsim.load(text=text, files={"uwsgi_params": params}, prefix=str(FIXTURES / "canary"))


def test_an_added_geo_range_moves_its_addresses_exactly(canary: nginxsim.Config) -> None:
    new = load_canary(with_geo_line(FIXTURES / "canary" / "nginx.conf", "10.0.0.0/8 testers;"))
    public = SPACE - 3 * (1 << 15)
    r = analysis.diff(canary, new, "ip_range", url=SHOP)
    assert r.cell("public", "public", "testers").fraction == Fraction(1 << 24, public)  # type: ignore[union-attr]
    assert r.group("testers").changed == 0
    r = analysis.diff(canary, new, "instance", url=SHOP)
    moved = r.group("public")
    ga_alpha = Fraction(1 << 24, public) * Fraction(F2 - F1, SPACE)  # public "other"/fraction2 -> testers fraction2
    ga_beta = Fraction(1 << 24, public) * Fraction(SPACE - F2, SPACE)
    assert moved.cell("ga", "alpha").fraction == ga_alpha  # type: ignore[union-attr]
    assert moved.cell("ga", "beta").fraction == ga_beta  # type: ignore[union-attr]
    assert moved.cell("beta", "beta").fraction == Fraction(F1, SPACE)  # type: ignore[union-attr]
    for c in moved.cells:
        for e in c.examples:
            assert instance(canary, e) == c.old and instance(new, e) == c.new
            assert e.startswith("10.") or not c.changed


REGEX = """events {}
http {
  server { listen 80; server_name example.com;
    location / { return 200 root; }
    %s
  }
}
"""
PHP, ADMIN = "location ~ \\.php$ { return 200 php; }", "location ~ ^/admin { return 403; }"


def test_a_reordered_regex_location() -> None:
    old = nginxsim.load(text=REGEX % f"{PHP}\n    {ADMIN}")
    new = nginxsim.load(text=REGEX % f"{ADMIN}\n    {PHP}")
    r = analysis.diff(old, new, url="http://example.com/admin/x.php")
    assert r.mode == "exact" and r.changed == 1 and r.by is None
    (cell,) = r.group("all").cells
    assert cell.old == "200 'php' @ example.com location ~ \\.php$"
    assert cell.new == "403 @ example.com location ~ ^/admin" and cell.fraction == 1
    assert cell.examples and "location ~ ^/admin" in (cell.explain_new or "")
    same = analysis.diff(old, new, url="http://example.com/x.php")
    assert same.changed == 0 and same.group("all").cells[0].old == same.group("all").cells[0].new


def test_a_new_server_name() -> None:
    old = nginxsim.load(text=REGEX % "")
    added = "  server { listen 80; server_name new.example.com; return 301 https://new.example.com$request_uri; }"
    new = nginxsim.load(text=(REGEX % "").replace("\n}\n", f"\n{added}\n}}\n"))
    r = analysis.diff(old, new, url="http://new.example.com/a?b=1")
    (cell,) = r.group("all").cells
    assert (cell.old, cell.new) == ("200 'root' @ example.com location /",
                                    "301 Location: https://new.example.com/a?b=1 @ new.example.com "
                                    "(server level, no location)")
    assert r.changed == 1 and r.violations(max_shift=0) and r.violations(allow=["*->301 *"]) == []
    assert analysis.diff(old, new, url="http://example.com/").changed == 0


def test_diff_with_a_given_population_and_a_missing_variable(canary: nginxsim.Config) -> None:
    text = (FIXTURES / "canary" / "nginx.conf").read_text()
    renamed = load_canary(text.replace("instance", "flavour"))
    clients = ["128.32.1.5", "69.12.200.1", "1.2.3.4", "x"]
    r = analysis.diff(canary, renamed, "instance", url=SHOP, population=clients)
    assert r.mode == "clients" and r.clients == 3
    assert "$instance is not defined in the new config" in r.notes
    assert "1 clients skipped: not an address" in r.notes
    assert {(c.old, c.new) for g in r.groups for c in g.cells} == {
        ("alpha", "(not defined)"), ("ga", "(not defined)")}
    assert r.changed == 1


# -- replay of logged requests ----------------------------------------------------------------


def test_replay_reports_what_changes_for_real_traffic(canary: nginxsim.Config, canary5: nginxsim.Config) -> None:
    from nginxsim import accesslog

    rng = random.Random(9)
    lines = [f'{ip(rng.getrandbits(32))} - - [t] "GET /cart?id={i} HTTP/1.1" 200 5 "-" "ua"' for i in range(3000)]
    lines += ['10.0.0.1 - - [t] "GET * HTTP/1.1" 400 0', '10.0.0.1 - - [t] "GET /%zz\\x00 HTTP/1.1" 400 0',
              "junk", json.dumps({"remote_addr": "128.32.1.1", "request": "GET /static/x.css HTTP/1.1",
                                  "host": "shop.example.com"})]
    log = accesslog.parse(lines, requests=True)
    r = analysis.replay(canary, canary5, log.records, host="shop.example.com")
    assert log.skipped == 1 and r.unroutable >= 1 and r.requests + r.unroutable == len(log.records)
    assert 0.025 < r.changed / r.requests < 0.055  # 4% of the public
    assert r.fields == {"upstream": r.changed}
    (a, b, n), = r.transitions
    assert "app_ga_django" in a and "app_beta_django" in b and n == r.changed
    assert r.examples and all(e.changes[0][0] == "upstream" for e in r.examples)
    assert r.violations(max_shift=10) == [] and r.violations(max_shift=1)
    assert r.violations(allow=["*ga_django*->*beta_django*"]) == []
    assert analysis.replay(canary, canary, log.records, host="shop.example.com").changed == 0


def test_replay_sends_the_logged_headers() -> None:
    """A new rule on the User-Agent: only the logged bots' requests change."""
    from nginxsim import accesslog

    old = nginxsim.load(text=REGEX % "")
    new = nginxsim.load(text=REGEX % 'if ($http_user_agent ~* bot) { return 403; }')
    lines = ['10.0.0.1 - - [t] "GET /a HTTP/1.1" 200 5 "-" "Mozilla/5.0"',
             '10.0.0.2 - - [t] "GET /b HTTP/1.1" 200 5 "-" "GoodBot/2.1"',
             json.dumps({"remote_addr": "10.0.0.3", "request": "GET /c HTTP/1.1", "http_user_agent": "badbot"}),
             '10.0.0.4 - - [t] "GET /d HTTP/1.1" 200 5']
    r = analysis.replay(old, new, accesslog.parse(lines, requests=True).records, host="example.com")
    assert (r.requests, r.changed) == (4, 2)
    moved = (("status", "200", "403"), ("location", "location /", "(server level, no location)"),
             ("body", "'root'", "-"))
    assert [(e.line, e.changes) for e in r.examples] == [(2, moved), (3, moved)]
    assert r.fields == {"status": 2, "location": 2, "body": 2}





# -- random configs ------------------------------------------------------------------------------


def random_config(rng: random.Random) -> str:
    """A geo (networks or ranges), two splits (keys shared or not), a map of them, and
    locations whose rewrites, conditions and returns read them."""
    if rng.random() < 0.5:
        nets = "".join(f"    10.{rng.randrange(4)}.{rng.randrange(4) * 64}.0/{rng.choice((10, 16, 18, 24))} "
                       f"{rng.choice('abc')};\n" for _ in range(4))
        default = rng.choice(("pub", '""'))
        geo = f"  geo $g {{\n    default {default};\n{nets}  }}\n"
    else:
        lo = rng.randrange(0, 200)
        geo = (f"  geo $remote_addr $g {{\n    ranges;\n    default pub;\n    10.0.{lo}.0-10.0.{lo + 20}.255 a;\n"
               f"    10.1.0.0-10.3.255.255 b;\n  }}\n")
    keys = ['"${remote_addr}K"', '"k$remote_addr"', '"$binary_remote_addr"']
    k1, k2 = rng.choice(keys), rng.choice(keys)
    p1 = rng.choice(("50% x; * y;", "10% x; 20% y;", "0.5% x; 33.3% y; * z;"))
    p2 = rng.choice(("25% u; * v;", "60% u;", "1% u; 1% v; * w;"))
    return (f"events {{}}\nhttp {{\n{geo}  split_clients {k1} $s {{ {p1} }}\n  split_clients {k2} $t {{ {p2} }}\n"
            '  map "$g-$s" $m { ~^a- ma; ~-x$ mx; pub-y my; default "d$t"; }\n'
            "  server { listen 80;\n"
            '    location / { if ($g = b) { return 301 /moved/$s; } rewrite ^/r/(.*)$ /in/$m/$1 last; '
            'return 200 "$m"; }\n'
            '    location /in/ { if ($t = u) { return 403; } return 200 "in $uri"; }\n'
            "  }\n}\n")


@pytest.mark.parametrize("seed", range(6))
def test_random_configs_client_by_client(seed: int) -> None:
    """Every client's classified outcome is `Config.route`'s, for several URLs; shares of each
    group sum to 1 and the small groups' enumeration agrees with their exact shares."""
    rng = random.Random(seed)
    cfg = nginxsim.load(text=random_config(rng))
    clients = [f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(200)]
    clients += [ip(rng.getrandbits(32)) for _ in range(100)]
    for url in ("http://a/", "http://a/r/zz", "http://a/in/q"):
        got = analysis.classify(cfg, clients, url=url)
        assert got == [analysis.outcome_of(cfg.route(c, url, trace=False)).text for c in clients], url
        t = analysis.shares(cfg, url=url, enumerate_limit=1 << 16)
        assert t.mode == "exact"
        for g in t.groups:
            assert sum(s.fraction or 0 for s in g.shares) == 1
            for s in g.shares:
                if s.enumerated is not None and g.enumerated and g.enumerated >= 4096:
                    sigma = math.sqrt(s.share * (1 - s.share) / g.enumerated)
                    assert abs(s.enumerated - s.share) <= 4 * sigma + 1e-9, (url, g.name, s.value)
