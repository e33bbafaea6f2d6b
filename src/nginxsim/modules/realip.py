"""`ngx_http_realip_module`: the client address taken from a header a trusted proxy sent.

`set_real_ip_from` lists the trusted peers, `real_ip_header` names where the address is read
(`X-Real-IP`, every `X-Forwarded-For` header, any one header, or the PROXY protocol header) and
`real_ip_recursive` walks back through trusted hops. The handler runs in POST_READ with the
selected server's server-level settings and again in PREACCESS with the location's, at most once
successfully per request: values cached before it ran ($remote_addr, geo, map...) keep the
proxy's address.

This file also holds nginx's address text handling (`ngx_inet.c`: `ngx_inet_addr`,
`ngx_inet6_addr`, `ngx_parse_addr[_port]`, `ngx_ptocidr`, `ngx_cidr_match`) and
`ngx_http_get_forwarded_addr`, which the geo module's `proxy` lines share.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import FLAG, HTTP_LOC, HTTP_MAIN, HTTP_SRV, TAKE1, DirectiveSpec, Merge
from ..http.variables import text_addr
from ..plan import Compiler, Level, error
from .base import Command, Module
from .core import flag

if TYPE_CHECKING:
    from ..http.context import Context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Peer = IPAddress | None  # None: a unix-socket peer (or, for geo, no usable address)

INADDR_NONE = 0xFFFFFFFF
_V4_ALL = 0xFFFFFFFF
_UNIX, _V4, _V6 = 0, 4, 6

# ---------------------------------------------------------------------------------------------
# Address text (ngx_inet.c)


def inet_addr(text: bytes) -> int | None:
    """`ngx_inet_addr`: dotted IPv4, decimal octets <= 255, exactly three dots, empty octets 0.

    None for anything else, including 255.255.255.255 (nginx's INADDR_NONE error value).
    """
    addr = octet = dots = 0
    for c in text:
        if 0x30 <= c <= 0x39:
            octet = octet * 10 + c - 0x30
            if octet > 255:
                return None
        elif c == 0x2E:
            addr = (addr << 8) + octet
            octet = 0
            dots += 1
        else:
            return None
    if dots != 3:
        return None
    addr = (addr << 8) + octet
    return None if addr == INADDR_NONE else addr


def _hex(c: int) -> int | None:
    if 0x30 <= c <= 0x39:
        return c - 0x30
    c |= 0x20
    if 0x61 <= c <= 0x66:
        return c - 0x61 + 10
    return None


def inet6_addr(text: bytes) -> int | None:
    """`ngx_inet6_addr`: IPv6 text as a 128-bit number, or None.

    Groups of at most 4 hex digits, one `::`, an optional dotted IPv4 tail where two groups
    remain; one leading ':' is skipped (so `:1:2:3:4:5:6:7:8` passes); no zone ids.
    """
    if not text:
        return None
    i = 1 if text[0] == 0x3A else 0
    out = bytearray()
    zero: int | None = None  # where `::` stands in `out`
    digit: int | None = None  # where the text after the last ':' starts
    nibbles = word = 0
    groups = 8
    while i < len(text):
        c = text[i]
        i += 1
        if c == 0x3A:
            if nibbles:
                digit = i
                out += word.to_bytes(2, "big")
                groups -= 1
                if groups:
                    nibbles = word = 0
                    continue
            elif zero is None:
                digit = i
                zero = len(out)
                continue
            return None
        if c == 0x2E and nibbles:
            if groups < 2 or digit is None:
                return None
            v4 = inet_addr(text[digit:])
            if v4 is None:
                return None
            out += (v4 >> 16).to_bytes(2, "big")
            word = v4 & 0xFFFF
            groups -= 1
            break
        nibbles += 1
        h = _hex(c)
        if nibbles > 4 or h is None:
            return None
        word = word * 16 + h
    if nibbles == 0 and zero is None:
        return None
    out += (word & 0xFFFF).to_bytes(2, "big")
    groups -= 1
    if groups == 0:
        return int.from_bytes(out, "big") if zero is None else None
    if zero is None:
        return None
    out[zero:zero] = bytes(2 * groups)
    return int.from_bytes(out, "big")


def parse_addr(text: bytes) -> IPAddress | None:
    """`ngx_parse_addr`: IPv4 text, else IPv6 text; no port, no brackets."""
    v4 = inet_addr(text)
    if v4 is not None:
        return ipaddress.IPv4Address(v4)
    v6 = inet6_addr(text)
    if v6 is not None:
        return ipaddress.IPv6Address(v6)
    return None


def atoi(text: bytes) -> int:
    """`ngx_atoi`: decimal digits only, at least one; -1 on error (nginx's NGX_ERROR)."""
    if not text or not text.isdigit():
        return -1
    return int(text)


def parse_addr_port(text: bytes) -> tuple[IPAddress, int] | None:
    """`ngx_parse_addr_port`: an address, or `addr:port` split at the first ':', or `[v6]:port`
    (in 1.22.1 `[v6]` without a port is refused); port 1..65535. Port 0 means "none"."""
    addr = parse_addr(text)
    if addr is not None:
        return addr, 0
    if text[:1] == b"[":
        close = text.find(b"]")
        if close < 0 or close == len(text) - 1 or text[close + 1] != 0x3A:
            return None
        host, port_text = text[1:close], text[close + 2 :]
    else:
        colon = text.find(b":")
        if colon < 0:
            return None
        host, port_text = text[:colon], text[colon + 1 :]
    port = atoi(port_text)
    if not 1 <= port <= 65535:
        return None
    addr = parse_addr(host)
    return None if addr is None else (addr, port)


def sock_ntop(addr: Peer, port: int) -> str:
    """How nginx prints an address with its port (`ngx_sock_ntop` with port, for traces)."""
    text = text_addr(addr).decode()
    if not port or addr is None:
        return text
    return f"[{text}]:{port}" if addr.version == 6 else f"{text}:{port}"


# ---------------------------------------------------------------------------------------------
# Networks (ngx_ptocidr, ngx_cidr_match)


@dataclass(frozen=True, slots=True)
class Cidr:
    """A network as nginx stores it (`ngx_cidr_t`), with the config text and place it came from."""

    family: int  # 4, 6, or 0 for `unix:`
    addr: int
    mask: int
    text: str
    file: str
    line: int


def ptocidr(text: str, d: Directive) -> tuple[Cidr, bool] | None:
    """`ngx_ptocidr`: `addr[/len]` for IPv4 or IPv6. Returns the network (host bits masked off)
    and whether host bits were set (nginx's NGX_DONE, "low address bits ... meaningless")."""
    raw = text.encode("utf-8", "surrogateescape")
    slash = raw.find(b"/")
    addr_text = raw if slash < 0 else raw[:slash]
    v4 = inet_addr(addr_text)
    if v4 is not None:
        family, bits, addr = _V4, 32, v4
    else:
        v6 = inet6_addr(addr_text)
        if v6 is None:
            return None
        family, bits, addr = _V6, 128, v6
    shift = bits if slash < 0 else atoi(raw[slash + 1 :])
    if not 0 <= shift <= bits:
        return None
    full = (1 << bits) - 1
    mask = (full << (bits - shift)) & full
    return Cidr(family, addr & mask, mask, text, d.file, d.line), addr & ~mask != 0


def peer_key(addr: Peer) -> tuple[int, int]:
    """(family, number) the way `ngx_cidr_match` compares: IPv4-mapped IPv6 counts as IPv4."""
    if addr is None:
        return _UNIX, 0
    n = int(addr)
    if addr.version == 4:
        return _V4, n
    if n >> 32 == 0xFFFF:
        return _V4, n & _V4_ALL
    return _V6, n


def cidr_match(addr: Peer, cidrs: Sequence[Cidr]) -> Cidr | None:
    """`ngx_cidr_match`: the first listed network holding `addr` (a `unix:` entry holds every
    unix-socket peer), or None."""
    family, n = peer_key(addr)
    for c in cidrs:
        if c.family == family and n & c.mask == c.addr:
            return c
    return None


# ---------------------------------------------------------------------------------------------
# ngx_http_get_forwarded_addr (ngx_http_core_module.c)

OK, DONE, DECLINED = "OK", "DONE", "DECLINED"
_SEPARATORS = b" ,"


def _forwarded_one(
    addr: Peer, port: int, xff: bytes, proxies: Sequence[Cidr], recursive: bool
) -> tuple[str, Peer, int]:
    """`ngx_http_get_forwarded_addr_internal`: while the current address is trusted, take the
    last address of the list (separators: any run of ' ' and ','); recursive walks left."""
    found = False
    end = len(xff)
    while True:
        if cidr_match(addr, proxies) is None:
            return (DONE if found else DECLINED), addr, port
        p = end - 1
        while p > 0 and xff[p] in _SEPARATORS:
            p -= 1
            end -= 1
        while p > 0:
            if xff[p] in _SEPARATORS:
                p += 1
                break
            p -= 1
        # p < 0: nginx reads the byte before the value (a ':' or ' '), which never parses
        parsed = parse_addr_port(xff[p:end]) if p >= 0 else None
        if parsed is None:
            return (DONE if found else DECLINED), addr, port
        addr, port = parsed
        found = True
        end = p - 1
        if not (recursive and p > 0):
            return OK, addr, port


def forwarded_addr(
    addr: Peer, port: int, values: list[bytes], one_string: bool, proxies: Sequence[Cidr], recursive: bool
) -> tuple[str, Peer, int]:
    """`ngx_http_get_forwarded_addr`: one string (X-Real-IP, a named header, PROXY), or the list
    of X-Forwarded-For headers from the last: non-recursive uses only the last header; recursive
    moves to the previous header while the current one was consumed whole."""
    if one_string:
        return _forwarded_one(addr, port, values[0], proxies, recursive)
    rc, found = DECLINED, False
    for value in reversed(values):
        rc, addr, port = _forwarded_one(addr, port, value, proxies, recursive)
        if not recursive:
            break
        if rc == DECLINED and found:
            return DONE, addr, port
        if rc != OK:
            break
        found = True
    return rc, addr, port


def header_values(r: Context, lowname: bytes) -> list[bytes]:
    """Every request header named `lowname` (case-insensitively), in order."""
    return [v for n, v in r.headers_in if n.lower() == lowname]


# ---------------------------------------------------------------------------------------------
# Directives


@dataclass(frozen=True, slots=True)
class Source:
    """`real_ip_header`: where the address is read (`ngx_http_realip`)."""

    kind: str  # "X-Real-IP", "X-Forwarded-For", "proxy_protocol", or "header"
    name: str  # as written
    header: bytes  # the header name, lowercased (X-Real-IP / X-Forwarded-For / a named one)

    @property
    def label(self) -> str:
        return "the PROXY protocol header" if self.kind == "proxy_protocol" else self.name


_X_REAL_IP = Source("X-Real-IP", "X-Real-IP", b"x-real-ip")


def _set_real_ip_from(d: Directive, level: Level, cc: Compiler) -> Cidr:
    """`ngx_http_realip_from`: `unix:`, a network, else a host name resolved now."""
    text = d.args[0]
    if text == "unix:":
        return Cidr(_UNIX, 0, 0, text, d.file, d.line)
    parsed = ptocidr(text, d)
    if parsed is not None:
        cidr, low_bits = parsed
        if low_bits:
            cc.warn(d, f"low address bits of {text} are meaningless")
        return cidr
    return Cidr(_V4, _resolve(text, d), _V4_ALL, text, d.file, d.line)


def _resolve(host: str, d: Directive) -> int:
    """`ngx_inet_resolve_host`, limited to what getaddrinfo(3) reads without a lookup: numeric
    IPv4 forms (`10.1` is 10.0.0.1) and `localhost` (127.0.0.1)."""
    if host.lower() == "localhost":
        return 0x7F000001
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        raise error(d, f'host not found in set_real_ip_from "{host}"'
                       " (nginxsim resolves only IP addresses and localhost)") from None
    return int(ipaddress.IPv4Address(infos[0][4][0]))


def _real_ip_header(d: Directive, level: Level, cc: Compiler) -> Source:
    """`ngx_http_realip`: the three keywords are case-sensitive; anything else names a header."""
    name = d.args[0]
    kind = name if name in ("X-Real-IP", "X-Forwarded-For", "proxy_protocol") else "header"
    return Source(kind, name, name.lower().encode("utf-8", "surrogateescape"))


def _recursive(d: Directive, level: Level, cc: Compiler) -> bool:
    return flag(d)


# ---------------------------------------------------------------------------------------------
# The phase handler


def _handler(r: Context) -> None:
    """`ngx_http_realip_handler` (POST_READ and PREACCESS): replace the client address once."""
    conf = r.loc.conf
    proxies: list[Cidr] | None = conf.get("set_real_ip_from")
    if not proxies or "realip" in r.module_state:
        return
    source: Source = conf.get("real_ip_header", _X_REAL_IP)
    pp = r.request.proxy_protocol if source.kind == "proxy_protocol" else None
    if source.kind == "X-Forwarded-For":
        values = header_values(r, b"x-forwarded-for")
    elif source.kind == "proxy_protocol":
        values = [pp.src_addr] if pp is not None else []
    else:
        values = header_values(r, source.header)[:1]
    peer = r.client
    trusted = cidr_match(peer, proxies)
    rc, addr, port = DECLINED, peer, r.client_port
    if values:
        rc, addr, port = forwarded_addr(addr, port, values, source.kind != "X-Forwarded-For", proxies,
                                        conf.get("real_ip_recursive", False))
    if rc != DECLINED:
        r.module_state["realip"] = True
        r.client, r.client_port = addr, port if pp is None else pp.src_port
    if r.trace.enabled:
        what = f'{source.label} "{_s(b", ".join(values))}"' if values else f"no {source.label}"
        result = (f"client address {sock_ntop(r.client, r.client_port)}" if rc != DECLINED else
                  "client unchanged: " + ("nothing to read" if not values else "the peer is not trusted"
                                          if trusted is None else "no usable address in it"))
        c = trusted or proxies[0]
        r.trace.add("realip", f"{what} from {sock_ntop(peer, 0)}", result, c.file, c.line)


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------------
# Variables


def _realip_remote_addr(r: Context) -> bytes | None:
    """`ngx_http_realip_remote_addr_variable`: the peer before any replacement."""
    return text_addr(r.realip_client)


def _realip_remote_port(r: Context) -> bytes | None:
    """`ngx_http_realip_remote_port_variable`: the peer's port, empty for unix sockets."""
    port = r.realip_port
    return str(port).encode() if r.realip_client is not None and 0 < port < 65536 else b""


REALIP_CONTEXTS = HTTP_MAIN | HTTP_SRV | HTTP_LOC

COMMANDS = (
    Command(DirectiveSpec("set_real_ip_from", REALIP_CONTEXTS, TAKE1, Merge.ARRAY), _set_real_ip_from),
    Command(DirectiveSpec("real_ip_header", REALIP_CONTEXTS, TAKE1), _real_ip_header),
    Command(DirectiveSpec("real_ip_recursive", REALIP_CONTEXTS, FLAG), _recursive),
)

MODULE = Module(
    "ngx_http_realip_module",
    COMMANDS,
    variables=(
        ("realip_remote_addr", _realip_remote_addr, True),
        ("realip_remote_port", _realip_remote_port, True),
    ),
    post_read=_handler,
    preaccess=_handler,
)
