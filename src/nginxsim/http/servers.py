"""Which server answers: listen addresses and server-name tables (`ngx_http_optimize_servers`,
`ngx_http_server_names`, `ngx_http_find_virtual_server`).

For every port there is one entry per listened address (None = the wildcard); each entry has its
servers in config order, its default server and the name tables: exact, head wildcards
(`*.x`, `.x`), tail wildcards (`x.*`), then regexes in order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..regex import Match, Regex

if TYPE_CHECKING:
    from ..plan import Listen, ServerConf


@dataclass(eq=False)
class AddrConf:
    """One listened address:port and the servers that listed it."""

    addr: Any  # IPv4Address | IPv6Address | None (wildcard)
    port: int
    servers: list[ServerConf] = field(default_factory=list)
    default: ServerConf | None = None
    ssl: bool = False
    exact: dict[bytes, ServerConf] = field(default_factory=dict)
    wc_head: list[tuple[bytes, bool, ServerConf, str]] = field(default_factory=list)  # (suffix, dot-form...)
    wc_tail: list[tuple[bytes, ServerConf, str]] = field(default_factory=list)
    regexes: list[tuple[Regex, ServerConf, str]] = field(default_factory=list)
    lookup_names: bool = True  # False: one server without capturing regex names (no lookup)

    @property
    def text(self) -> str:
        """As nginx prints it in messages (`0.0.0.0:80`, `[::]:80`)."""
        if self.addr is None:
            return f"0.0.0.0:{self.port}"
        if self.addr.version == 6:
            return f"[{self.addr}]:{self.port}"
        return f"{self.addr}:{self.port}"


def _raise(e: ConfigError) -> None:
    raise e


def build_addresses(
    servers: list[ServerConf], warnings: list[str], fail: Callable[[ConfigError], None] = _raise
) -> dict[int, dict[Any, AddrConf]]:
    """`ngx_http_add_listen` + `ngx_http_optimize_servers`; raises nginx's listen and server name
    errors (`fail` may record one instead: the listen or name is then left out)."""
    ports: dict[int, dict[Any, AddrConf]] = {}
    for server in servers:
        listens = server.listens or [_implicit_listen(server)]
        for ls in listens:
            if isinstance(ls.addr, str):  # unix: sockets are not reachable by a routed request
                continue
            table = ports.setdefault(ls.port, {})
            ac = table.get(ls.addr)
            if ac is None:
                ac = table[ls.addr] = AddrConf(ls.addr, ls.port)
            if server in ac.servers:
                fail(_listen_error(ls, f"a duplicate listen {ac.text}"))
                continue
            if ls.default_server:
                if ac.default is not None and _is_default(ac, ac.default):
                    fail(_listen_error(ls, f"a duplicate default server for {ac.text}"))
                    continue
                ac.default = server
                ac.default_explicit = True  # type: ignore[attr-defined]
            ac.servers.append(server)
            ac.ssl = ac.ssl or ls.ssl
    for table in ports.values():
        for ac in table.values():
            if ac.default is None:
                ac.default = ac.servers[0]
            _build_names(ac, warnings, fail)
    return ports


def _is_default(ac: AddrConf, server: ServerConf) -> bool:
    return bool(getattr(ac, "default_explicit", False))


def _listen_error(ls: Listen, message: str) -> ConfigError:
    d = ls.directive
    return ConfigError(message, d.file if d else None, d.line if d else None)


def _implicit_listen(server: ServerConf) -> Listen:
    from ..plan import Listen

    return Listen(None, 80, False, False, None)


def _build_names(ac: AddrConf, warnings: list[str], fail: Callable[[ConfigError], None]) -> None:
    """`ngx_http_server_names`: only when the address has several servers or capturing regexes."""
    has_captures = any(rx is not None and rx.ncaptures for s in ac.servers for _, _, rx in s.names)
    if len(ac.servers) == 1 and not has_captures:
        ac.lookup_names = False
        return
    seen: set[bytes] = set()
    for server in ac.servers:
        names = server.names or [("", None, None)]
        for name, _, rx in names:
            if rx is not None:
                ac.regexes.append((rx, server, name))
                continue
            b = name.encode("utf-8", "surrogateescape")
            if b.startswith(b"*.") or b.startswith(b"."):
                key = b"." + b[2:] if b.startswith(b"*.") else b
                if b"*" in b[2:] or b".." in b:
                    fail(_name_error(name, ac))
                    continue
                dup_key = (b"wc:" + b[1:]) if b.startswith(b".") else (b"wc:" + key[1:])
                if dup_key in seen or (b.startswith(b".") and b[1:] in seen):
                    warnings.append(f'conflicting server name "{name}" on {ac.text}, ignored')
                    continue
                seen.add(dup_key)
                if b.startswith(b"."):
                    if b[1:] in ac.exact:
                        warnings.append(f'conflicting server name "{name}" on {ac.text}, ignored')
                        continue
                    ac.exact[b[1:]] = server
                    seen.add(b[1:])
                ac.wc_head.append((key, True, server, name))
            elif b.endswith(b".*"):
                if b"*" in b[:-2] or b".." in b:
                    fail(_name_error(name, ac))
                    continue
                key = b[:-1]
                if b"tail:" + key in seen:
                    warnings.append(f'conflicting server name "{name}" on {ac.text}, ignored')
                    continue
                seen.add(b"tail:" + key)
                ac.wc_tail.append((key, server, name))
            else:
                if b"*" in b or b".." in b:
                    fail(_name_error(name, ac))
                    continue
                if b in seen:
                    warnings.append(f'conflicting server name "{name}" on {ac.text}, ignored')
                    continue
                seen.add(b)
                ac.exact[b] = server
    ac.wc_head.sort(key=lambda e: -len(e[0]))
    ac.wc_tail.sort(key=lambda e: -len(e[0]))


def _name_error(name: str, ac: AddrConf) -> ConfigError:
    # logged with ngx_log_error after reading: nginx names no file and no line
    return ConfigError(f'invalid server name or wildcard "{name}" on {ac.text}')


WILDCARD6 = ipaddress.IPv6Address("::")


def find_address(ports: dict[int, dict[Any, AddrConf]], port: int, local: Any, family: int) -> AddrConf | None:
    """`ngx_http_init_connection`: the exact local IP if listed, else its family's wildcard.

    Without a local address, any address of the client's family that a listen accepts (IPv6
    sockets are ipv6only, so an IPv4 client never reaches `[::]`)."""
    table = ports.get(port)
    if table is None:
        return None
    if local is not None:
        ac = table.get(local)
        if ac is not None:
            return ac
        return table.get(None if local.version == 4 else WILDCARD6)
    ac = table.get(None if family == 4 else WILDCARD6)
    if ac is not None:
        return ac
    for addr, ac in table.items():
        if (addr.version if addr is not None else 4) == family:
            return ac
    return None


def find_server(ac: AddrConf, host: bytes) -> tuple[ServerConf, str, Match | None, Regex | None]:
    """`ngx_http_find_virtual_server`: exact, longest head wildcard, longest tail wildcard, regexes.

    Returns (server, how it matched, regex captures or None, the regex that matched).
    """
    assert ac.default is not None
    if not ac.lookup_names:
        return ac.default, "only server on this address", None, None
    s = ac.exact.get(host)
    if s is not None:
        return s, "exact name", None, None
    if host:
        for key, _, server, name in ac.wc_head:
            # key is ".example.com"; "*.example.com" needs at least one more label
            if host.endswith(key) and len(host) > len(key):
                return server, f"wildcard {name}", None, None
    for key, server, name in ac.wc_tail:
        if host.startswith(key) and len(host) > len(key):
            return server, f"wildcard {name}", None, None
    if host:
        for rx, server, name in ac.regexes:
            m = rx.search(host)
            if m is not None:
                return server, f"regex {name}", m, rx
    return ac.default, "default server", None, None
