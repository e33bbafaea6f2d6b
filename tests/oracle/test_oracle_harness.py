"""The harness against the real nginx: listens, client posing, echo records, errors, cleanup."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nginxsim.errors import RequestError
from nginxsim.oracle import Nginx, NginxStartError, OracleRequest

Start = Callable[..., Nginx]

SITE = r"""
events {}
http {
    upstream pool { server 10.0.0.1:8080; server app.internal:9000; }
    server {
        listen 80;
        server_name a.test;
        location / { return 200 "a $remote_addr:$remote_port\n"; }
        location /p/ { proxy_pass http://pool/x/; proxy_set_header X-Up $proxy_host; }
        location /i { proxy_pass http://backend.internal:8081; proxy_set_header X-Up $proxy_host; }
        location /u/ {
            uwsgi_pass unix:/run/app.sock;
            uwsgi_param REQUEST_METHOD $request_method;
            uwsgi_param REQUEST_URI $request_uri;
            uwsgi_param SERVER_PORT $server_port;
        }
        location /f { fastcgi_pass 10.0.0.7:9000; fastcgi_param REQUEST_URI $request_uri; }
        location /s { scgi_pass 10.0.0.8:4000; scgi_param REQUEST_METHOD $request_method; }
        location /dir { return 301 /dir/; }
        location /gone { return 444; }
    }
    server { listen 80; server_name b.test; return 200 "b\n"; }
    server { listen 8080; return 302 /elsewhere; }
}
"""


def get(ng: Nginx, url: str, client: str = "128.32.1.5", **kw: object) -> object:
    return ng.request(OracleRequest(client, url, **kw))  # type: ignore[arg-type]


def test_servers_returns_and_the_upstream_records(oracle: Start) -> None:
    ng = oracle(text=SITE)
    a = ng.request(OracleRequest("128.32.1.5", "http://a.test/"))
    assert (a.status, a.body, a.upstream) == (200, b"a 128.32.1.5:50000\n", None)
    assert ng.request(OracleRequest("1.2.3.4", "http://b.test/")).body == b"b\n"

    first, second = ng.request_many([OracleRequest("1.2.3.4", "http://a.test/p/k?q=1", headers=[("X-A", "1")])] * 2)
    assert first.status == 200 and first.header("X-Oracle-Peer") == "10.0.0.1:8080"
    assert first.body == b"nginxsim oracle echo: 10.0.0.1:8080\n"
    rec = first.upstream
    assert rec is not None
    assert (rec.protocol, rec.peer, rec.group, rec.method, rec.uri, rec.http_version) == (
        "http",
        "10.0.0.1:8080",
        "pool",
        "GET",
        "/x/k?q=1",
        "1.0",
    )
    assert rec.headers == [("X-Up", "pool"), ("Host", "pool"), ("Connection", "close"), ("X-A", "1")]
    assert (rec.header("host"), rec.header("x-missing")) == ("pool", None)
    assert second.upstream is not None and second.upstream.peer == "app.internal:9000"  # round robin

    implicit = ng.request(OracleRequest("1.2.3.4", "http://a.test/i?z")).upstream
    assert implicit is not None and implicit.peer == "backend.internal:8081"
    assert implicit.headers[:2] == [("X-Up", "backend.internal:8081"), ("Host", "backend.internal:8081")]

    u = ng.request(
        OracleRequest("1.2.3.4", "http://a.test/u/x?y=1", method="POST", body=b"payload", headers=[("User-Agent", "t")])
    ).upstream
    assert u is not None
    assert (u.protocol, u.peer, u.method, u.uri, u.body) == (
        "uwsgi",
        "unix:/run/app.sock",
        "POST",
        "/u/x?y=1",
        b"payload",
    )
    assert u.header("http_user_agent") == "t"
    assert u.params == [
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/u/x?y=1"),
        ("SERVER_PORT", "80"),
        ("HTTP_HOST", "a.test"),
        ("HTTP_USER_AGENT", "t"),
        ("HTTP_CONNECTION", "close"),
        ("HTTP_CONTENT_LENGTH", "7"),
    ]

    f = ng.request(OracleRequest("1.2.3.4", "http://a.test/f?1")).upstream
    s = ng.request(OracleRequest("1.2.3.4", "http://a.test/s", method="DELETE")).upstream
    assert f is not None and (f.protocol, f.peer, f.uri) == ("fastcgi", "10.0.0.7:9000", "/f?1")
    assert s is not None and (s.protocol, s.peer, s.method) == ("scgi", "10.0.0.8:4000", "DELETE")
    assert s.params is not None and s.params[0] == ("CONTENT_LENGTH", "0")


def test_redirects_get_the_original_port_and_444_is_no_status(oracle: Start) -> None:
    ng = oracle(text=SITE)
    r = ng.request(OracleRequest("1.2.3.4", "http://a.test/dir"))
    assert (r.status, r.header("Location")) == (301, "http://a.test/dir/")
    r = ng.request(OracleRequest("1.2.3.4", "http://a.test:8080/x"))
    assert (r.status, r.header("Location")) == (302, "http://a.test:8080/elsewhere")
    assert f":{ng.port_for('http', None, 8080)[1]}/elsewhere".encode() in r.raw
    gone = ng.request(OracleRequest("1.2.3.4", "http://a.test/gone"))
    assert (gone.status, gone.headers, gone.body) == (None, [], b"")


def test_client_posing_through_the_proxy_protocol(oracle: Start) -> None:
    ng = oracle(
        text="events {} http { server { listen 80; listen [::]:80; "
        'return 200 "$remote_addr $remote_port $http_x_real_ip.$proxy_protocol_addr"; } }'
    )
    for client, port in [("128.32.1.5", 50000), ("2001:db8::7", 1234), ("10.0.0.1", 1)]:
        r = ng.request(OracleRequest(client, "http://x/", client_port=port))
        assert r.body == f"{client} {port} .{client}".encode()
    assert ng.request(OracleRequest("1.1.1.1", "http://x/", server_addr="::1")).body.startswith(b"1.1.1.1 ")
    with pytest.raises(RequestError, match="client address"):
        ng.request(OracleRequest("nope", "http://x/"))


def test_client_posing_when_the_config_uses_realip_itself(oracle: Start) -> None:
    ng = oracle(
        text="""events {} http {
        set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; real_ip_recursive on;
        server { listen 80; location / { return 200 "$remote_addr"; }
                 location /p { proxy_pass http://10.9.9.9; } }
    }"""
    )
    assert ng.request(OracleRequest("128.32.1.5", "http://x/")).body == b"128.32.1.5"
    trusted = OracleRequest("10.1.1.1", "http://x/", headers=[("X-Forwarded-For", "1.2.3.4")])
    assert ng.request(trusted).body == b"1.2.3.4"
    rec = ng.request(OracleRequest("128.32.1.5", "http://x/p", headers=[("X-Forwarded-For", "1.2.3.4")])).upstream
    assert rec is not None and rec.headers == [
        ("Host", "10.9.9.9"),
        ("Connection", "close"),
        ("X-Forwarded-For", "1.2.3.4"),
    ]  # the harness's own line dropped


def test_caller_proxy_protocol_lines(oracle: Start) -> None:
    ng = oracle(
        text="""events {} http {
        server { listen 80 proxy_protocol; location / { return 200 "$remote_addr $proxy_protocol_addr"; }
                 location /p { proxy_pass http://10.9.9.9; } }
        server { listen 81; return 200 "$remote_addr $http_host"; } }"""
    )
    line = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 80"
    r = ng.request(OracleRequest("10.0.0.9", "http://x/", proxy_protocol=line))
    assert r.body == b"10.0.0.9 203.0.113.7"
    rec = ng.request(OracleRequest("10.0.0.9", "http://x/p", proxy_protocol=line)).upstream
    assert rec is not None and rec.headers == [("Host", "10.9.9.9"), ("Connection", "close")]
    assert ng.request(OracleRequest("10.0.0.9", "http://x/")).status is None  # nginx: broken header
    assert ng.request(OracleRequest("10.0.0.9", "http://x:81/")).body == b"10.0.0.9 x:81"
    assert ng.request(OracleRequest("10.0.0.9", "http://x:81/", proxy_protocol=line)).status == 400


def test_wildcard_servers_are_invisible_on_an_explicit_address(oracle: Start) -> None:
    ng = oracle(
        text="""events {} http {
        server { listen 80; server_name a.test; return 200 "wildcard"; }
        server { listen 10.0.0.1:80; server_name b.test; return 200 "specific"; }
    }"""
    )
    assert ng.request(OracleRequest("1.2.3.4", "http://a.test/")).body == b"wildcard"
    assert ng.request(OracleRequest("1.2.3.4", "http://a.test/", server_addr="10.0.0.1")).body == b"specific"
    assert ng.request(OracleRequest("1.2.3.4", "http://a.test/", server_addr="10.0.0.2")).body == b"wildcard"
    assert ng.port_for("http", "10.0.0.1", 80) == ("127.0.0.2", ng.port_for()[1])
    with pytest.raises(RequestError, match="no listen that accepts any address port 81"):
        ng.request(OracleRequest("1.2.3.4", "http://a.test:81/"))


def test_https_listen_http_versions_head_and_raw_requests(oracle: Start) -> None:
    ng = oracle(
        text="""events {} http {
        server { listen 443 ssl; ssl_certificate /missing/cert.pem; ssl_certificate_key /missing/key.pem;
                 return 200 "$scheme $ssl_server_name $server_protocol $http_host"; }
        server { listen 80; location / { return 200 "$server_protocol $http_host $request_method"; }
                 location /up { proxy_pass https://10.0.0.5; } }
    }"""
    )
    assert (
        ng.request(OracleRequest("1.2.3.4", "https://shop.example/")).body
        == b"https shop.example HTTP/1.1 shop.example"
    )
    assert ng.request(OracleRequest("1.2.3.4", "http://h/", http_version="1.0")).body == b"HTTP/1.0 h GET"
    r09 = ng.request(OracleRequest("1.2.3.4", "http://h/", http_version="0.9"))
    assert (r09.status, r09.body) == (None, b"  GET")  # no headers; $server_protocol is empty
    head = ng.request(OracleRequest("1.2.3.4", "http://h/", method="HEAD"))
    assert (head.status, head.body, head.header("Content-Length")) == (200, b"", "15")
    alive = ng.request(OracleRequest("1.2.3.4", "http://h/", headers=[("Connection", "keep-alive")]))
    assert (alive.status, alive.header("Connection"), alive.body) == (200, "keep-alive", b"HTTP/1.1 h GET")
    absolute = OracleRequest("1.2.3.4", "HTTP://h:80", absolute_form=True).to_bytes()
    assert absolute == b"GET HTTP://h:80/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    raw = ng.request(OracleRequest("1.2.3.4", raw=b"GET / HTTP/1.1\r\nHost: r\r\nHost: s\r\n\r\n"))
    assert raw.status == 400
    tls_up = ng.request(OracleRequest("1.2.3.4", "http://h/up")).upstream
    assert tls_up is not None and (tls_up.protocol, tls_up.peer) == ("https", "10.0.0.5:443")


def test_grpc_and_memcached_peers(oracle: Start) -> None:
    ng = oracle(
        text="""events {} http {
        upstream g { server 10.0.0.1:50051; server 10.0.0.2:50051; }
        server { listen 80; location /g { grpc_pass grpc://g; }
                 location /m { set $memcached_key "k:$uri"; memcached_pass 10.2.2.2:11211; } } }"""
    )
    answers = ng.request_many([OracleRequest("1.2.3.4", "http://x/g")] * 2)
    assert [(a.status, a.upstream.protocol, a.upstream.peer) for a in answers if a.upstream] == [
        (200, "grpc", "10.0.0.1:50051"),
        (200, "grpc", "10.0.0.2:50051"),
    ]
    m = ng.request(OracleRequest("1.2.3.4", "http://x/m"))
    assert m.upstream is not None and (m.upstream.protocol, m.upstream.uri) == ("memcached", "k:/m")
    assert m.body == b"nginxsim oracle echo: 10.2.2.2:11211\n"


def test_variable_pass_cannot_leave_loopback(oracle: Start) -> None:
    ng = oracle(text="events {} http { server { listen 80; location / { proxy_pass http://$arg_to; } } }")
    assert ng.request(OracleRequest("1.2.3.4", "http://x/?to=10.255.255.1:81")).status == 502
    assert "connect() to 10.255.255.1:81 failed (22: Invalid argument)" in ng.error_log()


def test_path_mode_includes_roots_logs_and_unix_listen(oracle: Start, tmp_path: Path) -> None:
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "index.html").write_text("static page\n")
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "one.conf").write_text(
        "server { listen 80; listen unix:/run/nginx-x.sock; root html;\n"
        '  location /l { return 200 "$remote_addr"; } }\n'
    )
    (tmp_path / "nginx.conf").write_text(
        "events {}\nhttp {\n  log_format f '$remote_addr $request_uri $status';\n  access_log logs/a.log f;\n"
        "  include sites/*.conf;\n}\n"
    )
    ng = oracle(str(tmp_path / "nginx.conf"), prefix=str(tmp_path), debug=True)
    assert ng.request(OracleRequest("1.2.3.4", "http://x/")).body == b"static page\n"
    assert ng.request(OracleRequest("unix:", "http://x/l", server_addr="unix:/run/nginx-x.sock")).body == b"unix:"
    assert ng.access_log() == "1.2.3.4 / 200\nunix: /l 200\n"
    assert "[debug]" in ng.error_log()
    assert not (tmp_path / "logs").exists()


def test_bad_config_gives_a_clear_error(nginx_binary: str, tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n  server {\n    listen 80;\n    retrun 200;\n  }\n}\n")
    with pytest.raises(NginxStartError, match=rf'unknown directive "retrun" in {conf}:5'):
        Nginx(conf, binary=nginx_binary)
    ok, stderr = Nginx.test_config(conf, binary=nginx_binary)
    assert not ok and f'unknown directive "retrun" in {conf}:5' in stderr
    ok, stderr = Nginx.test_config(
        text="events {} http { server { listen 80 default; } server { listen 80 default_server; } }",
        binary=nginx_binary,
    )
    assert not ok and "a duplicate default server for 0.0.0.0:80 in nginx.conf:1" in stderr
    assert Nginx.test_config(text="events {} http { server { listen 10.1.2.3:81; } }", binary=nginx_binary) == (
        True,
        "nginx: the configuration file nginx.conf syntax is ok\n"
        "nginx: configuration file nginx.conf test is successful\n",
    )


def test_nothing_is_left_behind(nginx_binary: str) -> None:
    with Nginx(text="events {} http { server { listen 80; return 200; } }", binary=nginx_binary) as ng:
        master = ng.pid
        assert master is not None
        workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == master]
        assert len(workers) == 1
        root = ng.root
    for pid in [master, *workers]:
        assert not os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(root)
    ng.close()  # idempotent


def test_throughput(oracle: Start) -> None:
    ng = oracle(text=SITE)
    started = time.perf_counter()
    answers = ng.request_many([OracleRequest("1.2.3.4", f"http://a.test/p/{i}") for i in range(400)])
    rate = len(answers) / (time.perf_counter() - started)
    assert [a.upstream.peer for a in answers[:4] if a.upstream] == ["10.0.0.1:8080", "app.internal:9000"] * 2
    assert rate > 200, f"{rate:.0f} requests/s through the harness"


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
