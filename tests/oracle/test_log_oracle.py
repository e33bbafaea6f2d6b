"""Differential tests of the access log: the lines nginx writes, byte for byte, against
`Decision.log_lines`; config errors against `nginx -t`.

Each config runs in one nginx (the harness sends every access_log to one file, in order), and the
file is read after each request, so each request's lines are compared on their own. Requests and
header values come from seeded random sources (quotes, backslashes, UTF-8, raw bytes >= 0x80,
control bytes), so hundreds of lines are compared per test and a failure names its seed. Only
what is truly nondeterministic is masked: the clock ($time_local, $time_iso8601, $msec), $request_time
and $connection. What nginxsim writes as a placeholder (`<status>` for an upstream's answer)
matches any text on its line.
"""

from __future__ import annotations

import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nginxsim
from nginxsim.oracle import Nginx, OracleRequest, compare

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_conf_validate import nginx_t  # noqa: E402  (the shared `nginx -t` runner)

pytestmark = pytest.mark.usefixtures("nginx_binary")

_MASKS = (
    (re.compile(rb"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"), b"TIME"),
    (re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"), b"ISO"),
    (re.compile(rb"ms=\d+\.\d{3}"), b"ms=MSEC"),
    (re.compile(rb"rt=\d+\.\d{3}"), b"rt=RT"),
    (re.compile(rb"cn=\d+"), b"cn=N"),
)
_PLACEHOLDER = re.compile(rb"<[a-z0-9_]+>")


def _mask(line: bytes) -> bytes:
    for rx, repl in _MASKS:
        line = rx.sub(repl, line)
    return line


def _agrees(sim: bytes, nginx: bytes) -> bool:
    """Equal once masked; a placeholder stands for any text on its line."""
    sim, nginx = _mask(sim), _mask(nginx)
    parts = list(_split(sim))
    if len(parts) == 1:
        return sim == nginx
    pattern = b"".join(re.escape(p) if i % 2 == 0 else rb"[^\n]*?" for i, p in enumerate(parts))
    return re.fullmatch(pattern, nginx, re.S) is not None


def _split(sim: bytes) -> Iterator[bytes]:
    """Literal text and placeholders, alternating (literal first)."""
    last = 0
    for m in _PLACEHOLDER.finditer(sim):
        yield sim[last : m.start()]
        yield m.group()
        last = m.end()
    yield sim[last:]


def route(cfg: nginxsim.Config, rq: OracleRequest) -> nginxsim.Decision:
    """The harness poses any client on an IPv4 listen (PROXY protocol): so does server_addr."""
    return cfg.route(rq.client, rq.url, method=rq.method, headers=list(rq.headers), http_version=rq.http_version,
                     server_addr="127.0.0.1" if ":" in rq.client else None)


def assert_same_lines(conf: str, requests: list[OracleRequest], what: str) -> int:
    """Every request's log lines, nginxsim's against the file nginx wrote; returns how many."""
    cfg = nginxsim.load(text=conf)
    expected = [b"".join(line.line.encode("utf-8", "surrogateescape") for line in route(cfg, rq).log_lines)
                for rq in requests]
    path = None
    compared = 0
    with Nginx(text=conf) as ng:
        path = os.path.join(ng.root, "access.log")
        seen = 0
        for rq, want in zip(requests, expected, strict=True):
            ng.request(rq)
            got = _new_bytes(path, seen, want.count(b"\n"))
            seen += len(got)
            assert _agrees(want, got), (f"{what}: {rq.method} {rq.url} {rq.headers}\n"
                                        f"nginx:    {got!r}\nnginxsim: {want!r}")
            compared += want.count(b"\n")
        time.sleep(0.05)
        assert _size(path) == seen, f"{what}: nginx wrote more than expected: {_read(path)[seen:]!r}"
    return compared


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b""


def _new_bytes(path: str, seen: int, lines: int) -> bytes:
    """The lines nginx appended since `seen` (it logs as it finishes the request: a keep-alive
    answer may reach the client a moment before its line reaches the file)."""
    deadline = time.monotonic() + 0.5
    data = _read(path)[seen:]
    while data.count(b"\n") < lines and time.monotonic() < deadline:
        time.sleep(0.002)
        data = _read(path)[seen:]
    return data[: data.rfind(b"\n") + 1]


# -- random requests ----------------------------------------------------------------------------

_WORD = "abcxyzABC019._-~"
_SPICY = ['"', "\\", "é", "日本", "\udcff", "\udc80", "\x01", "\x1f", "\x7f", "'", "<", "{", "}", "%", "$", " "]


def word(rng: random.Random, n: int = 8) -> str:
    return "".join(rng.choice(_WORD) for _ in range(rng.randint(1, n)))


def value(rng: random.Random) -> str:
    """A header value nginx accepts: no NUL, CR, LF; no space or tab at either end."""
    parts = [word(rng, 4) if rng.random() < 0.6 else rng.choice(_SPICY) for _ in range(rng.randint(1, 8))]
    return "x" + "".join(parts) + "y"


def query(rng: random.Random) -> str:
    pairs = [f"{rng.choice(['a', 'b', 'A'])}={rng.choice([word(rng), '%22q', 'x%5Cy', 'é', ''])}"
             for _ in range(rng.randint(0, 3))]
    return "?" + "&".join(pairs) if pairs else ""


def basic(rng: random.Random) -> str:
    import base64

    creds = rng.choice([b"alice:secret", b"b\xc3\xa9b:x", b":nouser", b"nocolon", b"u\"q:p"])
    token = base64.b64encode(creds).decode()
    return rng.choice([f"Basic {token}", f"basic  {token.rstrip('=')}", "Basic !!", "Bearer x", "Basic"])


def request(rng: random.Random, paths: list[str]) -> OracleRequest:
    version = rng.choice(["1.1", "1.1", "1.1", "1.0", "0.9"])
    path = rng.choice(paths) + (query(rng) if rng.random() < 0.5 else "")
    if version == "0.9":
        return OracleRequest("10.1.2.3", "http://localhost" + path, http_version="0.9")
    headers: list[tuple[str, str]] = []
    for name in ("User-Agent", "Referer", "X-Custom", "Cookie", "Authorization"):
        if rng.random() < 0.5:
            if name == "Authorization":
                headers.append((name, basic(rng)))
            elif name == "Cookie":
                headers.append((name, f"c={word(rng)}; d={value(rng).replace(';', '')}"))
            elif name == "User-Agent" and rng.random() < 0.3:
                headers.append((name, rng.choice(["Mozilla/5.0 Chrome/1.0", "Mozilla/4.0 (compatible; MSIE 6.0;)",
                                                    "Mozilla/4.0 (compatible; MSIE 8.0; SV1)"])))
            else:
                headers.append((name, value(rng)))
    rng.shuffle(headers)
    headers.append(("Connection", rng.choice(["close", "close", "keep-alive"])))
    method = rng.choice(["GET", "GET", "GET", "HEAD", "POST"])
    client = rng.choice(["10.1.2.3", "192.0.2.77", "2001:db8::5"])
    return OracleRequest(client, "http://localhost" + path, method=method, headers=headers, http_version=version)


# -- configs ------------------------------------------------------------------------------------

FIELDS = ('$remote_addr|$remote_user|"$request"|$status|$body_bytes_sent|$bytes_sent|$request_length|'
          '"$http_referer"|"$http_user_agent"|$http_x_custom|$arg_a|$uri|$request_uri|$host|'
          '$sent_http_content_type|$sent_http_content_length|$sent_http_location|$sent_http_x_tag|'
          '$request_completion|$pipe|$server_protocol|$request_method|$cookie_c|$http_cookie|$is_args|'
          '$upstream_addr|$upstream_status|$STATUS|${request_length}x|$sent_http_connection|$sent_http_etag|'
          '$sent_http_last_modified|$sent_http_accept_ranges')
FORMATS = f"""
    log_format plain '{FIELDS}';
    log_format js escape=json '{{"ip":"$remote_addr","req":"$request","s":$status,"b":$body_bytes_sent,'
                              '"ua":"$http_user_agent","x":"$http_x_custom","a":"$arg_a","u":"$remote_user",'
                              '"r":"$http_referer","ct":"$sent_http_content_type","up":"$upstream_addr"}}';
    log_format raw escape=none '$remote_addr [$time_local] ms=$msec rt=$request_time $time_iso8601 '
                               '"$request" $status $bytes_sent "$http_x_custom" "$http_user_agent" $arg_b';
    log_format tail escape=default 'cn=$connection $request_method $status' ' $http_x_custom' '$arg_a';
"""


def site(root: str) -> str:
    return f"""
        root {root};
        error_page 404 /404.html;
        location = /404.html {{ internal; }}
        location / {{ return 200 "hello\\n"; }}
        location /text {{ return 404 "not here"; }}
        location /gone {{ return 410; }}
        location /redir {{ return 301 /elsewhere; }}
        location /away {{ return 302 http://example.com/x; }}
        location /empty {{ return 204; }}
        location /teapot {{ return 418; }}
        location /boom {{ return 500; }}
        location /close {{ return 444; }}
        location /tagged {{ add_header X-Tag "t\\"1"; return 200 tagged; }}
        location /static/ {{ }}
        location /missing/ {{ }}
        location /fallback {{ error_page 404 = @named; return 404; }}
        location @named {{ return 200 "named"; }}
        location /cond {{ if ($arg_a) {{ return 202 "iffed"; }} return 200 plain; }}
        location /proxy {{ proxy_pass http://127.0.0.1:9; }}
        location /only-get {{ limit_except GET {{ access_log logs/post.log js; }} return 200 got; }}
        location /ep {{ error_page 403 =200 /static/a.html; return 403; }}
        location /epr {{ error_page 404 http://example.com/nf; return 404; }}
        location /refresh {{ msie_refresh on; return 302 '/a b"c'; }}
        location /bad {{ error_page 500 /static/b.css; return 500; }}
        location /always {{ add_header X-Tag a always; add_header X-Tag b; return 404; }}
        location /txt302 {{ return 302 "/to?q=1"; }}
    """


PATHS = ["/", "/text", "/gone", "/redir", "/away", "/empty", "/teapot", "/boom", "/close", "/tagged",
         "/static/a.html", "/static/b.css", "/static/data.bin", "/static/", "/static", "/static/none.txt",
         "/missing/x", "/fallback", "/cond", "/proxy/x", "/only-get", "/%22q\\\"é", "/static/A.HTML", "/ep",
         "/epr", "/refresh", "/bad", "/always", "/txt302"]


@pytest.fixture(scope="module")
def docroot() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(f"{d}/static")
        Path(d, "static/a.html").write_text("<p>a</p>\n" * 5)
        Path(d, "static/A.HTML").write_text("upper\n")
        Path(d, "static/b.css").write_text("b{}")
        Path(d, "static/data.bin").write_bytes(bytes(range(256)))
        Path(d, "static/index.html").write_text("index\n")
        Path(d, "404.html").write_text("custom not found\n")
        yield d


@pytest.mark.parametrize("seed", range(6))
def test_random_requests_every_escaping(seed: int, docroot: str) -> None:
    """Four formats (default, json, none escaping; combined) on every request to a server that
    answers in every way nginxsim knows: text, error and redirect pages, 204, 444, static files,
    error_page, named locations, if, limit_except, and an upstream (placeholders)."""
    rng = random.Random(seed)
    conf = f"""events {{}}
http {{
    {FORMATS}
    port_in_redirect off;
    server {{
        listen 80;
        access_log logs/plain.log plain;
        access_log logs/js.log js;
        access_log logs/raw.log raw;
        access_log logs/combined.log;
        access_log logs/tail.log tail;
        {site(docroot)}
    }}
}}
"""
    requests = [request(rng, PATHS) for _ in range(150)]
    assert assert_same_lines(conf, requests, f"seed {seed}") >= 150 * 4


_VARIABLES = """remote_addr remote_user request status body_bytes_sent bytes_sent request_length http_user_agent
    http_referer http_x_custom arg_a arg_b cookie_c uri request_uri request_method server_protocol host http_host
    sent_http_content_type sent_http_content_length sent_http_location sent_http_x_tag sent_http_etag
    sent_http_last_modified sent_http_accept_ranges sent_http_connection sent_http_keep_alive request_completion
    pipe is_args upstream_addr upstream_status upstream_http_server STATUS Request_Length binary_remote_addr
    remote_port scheme https nginx_version document_root request_filename content_type http_cookie ssl_protocol
    http2 request_body server_name hostname args query_string""".split()
_LITERALS = [" ", "|", '\\"', "[", "]", "{", "}", ":", "=", "é", "\\t", "-", ","]


def random_format(rng: random.Random, name: str) -> str:
    """A log_format nginx accepts: an optional escape=, then strings of literals and variables
    (bracketed or not), split at random into several arguments."""
    parts: list[str] = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.6:
            var = rng.choice(_VARIABLES)
            parts.append(f"${{{var}}}" if rng.random() < 0.2 else f"${var}")
            if rng.random() < 0.5:
                parts.append(rng.choice(_LITERALS))
        else:
            parts.append("".join(rng.choice(_LITERALS) for _ in range(rng.randint(1, 3))))
    cut = sorted(rng.sample(range(1, len(parts) + 1), min(len(parts), rng.randint(1, 3))))
    strings = ["".join(parts[a:b]) for a, b in zip([0, *cut], cut, strict=False) if parts[a:b]]
    escape = rng.choice(["", "", "escape=default ", "escape=json ", "escape=none "])
    return f"log_format {name} {escape}" + " ".join(f"'{x}'" for x in strings) + ";"


@pytest.mark.parametrize("seed", range(6))
def test_random_formats(seed: int, docroot: str) -> None:
    """Random formats (every escaping, variables of every kind, literals that need escaping in
    the config) on random requests to the answers of `site`."""
    rng = random.Random(1000 + seed)
    formats = [random_format(rng, f"f{i}") for i in range(6)]
    logs = " ".join(f"access_log logs/f{i}.log f{i};" for i in range(6))
    conf = f"""events {{}}
http {{
    {FORMATS}
    {chr(10).join(formats)}
    port_in_redirect off;
    server {{ listen 80; {logs} {site(docroot)} }}
}}
"""
    requests = [request(rng, PATHS) for _ in range(60)]
    assert assert_same_lines(conf, requests, f"formats seed {seed}: {formats}") >= 60 * 5


def test_inheritance_off_and_conditions(docroot: str) -> None:
    """access_log lists inherited whole per level, `off` at a level (even beside other logs),
    `if=` with a map over $status and over an argument, an `if` block and limit_except with their
    own logs, server blocks inheriting from http."""
    conf = f"""events {{}}
http {{
    {FORMATS}
    port_in_redirect off;
    map $status $loggable {{ ~^[23] 0; default 1; }}
    access_log logs/http.log tail;
    server {{
        listen 80;
        root {docroot};
        location / {{ return 200 "root"; }}
        location /quiet {{ access_log off; return 200 "quiet"; }}
        location /both {{ access_log logs/x.log plain; access_log off; return 200 "both"; }}
        location /errors-only {{ access_log logs/err.log tail if=$loggable; return 200 "fine"; }}
        location /errors-only/bad {{ access_log logs/err.log tail if=$loggable; return 503; }}
        location /argcond {{ access_log logs/a.log js if=$arg_log; access_log logs/b.log tail; return 200; }}
        location /nested {{
            access_log logs/n.log plain;
            location /nested/deeper {{ return 200 "deeper"; }}
            location /nested/off {{ access_log off; return 200; }}
            if ($arg_x) {{ access_log logs/if.log js; return 200 "if"; }}
            return 200 "nested";
        }}
        location /lim {{ access_log logs/lim.log js; limit_except GET {{ access_log logs/post.log tail; }}
                         return 200 "lim"; }}
        location /redirected {{ access_log off; error_page 418 = /logged; return 418; }}
        location /logged {{ access_log logs/logged.log plain; return 200 "logged"; }}
    }}
    server {{
        listen 80;
        server_name other;
        access_log logs/other.log raw;
        access_log logs/other2.log js;
        location / {{ return 200 "other"; }}
    }}
}}
"""
    rng = random.Random(7)
    paths = ["/", "/quiet", "/both", "/errors-only", "/errors-only/bad", "/argcond", "/argcond?log=1",
             "/argcond?log=0", "/nested", "/nested/deeper", "/nested/off", "/nested?x=1", "/lim",
             "/redirected"]
    requests = [request(rng, paths) for _ in range(50)]
    for rq in list(requests[:20]):
        requests.append(OracleRequest(rq.client, rq.url, method=rq.method,
                                      headers=[("Host", "other"), ("Connection", "close")]))
    assert assert_same_lines(conf, requests, "inheritance") >= 50


def test_requests_nginx_refuses(docroot: str) -> None:
    """400s met while reading the request: $request_length counts what was read up to the fault
    (the request line, or the header line at fault); 405 for TRACE; no keep-alive. ($remote_addr
    is left out: the harness poses clients through realip, whose phase such requests never reach;
    so are $host, $uri and $request_uri: nginxsim leaves $host empty after a second Host line where
    nginx keeps the first, and keeps "/" and the target for a URI nginx refuses, where nginx has ""
    and no $request_uri.)"""
    conf = f"""events {{}}
http {{
    {FORMATS}
    log_format noaddr '{FIELDS.partition("|")[2].replace("$host|", "").replace("$uri|$request_uri|", "")}';
    access_log logs/plain.log noaddr;
    access_log logs/tail.log tail;
    server {{ listen 80; {site(docroot)} }}
}}
"""
    c = [("Connection", "keep-alive")]
    requests = [
        OracleRequest("10.0.0.1", "http://localhost/", headers=[("X-A", "1"), ("Host", "a/b"), ("X-B", "2"), *c]),
        OracleRequest("10.0.0.1", "http://localhost/", headers=[("Host", "x"), ("Host", "y"), ("X-A", "1"), *c]),
        OracleRequest("10.0.0.1", "http://localhost/", headers=[("Authorization", "Basic YTpi"), ("X-A", "1"),
                                                                ("authorization", "x"), ("X-B", "22"), *c]),
        OracleRequest("10.0.0.1", "http://localhost/", headers=[("If-Match", "a"), ("If-Match", "b"),
                                                                ("Host", "a/b"), *c]),
        OracleRequest("10.0.0.1", "http://localhost/%00", headers=c),
        OracleRequest("10.0.0.1", "http://localhost/../x?a=1", headers=c),
        OracleRequest("10.0.0.1", "http://localhost/", method="TRACE", headers=c),
        OracleRequest("10.0.0.1", "http://localhost/redir", headers=[("Host", "x..y"), *c]),
    ]
    assert assert_same_lines(conf, requests, "refused") == 2 * len(requests)


def test_answer_settings(docroot: str) -> None:
    """What changes the answer's bytes: server_tokens, keepalive_timeout (with a Keep-Alive
    header), keepalive_requests, msie_padding, types and default_type, etag off."""
    conf = f"""events {{}}
http {{
    {FORMATS}
    access_log logs/plain.log plain;
    server {{
        listen 80;
        root {docroot};
        server_tokens off;
        keepalive_timeout 30s 25;
        types {{ text/css css; application/x-weird bin; }}
        default_type application/octet-stream;
        location / {{ return 200 "defaults"; }}
        location /e {{ return 404; }}
        location /static/ {{ etag off; }}
        location /nokeep {{ keepalive_timeout 0; return 200 "x"; }}
        location /nopad {{ msie_padding off; return 403; }}
        location /build {{ server_tokens build; return 502; }}
        location /one {{ keepalive_requests 1; return 200 "one"; }}
        location /t.html {{ return 200 "typed"; }}
    }}
}}
"""
    rng = random.Random(11)
    paths = ["/", "/e", "/static/a.html", "/static/b.css", "/static/data.bin", "/nokeep", "/nopad", "/build",
             "/one", "/t.html", "/x.css"]
    requests = [request(rng, paths) for _ in range(60)]
    assert assert_same_lines(conf, requests, "settings") >= 50


CONFIG_ERRORS = {
    "duplicate-format": "log_format a '$status';\nlog_format a '$uri';",
    "duplicate-combined": "log_format combined '$status';",
    "unknown-escape": "log_format a escape=xml '$status';",
    "dollar-at-end": "log_format a 'x $';",
    "dollar-brace-at-end": "log_format a 'x ${';",
    "empty-name": "log_format a 'x $-y';",
    "empty-brackets": "log_format a 'x ${}';",
    "missing-bracket": "log_format a 'x ${status y';",
    "unknown-variable": "log_format a '$nosuch';",
    "unknown-format": "server { listen 127.0.0.1:{port};\naccess_log logs/a.log nosuch; }",
    "format-after-use": "server { listen 127.0.0.1:{port};\naccess_log logs/a.log late; }\nlog_format late '$uri';",
    "off-with-args": "server { listen 127.0.0.1:{port};\naccess_log off combined; }",
    "bad-parameter": "server { listen 127.0.0.1:{port};\naccess_log logs/a.log combined bogus; }",
    "bad-buffer": "server { listen 127.0.0.1:{port};\naccess_log logs/a.log combined buffer=0; }",
    "bad-buffer-unit": "server { listen 127.0.0.1:{port};\naccess_log logs/a.log combined buffer=3g; }",
    "bad-flush": "server { listen 127.0.0.1:{port};\naccess_log logs/a.log combined buffer=1k flush=1y; }",
    "flush-without-buffer": "server { listen 127.0.0.1:{port};\naccess_log logs/a.log combined flush=1s; }",
    "bad-gzip": "server { listen 127.0.0.1:{port};\naccess_log logs/a.log combined gzip=10; }",
    "buffered-variables": "server { listen 127.0.0.1:{port};\naccess_log logs/$host.log combined buffer=1k; }",
    "conflicting-buffers": ("server { listen 127.0.0.1:{port};\naccess_log logs/a.log combined buffer=1k;\n"
                            "location / { access_log logs/a.log combined buffer=2k; } }"),
    "log-format-in-server": "server { listen 127.0.0.1:{port};\nlog_format a '$uri'; }",
    "syslog-no-server": "server { listen 127.0.0.1:{port};\naccess_log syslog:tag=x; }",
    "syslog-bad-facility": "server { listen 127.0.0.1:{port};\naccess_log syslog:server=127.0.0.1,facility=x; }",
    "syslog-buffered": "server { listen 127.0.0.1:{port};\naccess_log syslog:server=127.0.0.1 combined buffer=1k; }",
    "syslog-bad-tag": "server { listen 127.0.0.1:{port};\naccess_log syslog:server=127.0.0.1,tag=a-b; }",
    "syslog-unknown": "server { listen 127.0.0.1:{port};\naccess_log syslog:server=127.0.0.1,what; }",
    "cache-no-max": "open_log_file_cache inactive=10s;",
    "cache-bad": "open_log_file_cache max=10 inactive=x;",
    "cache-duplicate": "open_log_file_cache max=10;\nopen_log_file_cache off;",
    "server-tokens": "server { listen 127.0.0.1:{port};\nserver_tokens maybe; }",
    "keepalive-timeout": "keepalive_timeout 10y;",
    "keepalive-header": "keepalive_timeout 10s x;",
    "keepalive-requests": "keepalive_requests many;",
    "keepalive-disable": "keepalive_disable msie7;",
    "msie-padding": "msie_padding yes;",
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_config_errors_match_nginx_t(case: str, nginx_binary: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = "events {}\nhttp {\n" + CONFIG_ERRORS[case].replace("{port}", str(port)) + "\n}\n"
    with tempfile.TemporaryDirectory() as directory:
        os.makedirs(f"{directory}/logs")
        Path(directory, "nginx.conf").write_text(text)
        expected = nginx_t(nginx_binary, directory)
        assert expected is not None, f"nginx -t accepted {case}"
        with pytest.raises(nginxsim.ConfigError) as e:
            nginxsim.load(f"{directory}/nginx.conf", prefix=directory)
        assert (e.value.message, e.value.file, e.value.line) == expected, case


def test_types_warnings_match_nginx_t() -> None:
    conf = """events {}
http {
    types { text/html html; text/plain txt;
            text/x-other html; }
    types { a/b TXT; }
    server { listen 80; }
}
"""
    ok, stderr = Nginx.test_config(text=conf)
    assert ok, stderr
    nginx = [(m[1], int(m[2])) for m in re.finditer(r"\[warn\] \d+#\d+: (.*?) in \S+:(\d+)$", stderr, re.M)]
    sim = [(w.rsplit(" in ", 1)[0], int(w.rsplit(":", 1)[1])) for w in nginxsim.load(text=conf).warnings]
    assert sim == nginx


ARGS_CONF = """events {}
http {
  log_format t '$uri [$args] [$query_string] [$is_args] [$arg_a]';
  access_log access.log t;
  server {
    listen 80;
    location = /plain { return 200 "x"; }
    location = /tf { try_files /nonexistent /final; }
    location = /tfq { try_files /nonexistent /final?; }
    location = /ep { error_page 404 /final; return 404; }
    location = /epv { set $t /final; error_page 404 $t; return 404; }
    location = /rw { rewrite ^ /final?; }
    location = /rwa { rewrite ^ /final; }
    location = /setargs { set $args ""; return 200 "y"; }
    location = /final { return 200 "f"; }
  }
}
"""


def test_args_found_or_not() -> None:
    """`$args` is "-" in a log when nginx has no args at all (no or an empty query, a constant
    error_page target without '?', a `?`-ended rewrite of a request without one) and "" when it
    has empty ones (set $args, a variable error_page target, try_files, a `?`-ended rewrite)."""
    paths = ["/plain", "/plain?", "/plain?a=1", "/tf", "/tf?a=1", "/tfq?a=1", "/ep", "/ep?a=1", "/epv",
             "/epv?a=1", "/rw", "/rw?a=1", "/rwa", "/rwa?a=1", "/setargs", "/setargs?a=1"]
    requests = [OracleRequest(client="192.0.2.1", url=f"http://a.test{p}") for p in paths]
    assert assert_same_lines(ARGS_CONF, requests, "args") == len(paths)


REFUSED_CONF = """events {}
http {
  log_format t '[$uri] [$request_uri] [$host] [$args] [$request] [$server_name]';
  access_log access.log t;
  server { listen 80; server_name a.test; error_page 400 /e; location = /e { return 200 "a $host"; } }
  server { listen 80; server_name b.test; error_page 400 /e; location = /e { return 200 "b $host"; } }
}
"""


def test_requests_refused_for_their_uri_or_a_second_host() -> None:
    """A URI nginx cannot normalise leaves `$uri` empty and `$request_uri` not found; a second
    Host line is refused after the first one chose the server (whose error_page answers)."""
    requests = [OracleRequest(client="192.0.2.1", url=f"http://a.test{p}") for p in ("/../x", "/a%00b", "/ok?q")]
    requests += [OracleRequest(client="192.0.2.1", url="http://a.test/ok", headers=[("Host", h1), ("Host", h2)])
                 for h1, h2 in (("a.test", "b.test"), ("b.test", "a.test"), ("b.test", "bad host"))]
    assert assert_same_lines(REFUSED_CONF, requests, "refused") == len(requests)
    assert not compare(None, requests, text=REFUSED_CONF)
