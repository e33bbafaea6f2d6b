"""Request parsing before any config is consulted: the tables of routing.md §2.5 and §3,
which the reference verified against nginx 1.22.1 (the oracle tests re-check them)."""

from __future__ import annotations

import pytest

from nginxsim.errors import RequestError
from nginxsim.http.request import BadRequest, make_request, normalize_uri, validate_host

URI_TABLE = [
    (b"/a//b", b"/a/b", b""),
    (b"/a/./b", b"/a/b", b""),
    (b"/a/.//b", b"/a/b", b""),
    (b"/a/../b", b"/b", b""),
    (b"/a//../b", b"/b", b""),
    (b"/a/.", b"/a/", b""),
    (b"/a/..", b"/", b""),
    (b"/a/%2e%2e/b", b"/b", b""),
    (b"/a%2F..%2Fb", b"/b", b""),
    (b"/a/.%2e/b", b"/b", b""),
    (b"/a%2f%2fb", b"/a/b", b""),
    (b"/%2F%2F", b"/", b""),
    (b"/a%2e%2e", b"/a..", b""),
    (b"/a%3Fb", b"/a?b", b""),
    (b"/a%23b", b"/a#b", b""),
    (b"/a%25b", b"/a%b", b""),
    (b"/a%2525b", b"/a%25b", b""),
    (b"/a%20b", b"/a b", b""),
    (b"/%7Euser", b"/~user", b""),
    (b"/a%01b", b"/a\x01b", b""),
    (b"/a#frag?x", b"/a", b""),
    (b"/a?x#y", b"/a", b"x"),
    (b"/a/..?q=1", b"/", b"q=1"),
    (b"/a?b/../c", b"/a", b"b/../c"),
    (b"/a+b", b"/a+b", b""),
    (b"/a?", b"/a", b""),
]


@pytest.mark.parametrize(("target", "uri", "args"), URI_TABLE)
def test_normalize_uri(target: bytes, uri: bytes, args: bytes) -> None:
    assert normalize_uri(target) == (uri, args)


@pytest.mark.parametrize("target", [b"/..", b"/../a", b"/./../x", b"/a/b/../../..", b"/%00", b"/%zz", b"/a%2", b"/a%"])
def test_normalize_uri_400(target: bytes) -> None:
    with pytest.raises(BadRequest):
        normalize_uri(target)


def test_merge_slashes_off_keeps_slashes() -> None:
    assert normalize_uri(b"/a//b", merge_slashes=False) == (b"/a//b", b"")


HOSTS = [
    (b"A.TeSt", b"a.test"), (b"a.test.", b"a.test"), (b"a.test.:80", b"a.test"), (b"a.test:abc", b"a.test"),
    (b"a.test:99999", b"a.test"), (b"a_b.test", b"a_b.test"), (b"[::1]:80", b"[::1]"), (b"a#x", b"a#x"),
    (b"a.test:..", None), (b"", None), (b".", None), (b":80", None), (b"a..test", None), (b"a/b", None),
    (b"a b", None),
]


@pytest.mark.parametrize(("host", "expected"), HOSTS)
def test_validate_host(host: bytes, expected: bytes | None) -> None:
    assert validate_host(host) == expected


@pytest.mark.parametrize(("client", "url"), [
    ("999.1.1.1", "http://a/"), ("not-an-ip", "http://a/"), ("1.2.3.4", "/relative"),
    ("1.2.3.4", "ftp://a/"), ("1.2.3.4", "http://a:99999/"), ("1.2.3.4", "http://a/with space"),
])
def test_bad_requests_are_usage_errors(client: str, url: str) -> None:
    with pytest.raises(RequestError):
        make_request(client, url)


def test_url_host_and_target() -> None:
    r = make_request("2001:db8::1", "https://Shop.Example:8443/a%20b?x=1")
    assert (r.scheme, r.server_port, r.target, r.url_host) == ("https", 8443, b"/a%20b?x=1", b"Shop.Example:8443")
    assert str(r.client) == "2001:db8::1"
