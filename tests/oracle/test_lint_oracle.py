"""`nginxsim.lint` against `nginx -t`: the first error is nginx's (message, file, line), every
other error is nginx's own when the errors before it are fixed, and warnings are nginx's [warn]
lines.

The broken configs are the repository's corpus of config errors (the reader's and generic
checks', the compile errors', geo, realip, map, headers), each alone and each followed by a
second error of another kind, which nginx meets before or after it depending on when it checks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nginxsim

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_config_errors_oracle as compile_errors  # noqa: E402
import test_geo_oracle as geo  # noqa: E402
import test_headers_oracle as headers  # noqa: E402
import test_map_oracle as map_  # noqa: E402
import test_realip_oracle as realip  # noqa: E402

from test_conf_validate import ERROR_CASES, nginx_t, write  # noqa: E402
from test_lint import HTTP_LINES, SERVER_LINES  # noqa: E402

pytestmark = pytest.mark.oracle

Where = tuple[str, str | None, int | None]
Line = tuple[str, str, str | None, int | None]  # level, message, file, line
_UNRESOLVED = " (nginxsim resolves only IP addresses and localhost)"  # docs/fidelity.md: names are not resolved
_LOGGED = re.compile(r"\[(warn|emerg)\] \d+#\d+: (.*?)(?: in (/[^\n]*?):(\d+))?$", re.M)


def nginx_lines(binary: str, directory: str) -> tuple[bool, list[Line]]:
    """`nginx -t` on DIRECTORY/nginx.conf: accepted?, and its [warn]/[emerg] lines."""
    with tempfile.TemporaryDirectory() as scratch:
        run = subprocess.run(
            [binary, "-t", "-p", f"{directory}/", "-c", f"{directory}/nginx.conf",
             "-g", f"pid {scratch}/nginx.pid; error_log stderr;"],
            capture_output=True, timeout=30,
        )
    stderr = run.stderr.decode("utf-8", "surrogateescape")
    return run.returncode == 0, [(m[1], m[2], m[3], int(m[4]) if m[4] else None) for m in _LOGGED.finditer(stderr)]


def first_of(findings: list[nginxsim.Finding]) -> Where | None:
    """The first error as nginx_t gives it (a file only with a line)."""
    f = next((f for f in findings if f.level == "emerg"), None)
    if f is None:
        return None
    return f.message.removesuffix(_UNRESOLVED), f.file if f.line else None, f.line


def theirs_first(binary: str, directory: str) -> Where | None:
    found = nginx_t(binary, directory)
    return None if found is None else (found[0], found[1] if found[2] else None, found[2])


def run_all(binary: str, configs: list[tuple[str, Mapping[str, str]]]) -> list[tuple[str, Where | None, Where | None]]:
    """(name, nginx -t's first error, lint's first error) per config, two nginx at a time."""

    def one(config: tuple[str, Mapping[str, str]]) -> tuple[str, Where | None, Where | None]:
        name, files = config
        with tempfile.TemporaryDirectory() as directory:
            write(directory, files)
            theirs = theirs_first(binary, directory)
            ours = first_of(nginxsim.lint(f"{directory}/nginx.conf"))

            def portable(w: Where | None) -> Where | None:
                return w and (w[0].replace(directory, "D"), w[1] and w[1].replace(directory, "D"), w[2])

            return name, portable(theirs), portable(ours)

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, configs))


# --- the corpus of broken configs, alone and with a second error ------------------------------


def http_snippets() -> Iterator[tuple[str, str]]:
    """Each broken http-block content of the compile, geo, realip, map and headers tests."""
    for name, text in compile_errors.CASES.items():
        yield f"compile:{name}", text.replace("{port}", "8081")
    for name, text in headers.ERRORS.items():
        yield f"headers:{name}", f"server {{\nlisten 127.0.0.1:8082;\n{text}\n}}"
    for text in geo.GEO_ERRORS:
        yield f"geo:{text}", f"{text}\nserver {{ listen 80; return 200 $g; }}"
    for text in realip.ERRORS:
        yield f"realip:{text}", text
    for block in map_.BAD_BLOCKS:
        lines = "".join(f"        {ln}\n" for ln in block.split("\n"))
        yield f"map:{block[:40]}", f"    map $uri $m {{\n{lines}    }}\n    server {{ listen 80; }}"


# The snippet, then a second error nginx meets while reading (generic, handler, read error) or once
# the http block is read: whichever of the two nginx meets first is the one it reports.
SECOND = {
    "alone": "events {{}}\nhttp {{\n{s}\n}}\n",
    "generic-after": "events {{}}\nhttp {{\n{s}\nbogus_second;\n}}\n",
    "handler-after": 'events {{}}\nhttp {{\n{s}\nserver {{ listen 127.0.0.1:8099; location ~ "(x" {{ }} }}\n}}\n',
    "listen-after": "events {{}}\nhttp {{\n{s}\nserver {{ listen 127.0.0.1:8098; listen 127.0.0.1:8098; }}\n}}\n",
    "variable-after": "events {{}}\nhttp {{\n{s}\nserver {{ listen 127.0.0.1:8097; return 200 $second_nosuch; }}\n}}\n",
    "syntax-after": 'events {{}}\nhttp {{\n{s}\n"a"b;\n}}\n',
}


@pytest.mark.parametrize("second", sorted(SECOND))
def test_first_error_is_nginx_t_s(nginx_binary: str, second: str) -> None:
    configs = [(f"{name} [{second}]", {"nginx.conf": SECOND[second].format(s=s)}) for name, s in http_snippets()]
    results = run_all(nginx_binary, configs)
    differ = [r for r in results if r[1] != r[2]]
    print(f"lint vs nginx -t ({second}): {len(results)} configs, first error equal in {len(results) - len(differ)}")
    assert not differ, "\n".join(f"{n}\n  nginx -t: {t}\n  lint:     {o}" for n, t, o in differ[:10])


def test_reader_and_generic_errors_are_nginx_t_s(nginx_binary: str) -> None:
    configs = [(case.id, case.all_files()) for case in ERROR_CASES]
    results = run_all(nginx_binary, configs)
    differ = [r for r in results if r[1] != r[2]]
    print(f"lint vs nginx -t (reader and generic checks): {len(results)} configs, {len(differ)} differ")
    assert not differ, differ


# --- several independent errors, each one nginx's once the others are fixed ---------------------


@dataclass(frozen=True)
class Multi:
    """Files with `{0}`, `{1}`... slots, each a (broken, fixed) line; `order`: the slots in the
    order nginx meets their errors."""

    files: Mapping[str, str]
    slots: tuple[tuple[str, str], ...]
    order: tuple[int, ...]

    def render(self, broken: Callable[[int], bool]) -> dict[str, str]:
        lines = [b if broken(i) else f for i, (b, f) in enumerate(self.slots)]
        return {name: text.format(*lines) for name, text in self.files.items()}


MULTI = {
    "one-file": Multi(
        {"nginx.conf": """events {{}}
http {{
    map $uri $m {{ default 1; }}
    server {{
        listen 127.0.0.1:8080;
        {0}
        {1}
        location /x {{ }}
        {2}
        {3}
        {4}
    }}
    server {{ listen 127.0.0.1:8080; {5} }}
    {6}
}}
"""},
        (('location ~ "(a" { }', 'location ~ "(a)" { }'),
         ("proxy_passs x;", "root /x;"),
         ("location /x { }", "location /y { }"),
         ("listen 127.0.0.1:8080;", "listen 127.0.0.1:8081;"),
         ("return 200 $nosuch;", "return 200 $m;"),
         ("server_name www.*.com;", "server_name www.a.com;"),
         ("sendfile;", "sendfile on;")),
        (0, 1, 3, 6, 2, 4, 5),
    ),
    "includes": Multi(
        {
            "nginx.conf": "events {{}}\nhttp {{\n    include conf.d/*.conf;\n    upstream u {{ {0} }}\n}}\n",
            "conf.d/a.conf": "server {{\n    listen 127.0.0.1:8082;\n    server_name a;\n    {1}\n    {2}\n}}\n",
            "conf.d/b.conf": "server {{\n    listen 127.0.0.1:8082;\n    server_name b;\n    {3}\n"
                             "    root /a;\n    {4}\n}}\n",
        },
        (("server 127.0.0.1:1 weight=0;", "server 127.0.0.1:1 weight=1;"),
         ("rewrite ^ /x bogus;", "rewrite ^ /x last;"),
         ("location / { return 1000 x; }", "location / { return 200 x; }"),
         ("error_page 200 /x;", "error_page 404 /x;"),
         ("root /b;", "")),
        (1, 2, 3, 4, 0),
    ),
    "blocks-and-syntax": Multi(
        {"nginx.conf": """events {{}}
http {{
    geo $g {{ 10.0.0.1/8 a; 10.0.0.0/8 b; }}
    map $uri $m {{ a 1; {0} }}
    split_clients "$uri" $s {{ 60% a; {1} }}
    server {{ listen 127.0.0.1:8083; return 200 $g$m$s; }}
    server {{ listen 127.0.0.1:8083; }}
    {2}
}}
{3}
"""},
        (("b 2 3;", "b 2;"), ("50% b;", "40% b;"), ("real_ip_header;", "real_ip_header X-Real-IP;"), ("}", "")),
        (0, 1, 2, 3),
    ),
}


@pytest.mark.parametrize("name", sorted(MULTI))
def test_every_error_is_nginx_t_s_once_the_others_are_fixed(nginx_binary: str, name: str) -> None:
    multi = MULTI[name]
    configs = [("all", multi.render(lambda i: True))]
    configs += [(str(k), multi.render(lambda i, k=k: i == k)) for k in range(len(multi.slots))]  # type: ignore[misc]
    results = {n: (theirs, ours) for n, theirs, ours in run_all(nginx_binary, configs)}
    for k in range(len(multi.slots)):
        theirs, ours = results[str(k)]
        assert theirs is not None and ours == theirs, (k, theirs, ours)
    with tempfile.TemporaryDirectory() as directory:
        write(directory, configs[0][1])
        found = [f for f in nginxsim.lint(f"{directory}/nginx.conf") if f.level == "emerg"]
        alone = [results[str(k)][1] for k in multi.order]
        assert [(f.message, f.file and f.file.replace(directory, "D"), f.line) for f in found] == alone
        assert [f.reached for f in found] == [True] + [False] * (len(found) - 1)
    assert results["all"][0] == alone[0]  # nginx -t stops at the first


def test_fixed_configs_warn_like_nginx(nginx_binary: str) -> None:
    for name, multi in MULTI.items():
        with tempfile.TemporaryDirectory() as directory:
            write(directory, multi.render(lambda i: False))
            ok, theirs = nginx_lines(nginx_binary, directory)
            assert ok, (name, theirs)
            assert lines_of(nginxsim.lint(f"{directory}/nginx.conf")) == theirs, name


# --- warnings -----------------------------------------------------------------------------------


def lines_of(findings: list[nginxsim.Finding]) -> list[Line]:
    return [(f.level, f.message, f.file, f.line) for f in findings]


WARNINGS = {
    "geo": """geo $g {
    10.0.0.1/8 a;
    10.0.0.0/8 b;
    delete 10.9.0.0/16;
}
geo $h {
    ranges;
    10.0.0.0-10.0.0.9 a;
    10.0.0.0-10.0.0.9 b;
    delete 10.0.1.0-10.0.1.1;
}
server { listen 127.0.0.1:8090; return 200 $g$h; }""",
    "server-names": """server { listen 127.0.0.1:8091; server_name a .b.com www.c.*; }
server { listen 127.0.0.1:8091; server_name A *.b.com www.c.*; }
server { listen 127.0.0.1:8091; server_name ""; }
server { listen 127.0.0.1:8091; }""",
    "realip-and-types": """set_real_ip_from 10.0.0.1/8;
types { text/html html; text/plain html; }
server { listen 127.0.0.1:8092; set_real_ip_from 2001:db8::1/32; }""",
    "map-hash": "map_hash_max_size 3;\nmap $uri $m { " + " ".join(f"k{i} {i};" for i in range(10)) + " }",
    "ssl": "ssl on;",  # without a server: no certificate is needed (nginxsim does not check them)
    "inert-directives": """send_lowat 1k;
gzip_types text/html TEXT/CSS text/css;
gzip_types text/css;
server {
    listen 127.0.0.1:8094;
    proxy_send_lowat 0;
    charset_types text/html *;
    charset_types text/html;
    location / { sub_filter_types text/html; ssi_types text/xml; addition_types text/html; }
}""",
    "ssl-repeated": "ssl on;\nssl maybe;",
    "lowat-invalid": "send_lowat 1k;\nproxy_send_lowat x;",
    "warning-then-error": """geo $g { 10.0.0.1/8 a; }
server { listen 127.0.0.1:8093; server_name x; return 200 $g; }
server { listen 127.0.0.1:8093; server_name x; }
bogus;""",
}


@pytest.mark.parametrize("name", sorted(WARNINGS))
def test_warnings_are_nginx_t_s(nginx_binary: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        write(directory, {"nginx.conf": "events {}\nhttp {\n" + WARNINGS[name] + "\n}\n"})
        ok, theirs = nginx_lines(nginx_binary, directory)
        found = nginxsim.lint(f"{directory}/nginx.conf")
    assert any(level == "warn" for level, *_ in theirs)
    assert lines_of([f for f in found if f.reached]) == theirs  # nginx prints nothing after its first error
    assert ok == (not any(f.level == "emerg" for f in found))


def test_fixtures_and_corpus_warn_like_nginx(nginx_binary: str) -> None:
    """Every config that nginx -t accepts here: the same [warn] lines, no error."""
    root = Path(__file__).resolve().parents[2]
    corpus = Path(os.environ.get("NGINXSIM_CORPUS", "/work/shared/corpus"))
    entries = sorted(p.parent for p in (*(root / "fixtures").glob("*/nginx.conf"), *corpus.glob("*/nginx.conf")))
    compared = 0
    for entry in entries:
        ok, theirs = nginx_lines(nginx_binary, str(entry))
        assert ok, (entry, theirs)
        expected = [line for line in theirs if not line[1].startswith(NOT_SIMULATED_WARNINGS)]
        assert lines_of(nginxsim.lint(str(entry / "nginx.conf"))) == expected, entry.name
        compared += len(expected)
    print(f"lint vs nginx -t: {len(entries)} accepted configs, {compared} warnings equal")


# What nginx warns about that nginxsim does not check (docs/lint.md).
NOT_SIMULATED_WARNINGS = (
    "could not build optimal proxy_headers_hash",
    "could not build optimal server_names_hash",
    '"ssl_stapling" ignored',
)


# --- random mixes of good and bad lines ----------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(HTTP_LINES), max_size=4, unique=True),  # a repeated unsimulated directive is not
       st.lists(st.lists(st.sampled_from(SERVER_LINES), max_size=4, unique=True), max_size=3))  # refused (fidelity.md)
def test_random_mixes_first_error_and_warnings_are_nginx_t_s(nginx_binary: str, http: list[str],
                                                            servers: list[list[str]]) -> None:
    text = "events {}\nhttp {\n" + "\n".join(http) + "\n" + "".join(
        "server {\n" + "\n".join(lines) + "\n}\n" for lines in servers) + "}\n"
    with tempfile.TemporaryDirectory() as directory:
        write(directory, {"nginx.conf": text})
        ok, theirs = nginx_lines(nginx_binary, directory)
        found = nginxsim.lint(f"{directory}/nginx.conf")
        assert first_of(found) == theirs_first(nginx_binary, directory), text
    if ok:
        assert lines_of(found) == theirs, text
