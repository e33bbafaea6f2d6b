"""`ngx_http_proxy_module`, and the machinery every `*_pass` shares (uwsgi, fastcgi, scgi, grpc).

A pass directive becomes the location's content handler (`ngx_http_proxy_pass` and twins): it
sets the auto-redirect flag on locations whose name ends in '/', refuses a URI part where nginx
does, and resolves its target to an upstream group once the whole http block is read. At request
time `PassHandler.run` builds what the backend receives (`ngx_http_proxy_create_request`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..conf.directive import Directive
from ..conf.spec import (
    FLAG,
    HTTP_LIF,
    HTTP_LMT,
    HTTP_LOC,
    HTTP_MAIN,
    HTTP_SRV,
    TAKE1,
    TAKE2,
    TAKE12,
    TAKE23,
    DirectiveSpec,
    Merge,
)
from ..decision import Headers, Reply
from ..http.script import Complex
from ..http.trace import Trace
from ..http.variables import text_addr
from ..plan import Compiler, Level, LocationConf, error
from ..regex import Regex, RegexMatchError
from .base import Command, Module
from .core import flag
from .headers import Pointers, parse_http_time
from .upstream import Peer, UpstreamGroup

if TYPE_CHECKING:
    from ..http.context import Context

_DEFAULT_PORT = {"http": 80, "https": 443, "grpc": 80, "grpcs": 443}

# ngx_escape_uri(NGX_ESCAPE_URI) as nginx applies it to $uri when sending it upstream.
_URI_ESCAPE = (frozenset(range(0x00, 0x21)) | frozenset(b'"#%<>?\\^`{|}') | frozenset(range(0x7F, 0x100)))


def escape_uri(data: bytes) -> bytes:
    """`ngx_escape_uri(..., NGX_ESCAPE_URI)`, uppercase hex."""
    if not any(c in _URI_ESCAPE for c in data):
        return data
    return b"".join(b"%%%02X" % c if c in _URI_ESCAPE else bytes((c,)) for c in data)


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed static pass URL: scheme, host as written, port (None if not written), URI part."""

    scheme: str
    host: str
    port: int | None
    uri: bytes | None

    @property
    def proxy_host(self) -> str:
        """`$proxy_host`: host as written, with the port only when written and not the default."""
        if self.host.startswith("unix:"):
            return "localhost"
        if self.port is not None and self.port != _DEFAULT_PORT.get(self.scheme, 0):
            return f"{self.host}:{self.port}"
        return self.host


def parse_target(url: str, protocol: str, d: Directive) -> Target:
    """`ngx_parse_url` with `uri_part`: scheme://host[:port][/uri or ?args] or unix:/path[:uri]."""
    lower = url.lower()
    if protocol == "proxy":
        if lower.startswith("http://"):
            scheme, rest = "http", url[7:]
        elif lower.startswith("https://"):
            scheme, rest = "https", url[8:]
        else:
            raise error(d, "invalid URL prefix")
    elif protocol == "grpc":
        if lower.startswith("grpc://"):
            scheme, rest = "grpc", url[7:]
        elif lower.startswith("grpcs://"):
            scheme, rest = "grpcs", url[8:]
        else:
            scheme, rest = "grpc", url
    else:
        scheme, rest = protocol, url
        if lower.startswith(f"{protocol}://"):
            rest = url[len(protocol) + 3 :]
    if rest.lower().startswith("unix:"):
        path, sep, uri = rest[5:].partition(":")
        return Target(scheme, "unix:" + path, None, uri.encode() if sep else None)
    cut = len(rest)
    for ch in "/?":
        i = rest.find(ch)
        if 0 <= i < cut:
            cut = i
    authority, uri_text = rest[:cut], rest[cut:]
    if authority.startswith("["):
        end = authority.find("]")
        host, port_text = authority[: end + 1], authority[end + 2 :] if end + 1 < len(authority) else ""
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise error(d, f'no host in upstream "{rest}"')
    port = None
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise error(d, f'invalid port in upstream "{rest}"')
        port = int(port_text)
    return Target(scheme, host, port, uri_text.encode("utf-8", "surrogateescape") if uri_text else None)


@dataclass(eq=False)
class PassHandler:
    """The content handler a `*_pass` directive installs."""

    protocol: str  # http | https | uwsgi | fastcgi | scgi | grpc
    module: str  # proxy | uwsgi | fastcgi | scgi | grpc (directive prefix)
    d: Directive
    target: Target | None  # static URL
    dynamic: Complex | None  # URL with variables
    location_name: bytes  # chopped from $uri when the URL has a URI part ("" in regex/named/if)
    group: UpstreamGroup | None = None  # resolved by `resolve_groups`
    destinations: dict[str | None, Any] = field(default_factory=dict)  # memo: evaluated URL -> Destination

    @property
    def name(self) -> str:
        if self.group is not None and self.group.explicit:
            return self.group.name
        t = self.target
        if t is None:
            return self.d.args[0]
        return t.host if t.port is None else f"{t.host}:{t.port}"

    def upstream_uri(self, r: Context, target: Target | None) -> bytes:
        """The request target sent upstream (routing.md §6.2, `ngx_http_proxy_create_key/request`)."""
        if target is not None and self.dynamic is not None and target.uri is not None:
            return target.uri if not target.uri.startswith(b"?") else b"/" + target.uri
        if target is None or target.uri is None or not r.valid_location:
            if r.valid_unparsed_uri and (target is None or target.uri is None) and r.request_uri is not None:
                return r.request_uri
            base = escape_uri(r.uri) if (r.quoted_uri or r.internal) else r.uri
        else:
            rest = r.uri[len(self.location_name) :]
            base = target.uri + (escape_uri(rest) if (r.quoted_uri or r.internal) else rest)
        return base + b"?" + r.args if r.args else base


def _pass(module: str, protocol: str):  # type: ignore[no-untyped-def]
    def handler(d: Directive, level: Level, cc: Compiler) -> None:
        loc: LocationConf = level.owner
        if "content:handler" in level.values:
            raise error(d, f'"{d.name}" directive is duplicate')
        url = d.args[0]
        dynamic = cc.complex(url, d) if "$" in url else None
        target = None if dynamic is not None else parse_target(url, module, d)
        if target is not None and target.uri is not None and loc.kind in ("regex", "iregex", "named", "if",
                                                                           "limit_except"):
            raise error(d, f'"{d.name}" cannot have URI part in location given by regular expression, '
                           'or inside named location, or inside "if" statement, or inside "limit_except" block')
        if loc.kind not in ("if", "limit_except") and loc.name.endswith("/"):
            loc.auto_redirect = True
        proto = target.scheme if (target is not None and module in ("proxy", "grpc")) else protocol
        name_len_src = b"" if loc.kind in ("regex", "iregex", "named", "if", "limit_except") else loc.name_b
        h = PassHandler(proto if module != "grpc" else "grpc", module, d, target, dynamic, name_len_src)
        cc.state.setdefault("passes", []).append(h)
        level.values["content:handler"] = h

    return handler


def resolve_groups(cc: Compiler) -> None:
    """Attach every static pass to its group (`ngx_http_upstream_add`), after all `upstream`s are read."""
    implicit: dict[tuple[str, int], UpstreamGroup] = {}
    for h in cc.state.get("passes", []):
        t = h.target
        if t is None:
            continue
        explicit = cc.upstreams.get(t.host.lower())
        if explicit is not None:
            if t.port is not None:
                raise error(h.d, f'upstream "{t.host}" may not have port {t.port}')
            h.group = explicit
            continue
        if t.host.startswith("unix:"):
            port = 0
        elif t.port is None:
            if h.module in ("uwsgi", "fastcgi", "scgi"):
                raise error(h.d, f'no port in upstream "{t.host}"')
            port = _DEFAULT_PORT.get(t.scheme, 80)
        else:
            port = t.port
        key = (t.host.lower(), port)
        group = implicit.get(key)
        if group is None:
            addr = t.host if t.host.startswith("unix:") else f"{t.host}:{port}"
            group = UpstreamGroup(t.host if t.port is None else f"{t.host}:{t.port}", False, port, [Peer(addr)])
            implicit[key] = group
        h.group = group
    cc.state["implicit_upstreams"] = implicit


def find_group(r: Context, host: bytes, port: int | None, scheme: str) -> UpstreamGroup | None:
    """`ngx_http_upstream_init_request` for an evaluated URL: explicit groups match only without a
    port; implicit ones when the ports agree."""
    name = host.decode("utf-8", "surrogateescape").lower()
    if port is None:
        g: UpstreamGroup | None = r.plan.upstreams.get(name)
        if g is not None:
            return g
    implicit: dict[tuple[str, int], UpstreamGroup] = r.plan.modules_state.get("implicit_upstreams", {})
    found: UpstreamGroup | None = implicit.get((name, port if port is not None else _DEFAULT_PORT.get(scheme, 80)))
    return found


def header_directive(d: Directive, level: Level, cc: Compiler) -> tuple[str, Complex, Directive]:
    """`proxy_set_header`/`grpc_set_header NAME VALUE`: an entry of an all-or-nothing list."""
    return (d.args[0], cc.complex(d.args[1], d), d)


def param_directive(d: Directive, level: Level, cc: Compiler) -> tuple[str, Complex, bool, Directive]:
    """`uwsgi_param`/`fastcgi_param`/`scgi_param NAME VALUE [if_not_empty]`."""
    if len(d.args) == 3 and d.args[2] != "if_not_empty":
        raise error(d, f'invalid parameter "{d.args[2]}"')
    return (d.args[0], cc.complex(d.args[1], d), len(d.args) == 3, d)


def plain_value(d: Directive, level: Level, cc: Compiler) -> Any:
    return d.args[0]


def flag_value(d: Directive, level: Level, cc: Compiler) -> bool:
    return flag(d)


def pass_command(module: str, protocol: str) -> Command:
    """The `*_pass` directive of a module: allowed in locations and `if` in a location; only
    `proxy_pass` also in `limit_except`."""
    contexts = HTTP_LOC | HTTP_LIF | (HTTP_LMT if module == "proxy" else 0)
    return Command(DirectiveSpec(f"{module}_pass", contexts, TAKE1, Merge.LOCAL), _pass(module, protocol),
                   slot="content:handler")


ALL = HTTP_MAIN | HTTP_SRV | HTTP_LOC


def hide_commands(prefix: str) -> tuple[Command, Command]:
    """`*_hide_header` and `*_pass_header NAME`: lists inherited each all-or-nothing."""
    return (Command(DirectiveSpec(f"{prefix}_hide_header", ALL, TAKE1, Merge.ARRAY), plain_value),
            Command(DirectiveSpec(f"{prefix}_pass_header", ALL, TAKE1, Merge.ARRAY), plain_value))


def params_module(prefix: str, nginx_name: str) -> Module:
    """uwsgi, fastcgi and scgi declare the same directives under their own prefix."""
    return Module(nginx_name, (
        pass_command(prefix, prefix),
        Command(DirectiveSpec(f"{prefix}_param", ALL, TAKE23, Merge.ARRAY), param_directive),
        Command(DirectiveSpec(f"{prefix}_pass_request_headers", ALL, FLAG), flag_value),
        Command(DirectiveSpec(f"{prefix}_pass_request_body", ALL, FLAG), flag_value),
        *hide_commands(prefix),
    ))


# -- the backend's answer: proxy_redirect, hidden headers ---------------------------------------

_ACCEL = ("X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset")
_HIDDEN = {  # each module's ngx_http_*_hide_headers
    "proxy": ("Date", "Server", "X-Pad", *_ACCEL),
    "grpc": ("Date", "Server", *_ACCEL),
    "fastcgi": ("Status", *_ACCEL),
    "scgi": ("Status", *_ACCEL),
    "uwsgi": _ACCEL,
}
# answer headers nginx reads but does not copy: it writes its own framing (ngx_http_upstream_headers_in)
_NOT_COPIED = frozenset(("content-length", "connection", "keep-alive", "transfer-encoding"))
_OFF = "off"  # a level's `proxy_redirect off`


@dataclass(frozen=True, slots=True)
class RedirectRule:
    """One `proxy_redirect` (`ngx_http_proxy_rewrite_t`): a prefix (bytes for the default one,
    which nginx never parses for variables) or a regex, and its replacement."""

    pattern: Complex | Regex | bytes
    replacement: Complex | bytes
    d: Directive

    def rewrite(self, r: Context, value: bytes, prefix: int) -> bytes | None:
        """`ngx_http_proxy_rewrite_complex_handler` / `_regex_handler`: a prefix replaces what it
        matched, a regex everything after `prefix`; None declines."""
        p = self.pattern
        if isinstance(p, Regex):
            try:
                m = p.search(value[prefix:])
            except RegexMatchError:
                return None
            if m is None:
                return None
            r.set_captures(p, m)  # even without groups: `$1` is then empty, as in nginx
            return value[:prefix] + _value(self.replacement, r)
        pattern = _value(p, r)
        if not value.startswith(pattern, prefix):
            return None
        return value[:prefix] + _value(self.replacement, r) + value[prefix + len(pattern) :]


def _value(c: Complex | bytes, r: Context) -> bytes:
    return c if isinstance(c, bytes) else c.eval(r)


def _redirect(d: Directive, level: Level, cc: Compiler) -> RedirectRule | str:
    """`ngx_http_proxy_redirect`: off | default | [~|~*]PATTERN REPLACEMENT, several per level."""
    own = level.values.get("proxy_redirect", ())
    if _OFF in own:
        raise error(d, '"proxy_redirect" directive is duplicate')
    if len(d.args) == 1:
        if d.args[0] == "off":
            if own:
                raise error(d, '"proxy_redirect" directive is duplicate')
            return _OFF
        if d.args[0] != "default":
            raise error(d, f'invalid parameter "{d.args[0]}"')
        h = level.values.get("content:handler")
        if not isinstance(h, PassHandler) or h.module != "proxy":
            raise error(d, '"proxy_redirect default" should be placed after the "proxy_pass" directive')
        if h.dynamic is not None:
            raise error(d, '"proxy_redirect default" cannot be used with "proxy_pass" directive with variables')
        return _default_redirect(h, level.owner, d)
    source, replacement = d.args
    pattern: Complex | Regex
    if source.startswith("~*"):
        pattern = cc.regex(source[2:], True, d)
    elif source.startswith("~"):
        pattern = cc.regex(source[1:], False, d)
    else:
        pattern = cc.complex(source, d)
    return RedirectRule(pattern, cc.complex(replacement, d), d)


def _default_redirect(h: PassHandler, loc: LocationConf, d: Directive) -> RedirectRule:
    """`proxy_redirect default`: the proxy_pass URL as written becomes the location's name; a URL
    without a URI part gets "/" on both sides."""
    url = h.d.args[0].encode("utf-8", "surrogateescape")
    assert h.target is not None
    if h.target.uri:
        return RedirectRule(url, loc.name_b, d)
    return RedirectRule(url + b"/", b"/", d)


Redirects = tuple[bool, tuple[RedirectRule, ...] | None]


def _level_redirects(level: Level | None, memo: dict[int, Redirects]) -> Redirects:
    """`ngx_http_proxy_merge_loc_conf` for redirects: (on, rules). `off` is inherited like a flag;
    a level without lines takes its parent's; still none and a static `proxy_pass` here: the
    default for that URL, which the levels inside inherit."""
    if level is None:
        return True, None
    found = memo.get(id(level))
    if found is not None:
        return found
    parent = _level_redirects(level.parent, memo)
    own = level.values.get("proxy_redirect", ())
    on = _OFF not in own and (bool(own) or parent[0])
    rules: tuple[RedirectRule, ...] | None = None
    if on:
        rules = tuple(own) if own else parent[1]
        h = level.values.get("content:handler")
        if rules is None and isinstance(h, PassHandler) and h.module == "proxy" and h.target is not None:
            rules = (_default_redirect(h, level.owner, h.d),)
    memo[id(level)] = found = (on, rules)
    return found


def _finish(cc: Compiler) -> None:
    """Groups for static passes, then each location's effective `proxy_redirect` list."""
    resolve_groups(cc)
    memo: dict[int, Redirects] = {}
    for loc in cc.locations():
        loc.conf["proxy_redirect:rules"] = _level_redirects(loc.level, memo)[1]


def reply(r: Context, h: PassHandler, status: int, headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> Reply:
    """`ngx_http_upstream_process_headers` and the header filters, for an answer `status` +
    `headers`: hidden and framing lines dropped, Location/Refresh through `proxy_redirect`
    (`ngx_http_upstream_rewrite_location` / `_refresh`), then `expires` and `add_header` as the
    headers filter applies them, run on a copy of the request (its variables stay the request's).
    Content-Type and a rewritten Location made absolute come first, as nginx writes them."""
    from ..http.engine import _absolute_location  # the core header filter's rule (engine imports us)

    f = copy.copy(r)
    f.slots, f.evaluated, f.volatile = list(r.slots), list(r.evaluated), dict(r.volatile)
    f.notes, f.module_state, f.trace = [], dict(r.module_state), Trace(False)
    f.status, f.err_status = status, 0
    conf = r.loc.conf
    hidden = {n.lower() for n in (*_HIDDEN[h.module], *conf.get(f"{h.module}_hide_header", ()))}
    hidden -= {n.lower() for n in conf.get(f"{h.module}_pass_header", ())}
    rules: tuple[RedirectRule, ...] | None = conf.get("proxy_redirect:rules") if h.module == "proxy" else None
    kept: list[tuple[str, str, str]] = []
    content_type: str | None = None
    location: int | None = None  # the line nginx points r->headers_out.location at
    lines: Iterable[tuple[str, str]]
    if isinstance(headers, Headers):  # a Mapping whose items() would keep only the first of a name
        lines = headers.items_list()
    elif isinstance(headers, Mapping):
        lines = headers.items()
    else:
        lines = headers
    for name, text in lines:
        value = text.strip(" ")  # ngx_http_parse_header_line keeps no spaces around a value
        low = name.lower()
        if low in hidden or low in _NOT_COPIED:
            continue
        if low == "content-type":
            content_type = value
            continue
        if rules is not None and low in ("location", "refresh"):
            raw = value.encode("utf-8", "surrogateescape")
            if low == "location":
                new = _rewrite_redirect(f, rules, raw, 0)
            else:  # Refresh: what follows "url=", if anything
                at = raw.lower().find(b"url=")
                new = _rewrite_redirect(f, rules, raw, at + 4) if at >= 0 else None
            if new is not None:
                value = new.decode("utf-8", "surrogateescape")
                if low == "location":
                    location = len(kept)
        kept.append((name, value, low))
    front = [("Content-Type", content_type)] if content_type is not None else []
    if location is not None:
        value = kept[location][1]
        absolute = _absolute_location(f, value.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")
        if absolute != value:
            front.append(("Location", absolute))
            del kept[location]
    ptr = Pointers()
    for i, (_, value, low) in enumerate(kept):
        if low == "expires":
            ptr.expires = i
        elif low == "cache-control":
            ptr.cache_control.append(i)
        elif low == "etag":
            ptr.etag = i
        elif low == "last-modified":
            ptr.last_modified = i
            ptr.last_modified_time = parse_http_time(value.encode("utf-8", "surrogateescape"))
    f.headers_out = [(name, value) for name, value, _ in kept]
    f.module_state["headers_out"] = ptr
    for header_filter in r.plan.header_filters:
        header_filter(f)
    return Reply(status, Headers(front + f.headers_out))


def _rewrite_redirect(r: Context, rules: tuple[RedirectRule, ...], value: bytes, prefix: int) -> bytes | None:
    """`ngx_http_proxy_rewrite_redirect`: the first rule that does not decline."""
    for rule in rules:
        new = rule.rewrite(r, value, prefix)
        if new is not None:
            return new
    return None


COMMANDS = (
    pass_command("proxy", "http"),
    Command(DirectiveSpec("proxy_redirect", ALL, TAKE12, Merge.ARRAY), _redirect),
    *hide_commands("proxy"),
    Command(DirectiveSpec("proxy_set_header", ALL, TAKE2, Merge.ARRAY), header_directive),
    Command(DirectiveSpec("proxy_pass_request_headers", ALL, FLAG), flag_value),
    Command(DirectiveSpec("proxy_pass_request_body", ALL, FLAG), flag_value),
    Command(DirectiveSpec("proxy_http_version", ALL, TAKE1), plain_value),
    Command(DirectiveSpec("proxy_method", ALL, TAKE1), plain_value),
)

def _proxy_host(r: Context) -> bytes | None:
    value: bytes = r.module_state.get("proxy_host", b"")
    return value


def _proxy_port(r: Context) -> bytes | None:
    value: bytes = r.module_state.get("proxy_port", b"")
    return value


def _proxy_add_x_forwarded_for(r: Context) -> bytes | None:
    """Every X-Forwarded-For value (empty ones too), then $remote_addr, joined by ", "."""
    xff = r.header_map.get(b"x_forwarded_for")
    addr = text_addr(r.client)
    return b", ".join([*xff, addr]) if xff else addr


MODULE = Module(
    "ngx_http_proxy_module", COMMANDS, local_slots=("content:handler",),
    variables=(("proxy_host", _proxy_host, False), ("proxy_port", _proxy_port, False),
               ("proxy_add_x_forwarded_for", _proxy_add_x_forwarded_for, False)),
    finish=_finish,
)
