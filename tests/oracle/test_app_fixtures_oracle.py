"""The application fixtures (Django behind uWSGI, Django behind Gunicorn) against real nginx:
status and redirects, and, for passed requests, exactly what the backend receives (uwsgi
params in order; the proxied request line and header block)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import nginxsim
from nginxsim.modules.uwsgi import wsgi_environ
from nginxsim.oracle import Nginx, OracleRequest, compare

pytestmark = pytest.mark.oracle

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

PATHS = ["/", "/orders/?page=2", "/static/css/site.css", "/static", "/media/a.png", "/accounts/login/?next=/a%20b",
         "/500.html", "/%41dmin/", "/a//b/../c", "/static/../x", "/api/v1/items?q=caf%C3%A9&x"]
HEADERS = [("User-Agent", "pytest"), ("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-Proto", "https"),
           ("Cookie", "sessionid=abc"), ("Cookie", "csrftoken=def"), ("Accept-Language", "fr"),
           ("X-Forwarded-Host", "evil.example"), ("Content-Type", "application/json")]


def _requests(hosts: list[str], seed: int, n: int) -> list[OracleRequest]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        client = rng.choice(["203.0.113.9", "10.0.0.5", "192.0.2.200"])  # the fixtures listen on IPv4
        headers = rng.sample(HEADERS, rng.randint(0, 4))
        method = rng.choice(["GET", "GET", "POST", "HEAD"])
        out.append(OracleRequest(client=client, url=f"http://{rng.choice(hosts)}{rng.choice(PATHS)}", method=method,
                                 headers=headers))
    return out


def _as_routed(req: OracleRequest) -> list[tuple[str, str]]:
    """The headers nginx received: the harness adds `Connection: close` to HTTP/1.1 requests."""
    headers = list(req.headers)
    if not any(n.lower() == "connection" for n, _ in headers):
        headers.append(("Connection", "close"))
    return headers


def _check_fixture(name: str, hosts: list[str], seed: int) -> tuple[int, int]:
    path = FIXTURES / name / "nginx.conf"
    reqs = _requests(hosts, seed, 200)
    mismatches = compare(path, reqs)
    assert not mismatches, "\n\n".join(str(m) for m in mismatches[:5])
    with Nginx(path) as ng:
        responses = ng.request_many(reqs)
        cfg = nginxsim.load(str(path), prefix=ng.root)  # nginx's -p: $document_root and the like
    passed = 0
    for req, resp in zip(reqs, responses, strict=True):
        d = cfg.route(req.client, req.url, method=req.method, headers=_as_routed(req))
        if d.upstream is None:
            continue
        sent = resp.upstream
        assert sent is not None, req
        if d.upstream.protocol == "uwsgi":
            assert d.upstream.params is not None
            assert d.upstream.params.items_list() == list(sent.params or []), req
            assert d.upstream.wsgi_environ == wsgi_environ(sent.params or []), req
        else:
            assert d.upstream.request_line == f"{sent.method} {sent.uri} HTTP/{sent.http_version}", req
            assert d.upstream.headers.items_list() == list(sent.headers), req
        passed += 1
    return len(reqs), passed


def test_django_behind_uwsgi() -> None:
    total, passed = _check_fixture("django-uwsgi", ["app.example.com", "www.app.example.com", "other.test"], 1)
    assert passed > 40, (total, passed)


def test_django_behind_gunicorn() -> None:
    total, passed = _check_fixture("django-gunicorn", ["example.com", "www.example.com", "other.test"], 2)
    assert passed > 60, (total, passed)
