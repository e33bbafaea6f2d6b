"""`check`/`compare`: decisions (fakes and nginxsim's own) against nginx's answers."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from nginxsim.oracle import OracleRequest, OracleResponse, UpstreamRecord, check, compare


@dataclass(frozen=True)
class FakeUpstream:
    protocol: str = "http"
    name: str = "pool"
    peer: str | None = None
    uri: str | None = None


@dataclass(frozen=True)
class FakeDecision:
    status: int | None = 200
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    upstream: FakeUpstream | None = None


REQ = OracleRequest("1.2.3.4", "http://a.test/x")


def record(peer: str = "10.0.0.1:80", uri: str = "/x", protocol: str = "http") -> UpstreamRecord:
    return UpstreamRecord(protocol, peer, "GET", uri, "1.0", [], None, b"")


def response(
    status: int | None = 200,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    upstream: UpstreamRecord | None = None,
) -> OracleResponse:
    return OracleResponse(status, headers or [], body, [upstream] if upstream else [])


def fields(d: FakeDecision, r: OracleResponse, req: OracleRequest = REQ) -> list[str]:
    return [m.field for m in check(req, d, r)]


def test_status_location_and_body() -> None:
    assert fields(FakeDecision(200, "ok\n"), response(200, body=b"ok\n")) == []
    assert fields(FakeDecision(200, "ok\n"), response(404, body=b"no")) == ["status", "body"]
    assert fields(FakeDecision(200, "ok"), response(200), OracleRequest("1.2.3.4", "http://a/", method="HEAD")) == []
    moved = FakeDecision(301, None, {"location": "http://a.test/y"})
    assert fields(moved, response(301, [("Location", "http://a.test/y")], b"<html>")) == []
    assert fields(moved, response(301, [("Location", "http://a.test/z")])) == ["Location"]
    assert fields(FakeDecision(302), response(302, [("Location", "/z")])) == ["Location"]
    assert fields(FakeDecision(444), response(None)) == []
    assert fields(FakeDecision(200), response(None)) == ["status"]


def test_upstream() -> None:
    sent = FakeDecision(None, upstream=FakeUpstream(peer="10.0.0.1:80", uri="/x"))
    assert fields(sent, response(upstream=record())) == []
    assert fields(sent, response(upstream=record("10.0.0.2:80", "/y", "uwsgi"))) == [
        "upstream.protocol",
        "upstream.peer",
        "upstream.uri",
    ]
    assert fields(FakeDecision(None, upstream=FakeUpstream()), response(upstream=record("x", "/y"))) == []
    assert fields(sent, response(502)) == ["upstream"]
    assert fields(FakeDecision(200), response(upstream=record())) == ["upstream"]
    grpc = FakeDecision(None, upstream=FakeUpstream("grpc", uri="/svc/Method"))
    assert fields(grpc, response(upstream=record(uri="", protocol="grpc"))) == []  # the echo reads no HPACK
    text = str(check(REQ, sent, response(upstream=record("10.0.0.2:80")))[0])
    assert text == "GET http://a.test/x from 1.2.3.4: upstream.peer: nginx '10.0.0.2:80', nginxsim '10.0.0.1:80'"


CONF = """events {}
http {
    upstream pool { server 10.0.0.1:8080; server 10.0.0.2:8080; }
    server {
        listen 80;
        location / { return 200 "hello $remote_addr\\n"; }
        location /old { return 301 /new; }
        location /p/ { proxy_pass http://pool/q/; }
    }
}
"""
REQS = [
    OracleRequest("128.32.1.5", "http://a.test/"),
    OracleRequest("128.32.1.5", "http://a.test/old"),
    OracleRequest("128.32.1.5", "http://a.test/p/z?1"),
]


def test_compare_with_nginxsim(nginx_binary: str) -> None:
    assert compare(None, REQS, text=CONF) == []


def test_compare_reports_what_differs(nginx_binary: str) -> None:
    def wrong(r: OracleRequest) -> FakeDecision:
        if r.url.endswith("/"):
            return FakeDecision(200, "hello 128.32.1.6\n")
        if "/p/" in r.url:
            return FakeDecision(None, upstream=FakeUpstream(peer="10.0.0.2:8080", uri="/q/z?1"))
        return FakeDecision(301, None, {"Location": "http://a.test/new"})

    assert [(m.request.url, m.field) for m in compare(None, REQS, text=CONF, decide=wrong)] == [
        ("http://a.test/", "body"),
        ("http://a.test/p/z?1", "upstream.peer"),
    ]
    with pytest.raises(ValueError, match="raw"):
        compare(None, [OracleRequest("1.2.3.4", raw=b"GET / HTTP/1.0\r\n\r\n")], text=CONF, decide=wrong)
