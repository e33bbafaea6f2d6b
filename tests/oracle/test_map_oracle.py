"""Differential tests of map: random maps (exact keys in mixed case, regexes with captures and
named captures, hostnames wildcards, volatile, defaults with variables, chained maps) × random
inputs, deterministic corner cases, and config errors and warnings against `nginx -t`.

One nginx per generated config, many requests each; configs come from seeded random sources, so
a failure names its seed.
"""

from __future__ import annotations

import os
import random
import re

import pytest

import nginxsim
from nginxsim.oracle import Nginx, OracleRequest, compare

pytestmark = pytest.mark.usefixtures("nginx_binary")

LABELS = ["a", "b", "www", "example", "com", "org", "co", "uk", "x", "api", "test", "Example", "API", "cdn"]
CHARS = "abcxyzABXYZ019._-~"
REGEXES = [
    r"^a",
    r"b$",
    r"^(www)\.(.*)$",
    r"(?<lbl>[a-z]+)\.com$",
    r"EXAMPLE",
    r"^$",
    r"\d+",
    r"(?i)^api",
    r".",
    r"^x(y)?z",
    r"^(?<first>[^.]+)\.(?<rest>.+)$",
    r"\.(co|org)\.",
    r"^[A-Z]",
    r"(a)(b)?(c)?",
    r"^www\.example$",
    r"\.com$",
    r"^api\.",
]
VALUES = ['"$1"', '"[$1|$2]"', '"$lbl"', '"$first-$rest"', '"$arg_z"', '""', '"$http_x_b"', '"$1$arg_z"']
# Defines the named-capture variables values may use, whichever regexes are drawn.
NAMED_CAPTURES = "    map $arg_never $unused { ~(?<lbl>x)(?<first>y)(?<rest>z) 1; }\n"


def label(rng: random.Random) -> str:
    return rng.choice(LABELS) if rng.random() < 0.8 else "".join(rng.choice("abxyz019") for _ in range(3))


def hostname(rng: random.Random) -> str:
    return ".".join(label(rng) for _ in range(rng.randint(1, 4)))


def word(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return hostname(rng)
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 10)))


def mutate(rng: random.Random, key: str) -> str:
    """An input near a key: itself, in another case, with a label more or less, a trailing dot."""
    key = key.lstrip("~*\\").replace("\\", "")
    form = rng.randrange(8)
    if form == 0:
        return key.upper()
    if form == 1:
        return key.swapcase()
    if form == 2:
        return label(rng) + "." + key.lstrip(".*")
    if form == 3:
        return key.rstrip(".*") + rng.choice([".", "..", "." + label(rng), "x"])
    if form == 4:
        return key[: rng.randint(0, len(key))]
    return key.strip(".*") if form == 5 else key


class MapGen:
    """One random map block nginx accepts (keys that would conflict are left out)."""

    def __init__(self, rng: random.Random, name: str, source: str, hostnames: bool, refs: list[str]) -> None:
        self.rng, self.name, self.source = rng, name, source
        self.lines: list[str] = ["volatile;"] if rng.random() < 0.3 else []
        self.keys: list[str] = []
        self.exact: set[str] = set()
        self.heads: set[str] = set()
        self.tails: set[str] = set()
        wild = False
        for i in range(rng.randint(3, 18)):
            if hostnames and i == rng.randrange(3):
                self.lines.append("hostnames;")
                wild = True
            values = [f"v{i}"] * len(VALUES) + VALUES + [f'"{i}:${r}"' for r in refs]
            self.add(wild, rng.choice(values))
        if rng.random() < 0.8:
            defaults = ["dflt", '"d-$arg_z"', '"d[$1]"'] + [f'"d-${r}"' for r in refs]
            self.lines.append(f"default {rng.choice(defaults)};")

    def add(self, wild: bool, value: str) -> bool:
        key = self.key(wild)
        if key is not None:
            self.keys.append(key)
            self.lines.append(f'"{key}" {value};')
        return key is not None

    def key(self, wild: bool) -> str | None:
        rng = self.rng
        kind = rng.random()
        if kind < 0.3:
            extra = [f"^{label(rng)}", f"{label(rng)}$", rf"\.{label(rng)}\."]
            return rng.choice(["~", "~*"]) + rng.choice(REGEXES + extra)
        host = hostname(rng)
        if wild and kind < 0.6:
            form, name = rng.choice([".", "*.", ".*"]), host.lower()
            if form == ".*":
                if name in self.tails:
                    return None
                self.tails.add(name)
                return host + form
            if name in self.heads or (form == "." and name in self.exact):
                return None
            self.heads.add(name)
            if form == ".":
                self.exact.add(name)
            return form + host
        key = host if rng.random() < 0.7 else word(rng)
        if rng.random() < 0.05:
            key = rng.choice([r"\default", r"\include", r"\~x", "volatile", "hostnames", ""])
        plain = key[1:] if key.startswith("\\") else key
        if (
            plain.lower() in self.exact
            or plain == "default"
            or key.startswith("~")
            or (wild and ("*" in plain or ".." in plain or plain.startswith(".")))
        ):
            return None
        self.exact.add(plain.lower())
        return key

    def text(self) -> str:
        body = "".join(f"        {ln}\n" for ln in self.lines)
        return f"    map {self.source} ${self.name} {{\n{body}    }}\n"


def random_config(rng: random.Random) -> tuple[str, list[MapGen]]:
    m2_source = rng.choice(['"$arg_a$http_x_b"', "$arg_a", '"${arg_a}.$arg_k"'])
    maps = [
        MapGen(rng, "m0", "$arg_k", False, []),
        MapGen(rng, "m1", rng.choice(["$http_x_host", "$host", "$http_x_host"]), True, []),
        MapGen(rng, "m2", m2_source, rng.random() < 0.3, ["arg_k"]),
        MapGen(rng, "m3", rng.choice(["$m0", '"$m2:$arg_k"', "$m1"]), False, ["m0", "m2"]),
    ]
    order = rng.sample(["$m0", "$m1", "$m2", "$m3"], 4)
    tail = rng.choice(["$1", "$lbl", "$first", "$2"])
    conf = (
        "events {}\nhttp {\n"
        + NAMED_CAPTURES
        + "".join(m.text() for m in maps)
        + "    server {\n        listen 80;\n"
        f'        location ~ ^/(l\\w*)/ {{ return 200 "{"|".join(order)}|{tail}\\n"; }}\n'
        f'        location / {{ return 200 "{"|".join(reversed(order))}|{tail}\\n"; }}\n'
        '        location /set/ { set $a $m0; set $b $m3; return 200 "$a $b $m1 $1\\n"; }\n'
        "    }\n}\n"
    )
    return conf, maps


def safe(text: str) -> str:
    return "".join(c for c in text if c in CHARS)


def random_request(rng: random.Random, maps: list[MapGen]) -> OracleRequest:
    def near(m: MapGen) -> str:
        return mutate(rng, rng.choice(m.keys)) if m.keys and rng.random() < 0.7 else word(rng)

    path = rng.choice(["/", "/l1/", "/lx/y", "/set/", "/other"])
    query = f"k={safe(near(maps[0]))}&a={safe(near(maps[2]))}&z={safe(word(rng))}"
    host = safe(near(maps[1]).strip(".")) or "h"
    headers = [("X-Host", near(maps[1]).strip()), ("X-B", word(rng))]
    return OracleRequest(client="1.2.3.4", url=f"http://{host}{path}?{query}", headers=headers)


def check(conf: str, requests: list[OracleRequest], label: str, files: dict[str, str] | None = None) -> None:
    """nginx and nginxsim answer every request alike (status and body)."""
    wrong = compare(None, requests, text=conf, files=files)
    shown = "\n".join(map(str, wrong[:5]))
    assert not wrong, f"{label}: {len(wrong)} of {len(requests)} differ\n{shown}\n{conf}"


@pytest.mark.parametrize("seed", range(40))
def test_random_maps(seed: int) -> None:
    """40 configs × 4 maps × 300 requests."""
    rng = random.Random(seed)
    conf, maps = random_config(rng)
    check(conf, [random_request(rng, maps) for _ in range(300)], f"seed {seed}")


def test_hostnames_map_against_many_hosts() -> None:
    """One map of 80 hostnames entries of every kind, 800 host names near them."""
    rng = random.Random(99)
    m = MapGen(rng, "m", "$http_x_host", False, [])
    m.lines = ["hostnames;"]
    m.keys = []
    while len(m.keys) < 80:
        m.add(True, f"v{len(m.keys)}")
    conf = (
        "events {}\nhttp {\n"
        + m.text()
        + '    server { listen 80; location / { return 200 "$m|$1\\n"; } }\n}\n'
    )
    hosts = [mutate(rng, rng.choice(m.keys)) if rng.random() < 0.8 else hostname(rng) for _ in range(800)]
    reqs = [OracleRequest("1.2.3.4", "http://h/", headers=[("X-Host", h.strip() or "x")]) for h in hosts]
    check(conf, reqs, "hostnames")


CORNERS_CONF = r"""events {}
http {
    map $arg_k $m {
        "" empty;  ~^$ never;  Foo exact;  ~^(f)(o+)$ "re[$2$1]";  ~*^BAR(?<tail>.*) "bar[$tail]";
        \default esc-default;  \include esc-include;  \~x esc-tilde;  hostnames hn;  volatile vol;
        default "d[$1]";
    }
    map $http_x_host $h {
        www.early.test early-exact;  .early.test early-plain;
        hostnames;
        .example.com dot;  *.sub.example.com star;  www.example.* tail;  exact.com exact;
        *.com anycom;  ~^re regex;  a.b. trailing;  ~^x\.$ xdot;
        default "";
    }
    map "$m|$h" $chain { ~^esc-(.*)\| "chain $1"; default "$m/$h"; }
    map $x $cached { default "x=$x"; }
    map $x $fresh { volatile; default "x=$x"; }
    map $arg_k $inner { ~^(..) "[$1]"; default d; }
    map $arg_a $outer { default "$1$inner|"; }
    map $arg_k $self { default "s$self"; }
    map $arg_k $v1 { volatile; ~b$ "xa.A.xa"; default "q.r"; }
    map $v1 $v2 { volatile; ~^([^.]+)\.(.+)$ "[$1|$2]"; }
    map $arg_k $cap { volatile; zB "$1"; default d; }
    map $http_x_host $any { ~*. any; default none; }
    map $any $uses_cap { default "d-$cap"; }
    map $arg_k $dotted { default "A.b.c"; }
    map $dotted $split_dots { volatile; ~*^([^.]+)\.(.+)$ "5:$no_groups"; }
    map $arg_a $no_groups { ~*. ""; default d; }
    split_clients "$1$inner" $sp { 50% A; * B; }
    server {
        listen 80;
        location / { return 200 "$m|$1|$tail|$h|$chain\n"; }
        location ~ ^/loc/(.*)$ { return 200 "$m|$1\n"; }
        location /vol { set $x 1; set $a $cached; set $c $fresh;
            set $x 2; return 200 "$a $cached $c $fresh"; }
        location ~ ^/x/(.*)$ { return 200 "$1$inner|"; }
        location ~ ^/o/(.*)$ { return 200 "[$outer]"; }
        location ~ ^/s/(.*)$ { return 200 "[$sp]"; }
        location ~ ^/v/(.*)$ { set $v "$1$inner|"; return 200 "[$v]"; }
        location /self { return 200 "[$self]"; }
        location /nest { return 200 "$v2|$v1|$1"; }
        location /nestset { set $s "$v2|$v1|$1"; return 200 "$s"; }
        location ~ ^/(q\w*)/ { return 200 "$cap|$uses_cap|$1"; }
        location /setone { set $b $split_dots; return 200 "$b $1"; }
    }
}
"""
CORNER_KEYS = [
    "",
    "foo",
    "FOO",
    "fooo",
    "Foo",
    "barX",
    "BARyz",
    "default",
    "include",
    "~x",
    "hostnames",
    "volatile",
    "other",
    "esc",
    "f",
]
CORNER_HOSTS = [
    "www.early.test",
    "x.early.test",
    ".early.test",
    "example.com",
    "A.Example.COM.",
    "x.sub.example.com",
    "sub.example.com",
    "www.example.org",
    "www.example",
    "www.example.co.uk",
    "exact.com",
    "EXACT.com.",
    "other.com",
    "com",
    "re.example.net",
    "x.re",
    "a.b",
    "a.b.",
    "a.b..",
    "x..",
    "x.",
    "..",
    ".",
]


def test_corner_cases() -> None:
    """variables.md §4 case by case, `volatile` (evaluated once per string, but per reference and
    pass in a `set`; a nested map re-evaluating it changes what the string copies), chained maps,
    a map defined through itself, and `"$1$map"` (cut when shorter, failing when longer: the
    oracle has nginx 1.31.3's fixes)."""
    reqs = [
        OracleRequest("1.2.3.4", f"http://a/?k={k}", headers=[("X-Host", h)])
        for k in CORNER_KEYS
        for h in CORNER_HOSTS[:3]
    ]
    reqs += [OracleRequest("1.2.3.4", "http://a/?k=x", headers=[("X-Host", h)]) for h in CORNER_HOSTS]
    reqs += [OracleRequest("1.2.3.4", f"http://a/loc/{p}?k={k}") for p in ("abc", "") for k in CORNER_KEYS]
    reqs += [OracleRequest("1.2.3.4", f"http://a/{p}") for p in ("vol", "self", "nest?k=ab", "nest?k=z",
                                                                  "nestset?k=ab", "nestset?k=z", "setone?a=XYZ",
                                                                  "setone")]
    reqs += [OracleRequest("1.2.3.4", f"http://a/qx/?k={k}", headers=[("X-Host", h)])
             for k in ("zB", "zz") for h in ("abc", "")]
    reqs += [
        OracleRequest("1.2.3.4", f"http://a/{d}/{p}?k={k}")
        for d in "xosv"
        for p in ("a", "ab", "abcdef", "abc")
        for k in ("zzzz", "z", "")
    ]
    check(CORNERS_CONF, reqs, "corners")


def test_includes() -> None:
    conf = (
        "events {}\nhttp {\n    map $arg_k $m {\n        a 1;\n        include maps/*.conf;\n"
        '        default d;\n    }\n    server { listen 80; location / { return 200 "$m\\n"; } }\n}\n'
    )
    files = {"maps/one.conf": "b 2;\n~^c(.) 3$1;\n", "maps/two.conf": "hostnames;\n.x.test 4;\n"}
    reqs = [OracleRequest("1.2.3.4", f"http://a/?k={k}") for k in ("a", "b", "cq", "y.x.test", "x.test", "z")]
    check(conf, reqs, "includes", files)


# -- config errors and warnings --------------------------------------------------------------------

Message = tuple[str, str, str, int | None]  # [emerg] or [warn], text, file name, line
LOG_LINE = re.compile(r"\[(emerg|warn)\] (?:\d+#\d+: )?(.*)$", re.MULTILINE)
LOCATED = re.compile(r"(.*?)(?: in (\S+):(\d+))?")


def message(kind: str, text: str) -> Message:
    m = LOCATED.fullmatch(text)
    assert m is not None
    return kind, m.group(1), os.path.basename(m.group(2) or ""), int(m.group(3)) if m.group(3) else None


def nginx_messages(conf: str, files: dict[str, str] | None = None) -> tuple[bool, list[Message]]:
    """What `nginx -t` says: whether it accepts the config, its [emerg] and [warn] lines."""
    ok, stderr = Nginx.test_config(text=conf, files=files)
    return ok, [message(m.group(1), m.group(2)) for m in LOG_LINE.finditer(stderr)]


def sim_messages(conf: str, files: dict[str, str] | None = None) -> tuple[bool, list[Message]]:
    try:
        cfg = nginxsim.load(text=conf, files=files)
    except nginxsim.ConfigError as e:
        return False, [("emerg", e.message, os.path.basename(e.file or "") if e.line else "", e.line)]
    return True, [message("warn", w) for w in cfg.warnings]


BAD_BLOCKS = [
    "default 1;\ndefault 2;",
    "a 1;\nb 2 3;",
    "a;",
    "Foo 1;\nfoo 2;",
    "\\\\x 1;\n\\\\X 2;",
    "hostnames;\nEXAMPLE.com 1;\n.Example.COM 2;",
    "hostnames;\n*.Ab.com c;\n.aB.com d;",
    "hostnames;\nWWW.Ab.* c;\nwww.aB.* d;",
    "hostnames;\na*b 1;",
    "hostnames;\n*.a.* 1;",
    "hostnames;\na..b 1;",
    "hostnames;\n*. 1;",
    "hostnames;\n* 1;",
    "hostnames;\n.* 1;",
    "hostnames;\n. 1;",
    "hostnames;\n.a. 1;\n*.a. 2;",
    "~(abc 1;",
    "~*[z-a] 1;",
    'a "${x";',
    'a "$";',
    "(?<uri>x) 1;",
    "~(?<uri>x) 1;",
    "~(?<newvar>x) $newvar;",
    "a $unknown_var;",
    "volatile 1;\nhostnames;",
    "include;",
    "include a b;",
    "a" * 46 + " 1;",
    "a" * 47 + " 1;",
    "hostnames;\n*." + "a" * 44 + ".com 1;",
    "hostnames;\n*." + "b" * 45 + ".com 1;",
    "hostnames;\nwww." + "c" * 45 + ".* 1;",
]


@pytest.mark.parametrize("block", BAD_BLOCKS)
def test_block_errors_match_nginx(block: str) -> None:
    lines = "".join(f"        {ln}\n" for ln in block.split("\n"))
    conf = f"events {{}}\nhttp {{\n    map $uri $m {{\n{lines}    }}\n    server {{ listen 80; }}\n}}\n"
    assert sim_messages(conf) == nginx_messages(conf)


MANY_KEYS = "map_hash_max_size 3;\nmap $uri $m { " + " ".join(f"k{i} {i};" for i in range(10)) + " }"


@pytest.mark.parametrize(
    "http",
    [
        "map $uri m {}",
        "map $uri $ {}",
        "map $uri $URI {}",
        "map $uri $Args {}",
        "map ${uri $m {}",
        "map $uri $m {}\nmap_hash_bucket_size 128;",
        "map_hash_max_size 1;\nmap_hash_max_size 2;",
        "map_hash_bucket_size 12x;",
        "map_hash_bucket_size -1;",
        MANY_KEYS,
        "map_hash_bucket_size 65;\nmap $uri $m { " + "a" * 100 + " 1; }",
        "map_hash_max_size 0;\nmap $uri $m { a 1; }",
        "map_hash_bucket_size 70000;\nmap $uri $m { a 1; }",
        "map_hash_max_size 0;\nmap $uri $m { default 1; ~a 2; }",
        "map $uri $m { a 1; }\nmap $uri $m { b 2; }",
        "map $uri $m { hostnames; .a.com 1; a.com 2; }",
        "map $uri $m { a 1; } map $m $m2 { default $m3; }",
    ],
)
def test_directive_errors_match_nginx(http: str) -> None:
    conf = f"events {{}}\nhttp {{\n{http}\n    server {{ listen 80; }}\n}}\n"
    assert sim_messages(conf) == nginx_messages(conf)


INCLUDING = "events {}\nhttp {\n    map $uri $m {\n        a 1;\n        include inc.conf;\n    }\n}\n"


@pytest.mark.parametrize("inc", ["\n\nA 2;\n", "\n\nb c d;\n", "hostnames;\n\na*b 1;\n"])
def test_errors_in_included_files(inc: str) -> None:
    assert sim_messages(INCLUDING, {"inc.conf": inc}) == nginx_messages(INCLUDING, {"inc.conf": inc})


@pytest.mark.parametrize("inc", ['\n\nb "${x";\n', '\n\n~(b "x";\n', 'include inc2.conf;\n'])
def test_value_errors_in_included_files(inc: str) -> None:
    """Value and regex errors are logged through the cf saved when the map block began: at the
    (outermost) include line in the map's own file."""
    files = {"inc.conf": inc, "inc2.conf": '\n~(b "x";\n'}
    assert sim_messages(INCLUDING, files) == nginx_messages(INCLUDING, files)
