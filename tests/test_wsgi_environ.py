"""The WSGI environ an app under uWSGI gets from nginx's uwsgi params (uWSGI's python plugin,
`uwsgi_request_subhandler_wsgi`): derived from uWSGI's source, not run against a uWSGI."""

from __future__ import annotations

from pathlib import Path

import pytest

import nginxsim
from nginxsim.modules.uwsgi import wsgi_environ

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "django-uwsgi" / "nginx.conf")


def test_a_later_param_replaces_an_earlier_one() -> None:
    env = wsgi_environ([("HTTP_COOKIE", "a=1"), ("PATH_INFO", "/x"), ("HTTP_COOKIE", "b=2")])
    assert env["HTTP_COOKIE"] == "b=2" and env["PATH_INFO"] == "/x"


@pytest.mark.parametrize("params,scheme", [
    ([], "http"),
    ([("HTTPS", "on")], "https"),
    ([("HTTPS", "ON")], "https"),
    ([("HTTPS", "1")], "https"),
    ([("HTTPS", "off")], "http"),
    ([("HTTPS", "")], "http"),
    ([("HTTPS", "on"), ("UWSGI_SCHEME", "http")], "http"),
    ([("UWSGI_SCHEME", ""), ("HTTPS", "on")], "https"),
])
def test_url_scheme(params: list[tuple[str, str]], scheme: str) -> None:
    assert wsgi_environ(params)["wsgi.url_scheme"] == scheme


def test_bytes_are_read_as_latin1() -> None:
    assert wsgi_environ([("PATH_INFO", "/café")])["PATH_INFO"] == "/caf\u00c3\u00a9"


def test_the_fixture_shows_what_django_sees() -> None:
    cfg = nginxsim.load(FIXTURE)
    d = cfg.route("203.0.113.9", "http://app.example.com/orders/?page=2",
                  headers={"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"})
    assert d.upstream is not None and d.upstream.name == "django"
    env = d.upstream.wsgi_environ
    assert env is not None
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["PATH_INFO"] == "/orders/" and env["QUERY_STRING"] == "page=2"
    # the configured HTTP_* params hide the client's headers of those names
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4, 203.0.113.9"
    assert env["HTTP_X_FORWARDED_PROTO"] == "http"
    assert env["wsgi.url_scheme"] == "http"
    assert cfg.route("203.0.113.9", "http://app.example.com/static/x.css").upstream is None
    proxied = nginxsim.load(FIXTURE.replace("django-uwsgi", "django-gunicorn")).route(
        "203.0.113.9", "http://example.com/")
    assert proxied.upstream is not None and proxied.upstream.wsgi_environ is None
