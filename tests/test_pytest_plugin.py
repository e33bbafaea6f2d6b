"""The pytest plugin, run in a pytester sandbox: case files as items, the nginx_config fixture with
assert_route, clean errors, the sample repository in docs/, and --nginxsim-oracle."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import nginxsim.oracle

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

SITE = """
events {}
http {
    server {
        listen 80;
        server_name shop.example.com;
        location = /old-cart { return 301 /cart; }
        location /healthz { return 200 "ok\\n"; }
        location / { proxy_pass http://127.0.0.1:8001; }
    }
}
"""

CASES = """
config: nginx.conf
defaults: {url: "http://shop.example.com/"}
cases:
  - name: healthz answers
    request: {url: "http://shop.example.com/healthz"}
    expect: {status: 200, body: "ok\\n"}
  - name: the app gets the rest
    request: {client: [10.0.0.1, 10.0.0.2]}
    expect: {upstream: {peer: "127.0.0.1:8001", uri: /}}
  - name: old cart moves
    request: {url: "http://shop.example.com/old-cart"}
    expect: {status: 302}
"""


def test_case_files_become_one_item_per_case(pytester: pytest.Pytester) -> None:
    pytester.makefile(".conf", nginx=SITE)
    pytester.makefile(".nginxsim.yaml", shop=CASES)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "shop.nginxsim.yaml::healthz answers PASSED*",
        "shop.nginxsim.yaml::the app gets the rest PASSED*",
        "shop.nginxsim.yaml::old cart moves FAILED*",
        "*nginxsim case: old cart moves*",
        "*shop.nginxsim.yaml:10: old cart moves",
        "request: 127.0.0.1 GET http://shop.example.com/old-cart",
        "expected 302, got 301 (field status)",
        "trace:",
        "*location = /old-cart vs $uri /old-cart: exact match*nginx.conf:6]",
    ])
    assert "Traceback" not in result.stdout.str() and "raise CaseFailed" not in result.stdout.str()


def test_a_bad_case_file_is_a_collection_error_with_file_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".conf", nginx=SITE)
    pytester.makefile(".nginxsim.yaml", bad="config: nginx.conf\ncases:\n  - name: a\n    expect: {stauts: 200}\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(['*bad.nginxsim.yaml:4: unknown field "stauts" in expect (known: status,*'])
    assert "Traceback" not in result.stdout.str()


def test_a_case_file_must_name_its_config_and_the_config_must_load(pytester: pytest.Pytester) -> None:
    pytester.makefile(".nginxsim.yaml", noconf="cases:\n  - expect: {}\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(['*noconf.nginxsim.yaml: no "config:" naming the nginx.conf these cases test*'])
    (pytester.path / "noconf.nginxsim.yaml").unlink()
    pytester.makefile(".conf", nginx="events {}\nhttp {\n  server {\n    proxy_passs x;\n  }\n}\n")
    pytester.makefile(".nginxsim.yaml", broken="config: nginx.conf\ncases:\n  - name: a\n    expect: {}\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['the config does not load: *nginx.conf:4: unknown directive "proxy_passs"'])


def test_nginx_config_fixture_and_assert_route(pytester: pytest.Pytester) -> None:
    pytester.makefile(".conf", nginx=SITE)
    pytester.makepyfile(test_routes="""
        import re

        from nginxsim.testing import assert_route


        def test_from_a_path(nginx_config):
            cfg = nginx_config("nginx.conf")
            assert cfg is nginx_config("nginx.conf")  # loaded once per session
            d = assert_route(cfg, "http://shop.example.com/old-cart", status=301,
                             headers={"Location": re.compile("/cart$")}, location="= /old-cart")
            assert d.status == 301


        def test_from_text(nginx_config):
            cfg = nginx_config(text="events {}\\nhttp { server { listen 80; return 204; } }\\n")
            assert_route(cfg, {"client": "10.0.0.1", "url": "http://a/"}, status=204, location=None)


        def test_a_difference(nginx_config):
            assert_route(nginx_config("nginx.conf"), {"client": "10.0.0.9", "url": "http://shop.example.com/x"},
                         upstream={"uri": "/y"})
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "E * request: 10.0.0.9 GET http://shop.example.com/x",
        "E * expected '/y', got '/x' (field upstream.uri)",
        "E * trace:",
    ])


def test_the_sample_repository_in_docs(pytester: pytest.Pytester) -> None:
    """docs/example-repo: its canary is the fixture's, and `pytest` there runs cases and tests."""
    example = ROOT / "docs" / "example-repo"
    for name in ("nginx.conf", "uwsgi_params"):
        assert (example / name).read_text() == (ROOT / "fixtures" / "canary" / name).read_text()
    shutil.copytree(example, pytester.path, dirs_exist_ok=True)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=17)


def test_the_oracle_option_runs_cases_against_nginx(pytester: pytest.Pytester, nginx_binary: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """One nginx per config for the session; agreement passes, a disagreement fails."""
    started: list[Any] = []

    class Counted(nginxsim.oracle.Nginx):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started.append(args)
            super().__init__(*args, binary=nginx_binary, **kwargs)

    monkeypatch.setattr(nginxsim.oracle, "Nginx", Counted)
    for name in ("nginx.conf", "uwsgi_params", "cases.nginxsim.yaml"):
        shutil.copy(ROOT / "fixtures" / "canary" / name, pytester.path / name)
    (pytester.path / "other").mkdir()
    (pytester.path / "other" / "nginx.conf").write_text(
        'events {}\nhttp {\n  server {\n    listen 80;\n    return 200 "id $request_id";\n  }\n}\n')
    (pytester.path / "other" / "id.nginxsim.yaml").write_text(
        "config: nginx.conf\ncases:\n  - name: request ids differ\n    expect: {status: 200}\n"
        "  - name: pinned ones are not compared\n    request: {pinned: {request_id: abc}}\n"
        "    expect: {body: id abc}\n")
    result = pytester.runpytest("--nginxsim-oracle", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines([
        "*id.nginxsim.yaml:3: request ids differ",
        "nginx disagrees with nginxsim:",
        "request: 127.0.0.1 GET http://localhost/",
        "GET http://localhost/ from 127.0.0.1: body: nginx b'id *', nginxsim b'id *'",
    ])
    assert len(started) == 2  # the canary's nginx served its 7 cases, the other config's its one
