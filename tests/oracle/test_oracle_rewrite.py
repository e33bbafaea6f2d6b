"""The config rewrite, without nginx: which tokens change, and that nothing else does."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from nginxsim.oracle.rewrite import Listen, PeerSpec, Prepared, Rewriter, Source

ROOT = "/R"


def rewrite(
    path: str | None = None,
    *,
    text: str | None = None,
    files: dict[str, str] | None = None,
    prefix: str | None = None,
    **options: Any,
) -> tuple[Prepared, list[PeerSpec]]:
    peers: list[PeerSpec] = []
    numbers = itertools.count(1)

    def endpoint(spec: PeerSpec) -> str:
        peers.append(spec)
        n = next(numbers)
        return f"unix:{ROOT}/_run/u{n}.sock" if spec.unix else f"127.0.0.1:{50000 + n}"

    prepared = Rewriter(
        Source(path, text, files, prefix),
        ROOT,
        ports=lambda port, hosts: 40000 + port,
        endpoint=endpoint,
        certificate=lambda: (f"{ROOT}/_tls/cert.pem", f"{ROOT}/_tls/key.pem"),
        dead_port=9,
        compiled_prefix="/usr/share/nginx",
        ipv6=True,
        **options,
    ).run()
    return prepared, peers


def main_text(p: Prepared) -> str:
    return p.files[p.main].decode()


def test_listens_map_to_loopback_keeping_the_address_table() -> None:
    text = """events {}
http {
    server { listen 80; listen [::]:80 default_server; }
    server { listen 10.0.0.1:80; listen 10.0.0.1:8080 ssl; }
    server { listen 0.0.0.0:8080; listen unix:/run/x.sock; }
    server { server_name implicit; }
    server { listen 10.0.0.2; listen [2001:db8::1]:80 reuseport; }
}
"""
    p, _ = rewrite(text=text)
    assert p.listens == [
        Listen("ipv4", "*", 80, "127.0.0.1", 40080, False),
        Listen("ipv6", "::", 80, "::1", 40080, False),
        Listen("ipv4", "10.0.0.1", 80, "127.0.0.2", 40080, False),
        Listen("ipv4", "10.0.0.1", 8080, "127.0.0.2", 48080, False),
        Listen("ipv4", "*", 8080, "127.0.0.1", 48080, False),
        Listen("unix", "/run/x.sock", 0, f"{ROOT}/_run/listen5.sock", 0, False),
        Listen("ipv4", "10.0.0.2", 80, "127.0.0.3", 40080, False),
        Listen("ipv6", "2001:db8::1", 80, "127.0.0.4", 40080, False),
    ]
    out = main_text(p)
    assert out.count("\n") == text.count("\n")
    assert "listen 127.0.0.1:40080 proxy_protocol; listen [::1]:40080 default_server proxy_protocol;" in out
    assert "listen 127.0.0.2:48080 ssl proxy_protocol;" in out
    assert f"listen unix:{ROOT}/_run/listen5.sock proxy_protocol;" in out
    assert "server { listen 127.0.0.1:40080 proxy_protocol; server_name implicit; }" in out
    assert "listen 127.0.0.4:40080 reuseport proxy_protocol;" in out


def test_http_block_gets_realip_temp_paths_and_access_log_on_its_first_line() -> None:
    p, _ = rewrite(text="events {}\nhttp {\n  proxy_temp_path /var/x 1 2;\n}\n", extra_http=["log_format f '$uri';"])
    lines = main_text(p).splitlines()
    assert lines[1].startswith(
        "http { set_real_ip_from 127.0.0.0/8; set_real_ip_from ::1; set_real_ip_from unix:; "
        "real_ip_header proxy_protocol; client_body_temp_path /R/_tmp/client_body_temp_path;"
    )
    assert "proxy_temp_path /R/_tmp/proxy_temp_path" not in lines[1]  # the config sets its own
    assert lines[1].endswith("access_log /R/access.log; log_format f '$uri';")
    assert lines[2] == "  proxy_temp_path /R/_tmp/proxy_temp_path-1 1 2;"
    assert p.realip.header is None


def test_a_config_with_realip_keeps_its_header_and_trusts_loopback_too() -> None:
    text = """events {}
http {
    real_ip_header X-Forwarded-For;
    server { set_real_ip_from 10.0.0.0/8; set_real_ip_from 10.1.0.0/16; }
}
"""
    p, _ = rewrite(text=text)
    assert p.realip.header == "X-Forwarded-For"
    out = main_text(p)
    assert (
        "set_real_ip_from 10.0.0.0/8; set_real_ip_from 127.0.0.0/8; set_real_ip_from ::1; "
        "set_real_ip_from unix:; set_real_ip_from 10.1.0.0/16;"
    ) in out
    assert "real_ip_header" not in out.replace("real_ip_header X-Forwarded-For;", "")
    assert "proxy_protocol" not in out
    p, _ = rewrite(text="events {} http { real_ip_header proxy_protocol; server { listen 80; } }")
    assert p.realip.header is None and "listen 127.0.0.1:40080 proxy_protocol;" in main_text(p)


def test_a_config_reading_proxy_lines_itself_gets_the_client_in_a_header() -> None:
    p, _ = rewrite(text="events {} http { server { listen 80 proxy_protocol; } server { listen 81; } }")
    assert p.realip.header == "X-Nginxsim-Client"
    out = main_text(p)
    assert "set_real_ip_from unix:; real_ip_header X-Nginxsim-Client;" in out
    assert "listen 127.0.0.1:40080 proxy_protocol; } server { listen 127.0.0.1:40081; }" in out
    assert [li.proxy_protocol for li in p.listens] == [True, False]


def test_upstreams_and_literal_addresses_become_echo_servers() -> None:
    text = """events {}
http {
    server {
        location /a { proxy_pass http://Pool/x; }
        location /b { proxy_pass https://10.0.0.9:8443/y?z; }
        location /c { uwsgi_pass unix:/run/app.sock; }
        location /d { fastcgi_pass backend; }
        location /e { fastcgi_pass 10.0.0.3:9000; }
        location /f { proxy_pass http://unix:/run/p.sock:/u; }
        location /g { proxy_pass http://backend.internal; }
        location /h { proxy_pass http://backend.internal:80; }
    }
    upstream pool { server 10.0.0.1:8080 weight=2; server app.internal backup; }
    map $a $b { proxy_pass http://10.0.0.1; listen 80; }
}
"""
    p, peers = rewrite(text=text)
    out = main_text(p)
    assert "proxy_pass http://Pool/x;" in out  # an upstream name (case-insensitive) stays
    assert "fastcgi_pass backend;" in out  # "no port in upstream": nginx must still refuse it
    assert "server 127.0.0.1:50007 weight=2; server 127.0.0.1:50008 backup;" in out
    assert "map $a $b { proxy_pass http://10.0.0.1; listen 80; }" in out  # data, not directives
    assert "proxy_pass https://127.0.0.1:50001/y?z;" in out
    assert f"uwsgi_pass unix:{ROOT}/_run/u2.sock;" in out
    assert "fastcgi_pass 127.0.0.1:50003;" in out
    assert f"proxy_pass http://unix:{ROOT}/_run/u4.sock:/u;" in out
    assert "location /g { proxy_pass http://127.0.0.1:50005; }" in out
    assert peers == [
        PeerSpec("10.0.0.9:8443", "10.0.0.9:8443", False, "10.0.0.9:8443"),
        PeerSpec("unix:/run/app.sock", "unix:/run/app.sock", True),
        PeerSpec("10.0.0.3:9000", "10.0.0.3:9000", False),
        PeerSpec("unix:/run/p.sock", "unix:/run/p.sock", True),
        PeerSpec("backend.internal:80", "backend.internal", False, "backend.internal"),
        PeerSpec("backend.internal:80", "backend.internal:80", False, "backend.internal"),
        PeerSpec("10.0.0.1:8080", "pool", False),
        PeerSpec("app.internal", "pool", False),
    ]
    assert {s.text for s in p.peers.values()} == {s.text for s in peers}


def test_variable_pass_gets_a_loopback_bind_in_its_location(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(
        "events {}\nhttp { server {\n location / {\n  include proxy.conf;\n }\n"
        " location /b { grpc_bind 127.0.0.5; grpc_pass $g; } } }\n"
    )
    (tmp_path / "proxy.conf").write_text("proxy_set_header Host $host;\nproxy_pass http://$host$request_uri;\n")
    p, _ = rewrite(str(tmp_path / "nginx.conf"))
    out = main_text(p)
    assert "location / { proxy_bind 127.0.0.1;\n  include " + ROOT + "/_conf/proxy.conf;" in out
    assert "location /b { grpc_bind 127.0.0.5; grpc_pass $g; }" in out
    assert p.files[f"{ROOT}/_conf/proxy.conf"] == (tmp_path / "proxy.conf").read_bytes()


def test_files_paths_and_dropped_directives(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("server { listen 81; }\n")
    (tmp_path / "conf.d" / "a.conf").write_text("server { listen 82; }\n")
    (tmp_path / "cert.pem").write_text("x")
    conf = tmp_path / "nginx.conf"
    conf.write_text("""user www-data;
pid /run/nginx.pid; daemon on; worker_processes 4;
error_log /var/log/nginx/error.log warn;
load_module modules/x.so;
stream { server { listen 3306; proxy_pass 10.0.0.1:3306; } }
events {}
http {
    include conf.d/*.conf;
    include missing/*.conf;
    include /nonexistent.conf;
    resolver 8.8.8.8 [2001:4860::8888]:53 valid=30s;
    error_log logs/http.log;
    access_log syslog:server=10.0.0.1 combined buffer=32k if=$loggable;
    server {
        listen 443 ssl;
        root html;
        alias /abs/;
        ssl_certificate cert.pem;
        ssl_certificate_key key.pem;
        auth_basic_user_file htpasswd;
        ssl_stapling on;
    }
}
""")
    p, _ = rewrite(str(conf), prefix="/srv/prefix", worker_processes=2, debug=True)
    out = main_text(p)
    lines, original = out.splitlines(), conf.read_text().splitlines()
    assert len(lines) == len(original)
    assert lines[0].strip() == "" and lines[2].strip() == "" and lines[4].strip() == ""
    assert lines[1].strip() == "worker_processes 2;"
    assert lines[3] == "load_module /srv/prefix/modules/x.so;"
    assert lines[7] == f"    include {ROOT}/_conf/conf.d/a.conf; include {ROOT}/_conf/conf.d/b.conf;"
    assert lines[8].strip() == ""  # a glob matching nothing is fine for nginx
    assert lines[9] == "    include /nonexistent.conf;"  # left for nginx to report
    assert lines[10] == "    resolver 127.0.0.1:9 127.0.0.1:9 valid=30s;"
    assert lines[11] == f"    error_log {ROOT}/error.log debug;"
    assert lines[12].split() == ["access_log", f"{ROOT}/access.log", "combined", "if=$loggable;"]
    assert lines[15:20] == [
        "        root /srv/prefix/html;",
        "        alias /abs/;",
        f"        ssl_certificate {tmp_path}/cert.pem;",
        f"        ssl_certificate_key {ROOT}/_tls/key.pem;",  # missing: the generated one
        f"        auth_basic_user_file {tmp_path}/htpasswd;",
    ]
    assert lines[20].strip() == ""  # ssl_stapling would fetch OCSP answers from the network
    assert {li.port for li in p.listens} == {81, 82, 443}
    assert (f"{ROOT}/nginx.conf", str(conf)) in p.labels


def test_text_mode_virtual_files() -> None:
    files = {
        "sites/a.conf": "server { listen 80; root /srv/www; }",
        "/srv/www/index.html": "hi",
        "/etc/nginx/x.conf": "server { listen 81; }",
    }
    p, _ = rewrite(text="events {} http { include sites/*.conf; include /etc/nginx/x.conf; }", files=files)
    assert "include /R/sites/a.conf; include /R/_abs/etc/nginx/x.conf;" in main_text(p)
    assert p.files["/R/sites/a.conf"] == b"server { listen 127.0.0.1:40080 proxy_protocol; root /R/_abs/srv/www; }"
    assert p.files["/R/_abs/srv/www/index.html"] == b"hi"
    assert p.labels == [("/R/_abs/", "/"), ("/R/", "")]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="single lines"):
        rewrite(text="events {}", extra_http=["a 1;\nb 2;"])
    with pytest.raises(ValueError, match="exactly one"):
        Source()
    with pytest.raises(ValueError, match="files= goes with text="):
        Source(path="x", files={})
