"""Access-log and client-list parsing: the formats nginx writes, mixed files, and every kind of
unusable line counted with its reason (never an exception)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nginxsim import accesslog

COMBINED = ('203.0.113.9 - alice [10/Oct/2025:13:55:36 +0000] "GET /shop/cart?id=3 HTTP/1.1" 200 512 '
            '"https://ref.example/" "Mozilla/5.0 (X11)"')
COMMON = '198.51.100.7 - - [10/Oct/2025:13:55:37 +0000] "POST /api/v1/users HTTP/1.0" 201 17'
JSON = json.dumps({"remote_addr": "2001:db8::5", "request": "DELETE /x/1 HTTP/2.0", "status": 204,
                   "host": "api.example.com", "scheme": "https"})


def test_the_three_formats_and_bare_addresses() -> None:
    assert accesslog.parse([COMBINED, COMMON, JSON, "192.0.2.1", "unix:"]).clients == [
        "203.0.113.9", "198.51.100.7", "2001:db8::5", "192.0.2.1", "unix:"]
    got = accesslog.parse([COMBINED, COMMON, JSON], requests=True)
    assert got.skipped == 0
    assert got.formats == {"combined": 1, "common": 1, "json": 1}
    assert got.clients == ["203.0.113.9", "198.51.100.7", "2001:db8::5"]
    a, b, c = got.records
    assert (a.client, a.method, a.uri, a.host, a.status, a.format) == (
        "203.0.113.9", "GET", "/shop/cart?id=3", None, 200, "combined")
    assert a.headers == (("Referer", "https://ref.example/"), ("User-Agent", "Mozilla/5.0 (X11)"))
    assert (b.method, b.uri, b.status, b.format, b.line, b.headers) == ("POST", "/api/v1/users", 201, "common", 2, ())
    assert (c.client, c.method, c.uri, c.host, c.status, c.scheme) == (
        "2001:db8::5", "DELETE", "/x/1", "api.example.com", 204, "https")


def test_bare_addresses_count_as_clients_not_as_requests() -> None:
    """A clients file: one address per line; in a request log such a line has no request."""
    lines = ["192.0.2.1", "  192.0.2.2  ", "2001:db8::1", "unix:", "", "# a comment"]
    got = accesslog.parse(lines)
    assert got.clients == ["192.0.2.1", "192.0.2.2", "2001:db8::1", "unix:"]
    assert got.skipped == 0 and got.lines == 6 and got.note() is None
    as_requests = accesslog.parse(lines, requests=True)
    assert as_requests.records == [] and as_requests.malformed == {"an address without a request": 4}


def test_json_key_variants() -> None:
    lines = [
        json.dumps({"client": "10.0.0.1", "method": "GET", "uri": "/a", "http_host": "h.example", "status": "301"}),
        json.dumps({"ip": "10.0.0.2", "request_method": "HEAD", "request_uri": "/b?x=1", "server_name": "s",
                    "http_user_agent": "bot/1", "http_x_forwarded_for": "1.2.3.4", "http_host": "h",
                    "http_cookie": "-"}),
        json.dumps({"remote_ip": "10.0.0.3", "request": "GET /c HTTP/1.1", "status": "-"}),
    ]
    a, b, c = accesslog.parse(lines, requests=True).records
    assert (a.client, a.method, a.uri, a.host, a.status) == ("10.0.0.1", "GET", "/a", "h.example", 301)
    assert (b.client, b.method, b.uri, b.host, b.status) == ("10.0.0.2", "HEAD", "/b?x=1", "h", None)
    assert b.headers == (("User-Agent", "bot/1"), ("X-Forwarded-For", "1.2.3.4")) and a.headers == ()
    assert (c.client, c.uri, c.status) == ("10.0.0.3", "/c", None)


def test_nginx_escapes_are_undone() -> None:
    """nginx writes `"` and bytes outside printable ASCII as \\xHH; other servers write \\"."""
    line = r'10.0.0.1 - - [t] "GET /a\x22b/%41/\xC3\xA9 HTTP/1.1" 404 0 "-" "say \"hi\""'
    (rec,) = accesslog.parse([line], requests=True).records
    assert rec.uri == '/a"b/%41/é'
    assert accesslog.unescape(r"a\\b") == "a\\b"


def test_malformed_lines_are_counted_with_reasons() -> None:
    lines = [
        COMBINED,
        "garbage that is no log line",
        '999.1.1.1 - - [t] "GET / HTTP/1.1" 200 1',  # a bad address in a well-formed line
        '10.0.0.1 - - [t] "\\x16\\x03\\x01\\x02\\x00" 400 157 "-" "-"',  # TLS sent to a plain port
        '10.0.0.2 - - [t] "-" 400 0 "-" "-"',
        '10.0.0.3 - - [10/Oct/2025:13:55:36 +0000] "GET /trunc',  # truncated
        "{not json",
        "[1, 2]",
        json.dumps({"request": "GET / HTTP/1.1"}),
        json.dumps({"remote_addr": "10.0.0.4"}),
        "\udcff\udcfe binary \x00",
    ]
    got = accesslog.parse(lines, requests=True)
    assert len(got.records) == 1
    assert got.malformed == {
        "not an address or a log line": 3,
        "bad client address": 1,
        "no request line": 3,
        "invalid JSON": 1,
        "JSON that is not an object": 1,
        "JSON without a client address": 1,
    }
    assert got.skipped == 10 and len(got.examples) == accesslog.EXAMPLES
    assert got.examples[0][:2] == (2, "not an address or a log line")
    assert got.note() is not None and got.note().startswith("10 of 11 lines skipped (3 ")  # type: ignore[union-attr]
    # as a clients file the lines without a request still give their client
    clients = accesslog.parse(lines)
    assert clients.clients == ["203.0.113.9", "10.0.0.1", "10.0.0.2", "10.0.0.4"]
    assert clients.to_dict()["skipped"] == 7


def test_read_files_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(COMBINED.encode() + b"\n" + b'10.0.0.1 - - [t] "GET /\xff HTTP/1.1" 200 1\n' + b"\xfe\xfe\n")
    got = accesslog.read(str(path), requests=True)
    assert [r.uri for r in got.records] == ["/shop/cart?id=3", "/\udcff"]
    assert got.skipped == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("10.1.1.1\n10.1.1.2\n"))
    assert accesslog.read("-").clients == ["10.1.1.1", "10.1.1.2"]


@pytest.mark.parametrize("text,ok", [("1.2.3.4", True), ("1.2.3", False), ("::1", True), ("::ffff:1.2.3.4", True),
                                     ("unix:", True), ("unix:/x", False), ("1.2.3.4:80", False), ("", False)])
def test_valid_address(text: str, ok: bool) -> None:
    assert accesslog.valid_address(text) is ok
