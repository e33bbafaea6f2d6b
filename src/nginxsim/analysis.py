"""Traffic analysis: who goes where, exactly, and what a config change moves.

    table = shares(cfg, var="instance", by="ip_range")       # exact per-group shares
    report = diff(old, new, var="instance")                   # transition matrix old -> new
    changes = replay(old, new, records)                       # real requests through both

For one request template, a route depends on the client only through its *client leaves*
(`Variable.client_leaf`: geo and split_clients over the client address, see http/replay.py).
`_Tree` routes the template with those leaves forced to chosen values (a `_Forcer`, the
replay `Recorder` that also answers leaves), one route per combination a client can reach, so
maps, rewrites and locations are nginxsim's own, never re-implemented here. Then:

- Exact shares: a geo value is a known set of IPv4 addresses, a split_clients part a known
  slice [lo, hi) of the 2^32 MurmurHash2 space (nginx's own bounds). A combination's measure
  is its addresses times its slices' widths, MurmurHash2 taken as uniform over any group's
  keys; two splits of one key share their hash (their slices intersect), splits of different
  keys are independent. Groups small enough are also hashed address by address (`enumerated`).
- Sampled shares (a client list, or random clients): each IPv4 client's leaves are evaluated
  (a geo lookup, a hash) and its outcome looked up, without building a Decision; clients whose
  route reads them otherwise (realip, `$remote_addr` in a condition, ip_hash...) are routed in
  full. Wilson 95% intervals.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import math
import random
import socket
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import repeat
from operator import add, mod
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from murmurhash2 import murmurhash2

from .accesslog import LogRecord
from .config import Config
from .decision import Decision
from .errors import RequestError, UndefinedBehavior
from .http import engine
from .http.context import Context
from .http.replay import Recorder
from .http.request import CLIENT_PORT, Request, parse_address, prepare_request
from .http.trace import Trace
from .http.variables import Variable
from .modules.geo import Geo
from .modules.split_clients import HASH_SPACE, SplitClients

AUTO = "<auto>"  # `by`: the first geo variable the route reads (no nginx variable has this name)
Population = Literal["exact"] | int | Sequence[str]
Progress = Callable[[int, int], None]  # (clients done, clients in all)

Z95 = 1.959963984540054
CHUNK = 1 << 16  # clients classified at a time (memory, progress)
FALLBACK_SAMPLE = 20000  # clients sampled when exact shares are not computable
ENUMERATE_LIMIT = 1 << 17  # groups of at most this many addresses are also hashed one by one
EXAMPLE_BUDGET = 1 << 12  # random clients of a cell's addresses searched for its examples
EXAMPLE_CELLS = 256  # cells of an exact diff searched for examples

_ALL = [(0, HASH_SPACE)]


class AnalysisError(ValueError):
    """A question the analysis cannot answer as asked (unknown variable, --exact impossible)."""


# ---------------------------------------------------------------------------------------------
# What a route decides


class Outcome(NamedTuple):
    """The parts of a Decision a traffic change is about; `text` is how tables show it."""

    status: int | None
    server: str
    location: str
    upstream: str | None  # "name (peer)"
    redirect: str | None  # the Location nginx answers with
    file: str | None
    body: str | None = None  # a `return`'s text
    error: str | None = None  # a request nginx's answer to is undefined, or that cannot be posed

    @property
    def text(self) -> str:
        if self.error is not None:
            return f"error: {self.error}"
        if self.upstream is not None:
            what = f"upstream {self.upstream}"
        else:
            what = str(self.status)
            if self.redirect is not None:
                what += f" Location: {self.redirect}"
            elif self.file is not None:
                what += f" file {self.file}"
            elif self.body:
                what += " " + repr(self.body if len(self.body) <= 40 else self.body[:37] + "...")
        return f"{what} @ {self.server or '(no name)'} {self.location}"

    def fields(self) -> dict[str, str]:
        """Each field as text, for a field-by-field comparison."""
        return {"status": "-" if self.status is None else str(self.status), "server": self.server,
                "location": self.location, "upstream": self.upstream or "-", "redirect": self.redirect or "-",
                "file": self.file or "-", "body": "-" if self.body is None else repr(self.body),
                "error": self.error or "-"}


def outcome_of(d: Decision) -> Outcome:
    """What a diff compares of a Decision (the peer too: an edited `server` line moves clients)."""
    up = d.upstream
    upstream = None
    if up is not None:
        upstream = f"{up.protocol} {up.name}"
        if up.peer is not None and up.peer != up.name:
            upstream += f" ({up.peer})"
    return Outcome(d.status, d.server.name if d.server is not None else "-",
                   d.location.label if d.location is not None else "-", upstream,
                   d.headers.get("Location"), d.file, d.body)


Result = tuple[Outcome, str | None, str | None]  # (outcome, $var, $by) of one kind of client


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------------
# Questions: client leaves, evaluated for many clients at once


class _Question:
    """A client leaf a route asked; `values` answers it for many IPv4 clients at once. This base
    calls the leaf function per client and has no known value sets: its shares are sampled."""

    def __init__(self, var: Variable) -> None:
        self.var = var

    def values(self, clients: _IPv4) -> list[bytes]:
        leaf = self.var.client_leaf
        assert leaf is not None
        pairs = zip(clients.ints, clients.texts, strict=True)
        return [leaf(ipaddress.IPv4Address(n), t, CLIENT_PORT) for n, t in pairs]


class _GeoQuestion(_Question):
    """A geo over the client address: its IPv4 table of intervals."""

    def __init__(self, var: Variable, geo: Geo) -> None:
        super().__init__(var)
        self.starts = geo.v4.starts
        self.entries = [e.value for e in geo.v4.entries]
        self._lookup = [b"", *self.entries]  # indexed by bisect_right(starts, n)

    def values(self, clients: _IPv4) -> list[bytes]:
        return list(map(self._lookup.__getitem__, map(bisect_right, repeat(self.starts), clients.ints)))

    def partition(self, addrs: Sequence[tuple[int, int]]) -> dict[bytes, list[tuple[int, int]]]:
        """The address intervals split by this geo's value."""
        out: dict[bytes, list[tuple[int, int]]] = {}
        starts, entries = self.starts, self.entries
        for lo, hi in addrs:
            i = bisect_right(starts, lo) - 1
            while lo < hi:
                end = min(hi, starts[i + 1] if i + 1 < len(starts) else HASH_SPACE)
                pieces = out.setdefault(entries[i], [])
                if pieces and pieces[-1][1] == lo:
                    pieces[-1] = (pieces[-1][0], end)
                else:
                    pieces.append((lo, end))
                lo, i = end, i + 1
        return out


class _HashQuestion(_Question):
    """A split_clients over client inputs including the address: its parts as hash slices.
    `key` names the hash: splits with the same key pieces see the same hash."""

    def __init__(self, var: Variable, split: SplitClients) -> None:
        super().__init__(var)
        pieces = split.key.pieces()
        self.key = tuple(p if isinstance(p, bytes) else "$" + p.name for p in pieces)
        self.edges = split.edges
        self._values = [p.value for p in split.edge_parts] + [split.rest.value if split.rest is not None else b""]
        self.slices: list[tuple[int, int, bytes]] = []
        lo = 0
        for edge, value in zip(split.edges, self._values, strict=False):
            self.slices.append((lo, edge, value))
            lo = edge
        if lo < HASH_SPACE:
            self.slices.append((lo, HASH_SPACE, self._values[-1]))
        names = [p for p in self.key if isinstance(p, str)]
        self._affix: tuple[bytes, bytes] | None = None
        if names == ["$remote_addr"]:  # the usual key: the address text between two literals
            at = self.key.index("$remote_addr")
            self._affix = _bytes(self.key[:at]), _bytes(self.key[at + 1:])
        self._halves: tuple[list[bytes], list[bytes]] | None = None

    def values(self, clients: _IPv4) -> list[bytes]:
        if self._affix is None:
            return super().values(clients)
        if self._halves is None:  # the key of each 16-bit half: one concatenation per client
            before, after = self._affix
            high, low = _halves()
            self._halves = [before + h for h in high], [t + after for t in low]
        hashes = clients.memo.get(self._affix)  # another config's split on the same key
        if hashes is None:
            high, low = self._halves
            keys = [high[n >> 16] + low[n & 0xFFFF] for n in clients.ints]
            hashes = clients.memo[self._affix] = list(map(murmurhash2, keys, repeat(0)))
        return list(map(self._values.__getitem__, map(bisect_right, repeat(self.edges), hashes)))


def _bytes(pieces: Sequence[bytes | str]) -> bytes:
    return b"".join(p for p in pieces if isinstance(p, bytes))


def _question(plan: Any, var: Variable) -> _Question:
    """The question for a client leaf: exact when it is a geo on the address or a split_clients
    whose key hashes the address."""
    geo = plan.modules_state.get("geo", {}).get(var.name)
    if geo is not None and not geo.proxies and (geo.source is None or geo.source.name == "remote_addr"):
        return _GeoQuestion(var, geo)
    for split in plan.modules_state.get("split_clients", ()):
        if var.getter == split.get:
            names = {p.name for p in split.key.pieces() if not isinstance(p, bytes)}
            if names & {"remote_addr", "binary_remote_addr"}:
                return _HashQuestion(var, split)
    return _Question(var)


# ---------------------------------------------------------------------------------------------
# The tree of a request template: one forced route per combination of leaf values


class _Ask(BaseException):
    """Raised through the engine when a route reads a leaf it has no value for (the engine
    catches only its own exceptions)."""

    def __init__(self, var: Variable) -> None:
        self.var = var


class _Forcer(Recorder):
    """A Recorder whose client leaves take given values: the route every client with those
    leaf values takes, if it reads the client no other way (`sensitive` stays False)."""

    __slots__ = ("forced",)

    def __init__(self, plan: Any, request: Request, forced: dict[Variable, bytes]) -> None:
        self.forced = forced
        super().__init__(plan, request, Trace(False), {})

    def _evaluate(self, var: Variable) -> bytes | None:
        if var.client_leaf is None:
            return Context._evaluate(self, var)
        value = self.forced.get(var)
        if value is None:
            raise _Ask(var)
        if var.cacheable:
            self.slots[var.index] = value
            self.evaluated.append(var)
        else:
            self.volatile[var.index] = value
        return value


class _Node:
    """The leaf values a route has read (`path`), then either the next leaf it reads, or its
    result; `sensitive` when it reads the client beyond its leaves."""

    __slots__ = ("path", "question", "children", "result", "sensitive")

    def __init__(self, path: tuple[tuple[Variable, bytes], ...]) -> None:
        self.path = path
        self.question: _Question | None = None
        self.children: dict[bytes, _Node] = {}
        self.result = -1  # index into _Tree.results once routed
        self.sensitive = False


SENSITIVE = -1
_ZERO = ipaddress.IPv4Address(0)


class _Tree:
    """One config and request template; `classify` gives clients their result index."""

    def __init__(self, cfg: Config, url: str, method: str, headers: Sequence[tuple[str, str]],
                 var: str | None, by: str | None, *, undefined_ok: bool = False) -> None:
        self.cfg = cfg
        self.plan = cfg.plan
        self.url, self.method, self.headers = url, method, list(headers)
        self.template = prepare_request(url, method=method, headers=self.headers)
        # a diff's new config may no longer define the variable: its value is then "(not defined)"
        self.undefined = undefined_ok and var is not None and not _has(cfg, var)
        self.var = None if self.undefined else _variable(cfg, var)
        self.by = _variable(cfg, by)
        self.preludes: dict[Any, Any] = {}
        # a plain route first: it fills the preludes, whose making reads the client's family
        engine.run(Context(self.plan, self.template.with_client(_ZERO, text="0.0.0.0"), Trace(False), {}),
                   self.preludes)
        self.questions: dict[Variable, _Question] = {}
        self.results: list[Result] = []
        self._ids: dict[Result, int] = {}
        self.root = _Node(())

    def _intern(self, result: Result) -> int:
        i = self._ids.get(result)
        if i is None:
            i = self._ids[result] = len(self.results)
            self.results.append(result)
        return i

    def node(self, node: _Node) -> _Node:
        """Route a node's combination if not done yet."""
        if node.question is None and node.result < 0 and not node.sensitive:
            r = _Forcer(self.plan, self.template.with_client(_ZERO, text="0.0.0.0"), dict(node.path))
            try:
                d = engine.run(r, self.preludes)
                result = (outcome_of(d), _text(r.get(self.var)) if self.var is not None else None,
                          _text(r.get(self.by)) if self.by is not None else None)
            except _Ask as ask:
                node.sensitive = r.sensitive
                if not r.sensitive:
                    q = self.questions.get(ask.var)
                    if q is None:
                        q = self.questions[ask.var] = _question(self.plan, ask.var)
                    node.question = q
                return node
            except UndefinedBehavior as e:
                result = (_error(e), None, None)
            node.sensitive = r.sensitive
            node.result = self._intern(result)
        return node

    def child(self, node: _Node, value: bytes) -> _Node:
        assert node.question is not None
        c = node.children.get(value)
        if c is None:
            c = node.children[value] = _Node((*node.path, (node.question.var, value)))
        return self.node(c)

    def full(self, client: str) -> int:
        """Route one client in full (IPv6, unix, or a route that reads the client otherwise)."""
        addr = parse_address(client)
        r = Context(self.plan, self.template.with_client(addr, text=client), Trace(False), {})
        try:
            d = engine.run(r, self.preludes)
            result = (outcome_of(d), _text(r.get(self.var)) if self.var is not None else None,
                      _text(r.get(self.by)) if self.by is not None else None)
        except (UndefinedBehavior, RequestError) as e:  # e.g. an IPv6 client and IPv4 listens only
            result = (_error(e), None, None)
        return self._intern(result)

    def classify(self, clients: _IPv4) -> list[int]:
        """Result indexes of IPv4 clients: every leaf the tree asks is evaluated for all of them
        (a geo lookup, a hash: C loops), each distinct combination walks the tree once."""
        asked: list[_Question] = []
        columns: list[list[bytes]] = []
        while True:
            combos = set(zip(*columns, strict=True)) if asked else {()}
            table: dict[tuple[bytes, ...], int] = {}
            missing = None
            for combo in combos:
                answers = dict(zip(asked, combo, strict=True))
                node = self.node(self.root)
                while node.question is not None:
                    value = answers.get(node.question)
                    if value is None:
                        missing = node.question
                        break
                    node = self.child(node, value)
                if missing is not None:
                    break
                table[combo] = SENSITIVE if node.sensitive else node.result
            if missing is None:
                break
            asked.append(missing)
            columns.append(missing.values(clients))
        if not asked:
            out = [table[()]] * len(clients.ints)
        else:
            out = list(map(table.__getitem__, zip(*columns, strict=True)))
        if SENSITIVE in table.values():
            for i, got in enumerate(out):
                if got == SENSITIVE:
                    out[i] = self.full(clients.texts[i].decode())
        return out

    def cells(self, addrs: list[tuple[int, int]] | None = None, hashes: dict[Any, tuple[int, int]] | None = None,
              node: _Node | None = None) -> Iterator[tuple[list[tuple[int, int]], dict[Any, tuple[int, int]], int]]:
        """Every reachable combination: (its addresses, the hash slices it needs, its result).
        Raises AnalysisError when a route depends on the client in a way not computable."""
        addrs = _ALL if addrs is None else addrs
        hashes = {} if hashes is None else hashes
        node = self.node(self.root if node is None else node)
        if node.sensitive:
            raise AnalysisError(f"{self.url}: the route reads the client beyond geo/split_clients "
                                "(realip, $remote_addr in a condition or header, ip_hash...)")
        q = node.question
        if q is None:
            yield addrs, hashes, node.result
        elif isinstance(q, _GeoQuestion):
            for value, sub in q.partition(addrs).items():
                yield from self.cells(sub, hashes, self.child(node, value))
        elif isinstance(q, _HashQuestion):
            lo, hi = hashes.get(q.key, (0, HASH_SPACE))
            for plo, phi, value in q.slices:
                a, b = max(lo, plo), min(hi, phi)
                if a < b:
                    yield from self.cells(addrs, {**hashes, q.key: (a, b)}, self.child(node, value))
        else:
            raise AnalysisError(f"${q.var.name} depends on the client in a way whose shares are not computable")

    def groups(self) -> dict[str, list[tuple[int, int]]] | None:
        """The IPv4 addresses of each value of `by`, when it is a geo on the client address."""
        if self.by is None or self.by.client_leaf is None:
            return None
        q = _question(self.plan, self.by)
        if not isinstance(q, _GeoQuestion):
            return None
        return {_shown(_text(v)): sub for v, sub in q.partition(_ALL).items()}


def _error(e: UndefinedBehavior | RequestError) -> Outcome:
    message = e.message if isinstance(e, UndefinedBehavior) else str(e)
    return Outcome(None, "-", "-", None, None, None, None, error=message)


def _variable(cfg: Config, name: str | None) -> Variable | None:
    if name is None:
        return None
    var = cfg.plan.variables.by_name.get(name.lstrip("$").lower())
    if var is None or var.getter is None:
        where = cfg.files[0] if cfg.files else "the config"
        raise AnalysisError(f'unknown variable "${name.lstrip("$")}" in {where}')
    return var


def _measure(addrs: Sequence[tuple[int, int]], hashes: dict[Any, tuple[int, int]]) -> Fraction:
    """Addresses times the share of the hash space each slice keeps (uniform hashing)."""
    m = Fraction(sum(hi - lo for lo, hi in addrs))
    for lo, hi in hashes.values():
        m *= Fraction(hi - lo, HASH_SPACE)
    return m


def _default_by(tree: _Tree, limit: int = 64) -> str | None:
    """The first geo variable (breadth first) the template's routes read, for AUTO."""
    queue = [tree.node(tree.root)]
    seen = 0
    while queue and seen < limit:
        node = queue.pop(0)
        seen += 1
        q = node.question
        if isinstance(q, _GeoQuestion):
            return q.var.name
        if q is not None:
            queue.extend(tree.child(node, v) for v in _answers(q))
    return None


def _answers(q: _Question) -> list[bytes]:
    if isinstance(q, _GeoQuestion):
        return list(dict.fromkeys(q.entries))
    if isinstance(q, _HashQuestion):
        return list(dict.fromkeys(v for _, _, v in q.slices))
    return []


# ---------------------------------------------------------------------------------------------
# Populations


def ipv4_text(n: int) -> bytes:
    """`$remote_addr` of an IPv4 address given as an integer."""
    high, low = _halves()
    return high[n >> 16] + low[n & 0xFFFF]


def ipv4_texts(ints: Iterable[int]) -> list[bytes]:
    """`ipv4_text` of many addresses: two table lookups and a concatenation each."""
    high, low = _halves()
    return [high[n >> 16] + low[n & 0xFFFF] for n in ints]


_HALVES: list[tuple[list[bytes], list[bytes]]] = []


def _halves() -> tuple[list[bytes], list[bytes]]:
    """The texts of every 16-bit half of an address ("a.b." and "c.d"), made on first use."""
    if not _HALVES:
        dotted = [b"%d." % i for i in range(256)]
        last = [b"%d" % i for i in range(256)]
        _HALVES.append(([a + b for a in dotted for b in dotted], [a + b for a in dotted for b in last]))
    return _HALVES[0]


class _IPv4:
    """IPv4 clients as integers; their `$remote_addr` texts made when first needed, and their
    hashes per split key (`memo`)."""

    __slots__ = ("ints", "_texts", "memo")

    def __init__(self, ints: Sequence[int]) -> None:
        self.ints = ints
        self._texts: list[bytes] | None = None
        self.memo: dict[Any, list[int]] = {}

    @property
    def texts(self) -> list[bytes]:
        if self._texts is None:
            self._texts = ipv4_texts(self.ints)
        return self._texts


class _Clients:
    """A given population: IPv4 clients as integers, other addresses as given, bad ones counted."""

    def __init__(self) -> None:
        self.ints: list[int] = []
        self.others: list[str] = []
        self.skipped = 0

    def add(self, text: str) -> None:
        try:
            self.ints.append(int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"))
            return
        except (OSError, ValueError, TypeError):
            pass
        try:
            parse_address(text)
        except ValueError:  # RequestError, or text that is not even encodable
            self.skipped += 1
            return
        self.others.append(text)


def _random_ints(rng: random.Random, n: int, addrs: Sequence[tuple[int, int]] | None) -> list[int]:
    """n addresses drawn uniformly from the intervals (all of IPv4 when None)."""
    if addrs is None or addrs == _ALL:
        return list(map(rng.getrandbits, repeat(32, n)))
    ends: list[int] = []
    total = 0
    for lo, hi in addrs:
        total += hi - lo
        ends.append(total)
    offsets = list(map(mod, map(rng.getrandbits, repeat(64, n)), repeat(total)))  # bias below 2^-32
    if len(addrs) == 1:
        return list(map(add, repeat(addrs[0][0]), offsets))
    his = [hi - end for (_, hi), end in zip(addrs, ends, strict=True)]  # address = his[i] + offset
    return list(map(add, map(his.__getitem__, map(bisect_right, repeat(ends), offsets)), offsets))


def _split_evenly(n: int, k: int) -> list[int]:
    return [n // k + (i < n % k) for i in range(k)]


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


class _Batch(NamedTuple):
    """Clients classified together: IPv4 ones as integers, or others as given; each tree's
    result indexes."""

    ints: Sequence[int]
    others: Sequence[str]
    ids: list[list[int]]

    def client(self, k: int) -> str:
        return self.others[k] if self.others else ipv4_text(self.ints[k]).decode()


def _sweep(trees: Sequence[_Tree], chunks: Iterable[list[int]], others: Sequence[str], total: int,
           progress: Progress | None) -> Iterator[_Batch]:
    """Classify clients chunk by chunk through every tree; clients that are not IPv4 come
    last, routed in full."""
    done = 0
    for ints in chunks:
        clients = _IPv4(ints)
        yield _Batch(ints, (), [t.classify(clients) for t in trees])
        done += len(ints)
        if progress is not None:
            progress(done, total)
    if others:
        yield _Batch((), others, [[t.full(c) for c in others] for t in trees])
        if progress is not None:
            progress(total, total)


def _chunks(ints: Sequence[int]) -> Iterator[list[int]]:
    for i in range(0, len(ints), CHUNK):
        yield list(ints[i:i + CHUNK])


# ---------------------------------------------------------------------------------------------
# Shares


@dataclass(frozen=True)
class Share:
    """One value's share of a group: exact (from hash slices), or sampled with its 95% interval
    and count. `enumerated`: the share when every address of the group was hashed."""

    value: str
    share: float
    low: float
    high: float
    exact: bool
    count: int | None = None
    fraction: Fraction | None = None
    enumerated: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "share": self.share, "low": self.low, "high": self.high, "exact": self.exact,
                "count": self.count, "enumerated": self.enumerated}


@dataclass(frozen=True)
class Group:
    """A value of `by` (or "all"): its IPv4 addresses (exact mode, or a geo group), the clients
    sampled in it, and each value's share, largest first."""

    name: str
    shares: tuple[Share, ...]
    addresses: Fraction | None = None
    clients: int | None = None
    enumerated: int | None = None  # addresses hashed one by one

    def share(self, value: str) -> float:
        return next((s.share for s in self.shares if s.value == value), 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "addresses": _number(self.addresses), "clients": self.clients,
                "enumerated": self.enumerated, "shares": [s.to_dict() for s in self.shares]}


G = TypeVar("G", "Group", "GroupDiff")


class _ByGroup(Generic[G]):
    """A table of groups (values of `by`), each found by name."""

    mode: str
    groups: tuple[G, ...]

    @property
    def exact(self) -> bool:
        return self.mode == "exact"

    def group(self, name: str) -> G:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no group {name!r} (groups: {', '.join(g.name for g in self.groups)})")


@dataclass(frozen=True)
class ShareTable(_ByGroup[Group]):
    """What `shares` found. `mode`: "exact" (hash-space slices), "sampled" (random clients),
    "clients" (a given population)."""

    url: str
    method: str
    var: str | None
    by: str | None
    mode: str
    groups: tuple[Group, ...]
    clients: int = 0  # classified (sampled, given or enumerated)
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def share(self, group: str, value: str) -> float:
        return self.group(group).share(value)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "method": self.method, "var": self.var, "by": self.by, "mode": self.mode,
                "clients": self.clients, "seconds": round(self.seconds, 3), "notes": list(self.notes),
                "groups": [g.to_dict() for g in self.groups]}


def _number(x: Fraction | None) -> int | float | None:
    if x is None:
        return None
    return int(x) if x.denominator == 1 else float(x)


EXACT_NOTE = ("exact: each split_clients part owns its slice of the 2^32 MurmurHash2 space (nginx's bounds), "
              "hashes taken as uniform over a group's addresses; every IPv4 address counts once")


def _key(tree: _Tree, i: int) -> tuple[str, str]:
    """(group, value) of a result: `by`'s value and `var`'s value or the outcome."""
    outcome, value, by = tree.results[i]
    if tree.undefined:
        shown = "(not defined)"
    else:
        shown = outcome.text if tree.var is None or outcome.error else _shown(value)
    return ("all" if tree.by is None else _shown(by)), shown


def _shown(value: str | None) -> str:
    return "(not found)" if value is None else value if value else '""'


def shares(cfg: Config, var: str | None = None, by: str | None = AUTO, *, url: str = "http://localhost/",
           method: str = "GET", headers: Sequence[tuple[str, str]] = (), population: Population = "exact",
           seed: int = 0, enumerate_limit: int = ENUMERATE_LIMIT, progress: Progress | None = None) -> ShareTable:
    """The share of each value of `$var` (or of each routing outcome) per value of `$by`.

    `population`: "exact" (computed where possible, else FALLBACK_SAMPLE random clients), N
    random IPv4 clients (seeded; spread evenly over `by`'s groups when it is a geo), or a list
    of client addresses (bad ones are counted in a note, not fatal)."""
    start = time.perf_counter()
    tree = _tree(cfg, url, method, headers, var, by)
    notes: list[str] = []
    if population == "exact":
        try:
            table = _exact_shares(tree, enumerate_limit, progress)
        except AnalysisError as e:
            notes.append(f"not exact: {e}; sampled {FALLBACK_SAMPLE:,} random clients instead")
            population = FALLBACK_SAMPLE
        else:
            return _finish(table, start)
    chunks, others, total, stratified, skipped = _population(tree, population, seed)
    counts: Counter[tuple[str, str]] = Counter()
    n = 0
    for batch in _sweep([tree], chunks, others, total, progress):
        (ids,) = batch.ids
        n += len(ids)
        for i, c in Counter(ids).items():
            counts[_key(tree, i)] += c
    if skipped:
        notes.append(f"{skipped} clients skipped: not an address")
    if stratified is not None:
        notes.append(f"{total:,} random clients spread evenly over the groups of ${tree.by.name}")  # type: ignore[union-attr]
    groups: dict[str, dict[str, int]] = defaultdict(dict)
    for (g, v), c in counts.items():
        groups[g][v] = c
    out = []
    for g, values in sorted(groups.items()):
        size = sum(values.values())
        rows = tuple(Share(v, c / size, *wilson(c, size), exact=False, count=c)
                     for v, c in sorted(values.items(), key=lambda kv: (-kv[1], kv[0])))
        addresses = Fraction(sum(hi - lo for lo, hi in stratified[g])) if stratified and g in stratified else None
        out.append(Group(g, rows, addresses=addresses, clients=size))
    mode = "clients" if not isinstance(population, int) else "sampled"
    return _finish(ShareTable(url, method, _name(tree.var), _name(tree.by), mode, tuple(out), n, 0.0, tuple(notes)),
                   start)


def _finish(table: ShareTable, start: float) -> ShareTable:
    return ShareTable(table.url, table.method, table.var, table.by, table.mode, table.groups, table.clients,
                      time.perf_counter() - start, table.notes)


def _name(var: Variable | None) -> str | None:
    return var.name if var is not None else None


def _tree(cfg: Config, url: str, method: str, headers: Sequence[tuple[str, str]], var: str | None,
          by: str | None) -> _Tree:
    tree = _Tree(cfg, url, method, headers, var, None if by == AUTO else by)
    if by == AUTO:
        chosen = _default_by(tree)
        if chosen is not None:
            tree = _Tree(cfg, url, method, headers, var, chosen)
    return tree


def _exact_shares(tree: _Tree, limit: int, progress: Progress | None) -> ShareTable:
    """Each group's shares from the measures of the tree's cells, and the small groups'
    enumeration beside them."""
    measure: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    for addrs, hashes, i in tree.cells():
        measure[_key(tree, i)] += _measure(addrs, hashes)
    totals: dict[str, Fraction] = defaultdict(Fraction)
    for (g, _), m in measure.items():
        totals[g] += m
    enumerated, hashed = _enumerate(tree, totals, limit, progress)
    groups = []
    for g in sorted(totals):
        rows = []
        for (gg, v), m in sorted(measure.items(), key=lambda kv: (-kv[1], kv[0])):
            if gg == g and m:
                frac = m / totals[g]
                counted = enumerated.get(g)
                rows.append(Share(v, float(frac), float(frac), float(frac), exact=True, fraction=frac,
                                  enumerated=counted[v] / counted.total() if counted is not None else None))
        groups.append(Group(g, tuple(rows), addresses=totals[g], enumerated=hashed.get(g)))
    return ShareTable(tree.url, tree.method, _name(tree.var), _name(tree.by), "exact", tuple(groups),
                      sum(hashed.values()), 0.0, (EXACT_NOTE,))


def _enumerate(tree: _Tree, totals: dict[str, Fraction], limit: int,
               progress: Progress | None) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    """Hash every address of the geo groups of at most `limit` addresses, smallest first, while
    the total stays under 4 * `limit` (a geo database has thousands of small groups)."""
    groups = tree.groups()
    counts: dict[str, Counter[str]] = {}
    sizes: dict[str, int] = {}
    if groups is None:
        return counts, sizes
    small = sorted((sum(hi - lo for lo, hi in addrs), g) for g, addrs in groups.items() if g in totals)
    budget = 4 * limit
    for size, g in small:
        if size > min(limit, budget):
            break
        budget -= size
        ints = [n for lo, hi in groups[g] for n in range(lo, hi)]
        got: Counter[str] = Counter()
        for batch in _sweep([tree], _chunks(ints), (), len(ints), progress):
            for i, c in Counter(batch.ids[0]).items():
                got[_key(tree, i)[1]] += c
        counts[g], sizes[g] = got, len(ints)
    return counts, sizes


def _population(tree: _Tree, population: Population, seed: int) -> tuple[
        Iterable[list[int]], list[str], int, dict[str, list[tuple[int, int]]] | None, int]:
    """(IPv4 chunks, other clients, count, the groups' addresses when stratified, skipped)."""
    if isinstance(population, int):
        if population <= 0:
            raise AnalysisError("the sample size must be positive")
        groups = tree.groups()
        rng = random.Random(seed)
        if groups is None:
            sizes = _chunked(population)
            return (_random_ints(rng, k, None) for k in sizes), [], population, None, 0
        names = sorted(groups)
        plan = [(g, k) for g, n in zip(names, _split_evenly(population, len(names)), strict=True)
                for k in _chunked(n)]
        return (_random_ints(rng, k, groups[g]) for g, k in plan), [], population, groups, 0
    if isinstance(population, str):
        raise AnalysisError(f'unknown population {population!r}: "exact", a sample size, or client addresses')
    clients = _Clients()
    for c in population:
        clients.add(c)
    return _chunks(clients.ints), clients.others, len(clients.ints) + len(clients.others), None, clients.skipped


def _chunked(n: int) -> list[int]:
    return [min(CHUNK, n - i) for i in range(0, n, CHUNK)]


def classify(cfg: Config, clients: Sequence[str], var: str | None = None, *, url: str = "http://localhost/",
             method: str = "GET", headers: Sequence[tuple[str, str]] = ()) -> list[str | None]:
    """Each client's value of `$var` (or outcome text), as the sweeps compute it: for checking
    them client by client. A client that is not an address gets None."""
    tree = _Tree(cfg, url, method, headers, var, None)
    v4: dict[int, int] = {}  # position -> address
    out: list[str | None] = [None] * len(clients)
    for k, c in enumerate(clients):
        got = _Clients()
        got.add(c)
        if got.ints:
            v4[k] = got.ints[0]
        elif got.others:
            out[k] = _key(tree, tree.full(c))[1]
    ints = list(v4.values())
    for k, i in zip(v4, tree.classify(_IPv4(ints)), strict=True):
        out[k] = _key(tree, i)[1]
    return out


# ---------------------------------------------------------------------------------------------
# Diff


@dataclass(frozen=True)
class Cell:
    """Clients of a group whose value is `old` under the old config and `new` under the new:
    their share of the group (exact, or sampled with a 95% interval), example clients, and for
    a change, how the first example is routed by each config."""

    old: str
    new: str
    share: float
    low: float
    high: float
    exact: bool
    count: int | None = None
    fraction: Fraction | None = None
    examples: tuple[str, ...] = ()
    explain_old: str | None = None
    explain_new: str | None = None

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "share": self.share, "low": self.low, "high": self.high,
                "exact": self.exact, "count": self.count, "examples": list(self.examples),
                "explain_old": self.explain_old, "explain_new": self.explain_new}


@dataclass(frozen=True)
class GroupDiff:
    """One group's transition matrix (as a list of cells, largest first) and its churn."""

    name: str
    cells: tuple[Cell, ...]
    changed: float
    changed_low: float
    changed_high: float
    addresses: Fraction | None = None
    clients: int | None = None

    def cell(self, old: str, new: str) -> Cell | None:
        return next((c for c in self.cells if c.old == old and c.new == new), None)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "addresses": _number(self.addresses), "clients": self.clients,
                "changed": self.changed, "changed_low": self.changed_low, "changed_high": self.changed_high,
                "cells": [c.to_dict() for c in self.cells]}


@dataclass(frozen=True)
class DiffReport(_ByGroup[GroupDiff]):
    """What `diff` found for one request template. `changed`: the share of all clients whose
    value changes (IPv4 space in exact mode, weighted by group size when sampled per group)."""

    url: str
    method: str
    var: str | None
    by: str | None
    mode: str
    groups: tuple[GroupDiff, ...]
    changed: float
    changed_low: float
    changed_high: float
    clients: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def cell(self, group: str, old: str, new: str) -> Cell | None:
        return self.group(group).cell(old, new)

    def violations(self, max_shift: float | None = None, allow: Sequence[str] = ()) -> list[str]:
        """The CI gate: each group whose changed share exceeds `max_shift` percent, and each
        change not matching an `allow` pattern ("FROM->TO", fnmatch wildcards) when any is given."""
        out = []
        for g in self.groups:
            if max_shift is not None and g.changed * 100 > max_shift + 1e-9:
                out.append(f"{self.url} {g.name}: {g.changed:.2%} of clients change (max {max_shift:g}%)")
            if allow:
                for c in g.cells:
                    if c.changed and c.share > 0 and not any(_allowed(p, c.old, c.new) for p in allow):
                        out.append(f"{self.url} {g.name}: {c.old} -> {c.new} ({c.share:.2%}) is not allowed")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "method": self.method, "var": self.var, "by": self.by, "mode": self.mode,
                "changed": self.changed, "changed_low": self.changed_low, "changed_high": self.changed_high,
                "clients": self.clients, "seconds": round(self.seconds, 3), "notes": list(self.notes),
                "groups": [g.to_dict() for g in self.groups]}


def _allowed(pattern: str, old: str, new: str) -> bool:
    src, sep, dst = pattern.partition("->")
    if not sep:
        raise AnalysisError(f"invalid --allow {pattern!r}: expected FROM->TO")
    return fnmatch.fnmatchcase(old, src.strip()) and fnmatch.fnmatchcase(new, dst.strip())


def diff(old: Config, new: Config, var: str | None = None, by: str | None = AUTO, *, url: str = "http://localhost/",
         method: str = "GET", headers: Sequence[tuple[str, str]] = (), population: Population = "exact",
         seed: int = 0, examples: int = 3, exact_only: bool = False, progress: Progress | None = None) -> DiffReport:
    """Where the clients of each group of `$by` (read in the old config) go under each config:
    the transition matrix of `$var` (or of the routing outcome), exact where computable (the
    slices of both configs' splits intersected, geo ranges intersected), else sampled.
    `exact_only` raises AnalysisError instead of sampling."""
    start = time.perf_counter()
    t_old = _tree(old, url, method, headers, var, by)
    t_new = _Tree(new, url, method, headers, var, None, undefined_ok=True)
    notes: list[str] = []
    if t_new.undefined:
        notes.append(f"${t_old.var.name if t_old.var else var} is not defined in the new config")
    rng = random.Random(seed)
    if population == "exact":
        try:
            report = _exact_diff(t_old, t_new, examples, rng, progress)
        except AnalysisError as e:
            if exact_only:
                raise
            notes.append(f"not exact: {e}; sampled {FALLBACK_SAMPLE:,} random clients instead")
            population = FALLBACK_SAMPLE
        else:
            return _finish_diff(report, notes, start)
    elif exact_only:
        raise AnalysisError("exact_only needs population='exact'")
    chunks, others, total, stratified, skipped = _population(t_old, population, seed)
    if skipped:
        notes.append(f"{skipped} clients skipped: not an address")
    counts: Counter[tuple[str, str, str]] = Counter()
    found: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    n = 0
    for batch in _sweep([t_old, t_new], chunks, others, total, progress):
        for (i, j), c in Counter(zip(*batch.ids, strict=True)).items():
            counts[_pair(t_old, t_new, i, j)] += c
        _examples(t_old, t_new, batch, found, examples)
        n += len(batch.ids[0])
    groups = []
    for g in sorted({k[0] for k in counts}):
        size = sum(c for k, c in counts.items() if k[0] == g)
        cells = [_cell(t_old, t_new, k, c / size, *wilson(c, size), False, c, None, found.get(k, []))
                 for k, c in counts.items() if k[0] == g]
        moved = sum(c for k, c in counts.items() if k[0] == g and k[1] != k[2])
        addresses = Fraction(sum(hi - lo for lo, hi in stratified[g])) if stratified and g in stratified else None
        groups.append(GroupDiff(g, _sorted(cells), moved / size, *wilson(moved, size), addresses=addresses,
                                clients=size))
    moved = sum(c for k, c in counts.items() if k[1] != k[2])
    changed, low, high = _overall(groups) if stratified is not None else (moved / n if n else 0.0, *wilson(moved, n))
    mode = "sampled" if isinstance(population, int) else "clients"
    report = DiffReport(url, method, _name(t_old.var), _name(t_old.by), mode, tuple(groups), changed, low, high, n)
    return _finish_diff(report, notes, start)


def _has(cfg: Config, name: str) -> bool:
    var = cfg.plan.variables.by_name.get(name.lstrip("$").lower())
    return var is not None and var.getter is not None


def _finish_diff(report: DiffReport, notes: list[str], start: float) -> DiffReport:
    return DiffReport(report.url, report.method, report.var, report.by, report.mode, report.groups, report.changed,
                      report.changed_low, report.changed_high, report.clients, time.perf_counter() - start,
                      (*notes, *report.notes))


def _pair(t_old: _Tree, t_new: _Tree, i: int, j: int) -> tuple[str, str, str]:
    g, a = _key(t_old, i)
    return g, a, _key(t_new, j)[1]


def _sorted(cells: list[Cell]) -> tuple[Cell, ...]:
    return tuple(sorted(cells, key=lambda c: (-c.share, c.old, c.new)))


def _overall(groups: Sequence[GroupDiff]) -> tuple[float, float, float]:
    """The share of all clients that change when the sample was spread over groups: weighted
    by the groups' sizes, with a normal interval."""
    total = sum(float(g.addresses or 0) for g in groups)
    p = sum(float(g.addresses or 0) / total * g.changed for g in groups)
    var = sum((float(g.addresses or 0) / total) ** 2 * g.changed * (1 - g.changed) / max(1, g.clients or 1)
              for g in groups)
    half = Z95 * math.sqrt(var)
    return p, max(0.0, p - half), min(1.0, p + half)


def _cell(t_old: _Tree, t_new: _Tree, key: tuple[str, str, str], share: float, low: float, high: float, exact: bool,
          count: int | None, fraction: Fraction | None, found: list[str]) -> Cell:
    g, a, b = key
    explain_old = explain_new = None
    if a != b and found:
        explain_old = _explain(t_old, found[0])
        explain_new = _explain(t_new, found[0])
    return Cell(a, b, share, low, high, exact, count, fraction, tuple(found), explain_old, explain_new)


def _explain(tree: _Tree, client: str) -> str:
    try:
        return tree.cfg.route(client, tree.url, method=tree.method, headers=tree.headers).explain()
    except UndefinedBehavior as e:
        return f"undefined behavior: {e}"


def _examples(t_old: _Tree, t_new: _Tree, batch: _Batch, found: dict[tuple[str, str, str], list[str]],
              want: int) -> None:
    """Note the first `want` clients of each (group, old, new) cell."""
    pairs = set(zip(*batch.ids, strict=True))
    seen = {ij for ij in pairs if len(found[_pair(t_old, t_new, *ij)]) >= want}
    if len(seen) == len(pairs):  # the usual case after the first chunk
        return
    for k, (i, j) in enumerate(zip(*batch.ids, strict=True)):
        if (i, j) in seen:
            continue
        key = _pair(t_old, t_new, i, j)
        got = found[key]
        if len(got) >= want:
            seen.add((i, j))
            continue
        got.append(batch.client(k))


def _exact_diff(t_old: _Tree, t_new: _Tree, want: int, rng: random.Random, progress: Progress | None) -> DiffReport:
    """Both trees walked together: each old combination's addresses and hash slices are what
    the new tree's walk starts from, so geo ranges and same-key slices intersect exactly."""
    measure: dict[tuple[str, str, str], Fraction] = defaultdict(Fraction)
    where: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)  # each cell's addresses
    for addrs, hashes, i in t_old.cells():
        for sub, both, j in t_new.cells(addrs, hashes):
            key = _pair(t_old, t_new, i, j)
            measure[key] += _measure(sub, both)
            where[key].extend(sub)
    # examples: random addresses of each cell (changes first) until it has some; a cell whose
    # hash slice is very thin may stay without
    found: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    search = sorted((k for k in measure if measure[k]), key=lambda k: (k[1] == k[2], -measure[k]))[:EXAMPLE_CELLS]
    for n, key in enumerate(search, 1):
        if len(found[key]) < want:
            ints = _random_ints(rng, EXAMPLE_BUDGET, where[key])
            for batch in _sweep([t_old, t_new], _chunks(ints), (), len(ints), None):
                _examples(t_old, t_new, batch, found, want)
        if progress is not None:
            progress(n, len(search))
    totals: dict[str, Fraction] = defaultdict(Fraction)
    for (g, _, _), m in measure.items():
        totals[g] += m
    groups = []
    for g in sorted(totals):
        cells = []
        moved = Fraction(0)
        for key, m in measure.items():
            if key[0] != g or not m:
                continue
            frac = m / totals[g]
            if key[1] != key[2]:
                moved += frac
            cells.append(_cell(t_old, t_new, key, float(frac), float(frac), float(frac), True, None, frac,
                               found.get(key, [])))
        groups.append(GroupDiff(g, _sorted(cells), float(moved), float(moved), float(moved), addresses=totals[g]))
    space = sum(totals.values(), Fraction(0))
    changed = float(sum((m for k, m in measure.items() if k[1] != k[2]), Fraction(0)) / space) if space else 0.0
    return DiffReport(t_old.url, t_old.method, _name(t_old.var), _name(t_old.by), "exact", tuple(groups), changed,
                      changed, changed, 0, 0.0, (EXACT_NOTE,))


# ---------------------------------------------------------------------------------------------
# Replaying real requests


FIELDS = ("status", "server", "location", "upstream", "redirect", "file", "body", "error")


@dataclass(frozen=True)
class RequestChange:
    """A logged request both configs answer differently: the fields that differ, (old, new)."""

    line: int
    client: str
    request: str
    changes: tuple[tuple[str, str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "client": self.client, "request": self.request,
                "changes": [{"field": f, "old": a, "new": b} for f, a, b in self.changes]}


@dataclass(frozen=True)
class ReplayReport:
    """Real traffic through both configs: how many requests change, per field, the outcome
    transitions with their counts, and the first changed requests."""

    requests: int
    changed: int
    fields: dict[str, int]
    transitions: tuple[tuple[str, str, int], ...]
    examples: tuple[RequestChange, ...]
    unroutable: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def violations(self, max_shift: float | None = None, allow: Sequence[str] = ()) -> list[str]:
        """The CI gate over real traffic: the share of requests answered differently, and each
        outcome change not matching an `allow` pattern."""
        out = []
        if max_shift is not None and self.requests and self.changed / self.requests * 100 > max_shift + 1e-9:
            out.append(f"{self.changed / self.requests:.2%} of logged requests change (max {max_shift:g}%)")
        if allow:
            for a, b, n in self.transitions:
                if not any(_allowed(p, a, b) for p in allow):
                    out.append(f"logged requests: {a} -> {b} ({n}) is not allowed")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "changed": self.changed, "fields": self.fields,
                "transitions": [{"old": a, "new": b, "count": n} for a, b, n in self.transitions],
                "examples": [e.to_dict() for e in self.examples], "unroutable": self.unroutable,
                "reasons": self.reasons, "seconds": round(self.seconds, 3)}


def replay(old: Config, new: Config, requests: Iterable[LogRecord], *, host: str = "localhost",
           scheme: str = "http", examples: int = 10, progress: Progress | None = None) -> ReplayReport:
    """Route each logged request through both configs, with the headers its line records. The
    Host is the record's, else `host`; a request nginxsim cannot pose (an invalid target in the
    log) is counted as unroutable, with its reason."""
    start = time.perf_counter()
    items = list(requests)
    fields: Counter[str] = Counter()
    transitions: Counter[tuple[str, str]] = Counter()
    reasons: Counter[str] = Counter()
    shown: list[RequestChange] = []
    changed = routed = 0
    for k, rec in enumerate(items, 1):
        if rec.uri.startswith("/"):
            url = f"{rec.scheme or scheme}://{rec.host or host}{rec.uri}"
        elif rec.uri.startswith(("http://", "https://")):
            url = rec.uri
        else:
            reasons["not an origin-form or absolute target"] += 1
            continue
        try:
            a = _route_outcome(old, rec, url)
            b = _route_outcome(new, rec, url)
        except RequestError as e:
            reasons[str(e)[:80]] += 1
            continue
        routed += 1
        transitions[(a.text, b.text)] += 1
        if a != b:
            changed += 1
            fa, fb = a.fields(), b.fields()
            diffs = tuple((f, fa[f], fb[f]) for f in FIELDS if fa[f] != fb[f])
            fields.update(f for f, _, _ in diffs)
            if len(shown) < examples:
                shown.append(RequestChange(rec.line, rec.client, f"{rec.method} {url}", diffs))
        if progress is not None and k % 4096 == 0:
            progress(k, len(items))
    moves = tuple((a, b, n) for (a, b), n in transitions.most_common() if a != b)
    return ReplayReport(routed, changed, dict(fields), moves, tuple(shown), sum(reasons.values()), dict(reasons),
                        time.perf_counter() - start)


def _route_outcome(cfg: Config, rec: LogRecord, url: str) -> Outcome:
    try:
        return outcome_of(cfg.route(rec.client, url, method=rec.method, headers=rec.headers, trace=False))
    except UndefinedBehavior as e:
        return _error(e)
