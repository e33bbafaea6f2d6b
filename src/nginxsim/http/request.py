"""The request as nginx receives it, and the parsing nginx does before any config is consulted.

A `Request` is what the caller poses (client address, URL, headers); `parse_target`,
`normalize_uri` and `validate_host` reproduce `ngx_http_parse_request_line`,
`ngx_http_parse_complex_uri` and `ngx_http_validate_host` (1.22.1), whose outcome decides
400s before any server or location is chosen.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import RequestError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER_NAME_BAD = frozenset(b" \t\r\n:\x00")


class BadRequest(Exception):
    """nginx answers 400 (or the carried status) before routing."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


CLIENT_PORT = 50000  # the client's port when the caller gives none


@dataclass(slots=True, eq=False)
class Request:
    """One HTTP request as it reaches nginx; built by `make_request`, never changed after.

    (Not a frozen dataclass only because `Config.route` builds one per call from a cached
    template, and frozen construction costs more than the rest of a simple route.)

    `target` is the raw request target of the request line (origin form, or absolute form when
    `absolute_form` is set); `headers` keeps order, case and repeats as sent.
    """

    client: IPAddress | None  # None: a unix-socket peer
    client_port: int
    server_addr: IPAddress | None  # None: any address a matching listen accepts
    server_port: int
    scheme: str
    method: bytes
    target: bytes
    http_version: str
    headers: tuple[tuple[bytes, bytes], ...]
    url_host: bytes | None  # host of the URL the caller gave (becomes Host unless headers carry one)
    proxy_protocol: ProxyProtocol | None = None  # the PROXY header read before the request
    client_text: bytes | None = None  # the client as nginx prints it, when the caller's text is that

    def with_client(self, client: IPAddress | None, client_port: int = CLIENT_PORT, text: str | None = None) -> Request:
        """The same request from another client (the template Config.route caches). `text` is the
        caller's spelling of an IPv4 client, which inet_pton accepted, so it is nginx's too."""
        return Request(client, client_port, self.server_addr, self.server_port, self.scheme, self.method,
                       self.target, self.http_version, self.headers, self.url_host, self.proxy_protocol,
                       text.encode() if text is not None and client is not None and client.version == 4 else None)

    @property
    def request_line(self) -> bytes:
        if self.http_version == "0.9":
            return self.method + b" " + self.target
        return self.method + b" " + self.target + b" HTTP/" + self.http_version.encode()


@dataclass(frozen=True, slots=True)
class ProxyProtocol:
    """What a `listen ... proxy_protocol` socket read from a PROXY header (`ngx_proxy_protocol_t`)."""

    src_addr: bytes
    dst_addr: bytes
    src_port: int
    dst_port: int


_PP_ADDR_CHARS = frozenset(b"0123456789abcdefABCDEF:.")


def parse_proxy_protocol(line: str | bytes) -> ProxyProtocol | None:
    """`ngx_proxy_protocol_read` for a v1 (text) header such as `PROXY TCP4 1.2.3.4 10.0.0.1 5000 80`;
    the final CRLF may be left out. None for `PROXY UNKNOWN ...` (nginx then has no PROXY data).
    A header nginx calls broken (it closes the connection) is a RequestError."""
    raw = _to_bytes(line, "PROXY header")
    data = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
    if data.startswith(b"PROXY UNKNOWN") and data.find(b"\r\n") == len(data) - 2:
        return None
    fields = data[11:-2].split(b" ") if data[:11] in (b"PROXY TCP4 ", b"PROXY TCP6 ") else []
    if len(fields) != 4 or not all(set(f) <= _PP_ADDR_CHARS for f in fields[:2]) \
            or not all(f.isdigit() and int(f) <= 65535 for f in fields[2:]):
        raise RequestError(f"broken PROXY header {line!r}: nginx closes the connection "
                           "(expected PROXY TCP4|TCP6 src dst srcport dstport, or PROXY UNKNOWN)")
    return ProxyProtocol(fields[0], fields[1], int(fields[2]), int(fields[3]))


_inet_pton, _AF_INET, _new, _from_bytes = socket.inet_pton, socket.AF_INET, object.__new__, int.from_bytes


def parse_address(text: str, what: str = "client address") -> IPAddress | None:
    """Parse an IPv4/IPv6 address (`unix:` for a unix-socket peer), or raise RequestError."""
    try:
        packed = _inet_pton(_AF_INET, text)
    except (OSError, TypeError):
        pass
    else:  # IPv4Address(packed) without its argument checks, which cost as much as a shared route
        addr = _new(ipaddress.IPv4Address)
        addr._ip = _from_bytes(packed, "big")  # type: ignore[attr-defined]
        return addr
    if not isinstance(text, str):
        raise RequestError(f"invalid {what} {text!r}: expected an address as text, e.g. '203.0.113.7'")
    if text.startswith("unix:"):
        return None
    t = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.IPv6Address(t)
    except ValueError:
        raise RequestError(f"invalid {what} {text!r}: expected an IPv4 or IPv6 address") from None


def _split_authority(authority: bytes, url: str | bytes) -> tuple[bytes, int | None]:
    """host[:port] or [v6]:port; the port must be a number from 1 to 65535."""
    end = authority.rfind(b"]") + 1 if authority.startswith(b"[") else 0
    colon = authority.find(b":", end)
    if colon < 0:
        return authority, None
    p = authority[colon + 1 :]
    if not p.isdigit() or not 1 <= int(p) <= 65535:
        raise RequestError(f"invalid URL {url!r}: bad port")
    return authority[:colon], int(p)


def _to_bytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise RequestError(f"invalid {what} {value!r}: expected text")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def make_request(
    client: str,
    url: str | bytes = "http://localhost/",
    *,
    method: str = "GET",
    headers: Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str] = (),
    server_addr: str | None = None,
    http_version: str = "1.1",
    absolute_form: bool = False,
    client_port: int = CLIENT_PORT,
    proxy_protocol: str | bytes | None = None,
) -> Request:
    """Build a Request from caller-level values (curl semantics), validating what a client can send.

    The URL's scheme and port pick the listen socket; its host becomes the Host header unless
    `headers` has one; its path and query are the raw request target, sent as given.
    `proxy_protocol` is a PROXY protocol v1 line sent before the request.
    """
    return prepare_request(url, method=method, headers=headers, server_addr=server_addr,
                           http_version=http_version, absolute_form=absolute_form,
                           proxy_protocol=proxy_protocol).with_client(parse_address(client), client_port)


def prepare_request(
    url: str | bytes = "http://localhost/",
    *,
    method: str = "GET",
    headers: Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str] = (),
    server_addr: str | None = None,
    http_version: str = "1.1",
    absolute_form: bool = False,
    proxy_protocol: str | bytes | None = None,
) -> Request:
    """Everything of `make_request` but the client: a template `Request.with_client` completes."""
    pp = parse_proxy_protocol(_to_bytes(proxy_protocol, "PROXY line")) if proxy_protocol is not None else None
    saddr = parse_address(server_addr, "server address") if server_addr is not None else None
    raw = _to_bytes(url, "URL")
    sep = raw.find(b"://")
    if sep <= 0:
        raise RequestError(f"invalid URL {url!r}: expected an absolute URL such as http://example.com/path")
    scheme = raw[:sep].decode("latin-1").lower()
    if scheme not in _DEFAULT_PORTS:
        raise RequestError(f"invalid URL {url!r}: scheme must be http or https")
    rest = raw[sep + 3 :]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if b"@" in authority:
        raise RequestError(f"invalid URL {url!r}: user info is not supported")
    host_text, port = _split_authority(authority, url)
    if not path:
        path = b"/"
    if any(c < 0x20 or c == 0x7F or c == 0x20 for c in path):
        raise RequestError(
            f"invalid URL {url!r}: spaces and control characters cannot be sent in a request target "
            "(percent-encode them)"
        )
    m = method.encode("latin-1") if isinstance(method, str) else method
    if not m or b" " in m or b"\r" in m or b"\n" in m:
        raise RequestError(f"invalid method {method!r}")
    if http_version not in ("0.9", "1.0", "1.1"):
        raise RequestError(f"invalid HTTP version {http_version!r}: use 1.1, 1.0 or 0.9")
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    hdrs: list[tuple[bytes, bytes]] = []
    for pair in pairs:
        if isinstance(pair, (str, bytes)) or len(pair) != 2:
            raise RequestError(f"invalid header {pair!r}: expected a (name, value) pair")
        name, value = pair
        n, v = _to_bytes(name, "header name"), _to_bytes(value, "header value")
        if not n or any(c in _HEADER_NAME_BAD for c in n):
            raise RequestError(f"invalid header name {name!r}")
        if b"\r" in v or b"\n" in v:
            raise RequestError(f"invalid header value for {name!r}: line breaks cannot be sent")
        hdrs.append((n, v.strip(b" ")))
    target = raw[: sep + 3] + authority + path if absolute_form else path
    return Request(
        client=None,
        client_port=0,
        server_addr=saddr,
        server_port=port if port is not None else _DEFAULT_PORTS[scheme],
        scheme=scheme,
        method=m,
        target=target,
        http_version=http_version,
        headers=tuple(hdrs),
        url_host=(authority if port is not None and port != _DEFAULT_PORTS[scheme] else host_text) or None,
        proxy_protocol=pp,
    )


_HEX = frozenset(b"0123456789abcdefABCDEF")
_SLASH, _DOT = 0x2F, 0x2E
_USUAL, _AFTER_SLASH, _AFTER_DOT, _AFTER_DOTDOT = range(4)


def _pop_dotdot(buf: bytearray) -> bytearray:
    """`buf` ends with "/..": drop it and the segment before it; above the root is a 400."""
    j = buf.rfind(b"/", 0, len(buf) - 3)
    if j < 0:
        raise BadRequest("URI climbs above the root")
    return buf[: j + 1]


def _end_segment(buf: bytearray, state: int) -> bytearray:
    if state == _AFTER_DOT:
        return buf[:-1]
    if state == _AFTER_DOTDOT:
        return _pop_dotdot(buf)
    return buf


def normalize_uri(path: bytes, merge_slashes: bool = True) -> tuple[bytes, bytes]:
    """`ngx_http_parse_complex_uri`: raw path[?query][#frag] -> ($uri, $args), or BadRequest.

    Decodes %XX (a decoded byte acts as syntax: %2F is a slash, %2e%2e a dot segment) except
    that decoded `%`, `#`, `?` stay literal; resolves `.`/`..`; merges slashes when asked.
    """
    if not path.startswith(b"/"):
        raise BadRequest("request target does not start with /")
    if b"%" not in path and b"/." not in path and b"//" not in path and b"#" not in path:
        q = path.find(b"?")  # the fast path nginx takes for "simple" URIs: identity
        return (path, b"") if q < 0 else (path[:q], path[q + 1 :])
    out = bytearray()
    state = _USUAL
    i, n = 0, len(path)
    pending = -1
    while True:
        if pending >= 0:
            ch, pending, decoded = pending, -1, True
        elif i < n:
            ch, decoded = path[i], False
            i += 1
        else:
            break
        if not decoded:
            if ch == 0x25:  # '%'
                hexd = path[i : i + 2]
                if len(hexd) < 2 or hexd[0] not in _HEX or hexd[1] not in _HEX:
                    raise BadRequest("invalid percent-encoding")
                i += 2
                v = int(hexd, 16)
                if v == 0:
                    raise BadRequest("encoded NUL")
                if v in (0x25, 0x23, 0x3F):  # %25 %23 %3F stay literal characters
                    out.append(v)
                    state = _USUAL
                else:
                    pending = v
                continue
            if ch == 0x3F:  # '?': the query runs to the first '#'
                return bytes(_end_segment(out, state)), path[i:].split(b"#", 1)[0]
            if ch == 0x23:  # '#': fragment, no query
                return bytes(_end_segment(out, state)), b""
        if state == _USUAL:
            out.append(ch)
            if ch == _SLASH:
                state = _AFTER_SLASH
        elif state == _AFTER_SLASH:
            if ch == _SLASH:
                if not merge_slashes:
                    out.append(ch)
            else:
                out.append(ch)
                state = _AFTER_DOT if ch == _DOT else _USUAL
        elif state == _AFTER_DOT:
            if ch == _SLASH:
                del out[-1]
                state = _AFTER_SLASH
            else:
                out.append(ch)
                state = _AFTER_DOTDOT if ch == _DOT else _USUAL
        else:
            if ch == _SLASH:
                out = _pop_dotdot(out)
                state = _AFTER_SLASH
            else:
                out.append(ch)
                state = _USUAL
    return bytes(_end_segment(out, state)), b""


def validate_host(h: bytes) -> bytes | None:
    """`ngx_http_validate_host` (1.22.1): the normalised host, or None for a 400.

    Lowercases, cuts the port (not checked), keeps IP-literal brackets, drops one trailing dot;
    rejects `..` anywhere, `/`, control bytes and an empty host.
    """
    dot_pos = -2
    host_len = len(h)
    state = 0  # 0 usual, 1 inside [...], 2 in the port part
    for i, c in enumerate(h):
        if c == 0x2E:
            if dot_pos == i - 1:
                return None
            dot_pos = i
        elif c == 0x3A:
            if state == 0:
                host_len, state = i, 2
        elif c == 0x5B:
            if i == 0:
                state = 1
        elif c == 0x5D:
            if state == 1:
                host_len, state = i + 1, 2
        elif c == 0x2F or c <= 0x20 or c == 0x7F:
            return None
    if dot_pos == host_len - 1:
        host_len -= 1
    if host_len <= 0:
        return None
    return h[:host_len].lower()


def _valid_method(m: bytes) -> bool:
    return all(0x41 <= c <= 0x5A or c in (0x5F, 0x2D) for c in m)


_URI_HOST_OK = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


@dataclass(frozen=True, slots=True)
class RequestLine:
    """What `ngx_http_parse_request_line` extracts: the path part and the request-line host."""

    path: bytes  # from the first byte of the path on: this is $request_uri
    host: bytes | None  # authority host of an absolute-form target
    empty_path: bool  # absolute form without a path: $uri is "/"


def parse_request_line(req: Request) -> RequestLine:
    """`ngx_http_parse_request_line`: method and target checks that end in 400 or 405."""
    if not req.method or not _valid_method(req.method):
        raise BadRequest("invalid method")
    if req.http_version == "0.9" and req.method != b"GET":
        raise BadRequest("HTTP/0.9 allows only GET")
    t = req.target
    if any(c < 0x20 or c == 0x7F for c in t):
        raise BadRequest("control character in the request target")
    if t.startswith(b"/"):
        return RequestLine(t, None, False)
    sep = t.find(b"://")
    scheme = t[:sep]
    if sep <= 0 or not (scheme[:1].isalpha() and all(chr(c).isalnum() or c in b"+-." for c in scheme)):
        raise BadRequest("invalid request target")
    rest = t[sep + 3 :]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if authority.startswith(b"["):
        end = authority.find(b"]")
        if end < 0:
            raise BadRequest("invalid IP literal in the request target")
        hostpart, portpart = authority[: end + 1], authority[end + 1 :]
    else:
        hostpart, _, p = authority.partition(b":")
        portpart = b":" + p if _ else b""
        if not hostpart or any(c not in _URI_HOST_OK for c in hostpart):
            raise BadRequest("invalid host in the request target")
    if portpart and not (portpart[:1] == b":" and portpart[1:].isdigit()):
        raise BadRequest("invalid port in the request target")
    if not path:
        return RequestLine(b"", hostpart, True)
    if path.startswith(b"?"):
        return RequestLine(path, hostpart, True)
    return RequestLine(path, hostpart, False)
