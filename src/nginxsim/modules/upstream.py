"""`ngx_http_upstream_module`: upstream groups, their servers, and the group a `*_pass` names.

Groups are explicit (`upstream name {}`) or implicit (a literal `host:port` in a `*_pass`, one
group per host:port as `ngx_http_upstream_add` keys them). The first pick of a fresh worker is
deterministic for smooth weighted round robin (`ngx_http_upstream_get_peer`); other balancers
are named so the Decision can say the peer is not simulated yet.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..conf.directive import Directive
from ..conf.spec import BLOCK, HTTP_MAIN, HTTP_UPS, NOARGS, ONEMORE, TAKE1, TAKE12, DirectiveSpec, Merge
from ..hashing import crc32
from ..http.script import Complex
from ..plan import Compiler, Level, error
from .base import Command, Handler, Module

if TYPE_CHECKING:
    from ..http.context import Context


@dataclass(frozen=True, slots=True)
class Peer:
    """One `server` of a group: address as written, weight, and the flags that change picking."""

    address: str
    weight: int = 1
    backup: bool = False
    down: bool = False
    max_fails: int = 1
    fail_timeout: str = "10s"
    max_conns: int = 0


@dataclass(eq=False)
class UpstreamGroup:
    """A group: explicit (`upstream {}` at file:line) or implicit (from a literal address)."""

    name: str
    explicit: bool
    port: int | None = None  # implicit groups: the port written (or the protocol's default)
    peers: list[Peer] = field(default_factory=list)
    balancer: str = "round_robin"  # round_robin | ip_hash | hash | hash consistent | random | least_conn
    balancer_args: tuple[str, ...] = ()
    directive: Directive | None = None
    key: Complex | None = None  # `hash KEY`
    points: tuple[tuple[int, str], ...] = ()  # `hash ... consistent`: (hash, server text), sorted

    @property
    def where(self) -> str:
        return self.directive.where if self.directive else ""

    @property
    def client_dependent(self) -> bool:
        """Whether the peer depends on the request (client address or hash key)."""
        return self.balancer in ("ip_hash", "hash", "hash consistent")

    @property
    def deterministic(self) -> bool:
        return self.balancer != "random" or sum(1 for p in self.peers if not p.backup and not p.down) <= 1

    def pick(self, r: Context) -> Peer | None:
        """The peer a fresh worker sends this request to (see `pick_for`)."""
        key = self.key.eval(r) if self.key is not None else b""
        return self.pick_for(r.client, key, r.down)

    def pick_for(self, client: Any = None, key: bytes = b"", down: frozenset[str] = frozenset()) -> Peer | None:
        """The peer a fresh worker (`worker_processes 1`, all peers healthy but `down` ones)
        picks for a client address (`ip_hash`; an `ipaddress` object, None for a unix peer) or an
        evaluated key (`hash`); None when no peer is live ("no live upstreams", 502) or the
        choice is random. `down`: addresses to treat as down too ("what if this peer fails?")."""
        peers = self.peers
        if down:
            peers = [replace(p, down=True) if p.address in down else p for p in peers]
        primaries = [p for p in peers if not p.backup]
        i = self._pick_primary(primaries, client, key)
        if i is not None:
            return primaries[i]
        backups = [p for p in peers if p.backup]
        j = swrr_first(backups)
        return backups[j] if j is not None else None

    def _pick_primary(self, peers: list[Peer], client: Any, key: bytes) -> int | None:
        if len(peers) == 1 and len(self.peers) == 1:  # `single`: the balancer is never asked
            return None if peers[0].down else 0
        if self.balancer == "ip_hash":
            return ip_hash_pick(peers, client)
        if self.balancer == "hash":
            return hash_pick(peers, key)
        if self.balancer == "hash consistent":
            return chash_pick(peers, self.points, key)
        if self.balancer == "random":
            live = [i for i, p in enumerate(peers) if not p.down]
            return live[0] if len(live) == 1 else None
        return swrr_first(peers)  # round robin, and least_conn with nothing in flight


def swrr_first(peers: list[Peer]) -> int | None:
    """`ngx_http_upstream_get_peer` from zero state: the first live peer of the highest weight."""
    best = None
    for i, p in enumerate(peers):
        if not p.down and (best is None or p.weight > peers[best].weight):
            best = i
    return best


def _weighted(peers: list[Peer], w: int) -> int:
    """The peer whose slot of the cumulative weights (down peers included) holds `w`."""
    i = 0
    while w >= peers[i].weight:
        w -= peers[i].weight
        i += 1
    return i


def ip_hash_pick(peers: list[Peer], client: Any) -> int | None:
    """`ngx_http_upstream_get_ip_hash_peer`: 3 octets of IPv4 (16 bytes of IPv6), h = h*113 + b
    mod 6271 from 89, rehashed past down peers; 20 failures fall back to round robin."""
    key = (client.packed[:3] if client.version == 4 else client.packed) if client is not None else b"\0\0\0"
    total = sum(p.weight for p in peers)
    h = 89
    for _ in range(21):
        for b in key:
            h = (h * 113 + b) % 6271
        i = _weighted(peers, h % total)
        if not peers[i].down:
            return i
    return swrr_first(peers)


def hash_pick(peers: list[Peer], key: bytes) -> int | None:
    """`ngx_http_upstream_get_hash_peer`: CRC-32 of "<rehash>key" (no prefix on the first round),
    (crc >> 16) & 0x7fff summed over rounds; an empty key means round robin."""
    if not key:
        return swrr_first(peers)
    total = sum(p.weight for p in peers)
    acc = 0
    for rehash in range(21):
        c = crc32((str(rehash).encode() if rehash else b"") + key)
        acc = (acc + ((c >> 16) & 0x7FFF)) & 0xFFFFFFFF
        i = _weighted(peers, acc % total)
        if not peers[i].down:
            return i
    return swrr_first(peers)


def chash_points(peers: list[Peer]) -> tuple[tuple[int, str], ...]:
    """`ngx_http_upstream_init_chash`: 160 points per weight unit from crc32(host NUL port +
    previous hash, little-endian), sorted, repeated hashes dropped."""
    points: list[tuple[int, str]] = []
    for p in peers:
        if p.backup:
            continue
        host, port = _split_host_port(p.address)
        base, prev = host + b"\0" + port, 0
        for _ in range(p.weight * 160):
            prev = crc32(base + prev.to_bytes(4, "little"))
            points.append((prev, p.address))
    points.sort(key=lambda t: t[0])
    return tuple(t for k, t in enumerate(points) if k == 0 or t[0] != points[k - 1][0])


def _split_host_port(server: str) -> tuple[bytes, bytes]:
    if server[:5].lower() == "unix:":
        return server[5:].encode(), b""
    j = len(server)
    while j > 0 and server[j - 1].isdigit():
        j -= 1
    if j > 0 and server[j - 1] == ":":
        return server[: j - 1].encode(), server[j:].encode()
    return server.encode(), b""


def chash_pick(peers: list[Peer], points: tuple[tuple[int, str], ...], key: bytes) -> int | None:
    """`ngx_http_upstream_get_chash_peer`: the first point at or after crc32(key), moving on past
    points whose server is down; an empty key means round robin."""
    if not key or not points:
        return swrr_first(peers)
    at = bisect_left(points, (crc32(key), ""))
    for tries in range(21):
        server = points[(at + tries) % len(points)][1]
        same = [i for i, p in enumerate(peers) if p.address == server and not p.down]
        if same:  # one server line resolving to several addresses: round robin among them
            k = swrr_first([peers[i] for i in same])
            return same[k] if k is not None else None
    return swrr_first(peers)


def _upstream(d: Directive, level: Level, cc: Compiler) -> None:
    name = d.args[0]
    key = name.lower()
    if key in cc.upstreams:
        raise error(d, f'duplicate upstream "{name}"')
    group = UpstreamGroup(name, True, directive=d)
    cc.upstreams[key] = group
    ulevel = Level("upstream", level, d, group)
    cc.block(d.block or (), ulevel)
    if group.balancer == "hash consistent":
        group.points = chash_points(group.peers)
    if not group.peers:
        raise error(d, f'no servers are inside upstream in {d.file}:{d.line}')


def _server(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_upstream_server`: address then weight=, max_fails=, fail_timeout=, backup, down..."""
    group: UpstreamGroup = level.owner
    weight, max_fails, fail_timeout, max_conns = 1, 1, "10s", 0
    backup = down = False
    for p in d.args[1:]:
        if p.startswith("weight="):
            v = p[7:]
            if not v.isdigit() or int(v) == 0:
                raise error(d, f'invalid parameter "{p}"')
            weight = int(v)
        elif p.startswith("max_fails="):
            if not p[10:].isdigit():
                raise error(d, f'invalid parameter "{p}"')
            max_fails = int(p[10:])
        elif p.startswith("fail_timeout="):
            fail_timeout = p[13:]
        elif p.startswith("max_conns="):
            if not p[10:].isdigit():
                raise error(d, f'invalid parameter "{p}"')
            max_conns = int(p[10:])
        elif p == "backup":
            if group.balancer in ("ip_hash", "hash", "hash consistent", "random"):
                raise error(d, f'invalid parameter "{p}"')
            backup = True
        elif p == "down":
            down = True
        elif p in ("resolve",) or p.startswith(("route=", "service=", "slow_start=")):
            raise error(d, f'invalid parameter "{p}"')
        else:
            raise error(d, f'invalid parameter "{p}"')
    group.peers.append(Peer(d.args[0], weight, backup, down, max_fails, fail_timeout, max_conns))


def _balancer(name: str) -> Handler:
    def handler(d: Directive, level: Level, cc: Compiler) -> None:
        group: UpstreamGroup = level.owner
        if name == "hash":
            if len(d.args) == 2 and d.args[1] != "consistent":
                raise error(d, f'invalid parameter "{d.args[1]}"')
            group.key = cc.complex(d.args[0], d)
        group.balancer = "hash consistent" if name == "hash" and len(d.args) == 2 else name
        group.balancer_args = d.args

    return handler


COMMANDS = (
    Command(DirectiveSpec("upstream", HTTP_MAIN, BLOCK | TAKE1, Merge.LOCAL), _upstream),
    Command(DirectiveSpec("server", HTTP_UPS, ONEMORE, Merge.LOCAL), _server, slot="upstream:server"),
    Command(DirectiveSpec("ip_hash", HTTP_UPS, NOARGS, Merge.LOCAL), _balancer("ip_hash")),
    Command(DirectiveSpec("hash", HTTP_UPS, TAKE12, Merge.LOCAL), _balancer("hash")),
    Command(DirectiveSpec("random", HTTP_UPS, NOARGS | TAKE12, Merge.LOCAL), _balancer("random")),
    Command(DirectiveSpec("least_conn", HTTP_UPS, NOARGS, Merge.LOCAL), _balancer("least_conn")),
)

MODULE = Module("ngx_http_upstream_module", COMMANDS)
