"""Config errors raised while compiling (module handlers, server and location tables), each
compared with `nginx -t`: same message, file and line.

The reader's and the generic checks' errors are tested in tests/test_conf_validate.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

import nginxsim

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_conf_validate import nginx_t  # noqa: E402  (the shared `nginx -t` runner)

pytestmark = pytest.mark.oracle

HEAD = "events {}\nhttp {\n"

CASES = {
    "duplicate-location": "server { listen 127.0.0.1:{port};\nlocation /x { }\nlocation /x { }\n}",
    "duplicate-exact-location": "server { listen 127.0.0.1:{port};\nlocation = /x { }\nlocation =/x { }\n}",
    "invalid-regex-location": 'server { listen 127.0.0.1:{port};\nlocation ~ "(abc" { }\n}',
    "invalid-regex-rewrite": 'server { listen 127.0.0.1:{port};\nrewrite "[z-a]" /x;\n}',
    "invalid-regex-server-name": 'server { listen 127.0.0.1:{port};\nserver_name "~^(a";\n}',
    "duplicate-default-server": (
        "server { listen 127.0.0.1:{port} default_server; }\n"
        "server { listen 127.0.0.1:{port} default_server; }"
    ),
    "duplicate-listen": "server { listen 127.0.0.1:{port};\nlisten 127.0.0.1:{port}; }",
    "bad-return-code": "server { listen 127.0.0.1:{port};\nlocation / { return /foo; }\n}",
    "return-code-too-big": "server { listen 127.0.0.1:{port};\nlocation / { return 1000 x; }\n}",
    "invalid-location-modifier": "server { listen 127.0.0.1:{port};\nlocation ~~ /x { }\n}",
    "outside-location": "server { listen 127.0.0.1:{port};\nlocation /a/ {\nlocation /b/ { }\n}\n}",
    "inside-exact": "server { listen 127.0.0.1:{port};\nlocation = /a {\nlocation /a/b { }\n}\n}",
    "named-nested": "server { listen 127.0.0.1:{port};\nlocation /a {\nlocation @n { }\n}\n}",
    "inside-named": "server { listen 127.0.0.1:{port};\nlocation @n {\nlocation /a { }\n}\n}",
    "server-name-star": "server { listen 127.0.0.1:{port};\nserver_name *x;\n}",
    "server-name-dot": "server { listen 127.0.0.1:{port};\nserver_name .;\n}",
    "invalid-wildcard": (
        "server { listen 127.0.0.1:{port};\nserver_name www.*.com; }\n"
        "server { listen 127.0.0.1:{port}; server_name b; }"
    ),
    "uri-part-in-regex": "server { listen 127.0.0.1:{port};\nlocation ~ /x { proxy_pass http://127.0.0.1:1/a; }\n}",
    "uri-part-in-if": (
        "server { listen 127.0.0.1:{port};\nlocation /x { if ($arg_a) {\n"
        "proxy_pass http://127.0.0.1:1/a; } }\n}"
    ),
    "upstream-with-port": (
        "upstream up { server 127.0.0.1:1; }\nserver { listen 127.0.0.1:{port};\n"
        "location / { proxy_pass http://up:8080; }\n}"
    ),
    "uwsgi-no-port": "server { listen 127.0.0.1:{port};\nlocation / { uwsgi_pass 127.0.0.1; }\n}",
    "proxy-pass-prefix": "server { listen 127.0.0.1:{port};\nlocation / { proxy_pass ftp://127.0.0.1:1; }\n}",
    "duplicate-upstream": "upstream up { server 127.0.0.1:1; }\nupstream UP { server 127.0.0.1:2; }",
    "upstream-bad-weight": "upstream up {\nserver 127.0.0.1:1 weight=0; }",
    "unknown-variable": "server { listen 127.0.0.1:{port};\nlocation / { return 200 $nosuch; }\n}",
    "set-builtin": "server { listen 127.0.0.1:{port};\nlocation / { set $uri x; }\n}",
    "bad-variable-name": 'server { listen 127.0.0.1:{port};\nlocation / { return 200 "a$"; }\n}',
    "missing-bracket": 'server { listen 127.0.0.1:{port};\nlocation / { return 200 "${host"; }\n}',
    "if-invalid-condition": "server { listen 127.0.0.1:{port};\nlocation / { if (abc) { } }\n}",
    "if-unexpected-op": "server { listen 127.0.0.1:{port};\nlocation / { if ($a == b) { } }\n}",
    "rewrite-bad-flag": "server { listen 127.0.0.1:{port};\nrewrite ^ /x bogus;\n}",
    "error-page-range": "server { listen 127.0.0.1:{port};\nerror_page 200 /x;\n}",
    "error-page-499": "server { listen 127.0.0.1:{port};\nerror_page 499 /x;\n}",
    "error-page-equals-only": "server { listen 127.0.0.1:{port};\nerror_page =404 /x;\n}",
    "flag-value": "server { listen 127.0.0.1:{port};\nabsolute_redirect maybe;\n}",
    "listen-bad-param": "server { listen 127.0.0.1:{port} bogus; }",
    "listen-bad-port": "server { listen 127.0.0.1:99999; }",
    "root-and-alias": "server { listen 127.0.0.1:{port};\nlocation /a { root /x;\nalias /y; }\n}",
    "duplicate-root": "server { listen 127.0.0.1:{port};\nlocation /a { root /x;\nroot /y; }\n}",
    "duplicate-proxy-pass": (
        "server { listen 127.0.0.1:{port};\nlocation /a { proxy_pass http://127.0.0.1:1;\n"
        "proxy_pass http://127.0.0.1:2; }\n}"
    ),
    "limit-except-method": "server { listen 127.0.0.1:{port};\nlocation /a { limit_except GOT { } }\n}",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_compile_errors_match_nginx_t(case: str, nginx_binary: str, unused_tcp_port: int) -> None:
    binary = nginx_binary
    text = HEAD + CASES[case].replace("{port}", str(unused_tcp_port)) + "\n}\n"
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "nginx.conf").write_text(text)
        expected = nginx_t(binary, directory)
        assert expected is not None, f"nginx -t accepted {case}"
        with pytest.raises(nginxsim.ConfigError) as e:
            nginxsim.load(f"{directory}/nginx.conf")
        got = (e.value.message, e.value.file, e.value.line)
        assert got == expected, f"{case}: nginx -t says {expected}"


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
