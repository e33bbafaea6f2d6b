"""Routing one request through nginx's phases (`ngx_http_core_module.c` phase checkers).

POST_READ -> SERVER_REWRITE -> FIND_CONFIG -> REWRITE -> POST_REWRITE (loop, 10 changes) ->
ACCESS -> PRECONTENT -> CONTENT, then the header filter's absolute-Location rule. Each phase asks
the modules that own it; the engine itself never reads directives.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from ..decision import Decision, Headers, Upstream
from ..errors import RequestError
from ..modules import content, log, rewrite
from ..modules.base import ACCESS_OK, WWW_AUTHENTICATE
from ..modules.proxy import escape_uri
from ..regex import RegexMatchError
from .context import MAX_URI_CHANGES, Context
from .flow import Finalize, NamedJump, Redirect, count_uri_change, internal_redirect, named_location
from .locations import DONE, find_location
from .request import BadRequest, Request, normalize_uri, parse_request_line, validate_host
from .script import NoBufferSpace
from .servers import WILDCARD6, find_address, find_server
from .trace import Trace
from .variables import text_addr

if TYPE_CHECKING:
    from ..plan import LocationConf, Plan

_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))
_LOCAL_DEFAULT = ipaddress.IPv4Address("127.0.0.1")
_LOCAL_DEFAULT6 = ipaddress.IPv6Address("::1")


def route(plan: Plan, request: Request, *, pinned: dict[str, bytes] | None = None, trace: bool = True,
          preludes: dict[Any, Any] | None = None, down: frozenset[str] = frozenset()) -> Decision:
    """Run one request through the plan and describe what nginx does.

    `preludes` memoises, for one request template (all but the client), what happens before
    the first phase: it depends only on the request and the client's address family.
    """
    return run(Context(plan, request, Trace(trace), pinned or {}), preludes, down)


def run(r: Context, preludes: dict[Any, Any] | None = None, down: frozenset[str] = frozenset()) -> Decision:
    """`route` for a Context made by the caller (a replay.Recorder watches what it reads)."""
    plan = r.plan
    if down:
        r.down = down
    step: Any = _start if preludes is None else (lambda r: _start_memo(r, preludes))
    while True:
        try:
            step(r)
            break
        except Redirect:
            step = _walk
        except NamedJump:
            step = _walk_named
        except Finalize as f:
            step = _finalizer(f)
        except (RegexMatchError, NoBufferSpace) as e:
            r.notes.append(f"{e.message}: 500")
            step = _finalizer(Finalize(500))
    for header_filter in plan.header_filters:
        header_filter(r)
    return _decision(r)


def _start(r: Context) -> None:
    _connection(r)
    _request_line_and_headers(r)
    _post_read(r)


def _post_read(r: Context) -> None:
    for handler in r.plan.post_read:
        handler(r)
    _walk(r)


def _start_memo(r: Context, preludes: dict[Any, Any]) -> None:
    client = r.request.client  # only its family: reading r.client would count as reading the client
    key = (client.version if client is not None else 4, r.trace.enabled)
    prelude = preludes.get(key)
    if prelude is None:
        finalize = None
        try:
            _connection(r)
            _request_line_and_headers(r)
        except Finalize as f:
            finalize = f
        prelude = preludes[key] = Prelude(r, finalize)
    else:
        prelude.apply(r)
    done = prelude.finalize
    if done is not None:  # a fresh exception each time: re-raising one object would grow its traceback
        raise Finalize(done.status, done.location, done.body, done.special)
    _post_read(r)


class Prelude:
    """The state `_connection` and `_request_line_and_headers` leave, replayed for the next
    request of the same template (they read nothing of the client but its address family)."""

    __slots__ = ("state", "slots", "evaluated", "notes", "steps", "finalize")

    _FIELDS = ("local_addr", "addr_conf", "server", "loc", "request_uri", "quoted_uri", "uri", "args",
               "valid_unparsed_uri", "host", "captures", "header_map", "headers_in")

    def __init__(self, r: Context, finalize: Finalize | None) -> None:
        self.state = tuple(getattr(r, f) for f in self._FIELDS)
        self.evaluated = tuple(r.evaluated)
        self.slots = tuple((v.index, r.slots[v.index]) for v in r.evaluated)
        self.notes = tuple(r.notes)
        self.steps = tuple(r.trace.steps)
        self.finalize = finalize

    def apply(self, r: Context) -> None:
        (r.local_addr, r.addr_conf, r.server, r.loc, r.request_uri, r.quoted_uri, r.uri, r.args,
         r.valid_unparsed_uri, r.host, r.captures, r.header_map, r.headers_in) = self.state
        if self.slots:
            for index, value in self.slots:
                r.slots[index] = value
            r.evaluated.extend(self.evaluated)
        if self.notes:
            r.notes.extend(self.notes)
        if r.trace.enabled:
            r.trace.steps.extend(self.steps)


def _finalizer(f: Finalize) -> Any:
    return lambda r: _finalize(r, f)


# -- connection and request parsing ------------------------------------------------------------


def _connection(r: Context) -> None:
    """`ngx_http_init_connection`: the address entry for the local address and port."""
    req = r.request
    family = req.server_addr.version if req.server_addr is not None else (req.client.version if req.client else 4)
    ac = find_address(r.plan.addresses, req.server_port, req.server_addr, family)
    if ac is None:
        listens = ", ".join(a.text for t in r.plan.addresses.values() for a in t.values()) or "none"
        raise RequestError(f"no listen accepts an IPv{family} connection to port {req.server_port} "
                           f"(listens: {listens}); pass server_addr, or a client of another family")
    r.local_addr = req.server_addr or (ac.addr if ac.addr is not None and ac.addr != WILDCARD6 else
                                       (_LOCAL_DEFAULT6 if family == 6 else _LOCAL_DEFAULT))
    default = ac.default
    assert default is not None  # every address entry has one (build_addresses)
    r.addr_conf = ac
    r.server = default
    r.loc = default.loc
    if r.trace.enabled:
        r.trace.add("connection", f"{req.scheme} to {_s(text_addr(r.local_addr))}:{req.server_port}",
                    f"listen {ac.text}, default server {default.label}", default.file, default.line)


def _request_line_and_headers(r: Context) -> None:
    """`ngx_http_process_request_line` + `ngx_http_process_request_headers` + server selection."""
    req = r.request
    default = r.server
    try:
        line = parse_request_line(req)
    except BadRequest as e:
        r.notes.append(f"400: {e.reason}")
        raise Finalize(400) from None
    r.request_uri = line.path
    path_only = line.path.split(b"?", 1)[0].split(b"#", 1)[0]
    r.quoted_uri = b"%" in path_only or b"+" in path_only
    merge = default.loc.conf.get("merge_slashes", True)
    try:
        if line.empty_path:
            r.uri = b"/"
            r.args = (line.path[1:].split(b"#", 1)[0] if line.path.startswith(b"?") else b"") or None
            r.valid_unparsed_uri = False
        else:
            r.uri, args = normalize_uri(line.path, merge)
            r.args = args or None  # an empty query leaves $args not found, as no query does
    except BadRequest as e:
        r.notes.append(f"400: {e.reason}")
        r.uri, r.request_uri = b"", None  # ngx_http_process_request_uri: uri.len = 0, unparsed_uri unset
        raise Finalize(400) from None
    host: bytes | None = None
    if line.host is not None:
        host = validate_host(line.host)
        if host is None:
            raise Finalize(400)
    hosts = [v for n, v in req.headers if n.lower() == b"host"]
    if not hosts and req.url_host is not None and req.http_version != "0.9":
        hosts = [req.url_host]
    header_host = None
    if hosts:
        header_host = validate_host(hosts[0])
        if header_host is None:
            r.notes.append(f"400: invalid Host header {hosts[0]!r}")
            raise Finalize(400)
    if host is None:
        host = header_host
    if host is None and req.http_version == "1.1":
        r.notes.append("400: HTTP/1.1 request without Host")
        raise Finalize(400)
    r.host = host
    server, how, m, rx = find_server(r.addr_conf, host or b"")
    r.server = server
    r.loc = server.loc
    if m is not None and rx is not None:
        r.set_captures(rx, m)
    if r.trace.enabled:
        r.trace.add("server", f"Host {_s(host) if host is not None else '(none)'}", f"{server.label} ({how})",
                    server.file, server.line)
    _header_map(r, req)
    repeated = _repeated_unique_header(r.headers_in)
    if repeated is not None:
        r.notes.append(f"400: a second {_s(repeated)} header")
        raise Finalize(400)
    if req.http_version == "1.1" and req.method in (b"TRACE", b"CONNECT"):
        raise Finalize(405)


# The request headers nginx keeps one of (`ngx_http_process_unique_header_line`; Host:
# `ngx_http_process_host`, after the first one has chosen the server).
_UNIQUE_HEADERS = frozenset((b"host", b"if-modified-since", b"if-unmodified-since", b"if-match", b"if-none-match",
                             b"content-length", b"content-range", b"if-range", b"transfer-encoding", b"expect",
                             b"authorization"))


def _repeated_unique_header(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """`ngx_http_process_unique_header_line`: the name of the first header repeated among
    those nginx allows once (a second one is 400)."""
    seen: set[bytes] = set()
    for name, _ in headers:
        low = name.lower()
        if low in _UNIQUE_HEADERS:
            if low in seen:
                return name
            seen.add(low)
    return None


def _header_map(r: Context, req: Request) -> None:
    """Headers as `$http_*` sees them: names lowercased, '-' -> '_', invalid names dropped."""
    conf = r.server.loc.conf
    underscores = conf.get("underscores_in_headers", False)
    ignore_invalid = conf.get("ignore_invalid_headers", True)
    hm: dict[bytes, list[bytes]] = {}
    kept: list[tuple[bytes, bytes]] = []
    for name, value in req.headers:
        if ignore_invalid and not _valid_header_name(name, underscores):
            continue
        kept.append((name, value))
        hm.setdefault(name.lower().replace(b"-", b"_"), []).append(value)
    if not any(n.lower() == b"host" for n, _ in req.headers) and req.url_host is not None \
            and req.http_version != "0.9":
        kept.insert(0, (b"Host", req.url_host))
        hm.setdefault(b"host", []).insert(0, req.url_host)
    r.header_map = hm
    r.headers_in = kept


def _valid_header_name(name: bytes, underscores: bool) -> bool:
    for c in name:
        if not (0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A or c == 0x2D
                or (c == 0x5F and underscores)):
            return False
    return True


# -- the phases -------------------------------------------------------------------------------


def _walk(r: Context) -> None:
    """`ngx_http_handler`: one pass from SERVER_REWRITE; an internal redirect starts another."""
    r.valid_location = True
    _server_rewrite(r)
    _find_config(r)
    _walk_named(r)


def _walk_named(r: Context) -> None:
    """REWRITE onwards for the current location; a URI change searches locations again."""
    while True:
        if r.loc.script and rewrite.run_script(r, r.loc.script) == rewrite.FINAL:
            _return(r)
        if not r.uri_changed:
            break
        count_uri_change(r, f"rewrite cycle while processing {_s(r.uri)}")
        r.uri_changed = False
        _find_config(r)
    for handler in r.plan.preaccess:
        handler(r)
    if r.plan.access:
        _access(r)
    for handler in r.plan.precontent:
        handler(r)
    content.run(r)


def _access(r: Context) -> None:
    """ACCESS and POST_ACCESS (`ngx_http_core_access_phase`, `ngx_http_core_post_access_phase`).

    `satisfy all`: the first handler that refuses ends the request. `satisfy any`: the first
    that allows skips the rest and cancels a pending WWW-Authenticate; if none allows, 401 when
    one asked for credentials, else 403. Any other refusal (500) ends the request at once.
    """
    satisfy_any = r.loc.conf.get("satisfy") == "any"
    code = 0
    for handler in r.plan.access:
        rc = handler(r)
        if rc is None:
            continue
        if rc == ACCESS_OK:
            if not satisfy_any:
                continue
            challenge = r.module_state.pop(WWW_AUTHENTICATE, None)
            r.headers_out = [h for h in r.headers_out if h is not challenge]
            if r.trace.enabled:
                r.trace.add("access", "satisfy any", "allowed: the other access checks are skipped")
            return
        if satisfy_any and rc in (401, 403):
            code = code if code == 401 else rc
            continue
        raise Finalize(rc)
    if code:
        r.trace.add("access", "satisfy any", f"no access check allowed: {code}")
        raise Finalize(code)


def _server_rewrite(r: Context) -> None:
    """SERVER_REWRITE: the server's own rewrite script, run again after each internal redirect."""
    script = r.server.loc.script
    if script and rewrite.run_script(r, script) == rewrite.FINAL:
        _return(r)
    r.uri_changed = False


def _find_config(r: Context) -> None:
    """FIND_CONFIG (`ngx_http_core_find_config_phase`): location, internal 404, auto-redirect."""
    memo = r.plan.location_memo
    key = (r.server.index, r.uri, r.trace.enabled)
    found = memo.get(key)
    if found is None:  # a pure function of (server, $uri): searched once per distinct URI
        found = find_location(r.server.loc, r.uri, r.trace.enabled)
        found.steps = tuple(("location", f"{loc.label} vs $uri {_s(r.uri)}", what, loc.file, loc.line)
                            for loc, what in found.tested)
        if len(memo) >= 4096:
            memo.clear()
        memo[key] = found
    if r.trace.enabled:
        r.trace.steps.extend(found.steps)
    loc = found.loc if found.loc is not None else r.server.loc
    if found.match is not None and found.loc is not None:
        matched = found.loc if found.loc.regex is not None else _regex_ancestor(found.loc)
        if matched is not None and matched.regex is not None:
            r.set_captures(matched.regex, found.match)
    r.loc = loc
    if found.loc is None and r.trace.enabled:
        r.trace.add("location", f"$uri {_s(r.uri)}", "no location matched: server level handles it",
                    r.server.file, r.server.line)
    if loc.internal and not r.internal:
        r.trace.add("location", loc.label, "internal location, request is external: 404", loc.file, loc.line)
        raise Finalize(404)
    if found.status == DONE:
        target = escape_uri(loc.name_b) + (b"?" + r.args if r.args else b"")
        r.trace.add("location", loc.label, "301 to add the trailing slash", loc.file, loc.line)
        raise Finalize(301, target)
    if loc.limit_except is not None:
        allowed, block = loc.limit_except
        if r.method not in allowed:
            r.trace.add("location", f"limit_except {' '.join(sorted(m.decode() for m in allowed))}",
                        f"{_s(r.method)} not listed: the limit_except block applies", block.file, block.line)
            r.loc = block


def _regex_ancestor(loc: LocationConf) -> LocationConf | None:
    p: LocationConf | None = loc.parent
    while p is not None and p.regex is None:
        p = p.parent
    return p


def _return(r: Context) -> None:
    """`ngx_http_script_return_code`: redirects and error codes without text are special
    responses (error_page applies); a body is sent as is."""
    code, text, d = r.module_state.pop("return")
    if code in _REDIRECT_CODES:
        raise Finalize(code, text if text is not None else b"")
    if text is not None or code < 400:
        raise Finalize(code, None, text if text is not None else b"", special=False)
    raise Finalize(code)


# -- the response -----------------------------------------------------------------------------


def _finalize(r: Context, f: Finalize) -> None:
    """`ngx_http_finalize_request` + `ngx_http_special_response_handler` (error_page)."""
    if f.status == 444:
        r.status = 444
        r.notes.append("444: nginx closes the connection without a response")
        return
    if f.special and f.status >= 300:
        r.err_status = f.status
        pages = r.loc.conf.get("error_page")
        if pages and not r.error_page_used and r.uri_changes != 0:
            if not r.loc.conf.get("recursive_error_pages", False):
                r.error_page_used = True
            for page in pages:
                if f.status in page.codes:
                    if f.location is not None:  # r->headers_out.location outlives the error page's redirect
                        r.module_state["location"] = f.location
                    _send_error_page(r, page, f)
                    return
    r.status = f.status
    r.body = f.body
    kept = r.module_state.pop("location", None)
    location = f.location if f.location is not None else kept
    if location is not None:
        r.headers_out.append(("Location", _s(_absolute_location(r, location))))


def _send_error_page(r: Context, page: Any, f: Finalize) -> None:
    """`ngx_http_send_error_page`: a URI (internal redirect, GET), a @name, or a redirect."""
    if page.overwrite >= 0:
        r.err_status = page.overwrite
    target = page.value.eval(r)
    if r.trace.enabled:
        r.trace.add("error_page", f"error_page for {f.status}", _s(target), page.d.file, page.d.line)
    if target.startswith(b"/"):
        uri, args = (target.split(b"?", 1) + [b""])[:2] if page.value.const is None else (target, page.args)
        if r.method != b"HEAD":
            r.method = b"GET"
        internal_redirect(r, uri, args)
    if target.startswith(b"@"):
        named_location(r, _s(target))
    status = page.overwrite if page.overwrite in _REDIRECT_CODES else 302
    r.err_status = status
    r.status = status
    r.module_state.pop("location", None)  # ngx_http_clear_location
    r.headers_out.append(("Location", _s(_absolute_location(r, target))))


def _absolute_location(r: Context, location: bytes) -> bytes:
    """`ngx_http_header_filter`: a Location starting with '/' gets scheme, host and port."""
    conf = r.loc.conf
    if not location.startswith(b"/") or not conf.get("absolute_redirect", True):
        return location
    if conf.get("server_name_in_redirect", False):
        host = r.server.server_name
    elif r.host:
        host = r.host
    else:
        host = text_addr(r.local_addr)  # ngx_connection_local_sockaddr, printed without a port
    scheme = r.request.scheme
    port = r.request.server_port
    default_port = 443 if scheme == "https" else 80
    port_part = b"" if (port == default_port or not conf.get("port_in_redirect", True)) else b":%d" % port
    return scheme.encode() + b"://" + host + port_part + location


def _variables(r: Context) -> dict[str, str]:
    """The evaluated variables with a value, by name, in order of first evaluation."""
    slots = r.slots
    out: dict[str, str] = {}
    for var in r.evaluated:
        v = slots[var.index]
        if v is not None:
            out[var.name] = _s(v)  # type: ignore[arg-type]
    return out


def _decision(r: Context) -> Decision:
    if r.err_status and r.status is not None:
        r.status = r.err_status  # ngx_http_header_filter sends err_status when set
    up: Any = r.upstream
    loc = r.loc
    req = r.request
    return Decision(  # positional: this runs once per route (fields in Decision's order)
        r.status,
        _s(r.body) if r.body is not None else None,
        Headers(r.headers_out),
        up if isinstance(up, Upstream) else None,
        r.server.place,
        loc.place,
        lambda: _variables(r),
        _s(r.uri),
        _s(r.args or b""),
        r.module_state.get("file"),
        r.trace.steps,
        loc.unsimulated_names,
        r.notes,
        MAX_URI_CHANGES + 1 - r.uri_changes,
        lambda: f"{_s(text_addr(req.client))} {_s(req.request_line)}",
        collect_log_lines=lambda: log.log_lines(r),
    )


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")

