"""Unit tests of the access log (`modules/log.py`) and the answer it logs (`modules/response.py`).
The byte-for-byte comparisons with nginx's own files are in tests/oracle/test_log_oracle.py."""

from __future__ import annotations

import json
import tempfile

import pytest

import nginxsim
from nginxsim.decision import LogLine
from nginxsim.modules.log import decode_base64, parse_size
from nginxsim.modules.response import parse_msec


def load(http: str, prefix: str = "/srv/ngx") -> nginxsim.Config:
    return nginxsim.load(text=f"events {{}}\nhttp {{\n{http}\n}}\n", prefix=prefix)


def lines(cfg: nginxsim.Config, url: str = "http://localhost/", **kw: object) -> list[str]:
    return [line.line for line in cfg.route("192.0.2.1", url, **kw).log_lines]  # type: ignore[arg-type]


def test_escaping_default_json_none() -> None:
    cfg = load("""
        log_format d '$http_x|$http_missing|$arg_e|$status';
        log_format j escape=json '$http_x|$http_missing|$arg_e|$status';
        log_format n escape=none '$http_x|$http_missing|$arg_e|$status';
        access_log d.log d; access_log j.log j; access_log n.log n;
        server { listen 80; location / { return 200; } }
    """)
    value = 'a"b\\c\x01\t\x7f\udce9é'
    got = lines(cfg, "http://localhost/?e=", headers=[("X", value)])
    assert got == [
        'a\\x22b\\x5Cc\\x01\\x09\\x7F\\xE9\\xC3\\xA9|-||200\n',
        'a\\"b\\\\c\\u0001\\t\x7f\udce9é|||200\n',
        'a"b\\c\x01\t\x7f\udce9é|||200\n',
    ]


def test_format_strings_join_and_own_fields_are_not_escaped() -> None:
    cfg = load("""
        log_format f '[$request_length]' '${status}x' "$STATUS" '$pipe $request_completion';
        access_log f.log f;
        server { listen 80; location / { return 200 "ok"; } }
    """)
    assert lines(cfg, headers=[("Connection", "close")]) == ["[54]200x200. OK\n"]  # 16 + 17 + 19 + 2


def test_default_log_is_combined_at_debians_path() -> None:
    cfg = load('server { listen 80; location / { return 404; } }')
    (line,) = cfg.route("192.0.2.1", "http://localhost/x?a=1", headers={"User-Agent": "ua"}).log_lines
    assert line == LogLine("/var/log/nginx/access.log",
                           '192.0.2.1 - - [01/Jan/2026:00:00:00 +0000] "GET /x?a=1 HTTP/1.1" 404 153 "-" "ua"\n')


def test_paths_are_relative_to_the_prefix_and_logs_keep_their_order() -> None:
    cfg = load("""
        log_format a 'a'; log_format b 'b';
        access_log logs/b.log b; access_log /abs/a.log a;
        server { listen 80; }
    """)
    d = cfg.route("192.0.2.1", "http://localhost/")
    assert [(x.path, x.line, x.format) for x in d.log_lines] == [("/srv/ngx/logs/b.log", "b\n", "b"),
                                                                ("/abs/a.log", "a\n", "a")]
    assert d.log_lines[0].where == "/srv/ngx/nginx.conf:5"


def test_inheritance_is_all_or_nothing_and_off_wins_at_its_level() -> None:
    cfg = load("""
        log_format a 'a'; log_format b 'b'; log_format Main 'M';
        access_log x a; access_log y b;
        server { listen 80;
            location /own { access_log z main; }
            location /off { access_log z a; access_log off; }
            location /inh { }
            location /if { if ($arg_q) { access_log q b; } }
        }
    """)
    assert lines(cfg, "http://localhost/inh") == ["a\n", "b\n"]
    assert lines(cfg, "http://localhost/own") == ["M\n"]  # format names are looked up caselessly
    assert lines(cfg, "http://localhost/off") == []
    assert lines(cfg, "http://localhost/if?q=1") == ["b\n"]
    assert lines(cfg, "http://localhost/if") == ["a\n", "b\n"]


def test_if_filter_and_undecided_condition() -> None:
    cfg = load("""
        map $status $bad { ~^[23] 0; default 1; }
        log_format s '$status $body_bytes_sent $upstream_addr';
        access_log x s if=$bad;
        access_log y s if=$arg_log;
        server { listen 80;
            location /ok { return 200; }
            location /no { return 503; }
            location /up { proxy_pass http://127.0.0.1:9; }
        }
    """)
    assert lines(cfg, "http://localhost/ok") == []
    assert lines(cfg, "http://localhost/no?log=0") == ["503 197 -\n"]
    assert lines(cfg, "http://localhost/ok?log=yes") == ["200 0 -\n"]
    up = cfg.route("192.0.2.1", "http://localhost/up").log_lines
    assert [(x.line, x.placeholders, x.condition) for x in up] == [
        ("<status> <body_bytes_sent> <upstream_addr>\n", ("status", "body_bytes_sent", "upstream_addr"), "$bad")]
    pinned = cfg.route("192.0.2.1", "http://localhost/up",
                       pinned={"status": "502", "body_bytes_sent": "0", "upstream_addr": "127.0.0.1:9"}).log_lines
    assert [(x.line, x.placeholders, x.condition) for x in pinned] == [("502 0 127.0.0.1:9\n", (), None)]


def test_times_and_ids_are_pinned_or_the_fixed_clock() -> None:
    cfg = load("""
        log_format t '$time_local|$time_iso8601|$msec|$request_time|$request_id|$connection';
        access_log x t;
        server { listen 80; }
    """)
    pins = {"time_local": "28/Sep/1970:12:00:00 +0600", "time_iso8601": "1970-09-28T12:00:00+06:00",
            "msec": "23349600.123", "request_time": "0.042", "request_id": "f" * 32, "connection": "7"}
    assert lines(cfg, pinned=pins) == ["|".join(pins.values()) + "\n"]
    assert lines(cfg)[0].startswith("01/Jan/2026:00:00:00 +0000|2026-01-01T00:00:00+00:00|1767225600.000|0.000|")


def test_variable_path_needs_an_existing_root() -> None:
    with tempfile.TemporaryDirectory() as root:
        cfg = load(f"""
            log_format h '$host';
            server {{ listen 80; access_log logs/$host.log h;
                location /here {{ root {root}; return 200; }}
                location /nowhere {{ root {root}/missing; return 200; }}
            }}
        """)
        d = cfg.route("192.0.2.1", "http://example.org/here")
        assert [(x.path, x.line) for x in d.log_lines] == [("/srv/ngx/logs/example.org.log", "example.org\n")]
        assert lines(cfg, "http://example.org/nowhere") == []


def test_syslog_line() -> None:
    cfg = load("""
        log_format m '$status';
        server { listen 80;
            location / { access_log syslog:server=127.0.0.1,facility=local0,severity=notice,tag=web m; }
            location /n { access_log syslog:server=[::1]:5514,nohostname m; return 204; }
        }
    """)
    host = cfg.plan.hostname.decode()
    assert lines(cfg, "http://localhost/") == [f"<133>Jan  1 00:00:00 {host} web: 404"]
    assert lines(cfg, "http://localhost/n") == ["<190>Jan  1 00:00:00 nginx: 204"]


def test_logging_leaves_the_decision_as_routed() -> None:
    cfg = load("""
        map $status $m { default x$status; }
        log_format f '$m $uri $request_length';
        access_log x f;
        server { listen 80; location / { return 200 $uri; } }
    """)
    d = cfg.route("192.0.2.1", "http://localhost/a")
    before = dict(d.variables)
    assert d.log_lines[0].line == "x200 /a 36\n"
    assert d.variables == before and "m" not in before
    assert json.loads(json.dumps(d.to_dict()))["log_lines"][0]["line"] == "x200 /a 36\n"


def test_each_client_logs_its_own_address_when_decisions_are_shared() -> None:
    cfg = load("log_format a '$remote_addr $status'; access_log x a; server { listen 80; return 200; }")
    got = [cfg.route(c, "http://localhost/").log_lines[0].line for c in ("192.0.2.1", "192.0.2.2", "192.0.2.3")]
    assert got == ["192.0.2.1 200\n", "192.0.2.2 200\n", "192.0.2.3 200\n"]


def test_remote_user_from_basic_credentials() -> None:
    cfg = load("""
        log_format u '$remote_user';
        access_log x u;
        server { listen 80; location / { return 200 "[$remote_user]"; } }
    """)
    for auth, user in (("Basic YWxpY2U6cHc=", "alice"), ("basic   YWxpY2U6cHc", "alice"), ("Basic OnB3", "-"),
                       ("Basic bm9jb2xvbg==", "-"), ("Bearer YWxpY2U6cHc=", "-"), ("Basic !!!!", "-")):
        d = cfg.route("192.0.2.1", "http://localhost/", headers={"Authorization": auth})
        assert d.log_lines[0].line == user + "\n", auth
        assert d.body == f"[{'' if user == '-' else user}]"


def test_request_length_of_requests_read_up_to_a_fault() -> None:
    cfg = load("log_format l '$status $request_length'; access_log x l; server { listen 80; return 200; }")
    ok = [("Host", "a"), ("X", "y")]
    assert lines(cfg, headers=ok) == [f"200 {16 + 9 + 6 + 2}\n"]
    assert lines(cfg, headers=[("X", "y"), ("Host", "a/b"), ("Z", "1")]) == [f"400 {16 + 6 + 11}\n"]
    assert lines(cfg, headers=[("Host", "a"), ("Host", "b"), ("Z", "1")]) == [f"400 {16 + 9 + 9}\n"]
    assert lines(cfg, "http://localhost/../x") == ["400 20\n"]
    assert lines(cfg, "http://localhost/x", http_version="0.9") == ["200 8\n"]


def test_answers_whose_bytes_are_unknown() -> None:
    cfg = load("""
        log_format b '$status $bytes_sent $body_bytes_sent $sent_http_content_type';
        access_log x b;
        server { listen 80;
            location /cs { charset utf-8; return 200 "x"; }
            location /gz { gzip on; return 200 "x"; }
        }
    """)
    (cs,) = cfg.route("192.0.2.1", "http://localhost/cs").log_lines
    assert cs.line == "200 <bytes_sent> <body_bytes_sent> <sent_http_content_type>\n"
    assert lines(cfg, "http://localhost/gz") == ["200 148 1 text/plain\n"]  # no Accept-Encoding: not gzipped
    assert lines(cfg, "http://localhost/gz", headers={"Accept-Encoding": "gzip"})[0].startswith("200 <bytes_sent>")


@pytest.mark.parametrize(("text", "message"), [
    ("log_format a '$x'; log_format a '$y';", 'duplicate "log_format" name "a"'),
    ("log_format a escape=xml 'x';", 'unknown log format escaping "xml"'),
    ("log_format a 'a$';", 'invalid parameter "$"'),
    ("log_format a 'a${b c}';", 'the closing bracket in "b" variable is missing'),
    ("access_log x nosuch;", 'unknown log format "nosuch"'),
    ("access_log off x;", 'invalid parameter "x"'),
    ("access_log x combined flush=1s;", 'no buffer is defined for access_log "x"'),
    ("access_log $host.log combined buffer=4k;", "buffered logs cannot have variables in name"),
    ("access_log x combined gzip=0;", 'invalid compression level "0"'),
    ("access_log syslog:server=h,tag=a.b;", 'syslog "tag" only allows alphanumeric characters and underscore'),
    ("open_log_file_cache valid=1s;", '"open_log_file_cache" must have "max" parameter'),
    ("types { text/plain txt; } server_tokens maybe;", 'invalid value "maybe"'),
])
def test_config_errors(text: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        load(text)
    assert e.value.message == message


def test_parsers() -> None:
    assert [parse_msec(t) for t in ("75s", "1m 30s", "500ms", "2", "1y", "1M", "ms", "1s2", "5ms3s")] == [
        75000, 90000, 500, 2000, None, None, None, 3000, None]
    assert [parse_size(t) for t in ("64k", "1M", "10", "1g", "", "k", "-1")] == [65536, 1048576, 10, -1, -1, -1, -1]
    assert [decode_base64(t) for t in (b"YWxpY2U6cHc=", b"YWxpY2U6cHc", b"YQ", b"Y", b"Y!", b"YQ==junk")] == [
        b"alice:pw", b"alice:pw", b"a", None, None, b"a"]
