"""`ngx_http_proxy_module`, and the machinery every `*_pass` shares (uwsgi, fastcgi, scgi, grpc).

A pass directive becomes the location's content handler (`ngx_http_proxy_pass` and twins): it
sets the auto-redirect flag on locations whose name ends in '/', refuses a URI part where nginx
does, and resolves its target to an upstream group once the whole http block is read. At request
time `PassHandler.run` builds what the backend receives (`ngx_http_proxy_create_request`).
"""

from __future__ import annotations

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
    TAKE23,
    DirectiveSpec,
    Merge,
)
from ..http.script import Complex
from ..http.variables import text_addr
from ..plan import Compiler, Level, LocationConf, error
from .base import Command, Module
from .core import flag
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
            if r.valid_unparsed_uri and (target is None or target.uri is None):
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


def params_module(prefix: str, nginx_name: str) -> Module:
    """uwsgi, fastcgi and scgi declare the same directives under their own prefix."""
    return Module(nginx_name, (
        pass_command(prefix, prefix),
        Command(DirectiveSpec(f"{prefix}_param", ALL, TAKE23, Merge.ARRAY), param_directive),
        Command(DirectiveSpec(f"{prefix}_pass_request_headers", ALL, FLAG), flag_value),
        Command(DirectiveSpec(f"{prefix}_pass_request_body", ALL, FLAG), flag_value),
    ))

COMMANDS = (
    pass_command("proxy", "http"),
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
    finish=resolve_groups,
)
