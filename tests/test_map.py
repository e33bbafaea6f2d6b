"""map (variables.md §4): exact keys, hostnames wildcards, regexes and captures, default,
volatile, escapes, errors, hash sizing, laziness and caching.

Differential checks against nginx live in tests/oracle/test_map_oracle.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nginxsim
from nginxsim.http.context import Context
from nginxsim.http.request import make_request
from nginxsim.http.trace import Trace
from nginxsim.modules.map import leading_literal
from nginxsim.regex import RegexError, compile_regex

MAIN = "/etc/nginx/nginx.conf"


def load(http: str, server: str = 'location / { return 200 "$m"; }') -> nginxsim.Config:
    text = f"events {{}}\nhttp {{\n{http}\nserver {{ listen 80;\n{server}\n}}\n}}\n"
    return nginxsim.load(text=text, path=MAIN)


def body(cfg: nginxsim.Config, target: str = "/", host: str = "a.test", **kw: object) -> str | None:
    return cfg.route("1.2.3.4", f"http://{host}{target}", **kw).body  # type: ignore[arg-type]


def lookups(block: str, source: str = "$arg_k", hostnames: bool = False) -> nginxsim.Config:
    return load(f'map "{source}" $m {{\n{"hostnames;" if hostnames else ""}\n{block}\n}}')


def test_exact_keys_are_case_insensitive() -> None:
    cfg = lookups("Foo a; BAR b; default d;")
    assert [body(cfg, f"/?k={k}") for k in ("foo", "FOO", "bar", "baz", "")] == ["a", "a", "b", "d", "d"]


def test_empty_key_and_empty_source() -> None:
    cfg = lookups('"" empty; ~^$ never; ~.* any; default d;')
    assert body(cfg, "/?k=") == "empty"
    assert body(cfg, "/?k=x") == "any"
    cfg = lookups("~^$ never; ~.* any; default d;")
    assert body(cfg, "/?k=") == "d"  # an empty source never reaches the regexes


def test_regexes_in_config_order_against_the_original_case() -> None:
    cfg = lookups("~^a first; ~*^A second; ~b third; default d;")
    answers = [body(cfg, f"/?k={k}") for k in ("abc", "Abc", "xb", "XB", "z")]
    assert answers == ["first", "second", "third", "d", "d"]


def test_exact_before_regex() -> None:
    cfg = lookups("~^ab regex; AB exact;")
    assert [body(cfg, f"/?k={k}") for k in ("ab", "Ab", "abc")] == ["exact", "exact", "regex"]


def test_captures_in_values() -> None:
    cfg = load(r'map $arg_k $m { ~^(\w+)-(?<tail>\w+)$ "$2/$1/$tail"; ~^z "[$1]"; default "<$1>"; }',
               r'location ~ ^/x/(.*)$ { return 200 "$m"; }')
    assert body(cfg, "/x/loc?k=ab-cd") == "cd/ab/cd"
    assert body(cfg, "/x/loc?k=zz") == "[]"  # a regex without groups empties $1
    assert body(cfg, "/x/loc?k=other") == "<loc>"  # the default sees the location's capture


def test_captures_leak_to_the_rest_of_the_request() -> None:
    cfg = load(r'map $arg_k $m { ~^(.)(.) "$2"; }', r'location ~ ^/(.*)$ { return 200 "$m:$1"; }')
    assert body(cfg, "/loc?k=ab") == "b:a"


def test_variables_in_values_and_default_and_chained_maps() -> None:
    cfg = load('map $arg_a $inner { x "in-$arg_b"; default "dflt-$arg_b"; }\n'
               'map $inner $m { ~^in-(.*) "chained $1"; default "$inner!"; }')
    assert body(cfg, "/?a=x&b=1") == "chained 1"
    assert body(cfg, "/?a=y&b=2") == "dflt-2!"


def test_no_default_is_empty() -> None:
    assert body(lookups("a 1;"), "/?k=b") == ""


def test_escapes_and_keywords() -> None:
    cfg = lookups(r"\default esc-default; \include esc-include; \~x esc-tilde; hostnames 1; volatile 2; "
                  r"default d;")
    cases = {"default": "esc-default", "include": "esc-include", "~x": "esc-tilde", "hostnames": "1",
             "volatile": "2", "zzz": "d"}
    for key, expected in cases.items():
        assert body(cfg, f"/?k={key}") == expected, key
    cfg = lookups("DEFAULT upper; default d;")
    assert [body(cfg, f"/?k={k}") for k in ("default", "DEFAULT", "x")] == ["upper", "upper", "d"]


def test_hostnames_wildcards() -> None:
    cfg = lookups(".example.com dot; *.sub.example.com star; www.example.* tail; exact.com exact; "
                  "*.com anycom; ~^re regex; default d;", source="$http_host", hostnames=True)
    cases = {"example.com": "dot", "a.example.com": "dot", "x.sub.example.com": "star",
             "sub.example.com": "dot", "www.example.org": "tail", "www.example.co.uk": "tail",
             "www.example": "d", "exact.com": "exact", "EXACT.com.": "exact", "other.com": "anycom",
             "com": "d", "re.example.net": "regex", "x.re": "d"}
    for host, expected in cases.items():
        assert body(cfg, headers={"Host": host}) == expected, host


def test_hostnames_applies_to_later_keys_only() -> None:
    cfg = lookups(".early plain; hostnames; .late wild;")
    assert body(cfg, "/?k=.early") == "plain"
    assert body(cfg, "/?k=x.early") == ""
    assert body(cfg, "/?k=x.late") == "wild"
    assert body(cfg, "/?k=late") == "wild"


def test_hostnames_strips_one_trailing_dot() -> None:
    cfg = lookups("a.b 1; a.b. 2; ~^x\\.$ 3;", hostnames=True)
    assert [body(cfg, f"/?k={k}") for k in ("a.b", "a.b.", "a.b..", "x..", "x.")] == ["1", "1", "2", "3", ""]


def test_volatile_and_cacheable() -> None:
    server = 'location / { set $x 1; set $a $m; set $x 2; set $b $m; return 200 "$a $b"; }'
    assert body(load("map $x $m { default x=$x; }", server)) == "x=1 x=1"
    assert body(load("map $x $m { volatile; default x=$x; }", server)) == "x=1 x=2"


def test_volatile_is_evaluated_once_per_string_but_per_reference_in_set() -> None:
    """`ngx_http_complex_value` flushes a volatile map once, so a reference after its nested
    evaluation reuses the value; a `set` value reads every reference afresh."""
    cfg = load('map $arg_k $v1 { volatile; ~b$ "xa.A.xa"; default "q.r"; }\n'
               'map $v1 $v2 { volatile; ~^([^.]+)\\.(.+)$ "[$1|$2]"; }',
               'location /r { return 200 "$v2|$v1|$1"; }\nlocation /s { set $s "$v2|$v1|$1"; return 200 "$s"; }')
    assert body(cfg, "/r?k=ab") == "[xa|A.xa]|xa.A.xa|xa"
    assert body(cfg, "/s?k=ab") == "[xa|A.xa]|xa.A.xa|"


def test_a_volatile_map_re_evaluated_by_a_later_one_is_copied_as_changed() -> None:
    """`"$cap|$uses_cap|$1"`: evaluating $uses_cap runs a regex map, then re-evaluates the
    volatile $cap (now without captures); the copy pass reads $cap's new value."""
    cfg = load('map $arg_k $cap { volatile; zB "$1"; default d; }\nmap $http_x_host $any { ~*. any; }\n'
               'map $any $uses_cap { default "d-$cap"; }', r'location ~ ^/(q\w*)/ { return 200 "$cap|$uses_cap|$1"; }')
    assert body(cfg, "/qx/?k=zB", headers={"X-Host": "abc"}) == "|d-|"
    assert body(cfg, "/qx/?k=zB") == "qx|d-qx|qx"


def test_a_map_defined_through_itself() -> None:
    """nginx stops nesting at 100 variables (`cycle while evaluating variable`): the innermost
    one is not found, every level around it adds its text."""
    d = load('map $arg_k $m { default "s$m"; }').route("1.2.3.4", "http://a/")
    assert d.body == "s" * 100 and 'cycle while evaluating variable "arg_k"' in d.notes


def test_lazy_evaluation() -> None:
    """A map is only evaluated when referenced: its regex does not touch unrelated captures."""
    cfg = load("map $arg_k $m { ~(.) x; }\nmap $arg_k $unused { ~(..) y; }",
               r'location ~ ^/(.*)$ { return 200 "$1"; }')
    d = cfg.route("1.2.3.4", "http://a/loc?k=zz")
    assert d.body == "loc"
    assert not any(s.what.startswith("map") for s in d.trace)


def test_capture_before_a_regex_map_in_one_string() -> None:
    """`"$1$m"`: the oracle (Debian 1.22.1 with nginx 1.31.3's fixes) cuts a shorter copy and
    fails a longer one (500 for `return`, not found for a map value)."""
    cfg = load('map $arg_k $m { ~^(..) "[$1]"; default d; }\nmap $arg_a $outer { default "$1$m|"; }',
               'location ~ ^/x/(.*)$ { return 200 "$1$m|"; }\n'
               'location ~ ^/o/(.*)$ { return 200 "[$outer]"; }')
    assert body(cfg, "/x/abcdef?k=zzzz") == "zz[zz]|"
    assert body(cfg, "/x/ab?k=zzzz") == "zz[zz]|"
    d = cfg.route("1.2.3.4", "http://a/x/a?k=zzzz")
    assert d.status == 500 and "no buffer space in script copy: 500" in d.notes
    assert body(cfg, "/o/a?k=zzzz") == "[]"
    assert body(cfg, "/x/abc?k=z") == "abcd|"


def test_trace_names_the_entry_and_its_line() -> None:
    cfg = nginxsim.load(text="""events {}
http {
    map "${arg_a}_$arg_b" $instance {
        ~^employees_     alpha;
        ~^testers_x$     beta;
        exact_key        gamma;
        default          ga;
    }
    server { listen 80; location / { return 200 "$instance"; } }
}
""", path=MAIN)
    steps = {}
    cases = {"a=testers&b=x": ("beta", "~^testers_x$", 5), "a=EXACT&b=KEY": ("gamma", '"exact_key"', 6),
             "a=z": ("ga", "default", 7)}
    for args, expected in cases.items():
        d = cfg.route("1.2.3.4", f"http://a/?{args}")
        (step,) = [s for s in d.trace if s.what.startswith("map")]
        steps[args] = step
        assert step.result == f"{expected[0]} ({expected[1]})" and step.line == expected[2]
    assert steps["a=testers&b=x"].what == 'map "${arg_a}_$arg_b" = "testers_x"'


@pytest.mark.parametrize(("block", "message", "line"), [
    ("default 1;\ndefault 2;", "duplicate default map parameter", 5),
    ("a 1;\nb 2 3;", "invalid number of the map parameters", 5),
    ("a;", "invalid number of the map parameters", 4),
    ("Foo 1;\nfoo 2;", 'conflicting parameter "foo"', 5),
    ("hostnames;\nEXAMPLE.com 1;\n.Example.COM 2;", 'conflicting parameter ".example.com"', 6),
    ("hostnames;\n*.Ab.com c;\n.aB.com d;", 'conflicting parameter ".ab.com"', 6),
    ("hostnames;\nWWW.Ab.* c;\nwww.aB.* d;", 'conflicting parameter "www.ab.*"', 6),
    ("hostnames;\na*b 1;", 'invalid hostname or wildcard "a*b"', 5),
    ("hostnames;\n*.a.* 1;", 'invalid hostname or wildcard "*.a.*"', 5),
    ("hostnames;\na..b 1;", 'invalid hostname or wildcard "a..b"', 5),
    ("hostnames;\n*. 1;", 'invalid hostname or wildcard "*."', 5),
    ("~(abc 1;", 'pcre2_compile() failed: missing closing parenthesis in "(abc"', 4),
    ('a "${x";', 'the closing bracket in "x" variable is missing', 4),
    ('a "$";', "invalid variable name", 4),
])
def test_block_errors(block: str, message: str, line: int) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(f"map $uri $m {{\n{block}\n}}")
    assert (e.value.message, e.value.file, e.value.line) == (message, MAIN, line)


@pytest.mark.parametrize(("http", "message", "line"), [
    ("map $uri m {}", 'invalid variable name "m"', 3),
    ("map $uri $ {}", 'invalid variable name "$"', 3),
    ("map $uri $URI {}", 'the duplicate "URI" variable', 3),
    ("map $uri $m {}\nmap_hash_bucket_size 128;", '"map_hash_bucket_size" directive is duplicate', 4),
    ("map_hash_max_size 1;\nmap_hash_max_size 2;", '"map_hash_max_size" directive is duplicate', 4),
    ("map_hash_bucket_size 12x;", '"map_hash_bucket_size" directive invalid number', 3),
    ("map $uri $m { a 1; }\nmap $uri $m2 { \\~x $unknown; }", 'unknown "unknown" variable', None),
])
def test_directive_errors(http: str, message: str, line: int | None) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(http)
    assert (e.value.message, e.value.line) == (message, line)


@pytest.mark.parametrize(("http", "message"), [
    ("map $uri $m { " + "a" * 47 + " 1; }", "you should increase map_hash_bucket_size: 64"),
    ("map_hash_bucket_size 65;\nmap $uri $m { " + "a" * 200 + " 1; }",
     "you should increase map_hash_bucket_size: 128"),
    ("map_hash_max_size 0;\nmap $uri $m { a 1; }", "you should increase map_hash_max_size: 0"),
    ("map_hash_bucket_size 70000;\nmap $uri $m { a 1; }", "too large map_hash_bucket_size: 70016"),
    ("map $uri $m { hostnames; *." + "a" * 59 + ".com 1; }", "you should increase map_hash_bucket_size: 64"),
])
def test_hash_errors(http: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(http)
    where = (e.value.message, e.value.file, e.value.line)
    assert where == (f"could not build map_hash, {message}", MAIN, None)


def test_hash_warning_and_long_keys_that_fit() -> None:
    cfg = load("map_hash_max_size 3;\nmap $uri $m { " + " ".join(f"k{i} {i};" for i in range(10)) + " }")
    assert cfg.warnings == ("could not build optimal map_hash, you should increase either "
                            "map_hash_max_size: 3 or map_hash_bucket_size: 64; "
                            "ignoring map_hash_bucket_size",)
    assert load("map $uri $m { " + "a" * 46 + " 1; }").warnings == ()


def test_include_inside_map() -> None:
    files = {"nginx.conf": "events {}\nhttp {\nmap $arg_k $m {\n  a 1;\n  include keys/*.conf;\n"
                           "  default d;\n}\nserver { listen 80; location / { return 200 $m; } }\n}\n",
             "keys/one.conf": "b 2;\n~^c 3;\n", "keys/two.conf": "\n\nA dup;\n"}
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(files=files, prefix="/etc/nginx")
    where = (e.value.message, e.value.file, e.value.line)
    assert where == ('conflicting parameter "a"', "/etc/nginx/keys/two.conf", 3)
    files["keys/two.conf"] = "hostnames;\n.x.test 4;\n"
    cfg = nginxsim.load(files=files, prefix="/etc/nginx")
    assert [body(cfg, f"/?k={k}") for k in ("a", "b", "cc", "y.x.test", "z")] == ["1", "2", "3", "4", "d"]


# -- the regex literal shortcuts -----------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "expected"), [
    ("^employees_", (True, b"employees_", b"")),
    ("^testers_fraction2$", (True, b"testers_fraction2", b"$")),
    (r"\.php$", (False, b".php", b"$")),
    ("^abc?d", (True, b"ab", b"c?d")),
    ("^a|b", (False, b"", b"^a|b")),
    ("(?i)^abc", (False, b"", b"(?i)^abc")),
    (r"^\d+", (True, b"", rb"\d+")),
    (r"^a\/b\.c{2}", (True, b"a/b.", b"c{2}")),
    ("^a.b", (True, b"a", b".b")),
    ("", (False, b"", b"")),
    (r"^ab\E?", (True, b"a", rb"b\E?")),
    ("ab(?#x)?", (False, b"a", b"b(?#x)?")),
    (r"^/api/(\d+)$", (True, b"/api", rb"/(\d+)$")),
    (r"\d", (False, b"", rb"\d")),
])
def test_leading_literal(pattern: str, expected: tuple[bool, bytes, bytes]) -> None:
    assert leading_literal(pattern.encode()) == expected


PATTERN_PIECES = ["a", "b", "A", "ab", ".", "^", "$", "\\.", "\\d", "\\w", "?", "*", "+", "{2}", "(", ")",
                  "|", "[ab]", "(?i)", "\\", "-", "_", "/", "\n", "(?:", "\\Q", "\\E", "#", " ", "\\$"]
SUBJECTS = st.text(alphabet="abAB.x_/-1 $\n", min_size=1, max_size=10)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PATTERN_PIECES), max_size=8), st.booleans(), st.lists(SUBJECTS, max_size=8))
def test_literal_shortcuts_agree_with_pcre(pieces: list[str], caseless: bool, subjects: list[str]) -> None:
    """Whether a map regex matches, and the captures it leaves, are PCRE's."""
    pattern = "".join(pieces)
    try:
        rx = compile_regex(pattern, caseless=caseless)
    except RegexError:
        return
    cfg = lookups(f'"{"~*" if caseless else "~"}{quote(pattern)}" hit; default miss;')
    (m,) = cfg.plan.modules_state["map"]
    for subject in subjects:
        r = Context(cfg.plan, make_request("1.2.3.4", "http://a/"), Trace(False), {})
        found = rx.search(subject.encode())
        assert (m.find(r, subject.encode()).label == "default") == (found is None), (pattern, subject)
        if found is not None:
            assert r.captures == found.captures, (pattern, subject)


def quote(text: str) -> str:
    """Config text nginx's tokenizer reads back as `text` inside double quotes."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
