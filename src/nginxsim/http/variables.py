"""Variables: the registry, per-request caching, and the built-ins of `ngx_http_variables.c`.

Every `$name` a config mentions is resolved once, at compile time, to a `Variable` with a slot
index; a request keeps one slot per variable and, like `ngx_http_get_indexed_variable`, fills
it on first use and then freezes it unless the variable is non-cacheable. Modules (geo, map,
split_clients, set, realip...) add their variables through `VariableTable.define`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..errors import ConfigError

if TYPE_CHECKING:
    from .context import Context
    from .request import Request

Getter = Callable[["Context"], "bytes | None"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Setter = Callable[["Context", bytes], None]


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


@dataclass(eq=False, slots=True)
class Variable:
    """A variable known to the config. `getter` returns None for "not found" (interpolates as "")."""

    name: str
    index: int
    getter: Getter | None = None
    cacheable: bool = True
    changeable: bool = False
    setter: Setter | None = None
    origin: str = "built-in"  # "built-in", or file:line of the directive that defines it
    directive: Directive | None = None  # the defining directive (for traces and coverage)
    # set when the value is a pure function of the client (geo, split_clients over CLIENT_INPUTS
    # only): that function, of the client's address, $remote_addr text and port (http/replay.py)
    client_leaf: ClientInput | None = None


def _nf(_: Context) -> bytes | None:
    return None


@dataclass(slots=True)
class VariableTable:
    """Compile-time registry (`ngx_http_add_variable`, `ngx_http_get_variable_index`).

    References may precede definitions (a map used before it is written); `freeze` checks
    every referenced name, like `ngx_http_variables_init_vars`.
    """

    by_name: dict[str, Variable] = field(default_factory=dict)
    prefixes: dict[str, Callable[[str], tuple[Getter, bool]]] = field(default_factory=dict)
    referenced: dict[str, Directive | None] = field(default_factory=dict)

    def _new(self, name: str) -> Variable:
        var = Variable(name=name, index=len(self.by_name))
        self.by_name[name] = var
        return var

    def builtin(self, name: str, getter: Getter, *, cacheable: bool = True, setter: Setter | None = None) -> None:
        var = self.by_name.get(name) or self._new(name)
        var.getter, var.cacheable, var.setter = getter, cacheable, setter
        var.changeable = setter is not None

    def prefix(self, prefix: str, factory: Callable[[str], tuple[Getter, bool]]) -> None:
        """A family like `http_`, `arg_`, `cookie_`: any name with the prefix resolves."""
        self.prefixes[prefix] = factory

    def define(
        self,
        name: str,
        getter: Getter | None,
        d: Directive,
        *,
        cacheable: bool = True,
        changeable: bool = True,
        duplicate_ok: bool = False,
        replace: bool = False,
    ) -> Variable:
        """A variable a directive creates (`geo`, `map`, `split_clients`, `set`, named captures).

        `replace`: a changeable variable that already has a getter takes this one, as geo
        sets the get_handler of what `ngx_http_add_variable` returns.
        """
        written, name = name, name.lower()
        var = self.by_name.get(name)
        if var is not None and var.getter is not None:
            if not var.changeable or not (duplicate_ok or replace):
                raise ConfigError(f'the duplicate "{written}" variable', d.file, d.line)
            if not replace:
                return var
        if var is None:
            var = self._new(name)
        var.getter = getter if getter is not None else self._prefix_getter(name) or _nf
        var.cacheable, var.changeable = cacheable, changeable
        var.origin, var.directive = d.where, d
        return var

    def _prefix_getter(self, name: str) -> Getter | None:
        for p, factory in self.prefixes.items():
            if name.startswith(p):
                return factory(name[len(p) :])[0]
        return None

    def ref(self, name: str, d: Directive | None = None) -> Variable:
        """The variable `$name` refers to; resolved for real at `freeze`."""
        name = name.lower()
        var = self.by_name.get(name)
        if var is None:
            var = self._new(name)
        if var.getter is None and name not in self.referenced:
            self.referenced[name] = d
        return var

    def freeze(self) -> None:
        """Resolve prefix families; an unknown name is nginx's `unknown "x" variable` (no line)."""
        for name in self.referenced:
            var = self.by_name[name]
            if var.getter is not None:
                continue
            for p, factory in self.prefixes.items():
                if name.startswith(p):
                    var.getter, var.cacheable = factory(name[len(p) :])
                    break
            else:
                raise ConfigError(f'unknown "{name}" variable')  # nginx names no file or line


# ---------------------------------------------------------------------------------------------
# Built-ins (ngx_http_core_variables[] in ngx_http_variables.c)


def text_addr(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bytes:
    """`ngx_sock_ntop` without port: IPv4 dotted, IPv6 as `inet6_ntop`, unix peer `unix:`."""
    if addr is None:
        return b"unix:"
    if addr.version == 4:
        return socket.inet_ntoa(addr.packed).encode()  # 3x faster than str(addr)
    return inet6_ntop(int(addr)).encode()


def inet6_ntop(n: int) -> str:
    """`ngx_inet6_ntop`: lowercase hex groups, the first longest run of 2+ zero groups as `::`;
    a leading run of 5 zeros then ffff, of 6 zeros, or of 7 zeros (unless the last group's
    high byte is 0 or its low byte is 1) prints the last 32 bits dotted (`::ffff:1.2.3.4`,
    `::1.2.3.4`, `::0.0.1.2`, but `::1`). Python's ipaddress prints those in hex."""
    words = [(n >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    zero, longest, run, start = -1, 1, 0, -1
    for i, w in enumerate(words):
        if w:
            if longest < run:
                zero, longest = start, run
            run = 0
        else:
            if run == 0:
                start = i
            run += 1
    if longest < run:
        zero, longest = start, run
    shown, out = 8, ""
    if zero == 0:
        if (longest == 5 and words[5] == 0xFFFF) or longest == 6 or (
                longest == 7 and n & 0xFF00 and n & 0xFF != 1):
            shown = 6
        out = ":"
    i = 0
    while i < shown:
        if i == zero:
            out += ":"
            i += longest
            continue
        out += f"{words[i]:x}:" if i < 7 else f"{words[i]:x}"
        i += 1
    if shown == 6:
        out += str(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    return out


def _host(r: Context) -> bytes | None:
    return r.host if r.host else r.server.server_name


def _uri(r: Context) -> bytes | None:
    return r.uri


def _args(r: Context) -> bytes | None:
    return r.args


def _set_args(r: Context, value: bytes) -> None:
    r.args = value
    r.valid_unparsed_uri = False


def _is_args(r: Context) -> bytes | None:
    return b"?" if r.args else b""


def _request_uri(r: Context) -> bytes | None:
    return r.request_uri


def _request_method(r: Context) -> bytes | None:
    return r.method


def _remote_addr(r: Context) -> bytes | None:
    return remote_addr_text(r.client, r.request)


def remote_addr_text(client: IPAddress | None, request: Request) -> bytes:
    """`$remote_addr` of `client`: the caller's spelling of the request's own client (IPv4 text
    inet_pton accepted, so nginx's too), else nginx's printing (after realip, IPv6, unix:)."""
    if client is request.client and request.client_text is not None:
        return request.client_text
    return text_addr(client)


def _remote_port(r: Context) -> bytes | None:
    return remote_port(r.client, b"", r.client_port)


def _binary_remote_addr(r: Context) -> bytes | None:
    return binary_remote_addr(r.client, b"", r.client_port)


# The client inputs as functions of (address, $remote_addr's text, port): what client leaves read.
ClientInput = Callable[["IPAddress | None", bytes, int], bytes]


def remote_port(client: IPAddress | None, text: bytes, port: int) -> bytes:
    """`ngx_http_variable_remote_port`: empty for port 0 and for unix-socket peers."""
    return str(port).encode() if port and client is not None else b""


def binary_remote_addr(client: IPAddress | None, text: bytes, port: int) -> bytes:
    return client.packed if client is not None else b"unix:"


CLIENT_INPUTS: dict[str, ClientInput] = {
    "remote_addr": lambda client, text, port: text,
    "binary_remote_addr": binary_remote_addr,
    "remote_port": remote_port,
}


def _server_addr(r: Context) -> bytes | None:
    return text_addr(r.local_addr)


def _server_port(r: Context) -> bytes | None:
    return str(r.request.server_port).encode()


def _scheme(r: Context) -> bytes | None:
    return r.request.scheme.encode()


def _https(r: Context) -> bytes | None:
    return b"on" if r.request.scheme == "https" else b""


def _server_name(r: Context) -> bytes | None:
    return r.server.server_name


def _server_protocol(r: Context) -> bytes | None:
    """`ngx_http_variable_request` over `r->http_protocol`: not found for HTTP/0.9 (its request
    line names no protocol), which a log writes as "-"."""
    v = r.request.http_version
    return None if v == "0.9" else b"HTTP/" + v.encode()


def _request(r: Context) -> bytes | None:
    return r.request.request_line


def _pinned(name: str, default: Callable[[Context], bytes]) -> Getter:
    def get(r: Context) -> bytes | None:
        v = r.pinned.get(name)
        return v if v is not None else default(r)

    return get


def header_getter(suffix: str) -> tuple[Getter, bool]:
    """`$http_NAME` (`ngx_http_variable_unknown_header`): 1.22.1 returns the first header only,
    except X-Forwarded-For (joined with ", ") and Cookie (joined with "; ")."""
    key = suffix.encode()
    if suffix == "x_forwarded_for":
        sep: bytes | None = b", "
    elif suffix == "cookie":
        sep = b"; "
    else:
        sep = None

    def get(r: Context) -> bytes | None:
        vals = r.header_map.get(key)
        if not vals:
            return None
        return vals[0] if sep is None else sep.join(vals)

    return get, True


def arg_lookup(args: bytes | None, name: bytes) -> bytes | None:
    """`ngx_http_arg`: first `name=` (case-insensitive) at the start or after `&`; not decoded."""
    if not args or not name:
        return None
    la, ln, last, n, p = args.lower(), name.lower(), len(args), len(name), 0
    while p < last:
        p = la.find(ln, p, last - 1)
        if p < 0:
            return None
        if (p == 0 or args[p - 1] == 0x26) and p + n < last and args[p + n] == 0x3D:
            e = args.find(b"&", p)
            return args[p + n + 1 : last if e < 0 else e]
        p += 1
    return None


def arg_getter(suffix: str) -> tuple[Getter, bool]:
    key = suffix.encode()

    def get(r: Context) -> bytes | None:
        return arg_lookup(r.args, key)

    return get, False


def cookie_lookup(headers: list[bytes], name: bytes) -> bytes | None:
    """`ngx_http_parse_multi_header_lines` (1.22.1: pairs start after `;` or `,`)."""
    nl, ln = name.lower(), len(name)
    for h in headers:
        if ln > len(h):
            continue
        start, end = 0, len(h)
        while start < end:
            if h[start : start + ln].lower() == nl:
                start += ln
                while start < end and h[start] == 0x20:
                    start += 1
                if start < end:
                    eq = h[start] == 0x3D
                    start += 1
                    if eq:
                        while start < end and h[start] == 0x20:
                            start += 1
                        last = start
                        while last < end and h[last] != 0x3B:
                            last += 1
                        return h[start:last]
            while start < end:
                ch = h[start]
                start += 1
                if ch == 0x3B or ch == 0x2C:
                    break
            while start < end and h[start] == 0x20:
                start += 1
    return None


def cookie_getter(suffix: str) -> tuple[Getter, bool]:
    key = suffix.encode()

    def get(r: Context) -> bytes | None:
        return cookie_lookup(r.header_map.get(b"cookie", []), key)

    return get, True


def _first_header(name: bytes) -> Getter:
    def get(r: Context) -> bytes | None:
        vals = r.header_map.get(name)
        return vals[0] if vals else None

    return get


def _content_length(r: Context) -> bytes | None:
    if r.header_map.get(b"transfer_encoding"):
        return None
    vals = r.header_map.get(b"content_length")
    return vals[0] if vals else None


def _default_request_id(r: Context) -> bytes:
    """nginx draws 16 random bytes; unpinned, nginxsim derives 32 hex digits from the client and
    the request line, so the same request always gets the same id (reproducible tests)."""
    return hashlib.md5(text_addr(r.client) + b" " + r.request.request_line).hexdigest().encode()


def _time_local(r: Context) -> bytes:
    return r.clock.strftime("%d/%b/%Y:%H:%M:%S %z").encode()


def _time_iso(r: Context) -> bytes:
    return r.clock.isoformat(timespec="seconds").encode()


def _msec(r: Context) -> bytes:
    return b"%.3f" % r.clock.timestamp()


# Variables nginx knows whose value comes from the response, the upstream's answer, TLS or
# timing: they exist (configs using them load) but have no value before the response.
UNSIMULATED = tuple("""
    status body_bytes_sent bytes_sent request_time request_length request_completion request_body
    request_body_file remote_user upstream_addr upstream_status upstream_response_time
    upstream_connect_time upstream_header_time upstream_response_length upstream_bytes_received
    upstream_bytes_sent upstream_cache_status upstream_queue_time sent_http_content_type
    gzip_ratio limit_rate limit_conn_status limit_req_status connection_time
    ssl_protocol ssl_cipher ssl_ciphers ssl_curves ssl_session_id ssl_session_reused ssl_early_data
    ssl_server_name ssl_alpn_protocol ssl_client_cert ssl_client_raw_cert ssl_client_escaped_cert
    ssl_client_s_dn ssl_client_i_dn ssl_client_s_dn_legacy ssl_client_i_dn_legacy ssl_client_serial
    ssl_client_fingerprint ssl_client_verify ssl_client_v_start ssl_client_v_end ssl_client_v_remain
    http2 tcpinfo_rtt tcpinfo_rttvar tcpinfo_snd_cwnd tcpinfo_rcv_space
    invalid_referer secure_link secure_link_expires uid_got uid_set uid_reset
    upstream_cookie_name
    date_local date_gmt geoip_country_code geoip_country_name geoip_city
""".split())
UNSIMULATED_PREFIXES = ("sent_http_", "sent_trailer_", "upstream_http_", "upstream_trailer_", "upstream_cookie_")


def _proxy_protocol(field: str) -> Getter:
    """`ngx_http_variable_proxy_protocol_addr` / `_port`: not found without a PROXY header; a
    port of 0 is empty."""

    def get(r: Context) -> bytes | None:
        pp = r.request.proxy_protocol
        if pp is None:
            return None
        value: bytes | int = getattr(pp, field)
        return value if isinstance(value, bytes) else (str(value).encode() if value else b"")

    return get


def _unsimulated(name: str) -> Getter:
    def get(r: Context) -> bytes | None:
        r.note_unsimulated(f"${name}")
        return None

    return get


def _unsimulated_family(prefix: str) -> Callable[[str], tuple[Getter, bool]]:
    def factory(suffix: str) -> tuple[Getter, bool]:
        return _unsimulated(prefix + suffix), False

    return factory


def register_builtins(t: VariableTable) -> None:
    """The variables every config has (ngx_http_core_variables)."""
    t.builtin("host", _host)
    t.builtin("http_host", _first_header(b"host"))
    t.builtin("server_name", _server_name)
    t.builtin("uri", _uri, cacheable=False)
    t.builtin("document_uri", _uri, cacheable=False)
    t.builtin("request_uri", _request_uri)
    t.builtin("args", _args, cacheable=False, setter=_set_args)
    t.builtin("query_string", _args, cacheable=False)
    t.builtin("is_args", _is_args, cacheable=False)
    t.builtin("request_method", _request_method, cacheable=False)
    t.builtin("remote_addr", _remote_addr)
    t.builtin("remote_port", _remote_port)
    t.builtin("binary_remote_addr", _binary_remote_addr)
    t.builtin("server_addr", _server_addr)
    t.builtin("server_port", _server_port)
    t.builtin("scheme", _scheme)
    t.builtin("https", _https)
    t.builtin("server_protocol", _server_protocol)
    t.builtin("request", _request)
    t.builtin("content_type", _first_header(b"content_type"))
    t.builtin("content_length", _content_length)
    t.builtin("nginx_version", lambda r: b"1.22.1")
    t.builtin("hostname", lambda r: r.plan.hostname)
    t.builtin("pid", _pinned("pid", lambda r: b"1"))
    t.builtin("request_id", _pinned("request_id", _default_request_id))
    t.builtin("connection", _pinned("connection", lambda r: b"1"))
    t.builtin("connection_requests", _pinned("connection_requests", lambda r: b"1"))
    t.builtin("msec", _pinned("msec", _msec), cacheable=False)
    t.builtin("time_local", _pinned("time_local", _time_local), cacheable=False)
    t.builtin("time_iso8601", _pinned("time_iso8601", _time_iso), cacheable=False)
    for name, pp_field in (("addr", "src_addr"), ("port", "src_port"), ("server_addr", "dst_addr"),
                           ("server_port", "dst_port")):
        t.builtin("proxy_protocol_" + name, _proxy_protocol(pp_field))
    for name in UNSIMULATED:
        t.builtin(name, _unsimulated(name), cacheable=False)
    for prefix in UNSIMULATED_PREFIXES:
        t.prefix(prefix, _unsimulated_family(prefix))
    t.prefix("http_", header_getter)
    t.prefix("arg_", arg_getter)
    t.prefix("cookie_", cookie_getter)
