"""Generic directive checks, and differential tests of reading + checking against `nginx -t`.

The oracle tests run the real nginx 1.22.1 binary (``NGINXSIM_NGINX`` or ``nginx`` on PATH or
/usr/sbin/nginx). With ``CI=true`` they must run; elsewhere they skip when nginx is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nginxsim.conf import STOCK_SPECS, ConfTree, Directive, Specs, check, read, validate
from nginxsim.conf import spec as S
from nginxsim.conf.spec import DirectiveSpec
from nginxsim.conf.validate import _problem
from nginxsim.errors import ConfigError
from requires import require

CORPUS = Path(os.environ.get("NGINXSIM_CORPUS", "/work/shared/corpus"))
Where = tuple[str, str | None, int | None]
E = "events {}\n"
_EOF = 'unexpected end of file, expecting ";" or "}"'
_NOT_ALLOWED = '"{}" directive is not allowed here'
_ARGS = 'invalid number of arguments in "{}" directive'


def where(e: ConfigError) -> Where:
    return e.message, e.file, e.line


def errors_of(text: str, *, collect: bool = False, specs: Specs | None = None) -> list[Where]:
    tree = read(text=text, prefix="/v")
    return [where(e) for e in validate(tree, specs or {}, collect=collect)]


def first_error(text: str) -> Where:
    events = "" if text.startswith("events") else "events {} "  # same line: lines stay as in `text`
    (error,) = errors_of(events + text)
    return error


# --- ngx_conf_handler's checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("proxy_passs x;", 'unknown directive "proxy_passs"', 1),
        ("http {\n listen 80;\n}", '"listen" directive is not allowed here', 2),
        ("http {\n server;\n}", 'directive "server" has no opening "{"', 2),
        ("http {\n root /x {}\n}", 'directive "root" is not terminated by ";"', 2),
        ("http {\n root a\n  b;\n}", 'invalid number of arguments in "root" directive', 3),
        ("http {\n sendfile;\n}", 'invalid number of arguments in "sendfile" directive', 2),  # FLAG
        ("http x {\n}", 'invalid number of arguments in "http" directive', 1),  # NOARGS
        ("http { add_header a b c d e f g h; }", 'invalid number of arguments in "add_header" directive', 1),
        ("http {\n log_format;\n}", 'invalid number of arguments in "log_format" directive', 2),  # 2MORE
        ("http { server {\n if ($a) { proxy_pass u; } } }", '"proxy_pass" directive is not allowed here', 2),
        ("http { server { location / {\n if ($a) { if ($b) {} } } } }", _NOT_ALLOWED.format("if"), 2),
        ("http { server { location / {\n limit_except GET { root /; } } } }", _NOT_ALLOWED.format("root"), 2),
        ("http {\n upstream u { proxy_pass http://x; }\n}", '"proxy_pass" directive is not allowed here', 2),
        ("events {\n use;\n}", 'invalid number of arguments in "use" directive', 2),
        ("match m {\n}", 'unknown directive "match"', 1),  # NGINX Plus only
        ("http {}\nhttp {\n}", '"http" directive is duplicate', 2),
    ],
)
def test_generic_errors(text: str, message: str, line: int) -> None:
    assert first_error(text) == (message, "/v/nginx.conf", line)


def test_if_contexts_differ_in_server_and_location() -> None:
    server_if = "if ($a) { return 404; set $b 1; }"
    location_if = "location / { if ($a) { proxy_pass http://u; root /x; } }"
    assert errors_of(f"events {{}}\nhttp {{ server {{ {server_if} {location_if} }} }}") == []
    assert first_error("http { server { if ($a) { root /x; } } }")[0] == _NOT_ALLOWED.format("root")


def test_custom_blocks_and_failed_blocks_are_not_entered() -> None:
    text = (
        "events {}\nhttp {\n"
        " map $a $b { default 1; anything goes here; }\n"
        " types { text/html html; }\n"
        " geo $g { ranges; 1.2.3.4-1.2.3.5 x; }\n"
        " split_clients $a $s { 50% a; * b; }\n"
        " charset_map a b { 00 00; }\n"
        "}\n"
        "unknown_block { bogus; }\n"
    )
    assert errors_of(text, collect=True) == [('unknown directive "unknown_block"', "/v/nginx.conf", 9)]


def test_collect_reports_all_in_config_order() -> None:
    text = "http {\n a;\n server { b; location / { c 1; } }\n}\nd;\n"
    assert [e[0] for e in errors_of(text, collect=True)] == [
        'unknown directive "a"',
        'unknown directive "b"',
        'unknown directive "c"',
        'unknown directive "d"',
        'no "events" section in configuration',
    ]
    assert errors_of(text) == [('unknown directive "a"', "/v/nginx.conf", 2)]


def test_no_events_section() -> None:
    assert errors_of("http {}") == [('no "events" section in configuration', None, None)]


def test_our_specs_override_stock_in_their_contexts_only() -> None:
    upstream_server = DirectiveSpec("server", S.HTTP_UPS, S.TAKE1)
    text = "events {}\nhttp { upstream u { server a b; } server { } }"
    assert errors_of(text) == []  # stock: upstream's server takes 1 or more
    assert errors_of(text, specs={"server": upstream_server}) == [
        ('invalid number of arguments in "server" directive', "/v/nginx.conf", 2)
    ]
    new = {"sim_thing": DirectiveSpec("sim_thing", S.HTTP_MAIN, S.NOARGS)}
    assert errors_of("events {}\nhttp { sim_thing; }", specs=new) == []
    both = {"server": [DirectiveSpec("server", S.HTTP_MAIN, S.BLOCK | S.NOARGS), upstream_server]}
    tree = read(text=text, prefix="/v")
    assert [e.message for e in validate(tree, both)] == ['invalid number of arguments in "server" directive']


def test_argument_counts() -> None:
    def problem(mask: int, n: int) -> str | None:
        return _problem(Directive("x", ("a",) * n, "f", 1), S.MAIN, (S.MAIN | mask,))

    bad = 'invalid number of arguments in "x" directive'
    assert [problem(S.TAKE12, n) for n in range(4)] == [bad, None, None, bad]
    assert [problem(S.FLAG, n) for n in range(3)] == [bad, None, bad]
    assert [problem(S.ONEMORE, n) for n in (0, 1, 20)] == [bad, None, None]
    assert [problem(S.TWOMORE, n) for n in (1, 2, 20)] == [bad, None, None]
    assert [problem(S.ANY, n) for n in (0, 20)] == [None, None]
    assert [problem(S.TAKE7, n) for n in (7, 8)] == [None, bad]


def test_stock_table_is_nginx_1_22_1() -> None:
    for plus_only in ("match", "health_check", "zone_sync", "sticky", "js_content", "limit_zone"):
        assert plus_only not in STOCK_SPECS
    for added in ("keepalive_time", "ssl_reject_handshake", "proxy_cookie_flags", "ssl_conf_command"):
        assert added in STOCK_SPECS
    assert STOCK_SPECS["limit_req_zone"] == (S.HTTP_MAIN | S.TAKE3,)
    assert STOCK_SPECS["geoip_country"]  # Debian's dynamic modules count as known


def test_check_orders_directive_errors_before_the_read_error() -> None:
    text = "events {}\nhttp {\n bogus;\n server {\n"
    tree, errors = check(text=text, prefix="/v", collect=True)
    assert [where(e) for e in errors] == [
        ('unknown directive "bogus"', "/v/nginx.conf", 3),
        ('unexpected end of file, expecting "}"', "/v/nginx.conf", 5),
    ]
    assert tree.directives[1].name == "http"
    assert check(text=text, prefix="/v")[1][0].message == 'unknown directive "bogus"'
    assert check(text="events {}\nhttp {}", prefix="/v")[1] == []


# --- the oracle: nginx -t -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx() -> str:
    binary = os.environ.get("NGINXSIM_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    require(os.access(binary, os.X_OK), f"nginx binary not found ({binary}): differential tests against nginx")
    return binary


_LOGGED = re.compile(
    rb"\[(?:emerg|alert|crit)\] \d+#\d+: (.*?)(?: in (/[^\n]*?):(\d+))?\n(?=\d{4}/\d\d/\d\d |nginx: )", re.S
)


def nginx_t(binary: str, directory: str) -> Where | None:
    """nginx's first error for DIRECTORY/nginx.conf as (message, file, line), None when it passes."""
    run = subprocess.run(
        [
            binary,
            "-t",
            "-p",
            f"{directory}/",
            "-c",
            f"{directory}/nginx.conf",
            "-g",
            f"pid {directory}/nginx.pid; error_log stderr;",
        ],
        capture_output=True,
        timeout=30,
    )
    if run.returncode == 0:
        return None
    found = _LOGGED.search(run.stderr)
    if found is None:  # a handler may fail without a word (modern_browser with a bad value)
        return (run.stderr.decode("utf-8", "surrogateescape"), None, None)
    message, file, line = found.groups()
    text = message.decode("utf-8", "surrogateescape")
    return (text, file.decode(), int(line)) if file and line else (text, None, None)


def write(directory: str, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        path = Path(directory, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def ours(directory: str, files: Mapping[str, str] | None = None) -> Where | None:
    virtual = None if files is None else {f"{directory}/{k}": v for k, v in files.items()}
    errors = check(f"{directory}/nginx.conf", files=virtual)[1]
    return where(errors[0]) if errors else None


@dataclass(frozen=True)
class Case:
    id: str
    message: str  # what nginx says, pinned so each case keeps testing what it was written for
    conf: str | None  # nginx.conf after an "events {}" line; None: no nginx.conf at all
    files: Mapping[str, str] = field(default_factory=dict)  # more files, by relative path

    def all_files(self) -> dict[str, str]:
        main = {} if self.conf is None else {"nginx.conf": E + self.conf}
        return {**main, **self.files}


ERROR_CASES = [
    # ngx_conf_read_token
    Case("semicolon-alone", 'unexpected ";"', "http {\n ;\n}\n"),
    Case("brace-alone", 'unexpected "{"', "\n{\n"),
    Case("brace-after-words", 'unexpected "}"', "http {\n gzip on }\n"),
    Case("stray-close", 'unexpected "}"', "http {\n}\n}\n"),
    Case("char-after-quote", 'unexpected "y"', 'http {\n root "/x"y;\n}\n'),
    Case("hash-after-quote", 'unexpected "#"', "http {\n root '/x'#c\n;\n}\n"),
    Case("eof-in-statement", _EOF, "http {\n gzip on\n"),
    Case("eof-in-string", _EOF, 'http {\n root "/x;\n}\n\n'),
    Case("eof-after-backslash", _EOF, "http {\n root x\\"),
    Case("eof-in-block", 'unexpected end of file, expecting "}"', "http {\n server {\n }\n"),
    Case("too-long-word", 'too long parameter "xxxxxxxxxx..." started', "\nenv " + "x" * 5000 + ";\n"),
    Case(
        "too-long-string",
        'too long parameter, probably missing terminating "\'" character',
        "env '" + "x" * 5000 + "\n",
    ),
    # ngx_conf_include
    Case(
        "include-missing",
        'open() "{dir}/../x/./missing.conf" failed (2: No such file or directory)',
        "http {\n include ../x/./missing.conf;\n}\n",
    ),
    Case("include-args", _ARGS.format("include"), "http {\n include a b;\n}\n"),
    Case("include-block", 'directive "include" is not terminated by ";"', "http {\n include a {}\n}\n"),
    Case(
        "include-directory",
        'pread() "{dir}/d" failed (21: Is a directory)',
        "http {\n include d;\n}\n",
        {"d/x": ""},
    ),
    Case(
        "include-glob-then-error",
        _ARGS.format("gzip"),
        "http {\n include none/*.conf;\n include c/*.conf;\n}\n",
        {"c/1.conf": "gzip on;\n", "c/2.conf": "\n\ngzip\n on off;\n"},
    ),
    Case(
        "included-stray-close", 'unexpected "}"', "http {\n include a.conf;\n}\n", {"a.conf": "gzip on;\n}\n"}
    ),
    Case(
        "included-open-block",
        'unexpected end of file, expecting "}"',
        "http {\n include a.conf;\n}\n",
        {"a.conf": "server {\n"},
    ),
    Case(
        "included-unknown",
        'unknown directive "gzipp"',
        "http {\n include a.conf;\n}\n",
        {"a.conf": "\n  gzipp on;\n"},
    ),
    # custom block parsers
    Case("types-brace", 'unexpected "{"', "http {\n types {\n text/html html;\n a {\n }\n }\n}\n"),
    Case("types-include-args", _ARGS.format("include"), "http {\n types {\n include a b;\n }\n}\n"),
    Case(
        "types-included-brace", 'unexpected "{"', "http {\n types { include t; }\n}\n", {"t": "a b;\nc {\n"}
    ),
    Case(
        "map-included-close",
        'unexpected "}"',
        "http {\n map $a $b {\n include m/*.map;\n }\n}\n",
        {"m/a.map": "a 1;\n}\n"},
    ),
    Case(
        "geo-include-literal",
        'open() "{dir}/g*.geo" failed (2: No such file or directory)',
        "http {\n geo $b {\n include g*.geo;\n }\n}\n",
        {"g1.geo": ""},
    ),
    # ngx_conf_handler
    Case(
        "unknown",
        'unknown directive "proxy_passs"',
        "http {\n server {\n  proxy_passs\n   http://x;\n }\n}\n",
    ),
    Case("unknown-quoted-name", 'unknown directive "a"b"', '"http" {\n "gzip" on;\n \'a\\"b\';\n}\n'),
    Case("not-allowed", _NOT_ALLOWED.format("listen"), "http {\n listen 80;\n}\n"),
    Case(
        "not-allowed-server-if",
        _NOT_ALLOWED.format("root"),
        "http {\n server {\n if ($a) {\n root /x;\n }\n }\n}\n",
    ),
    Case(
        "not-allowed-limit-except",
        _NOT_ALLOWED.format("root"),
        "http {\n server {\n location / {\n limit_except GET {\n deny all;\n root /;\n }\n }\n }\n}\n",
    ),
    Case(
        "not-allowed-upstream",
        _NOT_ALLOWED.format("root"),
        "http {\n upstream u {\n server 127.0.0.1;\n root /;\n }\n}\n",
    ),
    Case(
        "if-in-if",
        _NOT_ALLOWED.format("if"),
        "http {\n server {\n location / {\n if ($a) {\n if ($b) { }\n }\n }\n }\n}\n",
    ),
    Case("no-opening", 'directive "server" has no opening "{"', "http {\n server\n ;\n}\n"),
    Case("not-terminated", 'directive "root" is not terminated by ";"', "http {\n root /x\n {\n }\n}\n"),
    Case("args-take1", _ARGS.format("root"), "http {\n root a\n b;\n}\n"),
    Case("args-flag", _ARGS.format("sendfile"), "http {\n sendfile;\n}\n"),
    Case("args-noargs-block", _ARGS.format("http"), "http x {\n}\n"),
    Case("args-location", _ARGS.format("location"), "http {\n server {\n location a b c {\n }\n }\n}\n"),
    Case("args-eight", _ARGS.format("add_header"), "http {\n add_header a b c d e f g h;\n}\n"),
    Case(
        "events-args",
        _ARGS.format("worker_connections"),
        None,
        {"nginx.conf": "events {\n worker_connections 1 2;\n}\n"},
    ),
    Case("no-events", 'no "events" section in configuration', None, {"nginx.conf": "http {\n}\n"}),
    Case("events-twice", '"events" directive is duplicate', "\nevents {\n}\n"),
    Case("http-twice", '"http" directive is duplicate', "http {}\nhttp { foo; }\n"),
    Case("main-missing", 'open() "{dir}/nginx.conf" failed (2: No such file or directory)', None),
    # which error comes first
    Case("unknown-before-syntax", 'unknown directive "foo"', 'http {\n foo;\n "a"b;\n}\n'),
    Case("unknown-in-unfinished-block", 'unknown directive "bar"', "http {\n server {\n bar;\n"),
    Case(
        "unknown-before-missing-include", 'unknown directive "baz"', "http {\n baz;\n include nope.conf;\n}\n"
    ),
]


@pytest.mark.oracle
@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.id for c in ERROR_CASES])
def test_errors_match_nginx(nginx: str, tmp_path: Path, case: Case) -> None:
    directory = str(tmp_path)
    files = case.all_files()
    write(directory, files)
    expected = nginx_t(nginx, directory)
    assert expected is not None and expected[0] == case.message.replace("{dir}", directory)
    assert ours(directory) == expected
    assert ours(directory, files) == expected  # the same through the virtual file system


def nginx_and_ours(binary: str, text: str) -> tuple[Where | None, Where | None, ConfTree]:
    """nginx -t and nginxsim on one config, with the scratch directory's path replaced by "D"."""
    with tempfile.TemporaryDirectory() as directory:
        write(directory, {"nginx.conf": text})
        theirs = nginx_t(binary, directory)
        tree, errors = check(f"{directory}/nginx.conf")

        def portable(error: Where | None) -> Where | None:
            if error is None:
                return None
            return error[0].replace(directory, "D"), error[1] and error[1].replace(directory, "D"), error[2]

        return portable(theirs), portable(where(errors[0]) if errors else None), tree


# Characters with a meaning to ngx_conf_read_token, and a few without.
_SOUP = st.text(alphabet=list("ab$#{}();\"'\\ \t\nntr\xe9"), max_size=30)


@pytest.mark.oracle
@settings(max_examples=250, deadline=None, derandomize=True)
@given(text=_SOUP)
def test_tokenizer_fuzz_first_error(nginx: str, text: str) -> None:
    """Any text: nginx's first complaint (usually naming the first word) is ours, same line."""
    theirs, mine, _ = nginx_and_ours(nginx, "events {}\n" + text)
    assert mine == theirs


_FLAG_ECHO = re.compile(r'invalid value "(.*)" in "daemon" directive, it must be "on" or "off"', re.S)


@pytest.mark.oracle
@settings(max_examples=250, deadline=None, derandomize=True)
@given(value=_SOUP)
def test_tokenizer_fuzz_argument_values(nginx: str, value: str) -> None:
    """`daemon X;` makes nginx print X as its tokenizer read it: our argument must be the same."""
    theirs, mine, tree = nginx_and_ours(nginx, f"events {{}}\ndaemon {value};\n")
    echoed = theirs and _FLAG_ECHO.fullmatch(theirs[0])
    if not echoed:
        assert mine == theirs
        return
    daemon = next(d for d in tree.directives if d.name == "daemon")
    assert theirs is not None and (daemon.args, daemon.line) == ((echoed.group(1),), theirs[2])


# Debian's dynamic modules from the nginx tree: known to nginxsim, absent from nginx-light.
_DYNAMIC = re.compile(r"^(geoip_|image_filter|perl|xml_entities$|xslt_|mail$|stream$)")
_PROBES = {
    S.MAIN: "{}",
    S.EVENTS: "events { {} }",
    S.HTTP_MAIN: "http { {} }",
    S.HTTP_SRV: "http { server { {} } }",
    S.HTTP_LOC: "http { server { location / { {} } } }",
    S.HTTP_SIF: "http { server { if ($a) { {} } } }",
    S.HTTP_LIF: "http { server { location / { if ($a) { {} } } } }",
    S.HTTP_LMT: "http { server { location / { limit_except GET { {} } } } }",
    S.HTTP_UPS: "http { upstream u { {} } }",
}


def _verdict(message: str | None) -> str:
    if message is not None and message.startswith("unknown directive"):
        return "unknown"
    if message is not None and message.endswith("is not allowed here"):
        return "not allowed"
    return "accepted"


def _stock_probes() -> Iterator[tuple[str, int]]:
    """Each stock directive where the table allows it and where it does not (first of each).

    Left out: what nginx-light lacks (Debian's dynamic modules, stream and mail) and include,
    which the reader handles.
    """
    for name, masks in sorted(STOCK_SPECS.items()):
        allowed = [c for c in _PROBES if any(m & c for m in masks)]
        if not allowed or _DYNAMIC.match(name) or name == "include":
            continue
        refused = [c for c in _PROBES if c not in allowed]
        yield from ((name, c) for c in allowed[:1] + refused[:1])


@pytest.mark.oracle
def test_stock_table_matches_nginx(nginx: str) -> None:
    """nginx-light accepts or refuses each stock directive in each probed context as we do."""

    def probe(item: tuple[str, int]) -> str | None:
        name, context = item
        body = _PROBES[context].replace("{}", f"{name} a;")
        text = body if context == S.EVENTS else E + body
        theirs, _, _ = nginx_and_ours(nginx, text)
        mine = _problem(Directive(name, ("a",), "f", 1), context, STOCK_SPECS[name])
        if _verdict(theirs and theirs[0]) != _verdict(mine):
            return f"{name} in {body}: nginx {theirs}, nginxsim {mine}"
        return None

    probes = list(_stock_probes())
    assert len(probes) > 900
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        assert [m for m in pool.map(probe, probes) if m] == []


# --- the corpus ---------------------------------------------------------------------------------


def corpus_entries() -> list[Path]:
    """The corpus configs; an absent corpus fails under CI=true, else skips."""
    require(CORPUS.is_dir(), f"nginx config corpus not found at {CORPUS} (set NGINXSIM_CORPUS)")
    entries = sorted(p.parent for p in CORPUS.glob("*/nginx.conf"))
    assert len(entries) >= 35
    return entries


def test_corpus_reads_and_validates() -> None:
    failures = {e.name: check(str(e / "nginx.conf"), collect=True)[1] for e in corpus_entries()}
    assert {name: errors for name, errors in failures.items() if errors} == {}


def test_large_config_reads_fast() -> None:
    entry = CORPUS / "certbot-79-sites"  # 83 files, 2,800 lines
    require(entry in corpus_entries(), "certbot-79-sites is not in the nginx config corpus")
    start = time.perf_counter()
    tree = read(str(entry / "nginx.conf"))
    assert time.perf_counter() - start < 0.5
    assert len(tree.files) > 80


@pytest.mark.oracle
def test_corpus_reads_like_nginx_T(nginx: str) -> None:
    """Files in nginx's order, and the -T dump reads to the same tree as the files."""
    for entry in corpus_entries():
        with tempfile.TemporaryDirectory() as scratch:
            run = subprocess.run(
                [
                    nginx,
                    "-T",
                    "-p",
                    f"{entry}/",
                    "-c",
                    f"{entry}/nginx.conf",
                    "-g",
                    f"pid {scratch}/nginx.pid; error_log stderr;",
                ],
                capture_output=True,
                timeout=60,
            )
        assert run.returncode == 0, (entry.name, run.stderr)
        dump = run.stdout.decode("utf-8", "surrogateescape")
        tree = read(str(entry / "nginx.conf"))
        assert list(tree.files) == re.findall(r"^# configuration file (.+):$", dump, re.M), entry.name
        assert read(text=dump).directives == tree.directives, entry.name
