"""The public entry points: `load` a config once, `Config.route` many requests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import conf
from .decision import Decision
from .http.engine import route as _route
from .http.request import make_request
from .modules import INERT, MODULES
from .plan import Plan, build_plan


class Config:
    """A compiled nginx configuration. Immutable and safe to share between threads."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the config read (main file and includes), in order."""
        return self.plan.tree.files

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warnings `nginx -t` would print (e.g. conflicting server names)."""
        return self.plan.warnings

    def route(
        self,
        client: str,
        url: str | bytes = "http://localhost/",
        *,
        method: str = "GET",
        headers: Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str] = (),
        server_addr: str | None = None,
        http_version: str = "1.1",
        absolute_form: bool = False,
        pinned: Mapping[str, str] | None = None,
        trace: bool = True,
    ) -> Decision:
        """What nginx does with this request from `client` (the TCP peer address).

        `url` is absolute: its scheme and port pick the listen socket, its host becomes the Host
        header unless `headers` has one, its path and query are sent as given. `pinned` fixes
        nondeterministic variables (`request_id`, `msec`, `time_local`...).
        """
        req = make_request(client, url, method=method, headers=headers, server_addr=server_addr,
                           http_version=http_version, absolute_form=absolute_form)
        pins = {k: v.encode() for k, v in (pinned or {}).items()}
        return _route(self.plan, req, pinned=pins, trace=trace)


def load(
    path: str | None = None,
    *,
    text: str | None = None,
    files: Mapping[str, str] | None = None,
    prefix: str | None = None,
) -> Config:
    """Read, validate and compile a config the way `nginx -t` does; raises ConfigError."""
    tree = conf.read(path, text=text, files=files, prefix=prefix)
    errors = conf.validate(tree, _SPECS)
    if errors:
        raise errors[0]
    return Config(build_plan(tree, MODULES, INERT))


def _specs() -> dict[str, Any]:
    """Our modules' directive specs; a name two modules share (`server`) is left to the stock table."""
    by_name: dict[str, list[Any]] = {}
    for m in MODULES:
        for c in m.commands:
            by_name.setdefault(c.name, []).append(c.spec)
    return {name: specs[0] for name, specs in by_name.items() if len(specs) == 1}


_SPECS = _specs()
