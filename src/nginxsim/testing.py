"""Route assertions for tests written in Python, with the same vocabulary as case files:

    from nginxsim.testing import assert_route

    def test_old_docs_redirect(nginx_config):
        cfg = nginx_config("nginx.conf")
        assert_route(cfg, {"client": "10.0.0.1", "url": "http://docs.example.com/2.7/"},
                     status=301, headers={"Location": re.compile("^https://docs")})

On a difference it raises AssertionError listing every field that differs
(`expected X, got Y (field F)`) and the trace of the request, so the failure says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cases import python_case, run_case
from .config import Config
from .decision import Decision


def assert_route(cfg: Config, request: str | Mapping[str, Any], **expect: Any) -> Decision:
    """Route `request` (a URL, or a mapping of case-file request fields: client, url, method,
    headers, pinned, down, rand...) and check `expect` (case-file `expect:` fields: status, body,
    headers, location, server, upstream, variables, file, redirects, uri, args; `None` or "" for
    none, a compiled regex for a match). Returns the Decision for further asserts."""
    __tracebackhide__ = True
    case = python_case(request, expect, "assert_route")
    if len(case.requests) != 1:
        raise ValueError("assert_route checks one request: give single values, not lists "
                         "(pytest.mark.parametrize, or a case file, for several)")
    result = run_case(cfg, case).results[0]
    if not result.passed:
        raise AssertionError(result.report())
    assert result.outcome is not None
    return result.outcome.decision
