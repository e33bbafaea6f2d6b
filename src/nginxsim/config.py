"""The public entry points: `load` a config once, `Config.route` many requests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import conf
from .conf.spec import DirectiveSpec
from .decision import Decision
from .errors import ConfigError, RequestError
from .http import replay
from .http.files import Entry
from .http.request import Request, parse_address, prepare_request
from .modules import INERT, MODULES
from .modules.upstream import UpstreamGroup
from .plan import Plan, build_plan


class Config:
    """A compiled nginx configuration. Immutable and safe to share between threads."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        # Memo of pure work per distinct request (everything but the client): the parsed request
        # and the engine's preludes (request line, Host, server choice). Bounded; see _remember.
        self._requests: dict[tuple[object, ...], tuple[Request, dict[Any, Any], dict[Any, replay.Node]]] = {}

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the config read (main file and includes), in order."""
        return self.plan.tree.files

    def upstream(self, name: str) -> UpstreamGroup:
        """An `upstream {}` group by name (case-insensitive, as nginx looks them up), for direct
        questions: `cfg.upstream("api").pick(key=b"user42")`."""
        group: UpstreamGroup | None = self.plan.upstreams.get(name.lower())
        if group is None:
            known = ", ".join(sorted(g.name for g in self.plan.upstreams.values())) or "none"
            raise KeyError(f"no upstream {name!r} in this config (upstreams: {known})")
        return group

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
        proxy_protocol: str | None = None,
        down: Iterable[str] | str = (),
    ) -> Decision:
        """What nginx does with this request from `client` (the TCP peer address).

        `url` is absolute: its scheme and port pick the listen socket, its host becomes the Host
        header unless `headers` has one, its path and query are sent as given. `pinned` fixes
        nondeterministic variables (`request_id`, `msec`, `time_local`...). `proxy_protocol` is the
        PROXY protocol v1 line a `listen ... proxy_protocol` socket reads first, e.g.
        "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443" (`client` is then the proxy's address); whether
        the listen has `proxy_protocol` is not checked. `down` names upstream peers (as written
        in `server` lines) to treat as down: what nginx does if they fail.
        """
        key = (url, method, _frozen(headers) if headers else (), server_addr, http_version, absolute_form,
               proxy_protocol)
        known = self._requests.get(key)
        if known is None:
            template = prepare_request(url, method=method, headers=headers, server_addr=server_addr,
                                       http_version=http_version, absolute_form=absolute_form,
                                       proxy_protocol=proxy_protocol)
            known = _remember(self._requests, key, (template, {}, {}))
        pins = _pins(pinned) if pinned else {}
        peers = frozenset((down,) if isinstance(down, str) else down) if down else _NONE_DOWN
        return replay.route(self.plan, known, parse_address(client), client, pins, trace, peers)


_MEMO_SIZE = 4096
_NONE_DOWN: frozenset[str] = frozenset()


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> Any:
    """Store in a bounded memo: when full it starts over (cheap, and sweeps repeat few keys)."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
    return value


def _pins(pinned: Mapping[str, str]) -> dict[str, bytes]:
    """`route(pinned=...)` as the engine reads it; a value that cannot be one is a RequestError."""
    if not isinstance(pinned, Mapping):
        raise RequestError(f"pinned must map variable names to values, e.g. {{'msec': '1700000000'}} (got {pinned!r})")
    pins = {str(k).lstrip("$"): str(v).encode() for k, v in pinned.items()}
    msec = pins.get("msec")
    if msec is not None:
        try:
            float(msec)
        except ValueError:
            raise RequestError("pinned msec must be seconds since the epoch, e.g. '1700000000.123' "
                               f"(got {msec.decode()!r})") from None
    return pins


def _frozen(headers: Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str]) -> tuple[Any, ...]:
    if isinstance(headers, Mapping):
        return tuple(headers.items())
    return tuple(map(tuple, headers))


def load(
    path: str | None = None,
    *,
    text: str | bytes | None = None,
    files: Mapping[str, str] | None = None,
    prefix: str | None = None,
    fs: Mapping[str, Entry] | None = None,
) -> Config:
    """Read, validate and compile a config the way `nginx -t` does; raises ConfigError.

    `fs` describes the file system requests see instead of the real one: `{path: contents}` for
    files, a path ending in "/" or valued None for a directory, `Symlink(target)`/`File(...)`
    from `nginxsim.http.files`; relative paths are under the prefix."""
    if isinstance(text, bytes):  # a config is bytes to nginx: keep what is not UTF-8 as it is
        text = text.decode("utf-8", "surrogateescape")
    tree, errors = conf.check(path, text=text, files=files, prefix=prefix, specs=_SPECS)
    try:
        if not errors:
            return Config(build_plan(tree, MODULES, INERT, fs))
        raise errors[0]
    except ConfigError as e:
        # nginx meets errors in its own order (a handler's before a later directive's generic
        # checks): the error path asks every pass (lazily: diagnostics imports this module)
        from .diagnostics import first_error

        raise first_error(path, text=text, files=files, prefix=prefix) or e from None


def _specs() -> dict[str, tuple[DirectiveSpec, ...]]:
    """Our modules' directive specs by name (`server` has two: http's and upstream's)."""
    by_name: dict[str, list[DirectiveSpec]] = {}
    for m in MODULES:
        for c in m.commands:
            by_name.setdefault(c.name, []).append(c.spec)
    return {name: tuple(specs) for name, specs in by_name.items()}


_SPECS = _specs()
