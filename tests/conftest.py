"""Shared fixtures for tests that run the real nginx (the oracle).

- `require_nginx()`: the nginx binary; skips the calling test when nginx is missing, fails it when
  CI=true (in CI every differential test must run).
- `nginx_binary`: the same as a fixture.
- `oracle`: a factory starting `nginxsim.oracle.Nginx` instances that are stopped after the test.

Tests using `nginx_binary` or `oracle` are marked `oracle` automatically (`pytest -m "not oracle"`
runs the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nginxsim.oracle import Nginx, nginx_path
from requires import require

_MISSING = "nginx is not installed (e.g. apt-get install nginx-light): this test runs against a real nginx"


def require_nginx() -> str:
    """The nginx binary; pytest.skip without one, pytest.fail without one when CI=true."""
    binary = nginx_path()
    require(binary is not None, _MISSING)
    assert binary is not None
    return binary


@pytest.fixture(autouse=True)
def _oracle_needs_nginx(request: pytest.FixtureRequest) -> None:
    """Every test marked `oracle` needs nginx: skipped without it, failed under CI=true."""
    if request.node.get_closest_marker("oracle") is not None:
        require_nginx()


@pytest.fixture
def nginx_binary() -> str:
    return require_nginx()


@pytest.fixture
def oracle(nginx_binary: str) -> Iterator[Callable[..., Nginx]]:
    """`oracle(path=None, *, text=..., files=..., ...)` starts an nginx (see `Nginx`)."""
    started: list[Nginx] = []

    def start(path: str | None = None, **options: Any) -> Nginx:
        ng = Nginx(path, binary=nginx_binary, **options)
        started.append(ng)
        return ng

    yield start
    for ng in started:
        ng.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"oracle", "nginx_binary"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.oracle)
