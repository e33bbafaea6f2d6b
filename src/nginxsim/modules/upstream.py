"""`ngx_http_upstream_module`: upstream groups, their servers, and the group a `*_pass` names.

Groups are explicit (`upstream name {}`) or implicit (a literal `host:port` in a `*_pass`, one
group per host:port as `ngx_http_upstream_add` keys them). Every balancer of nginx 1.22.1 is
simulated as one worker process sees it (`worker_processes 1`, or a `zone`): a `Worker` holds the
smooth weighted round robin state (`current_weight` per peer) that round robin, `least_conn`
ties and every fallback to round robin share, so sequences from a fresh worker are exact.
`random` draws from `ngx_random()`, so its pick needs the numbers (`rand=`); without them the
group reports long-run `shares`. All peers are taken as healthy (no failures, so
`effective_weight == weight`) but the `down` ones; `conns` gives in-flight connections.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from ..conf.directive import Directive
from ..conf.spec import BLOCK, HTTP_MAIN, HTTP_UPS, NOARGS, ONEMORE, TAKE1, TAKE12, DirectiveSpec, Merge
from ..hashing import crc32
from ..http.request import parse_address
from ..http.script import Complex
from ..plan import Compiler, Level, error
from .base import Command, Handler, Module

if TYPE_CHECKING:
    from ..http.context import Context

Rand = Callable[[], int]
"""A stand-in for `ngx_random()` (libc `random()`): each call returns the next number, 0 <= n < 2**31."""


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


@dataclass(frozen=True, slots=True)
class _Table:
    """What picks need that depends only on the group and its down peers: built once per down set."""

    primaries: tuple[Peer, ...]
    backups: tuple[Peer, ...]
    usable: tuple[bool, ...]  # per primary: not down
    live: tuple[int, ...]  # the usable primaries, in config order
    live_backups: tuple[int, ...]
    starts: tuple[int, ...]  # per primary, the weight before it, down ones included (random's `range`)
    total: int  # `total_weight`: every primary's weight, down ones included
    single: bool  # `peers->single`: one primary, no backups (every balancer goes straight to round robin)
    hashes: tuple[int, ...] = ()  # `hash ... consistent`: the points' hashes, sorted...
    owners: tuple[tuple[int, ...] | None, ...] = ()  # ...and the usable primaries each leads to (None: round robin)


def _build_table(group: UpstreamGroup, down: frozenset[str]) -> _Table:
    """The peer lists of `ngx_http_upstream_init_round_robin` (primaries, then the backup list),
    random's ranges (`ngx_http_upstream_update_random`) and, for consistent hashing, where each
    point of the ring ends up once down servers are skipped."""
    primaries = tuple(p for p in group.peers if not p.backup)
    backups = tuple(p for p in group.peers if p.backup)
    usable = tuple(not p.down and p.address not in down for p in primaries)
    live = tuple(i for i, ok in enumerate(usable) if ok)
    live_backups = tuple(i for i, p in enumerate(backups) if not p.down and p.address not in down)
    weights = [p.weight for p in primaries]
    hashes: tuple[int, ...] = ()
    owners: tuple[tuple[int, ...] | None, ...] = ()
    if group.balancer == "hash consistent" and group.points:
        by_server: dict[str, tuple[int, ...]] = {}
        for i in live:
            by_server[primaries[i].address] = by_server.get(primaries[i].address, ()) + (i,)
        points, n = group.points, len(group.points)
        hashes = tuple(h for h, _ in points)
        # `ngx_http_upstream_get_chash_peer` moves on point by point, 21 tries, then round robin
        owners = tuple(
            next((by_server[s] for s in (points[(k + t) % n][1] for t in range(21)) if s in by_server), None)
            for k in range(n)
        )
    return _Table(primaries, backups, usable, live, live_backups, tuple(accumulate(weights, initial=0))[:-1],
                  sum(weights), len(primaries) == 1 and not backups, hashes, owners)


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
    _tables: dict[frozenset[str], _Table] = field(default_factory=dict, init=False, repr=False)  # per down set

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

    @property
    def random_two(self) -> bool:
        """`random two [least_conn]`: the less loaded of two draws."""
        return self.balancer == "random" and self.balancer_args[:1] == ("two",)

    def _table(self, down: frozenset[str]) -> _Table:
        """The picking table for this down set, built on first use (the config is read by then)."""
        t = self._tables.get(down)
        if t is None:
            if len(self._tables) >= 64:  # what-if sweeps over many down sets
                self._tables.clear()
            t = self._tables[down] = _build_table(self, down)
        return t

    def worker(self, down: Iterable[str] = ()) -> Worker:
        """A fresh worker process's state for this group, to pick request after request."""
        return Worker(self, frozenset(down))

    def pick_request(self, r: Context) -> Peer | None:
        """The peer a fresh worker sends this request to (see `pick`)."""
        key = self.key.eval(r) if self.key is not None else b""
        return self.pick(r.client, key, r.down)

    def pick(self, client: Any = None, key: bytes | str = b"", down: Iterable[str] = frozenset(), *,
                 rand: Rand | None = None, conns: Mapping[str, int] | None = None) -> Peer | None:
        """The peer a fresh worker (`worker_processes 1`, all peers healthy but `down` ones) picks
        for a client address (`ip_hash`; an `ipaddress` object or text, None for a unix client) or
        an evaluated key (`hash`); None when no peer is live ("no live upstreams", 502), or for
        `random` among several live peers without `rand` (the `ngx_random()` numbers). `down`:
        addresses to treat as down too ("what if this peer fails?"); `conns`: in-flight
        connections per address (`least_conn`, `random two`, `max_conns`). A text key is UTF-8."""
        data = key.encode() if isinstance(key, str) else key
        return Worker(self, frozenset((down,) if isinstance(down, str) else down)).pick(client, data, rand=rand,
                                                                                         conns=conns)

    def sequence(self, n: int, down: Iterable[str] = (), *, rand: Rand | None = None,
                 conns: Mapping[str, int] | None = None) -> list[Peer | None]:
        """The peers of a fresh worker's first `n` requests, each finished before the next (so
        `conns` holds throughout). Requests carry no client address and no key: a hash group then
        round-robins, an ip_hash one hashes three zero bytes. Smooth weighted round robin gives
        each live peer exactly `weight` of every sum(weights) requests, spread out."""
        w = self.worker(down)
        self._check_rand(w.down, rand)
        return [w.pick(rand=rand, conns=conns) for _ in range(n)]

    def shares(self, down: Iterable[str] = ()) -> dict[str, float]:
        """Long-run fraction of requests per peer address: live primaries by weight for round
        robin, idle `least_conn` and `random` (its fallback after 21 missed draws is round robin,
        by weight too), `random two` by its two-draw rule; backups when no primary is live; {}
        when nothing is. ip_hash and hash depend on each request: ask `shares_for` about a
        population of clients or keys."""
        if self.client_dependent:
            raise ValueError(f"{self.balancer} picks by client or key: use shares_for(clients=...) or (keys=...)")
        t = self._table(frozenset(down))
        if t.live:
            peers, among = t.primaries, t.live
            weights = _random_two_weights(t) if self.random_two and not t.single else [p.weight for p in peers]
        else:
            peers, among, weights = t.backups, t.live_backups, [p.weight for p in t.backups]
        total = sum(weights[i] for i in among)
        out: dict[str, float] = {}
        for i in among:
            out[peers[i].address] = out.get(peers[i].address, 0.0) + weights[i] / total
        return out

    def counts_for(self, clients: Iterable[Any] | None = None, keys: Iterable[bytes | str] | None = None,
                   down: Iterable[str] = (), *, rand: Rand | None = None) -> Counter[str]:
        """Requests per peer address when a fresh worker serves one request per client (ip_hash)
        and/or key (hash), in order: request i has clients[i] and keys[i] (equal lengths when both
        are given). Exact, round robin fallbacks included (an empty key, 21 misses); "" counts the
        requests no peer took (502)."""
        if clients is not None and keys is not None:
            requests: Iterable[tuple[Any, bytes | str]] = zip(clients, keys, strict=True)
        elif clients is not None:
            requests = ((c, b"") for c in clients)
        elif keys is not None:
            requests = ((None, k) for k in keys)
        else:
            raise ValueError("counts_for needs clients=... or keys=...")
        w = self.worker(down)
        self._check_rand(w.down, rand)
        counts: Counter[str] = Counter()
        for client, key in requests:
            peer = w.pick(client, key.encode() if isinstance(key, str) else key, rand=rand)
            counts[peer.address if peer is not None else ""] += 1
        return counts

    def shares_for(self, clients: Iterable[Any] | None = None, keys: Iterable[bytes | str] | None = None,
                   down: Iterable[str] = (), *, rand: Rand | None = None) -> dict[str, float]:
        """`counts_for` as fractions of the requests ({} when no peer is live)."""
        counts = self.counts_for(clients, keys, down, rand=rand)
        n = sum(counts.values())
        return {a: c / n for a, c in counts.items() if a}

    def _check_rand(self, down: frozenset[str], rand: Rand | None) -> None:
        t = self._table(down)
        if self.balancer == "random" and rand is None and not t.single and len(t.live) > 1:
            raise ValueError("random among several live peers needs rand= (the ngx_random() numbers); "
                             "shares() gives the long-run split")


class Worker:
    """One nginx worker's balancer state for one group, fresh from start: the smooth weighted
    round robin `current_weight` of each peer (primaries and backups apart), which round robin,
    `least_conn` ties and every fallback to round robin move, request after request."""

    def __init__(self, group: UpstreamGroup, down: frozenset[str] = frozenset()) -> None:
        self.group, self.down = group, down
        t = group._table(down)
        self.current = [0] * len(t.primaries)
        self.current_backup = [0] * len(t.backups)

    def pick(self, client: Any = None, key: bytes = b"", *, rand: Rand | None = None,
             conns: Mapping[str, int] | None = None) -> Peer | None:
        """The peer of the next request (`ngx_http_upstream_get_round_robin_peer` or the balancer's
        own `get`), None as in `UpstreamGroup.pick`. A peer at its `max_conns` is skipped as a
        down one is, by every balancer."""
        g, down, conns = self.group, self.down, conns or {}
        if conns:
            full = {p.address for p in g.peers if p.max_conns and conns.get(p.address, 0) >= p.max_conns}
            down = down | full if full else down
        t = g._table(down)
        if rand is None and g.balancer == "random" and len(t.live) > 1 and not t.single:
            return None
        i = self._primary(t, client, key, rand, conns)
        if i is not None:
            return t.primaries[i]
        if g.balancer == "least_conn":
            j = _least_conn(t.backups, t.live_backups, self.current_backup, conns)
        else:
            j = _swrr(t.backups, t.live_backups, self.current_backup)
        return t.backups[j] if j is not None else None

    def _primary(self, t: _Table, client: Any, key: bytes, rand: Rand | None, conns: Mapping[str, int]) -> int | None:
        b = self.group.balancer
        if t.single or (not key and b in ("hash", "hash consistent")):
            return self._round_robin(t)
        if b == "ip_hash":
            return self._ip_hash(t, client)
        if b == "hash":
            return self._hash(t, key)
        if b == "hash consistent":
            return self._chash(t, key)
        if b == "least_conn":
            return _least_conn(t.primaries, t.live, self.current, conns)
        if b == "random":
            # without numbers there is one live peer at most: every draw and the fallback agree
            return self._round_robin(t) if rand is None else self._random(t, rand, conns)
        return self._round_robin(t)

    def _round_robin(self, t: _Table) -> int | None:
        return _swrr(t.primaries, t.live, self.current)

    def _ip_hash(self, t: _Table, client: Any) -> int | None:
        """`ngx_http_upstream_get_ip_hash_peer`: 3 octets of IPv4 (16 bytes of IPv6), h = h*113 + b
        mod 6271 from 89, rehashed past down peers; 21 misses fall back to round robin."""
        data = _ip_hash_bytes(client)
        h = 89
        for _ in range(21):
            for b in data:
                h = (h * 113 + b) % 6271
            i = bisect_right(t.starts, h % t.total) - 1
            if t.usable[i]:
                return i
        return self._round_robin(t)

    def _hash(self, t: _Table, key: bytes) -> int | None:
        """`ngx_http_upstream_get_hash_peer`: CRC-32 of "<rehash>key" (no prefix on the first round),
        (crc >> 16) & 0x7fff summed over rounds; 21 misses fall back to round robin."""
        acc = 0
        for rehash in range(21):
            acc += (crc32(str(rehash).encode() + key if rehash else key) >> 16) & 0x7FFF
            i = bisect_right(t.starts, acc % t.total) - 1
            if t.usable[i]:
                return i
        return self._round_robin(t)

    def _chash(self, t: _Table, key: bytes) -> int | None:
        """`ngx_http_upstream_get_chash_peer`: the first point at or after crc32(key); the table
        already moved past points of down servers. A server text several peers share (a name
        with several addresses, or repeated) round-robins among them."""
        if not t.hashes:
            return self._round_robin(t)
        owners = t.owners[bisect_left(t.hashes, crc32(key)) % len(t.hashes)]
        return self._round_robin(t) if owners is None else _swrr(t.primaries, owners, self.current)

    def _random(self, t: _Table, rand: Rand, conns: Mapping[str, int]) -> int | None:
        """`ngx_http_upstream_get_random_peer` / `_random2_peer`: x = rand() % total_weight picks
        the peer whose range holds x (`ngx_http_upstream_peek_random_peer`), down ones redrawn;
        `two` draws until a second usable peer unlike the first and keeps the second unless
        conns/weight says the first is less loaded. 21 counted draws (with `two` the first good
        one counts too) fall back to round robin."""
        two, prev, tries = self.group.random_two, None, 0
        while True:
            i = bisect_right(t.starts, rand() % t.total) - 1
            if t.usable[i] and i != prev:
                if not two:
                    return i
                if prev is not None:
                    p, q = t.primaries[prev], t.primaries[i]
                    return prev if conns.get(q.address, 0) * p.weight > conns.get(p.address, 0) * q.weight else i
                prev = i
            tries += 1
            if tries > 20:
                return self._round_robin(t)


def _swrr(peers: Sequence[Peer], among: Iterable[int], current: list[int]) -> int | None:
    """`ngx_http_upstream_get_peer` over the usable peers `among` (config order): each gains its
    weight, the highest current weight wins (the first of equals) and gives back the total."""
    best, total = -1, 0
    for i in among:
        w = peers[i].weight
        current[i] += w
        total += w
        if best < 0 or current[i] > current[best]:
            best = i
    if best < 0:
        return None
    current[best] -= total
    return best


def _least_conn(peers: Sequence[Peer], among: Iterable[int], current: list[int],
                conns: Mapping[str, int]) -> int | None:
    """`ngx_http_upstream_get_least_conn_peer`: the lowest conns/weight (cross-multiplied, the first
    in config order); a lone winner leaves the round robin state alone, a tie runs one smooth
    weighted round robin step over exactly the tied peers."""
    tied: list[int] = []
    best_conns = best_weight = 0
    for i in among:
        c, w = conns.get(peers[i].address, 0), peers[i].weight
        if not tied or c * best_weight < best_conns * w:
            tied, best_conns, best_weight = [i], c, w
        elif c * best_weight == best_conns * w:
            tied.append(i)
    if not tied:
        return None
    return tied[0] if len(tied) == 1 else _swrr(peers, tied, current)


def _random_two_weights(t: _Table) -> list[float]:
    """Each primary's probability of being picked by idle `random two` (uniform draws): the second
    good draw wins, so a peer is picked after another one was drawn first; the mass left after 21
    counted draws goes to round robin, by weight. A walk over the draw counter, not a sample."""
    n, total = len(t.primaries), t.total
    w = [p.weight for p in t.primaries]
    bad = sum(w[i] for i in range(n) if not t.usable[i])
    live_weight = total - bad
    out = [0.0] * n
    first, second = 1.0, [0.0] * n  # probability of drawing for the first / second peer (by the first)
    for _ in range(21):
        waiting = sum(second)
        for j in t.live:
            out[j] += (waiting - second[j]) * w[j] / total
        second = [second[i] * (bad + w[i]) / total + first * w[i] / total if t.usable[i] else 0.0 for i in range(n)]
        first *= bad / total
    fallback = first + sum(second)
    for j in t.live:
        out[j] += fallback * w[j] / live_weight
    return out


def _ip_hash_bytes(client: Any) -> bytes:
    """`ngx_http_upstream_init_ip_hash_peer`'s key: 3 octets of IPv4, 16 bytes of IPv6 (IPv4-mapped
    too), three zero bytes for a unix client (None or "unix:...")."""
    if isinstance(client, str):
        client = None if client[:5].lower() == "unix:" else parse_address(client)
    if client is None:
        return b"\0\0\0"
    packed: bytes = client.packed
    return packed[:3] if client.version == 4 else packed


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
