"""The CONTENT phase (`ngx_http_core_content_phase`): the location's handler, else static files.

A `*_pass` handler hands the request to an upstream (the Decision then describes what the
backend receives); without one, nginx's static chain runs: `index` for URIs ending in '/',
the static handler otherwise (`ngx_http_index_handler`, `ngx_http_static_handler`), against the
file system read-only (stat only).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
            pick = group.pick() if group.deterministic and not group.client_dependent else None
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
            pick = group.pick_request(r)
            peer = pick.address if pick is not None else None
        if peer is None:
            r.notes.append(f'no live upstreams while connecting to upstream "{group.name}": 502')
            raise Finalize(502)
    candidates, gfile, gline = dest.candidates, dest.gfile, dest.gline
    r.module_state["proxy_host"] = dest.proxy_host
    r.module_state["proxy_port"] = dest.proxy_port
    conf = r.loc.conf
    if not conf.get(f"{h.module}_pass_request_body", True) and (
            b"content_length" in r.header_map or b"transfer_encoding" in r.header_map):
        r.notes.append(f"{h.module}_pass_request_body off: the request body is not sent, its length still is "
                       "(the backend may wait for it) unless the headers/params clear it")
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


ALIAS_IN_REGEX = -1
"""`clcf->alias` of an alias written in a regex location (nginx's NGX_MAX_SIZE_T_VALUE): the
evaluated alias is the whole path, $uri is not appended (unless try_files set add_uri_to_alias)."""


def alias_length(r: Context) -> int:
    """`clcf->alias`: 0 for root, else the length of the name of the location the alias is
    written in (a nested location inherits it), or ALIAS_IN_REGEX."""
    kind, _, _, name_b, in_regex = r.loc.conf.get("root", _DEFAULT_ROOT)
    if kind != "alias":
        return 0
    return ALIAS_IN_REGEX if in_regex else len(name_b)


def map_uri_to_path(r: Context) -> tuple[bytes, int] | None:
    """`ngx_http_map_uri_to_path`: the file path of $uri and the length of its root part. An
    alias replaces exactly as many bytes of $uri as its location's name has, with no slash
    logic. None (nginx answers 500) for an alias where `rewrite ... break` changed the URI."""
    alias = alias_length(r)
    if alias and not r.valid_location:
        note = f'"alias" cannot be used in location "{r.loc.name}" where URI was rewritten: 500'
        if note not in r.notes:
            r.notes.append(note)
        return None
    base = _document_root(r)
    if alias == ALIAS_IN_REGEX:
        return (base + r.uri if r.module_state.get("add_uri_to_alias") else base), len(base)
    return base + r.uri[alias:], len(base)


def ends_in_slash(r: Context) -> bool:
    """`r->uri.data[r->uri.len - 1] == '/'`. A try_files that found "" leaves $uri empty, and
    nginx then reads the byte before it in its buffer: the last byte of the root."""
    if r.uri:
        return r.uri[-1] == 0x2F
    return bool(r.module_state.get("slash_before_uri"))


def _mapped_or_500(r: Context) -> tuple[bytes, int]:
    """`map_uri_to_path` where the handlers need a path: none (alias after a rewrite) is a 500."""
    mapped = map_uri_to_path(r)
    if mapped is None:
        raise Finalize(500)
    return mapped


def _static(r: Context) -> None:
    """`ngx_http_core_content_phase` without a location handler: nginx runs the content
    handlers in reverse order of registration, index, autoindex, static; when all decline
    (a '/'-ending URI without index file or listing) the answer is 403."""
    if ends_in_slash(r):
        _index_handler(r)
        _autoindex_handler(r)
    _static_handler(r)
    r.trace.add("content", f"$uri {_s(r.uri)}", "directory index is forbidden: 403")
    raise Finalize(403)


def _index_handler(r: Context) -> None:
    """`ngx_http_index_handler`: the first index name that exists (file or directory alike)
    is an internal redirect to $uri + name, args kept; an absolute name redirects untested.
    ENOENT tests the directory once (missing: 404), other errors end the request."""
    if r.method not in (b"GET", b"HEAD", b"POST"):
        return
    index: Index = r.loc.conf.get("index", _DEFAULT_INDEX)
    mapped: tuple[bytes, int] | None = None
    dir_tested = False
    for spec in index.names:
        name = spec if isinstance(spec, bytes) else spec.eval(r)
        if name.startswith(b"/"):
            r.trace.add("content", f"index {_s(name)}", "absolute: internal redirect", index.file, index.line)
            internal_redirect(r, name, r.args)
        if mapped is None:
            mapped = _mapped_or_500(r)
        base = mapped[0]
        info = r.open(base + name)
        if isinstance(info, FileInfo):
            r.trace.add("content", f"index {_s(name)}", f"{_s(base + name)} exists: internal redirect",
                        index.file, index.line)
            internal_redirect(r, r.uri + name, r.args)
        r.trace.add("content", f"index {_s(name)}", f"{_s(base + name)}: {errno.errorcode.get(info, info)}",
                    index.file, index.line)
        if info in (errno.ELOOP, errno.EMLINK, errno.EACCES):
            raise Finalize(403)
        if info in (errno.ENOTDIR, errno.ENAMETOOLONG):
            raise Finalize(404)
        if not dir_tested:
            _index_test_dir(r, base)
            dir_tested = True
        if info != errno.ENOENT:
            raise Finalize(500)


def _index_test_dir(r: Context, base: bytes) -> None:
    """`ngx_http_index_test_dir`: the directory the index names were looked for in (without its
    trailing '/'): missing is 404, not a directory 500; EACCES lets the search go on."""
    path = base[:-1] if base.endswith(b"/") and len(base) > 1 else base
    info = r.open(path)
    if isinstance(info, FileInfo):
        if stat.S_ISDIR(info.mode):
            return
        r.notes.append(f'"{_s(path)}" is not a directory: 500')
        raise Finalize(500)
    if info in (errno.ELOOP, errno.EMLINK):
        raise Finalize(403)
    if info == errno.EACCES:
        return
    r.trace.add("content", f"index directory {_s(path)}", errno.errorcode.get(info, str(info)))
    raise Finalize(404 if info == errno.ENOENT else 500)


def _autoindex_handler(r: Context) -> None:
    """`ngx_http_autoindex_handler`: with `autoindex on`, GET/HEAD of a '/'-ending URI lists the
    directory (the mapped path minus its last byte); opendir's errors are 404/403/500."""
    if r.method not in (b"GET", b"HEAD") or not r.loc.conf.get("autoindex", False):
        return
    mapped = _mapped_or_500(r)
    path = mapped[0][:-1] if len(mapped[0]) > 1 else mapped[0]
    info = r.lookup(path)
    if isinstance(info, FileInfo) and not stat.S_ISDIR(info.mode):
        info = errno.ENOTDIR
    if isinstance(info, int):
        r.trace.add("content", f"autoindex of {_s(path)}", errno.errorcode.get(info, str(info)))
        raise Finalize(404 if info in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG)
                       else 403 if info == errno.EACCES else 500)
    r.trace.add("content", f"autoindex of {_s(path)}", "directory listing: 200")
    r.notes.append(f"autoindex: nginx answers with a listing of {_s(path)}")
    raise Finalize(200, special=False)


def _static_handler(r: Context) -> None:
    """`ngx_http_static_handler`: 405 for methods other than GET/HEAD/POST; declines for
    '/'-ending URIs; a directory is a 301 to $uri/ (escaped, with args); a regular file is 200
    (405 for POST); anything else 404. Failures: 404 (ENOENT, ENOTDIR, ENAMETOOLONG), 403
    (EACCES, ELOOP, EMLINK), 500."""
    if r.method not in (b"GET", b"HEAD", b"POST"):
        r.trace.add("content", f"static {_s(r.method)}", "method not allowed: 405")
        raise Finalize(405)
    if ends_in_slash(r):
        return
    path = _mapped_or_500(r)[0]
    info = r.open(path)
    if isinstance(info, int):
        r.trace.add("content", f"static file {_s(path)}", errno.errorcode.get(info, str(info)))
        raise Finalize(404 if info in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG)
                       else 403 if info in (errno.EACCES, errno.ELOOP, errno.EMLINK) else 500)
    if stat.S_ISDIR(info.mode):
        r.trace.add("content", f"static file {_s(path)}", "a directory: 301 to add the trailing slash")
        raise Finalize(301, escape_uri(r.uri) + b"/" + (b"?" + r.args if r.args else b""))
    if not stat.S_ISREG(info.mode):
        r.trace.add("content", f"static file {_s(path)}", "not a regular file: 404")
        raise Finalize(404)
    if r.method == b"POST":
        r.trace.add("content", f"static file {_s(path)}", "POST to a file: 405")
        raise Finalize(405)
    r.trace.add("content", f"static file {_s(path)}", "200")
    r.module_state["file"] = _s(path)
    raise Finalize(200)


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


_DEFAULT_ROOT = ("root", None, None, b"", False)  # `root html` under the prefix


def _document_root(r: Context) -> bytes:
    """`$document_root`: the evaluated root or alias. A root not starting with '$' was made
    absolute when compiled (`ngx_conf_full_name`); one that starts with a variable is made
    absolute against the prefix after evaluation (`ngx_get_full_name`)."""
    value = r.loc.conf.get("root", _DEFAULT_ROOT)[1]
    if value is None:
        return os.path.join(r.plan.tree.prefix.encode(), b"html")
    base: bytes = value.eval(r)
    if value.const is None and not base.startswith(b"/"):
        return os.path.join(r.plan.tree.prefix.encode(), base)
    return base


def _realpath_root(r: Context) -> bytes | None:
    """`$realpath_root`: not found when realpath(3) fails (e.g. a missing root)."""
    return r.realpath(_document_root(r))


def _request_filename(r: Context) -> bytes | None:
    mapped = map_uri_to_path(r)
    return mapped[0] if mapped is not None else None


@dataclass(frozen=True, slots=True)
class Index:
    """An `index` directive: names (a Complex when it has variables), where it is written."""

    names: tuple[bytes | Complex, ...]
    file: str | None
    line: int | None


_DEFAULT_INDEX = Index((b"index.html",), None, None)


def _index(d: Directive, level: Level, cc: Compiler) -> Index:
    """`ngx_http_index_set_index`: names tried in order; an empty one is refused (nginx's
    message names the first argument), an absolute one before the last only warns."""
    names: list[bytes | Complex] = []
    for i, name in enumerate(d.args):
        if name.startswith("/") and i != len(d.args) - 1:
            cc.warn(d, 'only the last index in "index" directive should be absolute')
        if not name:
            raise error(d, f'index "{d.args[0]}" in "index" directive is invalid')
        names.append(cc.complex(name, d) if "$" in name else name.encode("utf-8", "surrogateescape"))
    return Index(tuple(names), d.file, d.line)


MODULE = Module(
    "ngx_http_static_module",
    (Command(DirectiveSpec("index", HTTP_MAIN | HTTP_SRV | HTTP_LOC, ONEMORE), _index),
     Command(DirectiveSpec("autoindex", HTTP_MAIN | HTTP_SRV | HTTP_LOC, FLAG), flag_value)),
    variables=(("document_root", _document_root, False), ("realpath_root", _realpath_root, False),
               ("request_filename", _request_filename, False)),
)
