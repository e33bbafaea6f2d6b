"""split_clients (variables.md §2): percent parsing, per-part floored bounds, `*`, sums under
100%, the 1.22.1 exactly-100% quirk, config errors, stickiness and shares.

Differential checks against nginx live in tests/oracle/test_split_clients_oracle.py.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nginxsim
from nginxsim.hashing import murmurhash2
from nginxsim.modules.split_clients import HASH_SPACE, SplitClients, parse_fixed_point

MAIN = "/etc/nginx/nginx.conf"


def load(block: str, key: str = "$arg_k") -> nginxsim.Config:
    return nginxsim.load(text=f"""events {{}}
http {{
    split_clients "{key}" $s {{
{block}
    }}
    server {{ listen 80; location / {{ return 200 "$s"; }} }}
}}
""", path=MAIN)


def compiled(cfg: nginxsim.Config) -> SplitClients:
    (split,) = cfg.plan.modules_state["split_clients"]
    return split  # type: ignore[no-any-return]


def value(cfg: nginxsim.Config, key: str) -> str | None:
    return cfg.route("1.2.3.4", f"http://a.test/?k={key}", trace=False).body


@pytest.mark.parametrize(("text", "expected"), [
    ("5", 500), ("5.", 500), (".5", 50), ("0.01", 1), ("12.34", 1234), ("100", 10000), ("0.50", 50),
    ("0.500", None), ("1.5.", None), ("-5", None), ("", None), ("abc", None), ("1e2", None),
    ("92233720368547758.07", 9223372036854775807), ("92233720368547758.08", None),
])
def test_parse_fixed_point(text: str, expected: int | None) -> None:
    assert parse_fixed_point(text, 2) == expected


@pytest.mark.parametrize(("block", "bounds"), [
    ("0.5% a; 2% b; * c;", (21474836, 107374181, 0)),
    ("50% a; 50% b;", (2147483647, 4294967294)),
    ("10% a; 20% b;", (429496729, 1288490188)),
    ("* a; * b;", (0, 0)),
])
def test_bounds(block: str, bounds: tuple[int, ...]) -> None:
    assert compiled(load(block)).bounds == bounds


def test_lookup_is_the_first_part_above_the_hash() -> None:
    cfg = load("0.5% a; 2% b; 10% c; * d;")
    split = compiled(cfg)
    for i in range(2000):
        key = f"key{i}"
        h = murmurhash2(key.encode())
        parts = zip(split.parts, split.bounds, strict=True)
        expected = next((p.value for p, b in parts if b == 0 or h < b), b"")
        assert value(cfg, key) == expected.decode()


def test_sum_under_100_leaves_the_top_empty() -> None:
    cfg = load("10% a; 20% b;")
    keys = [f"x{i}" for i in range(300)]
    above = [k for k in keys if murmurhash2(k.encode()) >= 1288490188]
    assert above and all(value(cfg, k) == "" for k in above)
    assert compiled(cfg).unassigned == HASH_SPACE - 1288490188


def test_exactly_100_percent_without_star_leaves_the_top_empty() -> None:
    """1.22.1: the last explicit part ends at the sum of floored bounds, 4294960000 here."""
    cfg = load("\n".join(f"0.01% v{i};" for i in range(10000)))
    split = compiled(cfg)
    assert split.bounds[-1] == 4294960000 and split.unassigned == 7296
    for key in ("k580015", "k1213476", "k1492559", "k1859066"):  # hashes >= 4294960000
        assert murmurhash2(key.encode()) >= 4294960000
        assert value(cfg, key) == ""
    assert value(cfg, "k0") == f"v{murmurhash2(b'k0') // 429496}"


def test_values_are_literal_and_extra_words_ignored() -> None:
    cfg = load('50% "$remote_addr" extra words; * "";')
    split = compiled(cfg)
    assert [p.value for p in split.parts] == [b"$remote_addr", b""]


def test_a_one_word_line_takes_the_previous_second_word() -> None:
    """`ngx_http_split_clients` reads value[1] from nginx's reused argument array (verified)."""
    cfg = load("10% x y z; 40%; *;", key="$arg_k")
    assert [p.value for p in compiled(cfg).parts] == [b"x", b"x", b"x"]
    cfg = load("50%; * b;", key="${arg_k}")
    assert [p.value for p in compiled(cfg).parts] == [b"${arg_k}", b"b"]


def test_wrapped_percentages_follow_nginx_32_bit_arithmetic() -> None:
    """nginx keeps the hundredths in 32 bits: 42949672.96% (2^32) becomes 0, a catch-all, and
    42949673% becomes 0.04%."""
    split = compiled(load("10% a; 42949672.96% b; * c;"))
    assert split.bounds == (429496729, 0, 0)
    assert split.rest is not None and split.rest.value == b"b"
    assert split.parts[2].lo == split.parts[2].hi  # unreachable after the catch-all
    assert compiled(load("42949673% a; * b;")).bounds == (1717986, 0)


@pytest.mark.parametrize(("block", "message"), [
    ("0% a;", 'invalid percent value "0%"'),
    ("0.00% a;", 'invalid percent value "0.00%"'),
    ("-5% a;", 'invalid percent value "-5%"'),
    ("5 a;", 'invalid percent value "5"'),
    ("abc a;", 'invalid percent value "abc"'),
    ("1.5.% a;", 'invalid percent value "1.5.%"'),
    ("0.500% a;", 'invalid percent value "0.500%"'),
    ("% a;", 'invalid percent value "%"'),
    ('"" a;', 'invalid percent value ""'),
    ("** a;", 'invalid percent value "**"'),
])
def test_invalid_percent(block: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(f"10% ok;\n{block}")
    assert (e.value.message, e.value.file, e.value.line) == (message, MAIN, 5)


@pytest.mark.parametrize("block", ["60% a; 50% b;", "* a; 1% b;", "99.99% a; 0.02% b;"])
def test_percent_total_is_reported_at_the_closing_brace(block: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(block + "\n\n")
    assert (e.value.message, e.value.line) == ("percent total is greater than 100%", 7)


@pytest.mark.parametrize(("header", "message", "line"), [
    ('split_clients "$arg_k" s {', 'invalid variable name "s"', 2),
    ('split_clients "$arg_k" $ {', 'invalid variable name "$"', 2),
    ('split_clients "$arg_k" $uri {', 'the duplicate "uri" variable', 2),
    ('split_clients "${arg_k" $s {', 'the closing bracket in "arg_k" variable is missing', 2),
])
def test_directive_errors(header: str, message: str, line: int) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(text=f"events {{}}\nhttp {{ {header} * a; }} }}\n", path=MAIN)
    assert (e.value.message, e.value.line) == (message, line)


def test_last_definition_wins_and_set_overrides() -> None:
    cfg = nginxsim.load(text="""events {}
http {
    split_clients "$arg_k" $s { * first; }
    split_clients "$arg_k" $s { * second; }
    server { listen 80;
        location / { return 200 "$s"; }
        location /set { set $s manual; return 200 "$s"; }
    }
}
""")
    assert cfg.route("1.2.3.4", "http://a/").body == "second"
    assert cfg.route("1.2.3.4", "http://a/set").body == "manual"


def test_trace_names_the_part_and_its_line() -> None:
    cfg = nginxsim.load(text="""events {}
http {
    split_clients "${remote_addr}AAA" $split {
        1%   fraction1;
        30%  fraction2;
        *    other;
    }
    server { listen 80; location / { return 200 "$split"; } }
}
""", path=MAIN)
    d = cfg.route("128.32.1.5", "http://a/")
    h = murmurhash2(b"128.32.1.5AAA")
    (step,) = [s for s in d.trace if s.what.startswith("split_clients")]
    assert step.what == 'split_clients "${remote_addr}AAA" = "128.32.1.5AAA"'
    assert step.result == f"{d.body} (hash {h} in [42949672, 1331439860))"
    assert (step.file, step.line) == (MAIN, 5)


def test_evaluated_once_per_request() -> None:
    """Cacheable: the key is evaluated on first use only, even if its inputs change later."""
    assert murmurhash2(b"c") < 2147483647 <= murmurhash2(b"k580015")
    cfg = nginxsim.load(text="""events {}
http {
    split_clients "$x" $s { 50% a; * b; }
    server { listen 80; location / { set $x c; set $p $s; set $x k580015; return 200 "$p$s"; } }
}
""")
    assert cfg.route("1.2.3.4", "http://a/").body == "aa"


# -- properties ----------------------------------------------------------------------------------

PERCENTS = st.integers(min_value=1, max_value=9999)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[int], bool]:
    """Hundredths of a percent per part (sum <= 100%), and whether a `*` ends the block."""
    parts: list[int] = []
    total = 0
    for p in draw(st.lists(PERCENTS, min_size=1, max_size=6)):
        if total + p > 10000:
            break
        parts.append(p)
        total += p
    return parts or [5000], draw(st.booleans())


def block_of(parts: list[int], star: bool) -> str:
    lines = [f"{p // 100}.{p % 100:02d}% v{i};" for i, p in enumerate(parts)]
    return "\n".join(lines + (["* rest;"] if star else []))


@settings(max_examples=40, deadline=None)
@given(layouts(), st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=20))
def test_stickiness(layout: tuple[list[int], bool], keys: list[str]) -> None:
    """The same key lands in the same part on every request and after reloading the config."""
    block = block_of(*layout)
    first, second = load(block, key="$http_x_k"), load(block, key="$http_x_k")
    for key in keys:
        key = key.replace("\r", "").replace("\n", "")
        answers = {
            cfg.route("1.2.3.4", "http://a/", headers={"X-K": key}, trace=False).body
            for cfg in (first, first, second)
        }
        assert len(answers) == 1


@settings(max_examples=60, deadline=None)
@given(layouts())
def test_exact_shares(layout: tuple[list[int], bool]) -> None:
    """Each part owns floor(p * 0xffffffff / 10000) hashes; `*` or "" owns the rest."""
    parts, star = layout
    split = compiled(load(block_of(parts, star)))
    for p, part in zip(parts, split.parts, strict=False):
        assert part.hi - part.lo == p * 0xFFFFFFFF // 10000
        assert abs(part.share - p / 10000) < 1e-9
    owned = sum(part.hi - part.lo for part in split.parts)
    assert owned + split.unassigned == HASH_SPACE
    if star:
        assert split.unassigned == 0 and split.parts[-1].hi == HASH_SPACE


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(layouts())
def test_observed_shares_within_binomial_interval(layout: tuple[list[int], bool]) -> None:
    """Over N random client addresses, each part's count is within a 99.9% binomial interval
    around its configured share (derandomized, clients seeded by the layout: reproducible)."""
    parts, star = layout
    split = compiled(load(block_of(parts, star), key="${remote_addr}AAA"))
    rng = random.Random(repr(layout))
    n = 20000
    counts: dict[bytes | None, int] = {}
    for _ in range(n):
        ip = ".".join(str(rng.randrange(256)) for _ in range(4))
        part = split.part_for(f"{ip}AAA".encode())[1]
        name = part.value if part is not None else None
        counts[name] = counts.get(name, 0) + 1
    shares = {part.value: p / 10000 for p, part in zip(parts, split.parts, strict=False)}
    shares[b"rest" if star else None] = 1 - sum(parts) / 10000
    for name, share in shares.items():
        sigma = math.sqrt(n * share * (1 - share))
        assert abs(counts.get(name, 0) - n * share) <= 3.29 * sigma + 1, (name, share, counts)
