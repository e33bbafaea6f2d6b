"""The pytest plugin (entry point `pytest11`, active once nginxsim is installed).

- Case files named `*.nginxsim.yaml` (`.yml`, `.json`) anywhere pytest collects become test
  items, one per case, named by the case; a failure shows `expected X, got Y (field F)` and the
  trace. A case file must name its config (`config:`, relative to the file).
- `nginx_config("nginx.conf")` (relative to the rootdir) or `nginx_config(text=...)`: a fixture
  that loads configs, each path once per session.
- `--nginxsim-oracle`: every case is also run against a real nginx (one per config per session,
  via `nginxsim.oracle`) and fails if nginx answers differently from nginxsim's decision.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from . import load
from .cases import Case, CaseFileError, Request, is_case_file, run_case
from .cases import load as load_cases
from .config import Config
from .decision import Decision
from .errors import ConfigError, RequestError

_CONFIGS = pytest.StashKey[dict[str, Config]]()
_ORACLES = pytest.StashKey[dict[str, Any]]()  # config path -> a running oracle.Nginx, or why none started


class CaseFailed(Exception):
    """A case that failed: its report is the whole message (no Python traceback)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nginxsim")
    group.addoption("--nginxsim-oracle", action="store_true", default=False,
                    help="also run each nginxsim case against a real nginx, failing on any disagreement")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_CONFIGS] = {}
    config.stash[_ORACLES] = {}
    config.add_cleanup(lambda: _stop_oracles(config))


def _stop_oracles(config: pytest.Config) -> None:
    for ng in config.stash[_ORACLES].values():
        if not isinstance(ng, str):
            ng.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_case_file(file_path.name):
        collector: CaseFileCollector = CaseFileCollector.from_parent(parent, path=file_path)
        return collector
    return None


def _config(pytest_config: pytest.Config, path: str) -> Config:
    """A config loaded once per session."""
    configs = pytest_config.stash[_CONFIGS]
    cfg = configs.get(path)
    if cfg is None:
        cfg = configs[path] = load(path)
    return cfg


class CaseFileCollector(pytest.File):
    """A case file: one item per case."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            spec = load_cases(self.path)
        except CaseFileError as e:
            raise self.CollectError(str(e)) from None
        if spec.config is None:
            raise self.CollectError(f'{self.path}: no "config:" naming the nginx.conf these cases test')
        for case in spec.cases:
            item: CaseItem = CaseItem.from_parent(self, name=case.name, case=case, config_path=spec.config)
            yield item


class CaseItem(pytest.Item):
    """One case: routed by nginxsim, checked, and with --nginxsim-oracle compared with nginx."""

    def __init__(self, *, case: Case, config_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.config_path = config_path

    def runtest(self) -> None:
        try:
            cfg = _config(self.config, self.config_path)
        except (ConfigError, OSError) as e:
            raise CaseFailed(f"the config does not load: {e}") from None
        result = run_case(cfg, self.case)
        if not result.passed:
            raise CaseFailed(result.report())
        if self.config.getoption("nginxsim_oracle"):
            disagreements = [f"request: {r.request.describe()}\n{m}"
                             for r in result.results if r.outcome is not None
                             for m in self._oracle_differences(r.request, r.outcome.decision)]
            if disagreements:
                raise CaseFailed("nginx disagrees with nginxsim:\n" + "\n".join(disagreements))

    def _oracle_differences(self, request: Request, decision: Decision) -> list[str]:
        """What real nginx does differently with this request. Requests with `down` peers or
        `pinned` variables are not compared: nginx cannot be told either."""
        from .oracle import Nginx, OracleError, OracleRequest, check

        if request.down or request.pinned:
            return []
        oracles = self.config.stash[_ORACLES]
        ng = oracles.get(self.config_path)
        if ng is None:
            try:
                ng = oracles[self.config_path] = Nginx(self.config_path)
            except OracleError as e:
                ng = oracles[self.config_path] = f"real nginx did not start: {e}"
        if isinstance(ng, str):
            raise CaseFailed(ng)
        posed = OracleRequest(client=request.client, url=request.url, method=request.method,
                              headers=request.headers, server_addr=request.server_addr,
                              http_version=request.http_version, absolute_form=request.absolute_form,
                              proxy_protocol=request.proxy_protocol)
        try:
            response = ng.request(posed)
        except (OracleError, RequestError) as e:
            return [f"nginx could not be asked: {e}"]
        return [str(m) for m in check(posed, decision, response)]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        if isinstance(excinfo.value, CaseFailed):
            return f"{self.case.where}: {self.case.name}\n{excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int | None, str]:
        return self.path, (self.case.line or 1) - 1, f"nginxsim case: {self.case.name}"


@pytest.fixture
def nginx_config(request: pytest.FixtureRequest) -> Callable[..., Config]:
    """`nginx_config(path)` (relative to the rootdir; loaded once per session) or
    `nginx_config(text=..., files={...})`: a compiled config, as `nginxsim.load` gives it."""
    root = request.config.rootpath

    def make(path: str | os.PathLike[str] | None = None, *, text: str | None = None,
             files: Mapping[str, str] | None = None, prefix: str | None = None) -> Config:
        if path is None:
            return load(text=text, files=files, prefix=prefix)
        full = str(root / path)
        if prefix is not None:
            return load(full, prefix=prefix)
        return _config(request.config, full)

    return make
