"""The CONTENT phase (`ngx_http_core_content_phase`): the location's handler, else static files.

A `*_pass` handler hands the request to an upstream (the Decision then describes what the
backend receives); without one, nginx's static chain runs: `index` for URIs ending in '/',
the static handler otherwise (`ngx_http_index_handler`, `ngx_http_static_handler`), against the
file system read-only (stat only).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import FLAG, HTTP_LOC, HTTP_MAIN, HTTP_SRV, ONEMORE, DirectiveSpec
from ..decision import Headers, Upstream
from ..errors import ConfigError
from ..http.files import FileInfo
from ..http.flow import Finalize, internal_redirect
from ..http.script import Complex
from ..plan import Compiler, Level, error
from .base import Command, Module
from .proxy import PassHandler, Target, escape_uri, find_group, flag_value, parse_target, reply

if TYPE_CHECKING:
    from ..http.context import Context


def handler_of(r: Context) -> PassHandler | None:
    """The content handler in force: an `if`/`limit_except` block inherits its location's."""
    loc = r.loc
    while loc is not None:
        h = loc.handler
        if h is not None or loc.kind not in ("if", "limit_except"):
            return h  # type: ignore[no-any-return]
        loc = loc.parent  # type: ignore[assignment]
    return None


def run(r: Context) -> None:
    h = handler_of(r)
    if h is not None:
        _pass(r, h)
        return
    _static(r)


class Destination:
    """Where a pass sends requests for one evaluated URL: target, group, peer choice. A pure
    function of the URL, so it is computed once per distinct URL (`resolve`)."""

    __slots__ = ("target", "group", "name", "peer", "candidates", "gfile", "gline", "proxy_host", "proxy_port",
                 "shares", "failure")

    def __init__(self, h: PassHandler, url: str | None, r: Context) -> None:
        self.failure: tuple[int, str] | None = None
        target = h.target
        group = h.group
        if url is not None:
            try:
                target = parse_target(url, h.module, h.d)
            except ConfigError:
                self.failure = (500, f'invalid URL prefix in "{url}": 500')
                return
            group = find_group(r, target.host.encode(), target.port, target.scheme)
            if group is None and not target.host.startswith("unix:") and not _is_ip(target.host):
                self.failure = (502, f"no resolver defined to resolve {target.host}: 502")
                return
        assert target is not None
        self.target = target
        self.group = group
        if group is not None:
            # memoised per URL: the choice of a balancer that looks at neither client nor key
            pick = group.pick_for() if group.deterministic and not group.client_dependent else None
            self.peer = pick.address if pick is not None else None
            self.candidates = tuple(p.address for p in group.peers if not p.down)
            self.shares: Mapping[str, float] = MappingProxyType({} if group.client_dependent else group.shares())
            self.name = group.name
            d = group.directive
            self.gfile: str | None = d.file if d else None
            self.gline: int | None = d.line if d else None
        else:
            port = target.port if target.port is not None else (443 if target.scheme == "https" else 80)
            self.peer = target.host if target.host.startswith("unix:") else f"{target.host}:{port}"
            self.candidates, self.name, self.gfile, self.gline = (self.peer,), target.proxy_host, None, None
            self.shares = MappingProxyType({self.peer: 1.0})
        self.proxy_host = target.proxy_host.encode()
        default = 443 if target.scheme in ("https", "grpcs") else 80
        self.proxy_port = b"" if target.host.startswith("unix:") else str(target.port or default).encode()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def resolve(r: Context, h: PassHandler) -> Destination:
    """The destination for this request, from the handler's memo of evaluated URLs."""
    url = h.dynamic.eval(r).decode("utf-8", "surrogateescape") if h.dynamic is not None else None
    dest = h.destinations.get(url)
    if dest is None:
        if len(h.destinations) > 1024:
            h.destinations.clear()
        dest = h.destinations[url] = Destination(h, url, r)
    return dest


def _pass(r: Context, h: PassHandler) -> None:
    """Build the upstream request (`ngx_http_upstream_init_request` + `*_create_request`)."""
    dest = resolve(r, h)
    if dest.failure is not None:
        r.notes.append(dest.failure[1])
        raise Finalize(dest.failure[0])
    target, name, peer = dest.target, dest.name, dest.peer
    group = dest.group
    if group is not None and group.deterministic:
        if group.client_dependent or r.down:  # ip_hash / hash / a what-if: depends on this request
            pick = group.pick(r)
            peer = pick.address if pick is not None else None
        if peer is None:
            r.notes.append(f'no live upstreams while connecting to upstream "{group.name}": 502')
            raise Finalize(502)
    candidates, gfile, gline = dest.candidates, dest.gfile, dest.gline
    r.module_state["proxy_host"] = dest.proxy_host
    r.module_state["proxy_port"] = dest.proxy_port
    conf = r.loc.conf
    method = r.method.decode("latin-1")
    build: Callable[[], tuple[Headers, Headers | None]]
    if h.module in ("proxy", "grpc"):
        uri = h.upstream_uri(r, target).decode("utf-8", "surrogateescape")
        if h.module == "proxy":
            method = conf.get("proxy_method", method)
        version: str | None = conf.get("proxy_http_version", "1.0") if h.module == "proxy" else "2"
        build = lambda: (_proxy_headers(r, h.module, target), None)  # noqa: E731
    else:
        uri, version = None, None
        build = lambda: (Headers(), _params(r, h.module))  # noqa: E731
    # positional, in Upstream's field order: this runs once per passed request
    shares = dest.shares if not r.down or group is None or group.client_dependent else group.shares(r.down)
    r.upstream = Upstream(h.protocol, name, peer, uri, method, version, build, gfile, gline, candidates, shares,
                          respond=lambda status, headers: reply(r, h, status, headers))
    if r.trace.enabled:
        r.trace.later("content", _pass_step, (h, name, peer, uri), h.d.file, h.d.line)


def _pass_step(h: PassHandler, name: str, peer: str | None, uri: str | None) -> tuple[str, str]:
    result = f"upstream {name}, peer {peer or 'not deterministic'}" + (f", uri {uri}" if uri else "")
    return f"{h.d.name} {h.d.args[0]}", result


_PROXY_DEFAULTS = (("Host", None), ("Connection", b"close"), ("Content-Length", None),
                   ("Transfer-Encoding", None), ("TE", b""), ("Keep-Alive", b""), ("Expect", b""),
                   ("Upgrade", b""))


def _proxy_headers(r: Context, module: str, target: Target) -> Headers:
    """`ngx_http_proxy_create_request` header block: set headers, defaults, then client headers."""
    conf = r.loc.conf
    configured = conf.get(f"{module}_set_header", [])
    out: list[tuple[str, str]] = []
    names: set[str] = set()
    for name, value, _ in configured:
        names.add(name.lower())
        v = value.eval(r)
        if v:
            out.append((name, _s(v)))
    if module == "proxy":
        for name, default in _PROXY_DEFAULTS:
            if name.lower() in names:
                continue
            names.add(name.lower())
            if name == "Host":
                out.append(("Host", target.proxy_host))
            elif name == "Content-Length":
                vals = r.header_map.get(b"content_length")
                if vals and not r.header_map.get(b"transfer_encoding"):
                    out.append(("Content-Length", _s(vals[0])))
            elif default:
                out.append((name, _s(default)))
    else:
        names.update(("host", "connection", "te", "keep-alive", "transfer-encoding", "upgrade", "expect",
                      "proxy-connection", "content-length"))
    if conf.get(f"{module}_pass_request_headers", True):
        for name, value in r.headers_in:
            n = _s(name)
            if n.lower() not in names:
                out.append((n, _s(value)))
    return Headers(out)


def _params(r: Context, module: str) -> Headers:
    """`*_param` list (with `if_not_empty`) plus `HTTP_*` for client headers (`*_create_request`)."""
    conf = r.loc.conf
    out: list[tuple[str, str]] = []
    names: set[str] = set()
    for name, value, if_not_empty, _ in conf.get(f"{module}_param", []):
        v = value.eval(r)
        names.add(name.upper())
        if if_not_empty and not v:
            continue
        out.append((name, _s(v)))
    if conf.get(f"{module}_pass_request_headers", True):
        for name, value in r.headers_in:
            key = "HTTP_" + _s(name).upper().replace("-", "_")
            if key not in names:
                out.append((key, _s(value)))
    return Headers(out)


def _root_path(r: Context) -> bytes:
    """`ngx_http_map_uri_to_path`: root + $uri, or alias + what follows the location name."""
    kind, _, _, name_b, in_regex = r.loc.conf.get("root", _DEFAULT_ROOT)
    base = _document_root(r)
    if kind == "alias":
        return base if in_regex else base + r.uri[len(name_b) :]
    return base + r.uri


def _static(r: Context) -> None:
    """Index for '/'-ending URIs, else the static handler; nothing found: 403/404."""
    if r.method not in (b"GET", b"HEAD", b"POST"):
        raise Finalize(405)
    path = _root_path(r)
    if r.uri.endswith(b"/"):
        for name in r.loc.conf.get("index", (b"index.html",)):
            info = r.stat(path + name)
            if info is not None and stat.S_ISREG(info.mode):
                r.trace.add("content", f"index {_s(name)}", f"found {_s(path + name)}: internal redirect")
                internal_redirect(r, r.uri + name, r.args)
        info = r.stat(path)
        if info is not None and stat.S_ISDIR(info.mode):
            if r.loc.conf.get("autoindex", False):
                r.trace.add("content", f"autoindex of {_s(path)}", "directory listing: 200")
                r.notes.append(f"autoindex: nginx answers with a listing of {_s(path)}")
                raise Finalize(200, special=False)
            r.trace.add("content", f"index of {_s(path)}", "directory without index file: 403")
            raise Finalize(403)
        r.trace.add("content", f"index of {_s(path)}", "directory does not exist: 404")
        raise Finalize(404)
    info = r.stat(path)
    if info is None:
        r.trace.add("content", f"static file {_s(path)}", "not found: 404")
        raise Finalize(404)
    if stat.S_ISDIR(info.mode):
        raise Finalize(301, escape_uri(r.uri + b"/") + (b"?" + r.args if r.args else b""))
    if r.method == b"POST":
        raise Finalize(405)
    r.module_state["file"] = _s(path)
    raise Finalize(200)


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


_DEFAULT_ROOT = ("root", None, None, b"", False)  # `root html` under the prefix


def _document_root(r: Context) -> bytes:
    """`$document_root`: the evaluated root or alias, made absolute against the prefix."""
    value = r.loc.conf.get("root", _DEFAULT_ROOT)[1]
    base = value.eval(r) if value is not None else b"html"
    return base if base.startswith(b"/") else os.path.join(r.plan.tree.prefix.encode(), base)


def _realpath_root(r: Context) -> bytes | None:
    return r.realpath(_document_root(r) or b"")


def _request_filename(r: Context) -> bytes | None:
    return _root_path(r)


def _index(d: Directive, level: Level, cc: Compiler) -> tuple[bytes, ...]:
    """`ngx_http_index_set_index`: names tried in order; empty names are refused."""
    for name in d.args:
        if not name:
            raise error(d, f'index "{name}" in "index" directive is invalid')
    return tuple(a.encode("utf-8", "surrogateescape") for a in d.args)


MODULE = Module(
    "ngx_http_static_module",
    (Command(DirectiveSpec("index", HTTP_MAIN | HTTP_SRV | HTTP_LOC, ONEMORE), _index),
     Command(DirectiveSpec("autoindex", HTTP_MAIN | HTTP_SRV | HTTP_LOC, FLAG), flag_value)),
    variables=(("document_root", _document_root, False), ("realpath_root", _realpath_root, False),
               ("request_filename", _request_filename, False)),
)
