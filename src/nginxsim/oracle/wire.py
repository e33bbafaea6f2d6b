"""Requests as exact bytes, responses as nginx sent them.

Text is put on the wire as UTF-8 with ``surrogateescape`` and read back the same way, so any byte
can be sent and received through ``str``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import RequestError
from .echo import UpstreamRecord

DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_ENC, _ERR = "utf-8", "surrogateescape"


def _bytes(text: str) -> bytes:
    return text.encode(_ENC, _ERR)


def _text(data: bytes) -> str:
    return data.decode(_ENC, _ERR)


@dataclass(frozen=True)
class OracleRequest:
    """One request, posed like `Config.route` poses it.

    `client` is the address nginx sees as the TCP peer ("unix:" for a unix-socket peer); `url` is
    absolute: its scheme and port pick the original listen port, its host (with the port when one
    is written that is not the scheme's default, as `Config.route` has it) becomes the first
    header, Host, unless `headers` has one; its path and query are sent byte for byte
    (`absolute_form` sends the whole URL as the target). The harness adds `Connection: close` to
    HTTP/1.1 requests without a Connection header (a caller's keep-alive is honoured: the response
    then ends by its own length), and `Content-Length` when `body` is given without a length.
    `raw`, when set, is sent instead of all of that. `proxy_protocol` is a PROXY protocol v1 line
    the client sends first (for a `listen ... proxy_protocol`; `client` is then the proxy), as
    `Config.route` takes it.
    """

    client: str
    url: str = "http://localhost/"
    method: str = "GET"
    headers: Sequence[tuple[str, str]] = ()
    server_addr: str | None = None
    http_version: str = "1.1"
    body: bytes = b""
    absolute_form: bool = False
    client_port: int = 50000
    proxy_protocol: str | None = None
    raw: bytes | None = None

    @property
    def scheme(self) -> str:
        return self._parts[0]

    @property
    def authority(self) -> str:
        return self._parts[1]

    @property
    def port(self) -> int:
        authority = self.authority
        host_end = authority.rfind("]") + 1
        _, sep, port = authority[host_end:].rpartition(":")
        if sep and port:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise RequestError(f"invalid URL {self.url!r}: bad port")
            return int(port)
        return DEFAULT_PORTS[self.scheme]

    @property
    def host(self) -> str:
        """The URL's host without the port (brackets of an IPv6 literal removed)."""
        authority = self.authority
        host_end = authority.rfind("]") + 1
        if host_end:
            return authority[1 : host_end - 1]
        return authority.rpartition(":")[0] if ":" in authority else authority

    @functools.cached_property
    def _parts(self) -> tuple[str, str, str]:
        sep = self.url.find("://")
        scheme = self.url[:sep].lower() if sep > 0 else ""
        if scheme not in DEFAULT_PORTS:
            raise RequestError(f"invalid URL {self.url!r}: expected an absolute http:// or https:// URL")
        rest = self.url[sep + 3 :]
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        return scheme, rest[:cut], rest[cut:] or "/"

    @property
    def keeps_alive(self) -> bool:
        """Whether the caller asked nginx to keep the connection (then the response's own framing
        tells where it ends, not the connection's close)."""
        if self.raw is not None or self.http_version == "0.9":
            return False
        values = [v.lower() for n, v in self.headers if n.lower() == "connection"]
        return bool(values) and "close" not in values

    def client_ip(self) -> IPAddress | None:
        """The client address, None for a unix-socket peer; RequestError when invalid."""
        if self.client == "unix:":
            return None
        try:
            return ipaddress.ip_address(self.client.strip("[]"))
        except ValueError:
            raise RequestError(f"invalid client address {self.client!r}: expected an IPv4 or IPv6 address") from None

    def to_bytes(self, first: Sequence[tuple[str, str]] = (), last: Sequence[tuple[str, str]] = ()) -> bytes:
        """The request as sent; `first`/`last` are header lines the harness adds around the caller's."""
        if self.raw is not None:
            return self.raw
        scheme, authority, path = self._parts
        target = self.url[: self.url.find("://") + 3] + authority + path if self.absolute_form else path
        if self.http_version == "0.9":
            return _bytes(f"{self.method} {target}\r\n")
        if self.http_version not in ("1.0", "1.1"):
            raise RequestError(f"invalid HTTP version {self.http_version!r}: use 1.1, 1.0 or 0.9")
        names = {n.lower() for n, _ in self.headers}
        host_end = authority.rfind("]") + 1
        host = authority[:host_end] if host_end else authority.partition(":")[0]
        if self.port != DEFAULT_PORTS[scheme] and host != authority:
            host = authority
        lines = [] if "host" in names else [("Host", host)]
        lines += [*first, *self.headers, *last]
        if self.http_version == "1.1" and "connection" not in names:
            lines.append(("Connection", "close"))
        if self.body and not names & {"content-length", "transfer-encoding"}:
            lines.append(("Content-Length", str(len(self.body))))
        head = f"{self.method} {target} HTTP/{self.http_version}\r\n"
        head += "".join(f"{n}: {v}\r\n" for n, v in lines)
        return _bytes(head + "\r\n") + self.body


@dataclass
class OracleResponse:
    """nginx's answer. `status` is None when no status line came (connection closed without an
    answer, as for `return 444`, or an HTTP/0.9 answer, whose bytes are in `body`).

    `upstream` is the first upstream request this request caused (`upstreams` has all, e.g. with
    `mirror`). `headers` are as sent except that a `Location` naming the harness's loopback port is
    given the original port back; `raw` is exactly what came over the wire.
    """

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    upstreams: list[UpstreamRecord] = field(default_factory=list)
    raw: bytes = b""

    @property
    def upstream(self) -> UpstreamRecord | None:
        return self.upstreams[0] if self.upstreams else None

    def header(self, name: str) -> str | None:
        """The first header of that name, case-insensitively."""
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)


def parse_response(raw: bytes, method: str) -> tuple[int | None, list[tuple[str, str]], bytes]:
    """(status, headers, body) of a complete response read until the connection closed."""
    if not raw.startswith(b"HTTP/"):
        return None, [], raw
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status_parts = lines[0].split(b" ", 2)
    status = int(status_parts[1]) if len(status_parts) > 1 and status_parts[1].isdigit() else None
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((_text(name), _text(value.strip(b" \t"))))
    fields = {k.lower(): v for k, v in reversed(headers)}
    if method == "HEAD" or status in (204, 304):
        return status, headers, b""
    if fields.get("transfer-encoding", "").lower() == "chunked":
        return status, headers, _dechunk(rest)
    length = fields.get("content-length", "")
    return status, headers, rest[: int(length)] if length.isdigit() else rest


def complete(raw: bytes, method: str) -> bool:
    """Whether `raw` holds a whole response by its own framing (for connections nginx keeps open)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    status, headers, _ = parse_response(head + sep, method)
    fields = {k.lower(): v for k, v in headers}
    if method == "HEAD" or status in (204, 304):
        return True
    if fields.get("transfer-encoding", "").lower() == "chunked":
        return rest.endswith(b"0\r\n\r\n")
    length = fields.get("content-length", "")
    return length.isdigit() and len(rest) >= int(length)


def _dechunk(data: bytes) -> bytes:
    out, i = b"", 0
    while True:
        eol = data.find(b"\r\n", i)
        if eol < 0:
            return out
        size = int(data[i:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            return out
        out += data[eol + 2 : eol + 2 + size]
        i = eol + 2 + size + 2
