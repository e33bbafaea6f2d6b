"""`ngx_http_geo_module`: `geo [$src] $var { ... }`, a variable whose value depends on an address.

The block is read line by line as `ngx_http_geo` does: networks (`ngx_http_geo_cidr`, two radix
trees, longest prefix wins) or, after `ranges`, address ranges cut into per-/16 fragments
(`ngx_http_geo_add_range`, where a range may only refine one earlier fragment). The radix trees
are simulated node by node because which nodes exist decides nginx's `delete` warnings and the
"old value" of duplicate warnings. Once read, both kinds become one sorted interval table per
address family, so a lookup is a binary search; every interval keeps the entry (text, file,
line) that gave its value, for the trace.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from ..conf.directive import Directive
from ..conf.spec import BLOCK, HTTP_MAIN, TAKE12, DirectiveSpec, Merge
from ..http.variables import CLIENT_INPUTS, ClientInput, Getter, Variable, text_addr
from ..plan import Compiler, Level, error, variable_name
from .base import Command, Module
from .realip import INADDR_NONE, Cidr, Peer, forwarded_addr, header_values, inet_addr, parse_addr, ptocidr

if TYPE_CHECKING:
    from ..http.context import Context


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """A geo value and the line that set it: the network/range as written (or `default`)."""

    value: bytes
    net: str
    file: str
    line: int


class Intervals:
    """Disjoint intervals covering a whole address space: `starts[i]` begins `entries[i]`."""

    __slots__ = ("starts", "entries")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.entries: list[Entry] = []

    def add(self, start: int, entry: Entry) -> None:
        """Append an interval starting at `start` (starts only grow); merges equal neighbours."""
        starts, entries = self.starts, self.entries
        if starts and starts[-1] == start:
            entries[-1] = entry
            if len(entries) > 1 and entries[-2] is entry:
                starts.pop()
                entries.pop()
        elif not entries or entries[-1] is not entry:
            starts.append(start)
            entries.append(entry)

    def find(self, key: int) -> Entry:
        """The entry of the interval holding `key` (a binary search)."""
        return self.entries[bisect_right(self.starts, key) - 1]


# ---------------------------------------------------------------------------------------------
# CIDR mode: ngx_radix_tree_t


_NO_VALUE = None
_PREALLOCATE = 6  # ngx_radix_tree_create(pool, -1) on amd64: every prefix of length <= 6 exists


class Radix:
    """`ngx_radix32tree_*` / `ngx_radix128tree_*` over `bits`-bit keys. A node is numbered like a
    heap, `1 << length | prefix` (root 1, children 2n and 2n+1); a node without a value is
    nginx's NGX_RADIX_NO_VALUE."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.nodes: dict[int, Entry | None] = dict.fromkeys(range(1, 2 << _PREALLOCATE), _NO_VALUE)

    def _node(self, key: int, length: int) -> int:
        return 1 << length | key >> (self.bits - length)

    def insert(self, key: int, length: int, entry: Entry) -> bool:
        """`ngx_radix*tree_insert`: False (NGX_BUSY) when the prefix already has a value."""
        node = self._node(key, length)
        parent = node >> 1
        while parent and parent not in self.nodes:  # the ancestors of a node always exist
            self.nodes[parent] = _NO_VALUE
            parent >>= 1
        if self.nodes.get(node) is not None:
            return False
        self.nodes[node] = entry
        return True

    def _has_children(self, node: int) -> bool:
        return node << 1 in self.nodes or node << 1 | 1 in self.nodes

    def delete(self, key: int, length: int) -> bool:
        """`ngx_radix*tree_delete`: False (NGX_ERROR) when the node is missing, or is inner and
        valueless. A valueless leaf (a preallocated node) is removed without complaint; removing
        a leaf also removes the valueless ancestors it leaves childless (not the root)."""
        node = self._node(key, length)
        if node not in self.nodes:
            return False
        if node == 1 or self._has_children(node):
            if self.nodes[node] is _NO_VALUE:
                return False
            self.nodes[node] = _NO_VALUE
            return True
        while True:
            del self.nodes[node]
            node >>= 1
            if node == 1 or self._has_children(node) or self.nodes[node] is not _NO_VALUE:
                return True

    def find(self, key: int) -> Entry | None:
        """`ngx_radix*tree_find`: the value of the longest prefix holding `key`."""
        found = None
        for length in range(self.bits + 1):
            node = self._node(key, length)
            if node not in self.nodes:
                break
            found = self.nodes[node] or found
        return found

    def intervals(self) -> Intervals:
        """The longest-prefix answer for every key, as intervals (a sweep over sorted prefixes)."""
        table = Intervals()
        stack: list[tuple[int, Entry]] = []  # open prefixes: (last key, entry)
        valued = []
        for node, entry in self.nodes.items():
            if entry is not None:
                length = node.bit_length() - 1
                valued.append(((node ^ 1 << length) << (self.bits - length), length, entry))
        valued.sort(key=lambda t: (t[0], t[1]))
        for start, length, entry in valued:  # the root comes first and is never closed here
            while stack and stack[-1][0] < start:
                end, _ = stack.pop()
                table.add(end + 1, stack[-1][1])
            table.add(start, entry)
            stack.append((start + (1 << (self.bits - length)) - 1, entry))
        while len(stack) > 1:
            end, _ = stack.pop()
            if end + 1 < 1 << self.bits:
                table.add(end + 1, stack[-1][1])
        return table


# ---------------------------------------------------------------------------------------------
# Ranges mode: per-/16 fragment lists (ngx_http_geo_high_ranges_t)


def _fragments(start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(high 16 bits, low start, low end) of each /16 piece of [start, end]."""
    n = start
    while True:
        high = n >> 16
        yield high, (n & 0xFFFF) if n == start else 0, (end & 0xFFFF) if (n | 0xFFFF) > end else 0xFFFF
        if high == 0xFFFF or ((n + 0x10000) & 0xFFFF0000) > end:
            return
        n = (n + 0x10000) & 0xFFFF0000


class Ranges:
    """The fragments of `ranges` mode; each keeps the entry of the range that set it."""

    def __init__(self) -> None:
        self.buckets: dict[int, list[tuple[int, int, Entry]]] = {}

    def add(self, start: int, end: int, entry: Entry, warn: list[str]) -> str | None:
        """`ngx_http_geo_add_range`: insert, split the one fragment it refines, or replace an
        equal one (a warning in `warn`); the overlap error message if it fits none of these."""
        for high, s, e in _fragments(start, end):
            frags = self.buckets.setdefault(high, [])
            i = len(frags)
            while i:
                i -= 1
                fs, fe, old = frags[i]
                if e < fs:
                    continue
                if s > fe:
                    frags.insert(i + 1, (s, e, entry))
                elif s == fs and e == fe:
                    warn.append(f'duplicate range "{entry.net}", value: "{_s(entry.value)}", '
                                f'old value: "{_s(old.value)}"')
                    frags[i] = (s, e, entry)
                elif fs <= s and e <= fe:
                    frags[i : i + 1] = [p for p in ((fs, s - 1, old), (s, e, entry), (e + 1, fe, old))
                                        if p[0] <= p[1]]
                else:
                    return (f'range "{entry.net}" overlaps "{high >> 8}.{high & 0xFF}.{fs >> 8}.{fs & 0xFF}-'
                            f'{high >> 8}.{high & 0xFF}.{fe >> 8}.{fe & 0xFF}"')
                break
            else:
                frags.insert(0, (s, e, entry))
        return None

    def delete(self, start: int, end: int) -> bool:
        """`ngx_http_geo_delete_range`: drop the fragments equal to the pieces; False (nginx
        warns) when any piece had no equal fragment."""
        complete = True
        for high, s, e in _fragments(start, end):
            frags = self.buckets.get(high, [])
            for i, (fs, fe, _) in enumerate(frags):
                if fs == s and fe == e:
                    del frags[i]
                    break
            else:
                complete = False
        return complete

    def intervals(self, default: Entry) -> Intervals:
        """The fragments in address order, the gaps between them holding `default`."""
        table = Intervals()
        table.add(0, default)
        for high in sorted(self.buckets):
            for s, e, entry in self.buckets[high]:
                table.add(high << 16 | s, entry)
                table.add((high << 16 | e) + 1, default)  # 0xffffffff is never in a range
        return table


# ---------------------------------------------------------------------------------------------
# The compiled geo


@dataclass(eq=False)
class Geo:
    """One `geo` block as requests use it."""

    name: str
    d: Directive
    source: Variable | None = None  # None: the client address
    v4: Intervals = field(default_factory=Intervals)
    v6: Intervals | None = None  # None in ranges mode: IPv6 clients get the default
    proxies: tuple[Cidr, ...] = ()
    proxy_recursive: bool = False

    def find(self, addr: Peer) -> Entry:
        """`ngx_http_geo_cidr_variable` / `ngx_http_geo_range_variable` after the address is
        known: IPv4-mapped IPv6 looks in the IPv4 table; unix peers and non-addresses look up
        255.255.255.255 (in ranges mode that is always the default)."""
        if addr is None:
            return self.v4.find(INADDR_NONE)
        n = int(addr)
        if type(addr) is IPv4Address:
            return self.v4.find(n)
        if n >> 32 == 0xFFFF:
            return self.v4.find(n & 0xFFFFFFFF)
        return self.v6.find(n) if self.v6 is not None else self.v4.find(INADDR_NONE)

    def address(self, r: Context) -> tuple[Peer, Any]:
        """`ngx_http_geo_addr`: the client address, or `$src` parsed as a bare address; then, with
        `proxy` lines and X-Forwarded-For headers, the address they lead to. The second value is
        where it came from, for the trace: the address before X-Forwarded-For, or
        `(NO_ADDRESS, $src value)` when `$src` is not found or no address."""
        if self.source is None:
            addr: Peer = r.client
        else:
            value = r.get(self.source)
            addr = parse_addr(value) if value is not None else None
            if addr is None:
                return None, (NO_ADDRESS, value)
        given = addr
        if self.proxies:
            xff = header_values(r, b"x-forwarded-for")
            if xff:
                _, addr, _ = forwarded_addr(addr, 0, xff, False, self.proxies, self.proxy_recursive)
        return addr, given


NO_ADDRESS = object()


def _shown(addr: Peer, origin: Any) -> str:
    """Which address geo looked up, as the trace says it."""
    if isinstance(origin, tuple) and origin[0] is NO_ADDRESS:
        value = origin[1]
        shown = "(not found)" if value is None else f'"{_s(value)}"'
        return f"{shown} (not an address: 255.255.255.255)"
    text = _s(text_addr(addr))
    if addr != origin:
        text += f" (from X-Forwarded-For, via {_s(text_addr(origin))})"
    return text


def _step(name: str, addr: Peer, origin: Any, entry: Any) -> tuple[str, str]:
    value = _s(entry.value) if entry.value else '""'
    return f"geo ${name} for {_shown(addr, origin)}", f"{value} ({entry.net})"


def _getter(geo: Geo) -> Getter:
    def get(r: Context) -> bytes | None:
        addr, origin = geo.address(r)
        entry = geo.find(addr)
        if r.trace.enabled:
            r.trace.later("variable", _step, (geo.name, addr, origin, entry), entry.file, entry.line)
        return entry.value

    return get


# ---------------------------------------------------------------------------------------------
# Reading the block


class _Reader:
    """The state of `ngx_http_geo_conf_ctx_t` while the block's lines are read."""

    def __init__(self, geo: Geo, cc: Compiler) -> None:
        self.geo = geo
        self.cc = cc
        self.ranges = False
        self.trees: tuple[Radix, Radix] | None = None  # created by the first CIDR-mode line
        self.fragments = Ranges()
        self.default: Entry | None = None  # ranges mode
        self.proxies: list[Cidr] = []

    def line(self, d: Directive) -> None:
        """`ngx_http_geo`: one line of the block."""
        words = (d.name, *d.args)
        if len(words) == 1 and d.name == "ranges":
            if self.trees is not None:
                raise error(d, 'the "ranges" directive must be the first directive inside "geo" block')
            self.ranges = True
        elif len(words) == 1 and d.name == "proxy_recursive":
            self.geo.proxy_recursive = True
        elif len(words) != 2:
            raise error(d, "invalid number of the geo parameters")
        elif d.name == "proxy":
            self.proxies.append(self._cidr(d, d.args[0]))
        elif self.ranges:
            self._range(d, *words)
        else:
            self._network(d, *words)

    def _cidr(self, d: Directive, net: str) -> Cidr:
        """`ngx_http_geo_cidr_value`: the literal 255.255.255.255 is allowed (ptocidr refuses it)."""
        if net == "255.255.255.255":
            return Cidr(4, INADDR_NONE, INADDR_NONE, net, d.file, d.line)
        parsed = ptocidr(net, d)
        if parsed is None:
            raise error(d, f'invalid network "{net}"')
        cidr, low_bits = parsed
        if low_bits:
            self.cc.warn(d, f"low address bits of {net} are meaningless")
        return cidr

    def _network(self, d: Directive, first: str, value: str) -> None:
        """`ngx_http_geo_cidr`: `default`, `delete net` or `net value` into the radix trees."""
        if self.trees is None:
            self.trees = (Radix(32), Radix(128))
        v4, v6 = self.trees
        if first == "default":
            entry = _entry(value, "default", d)
            self._insert(v4, 0, 0, entry, d)
            self._insert(v6, 0, 0, entry, d)
            return
        net = value if first == "delete" else first
        cidr = self._cidr(d, net)
        tree = v4 if cidr.family == 4 else v6
        length = bin(cidr.mask).count("1")
        if first == "delete":
            if not tree.delete(cidr.addr, length):
                self.cc.warn(d, f'no network "{net}" to delete')
            return
        self._insert(tree, cidr.addr, length, _entry(value, net, d), d)

    def _insert(self, tree: Radix, key: int, length: int, entry: Entry, d: Directive) -> None:
        """`ngx_http_geo_cidr_add`: a second value for a network replaces the first, with a
        warning naming the value nginx finds for the network's first address."""
        if not tree.insert(key, length, entry):
            old = tree.find(key)
            assert old is not None
            self.cc.warn(d, f'duplicate network "{entry.net}", value: "{_s(entry.value)}", '
                            f'old value: "{_s(old.value)}"')
            tree.delete(key, length)
            tree.insert(key, length, entry)

    def _range(self, d: Directive, first: str, value: str) -> None:
        """`ngx_http_geo_range`: `default`, `delete a-b` or `a-b value`."""
        if first == "default":
            entry = _entry(value, "default", d)
            if self.default is not None:
                self.cc.warn(d, f'duplicate default geo range value: "{value}", '
                                f'old value: "{_s(self.default.value)}"')
            self.default = entry
            return
        net = value if first == "delete" else first
        raw = net.encode("utf-8", "surrogateescape")
        dash = raw.find(b"-")
        start = inet_addr(raw[:dash]) if dash >= 0 else None
        end = inet_addr(raw[dash + 1 :]) if start is not None else None
        if start is None or end is None or start > end:
            raise error(d, f'invalid range "{net}"')
        if first == "delete":
            if not self.fragments.delete(start, end):
                self.cc.warn(d, f'no address range "{net}" to delete')
            return
        warnings: list[str] = []
        failure = self.fragments.add(start, end, _entry(value, net, d), warnings)
        for w in warnings:
            self.cc.warn(d, w)
        if failure is not None:
            raise error(d, failure)

    def finish(self) -> None:
        """The end of `ngx_http_geo_block`: the tables requests search. Without a default,
        the value is "" (nginx inserts an empty value for 0.0.0.0/0 and ::/0 if unset)."""
        geo = self.geo
        none = _entry("", "no default", geo.d)
        geo.proxies = tuple(self.proxies)
        if self.ranges:
            geo.v4 = self.fragments.intervals(self.default or none)
            return
        v4, v6 = self.trees or (Radix(32), Radix(128))
        for tree in (v4, v6):
            tree.insert(0, 0, none)
        geo.v4, geo.v6 = v4.intervals(), v6.intervals()


def _entry(value: str, net: str, d: Directive) -> Entry:
    return Entry(value.encode("utf-8", "surrogateescape"), net, d.file, d.line)


def _geo(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_geo_block`: define the variable, then read the block into its tables."""
    name = variable_name(d, d.args[0])
    source = None
    if len(d.args) == 2:
        source = cc.variables.ref(name, d)
        name = variable_name(d, d.args[1])
    geo = Geo(name.lower(), d, source)
    var = cc.variables.define(name, _getter(geo), d, replace=True)
    cc.state.setdefault("geo", {})[geo.name] = geo  # Plan.modules_state["geo"]: for address sweeps
    reader = _Reader(geo, cc)
    for line in d.block or ():
        reader.line(line)
    reader.finish()
    var.client_leaf = _leaf(geo)


def _leaf(geo: Geo) -> ClientInput | None:
    """The value as a function of the client alone (`Variable.client_leaf`), when it is one:
    the getter's lookup without X-Forwarded-For, from the address or a client input."""
    if geo.proxies:
        return None
    if geo.source is None:
        v4 = geo.v4

        def value(client: Peer, text: bytes, port: int) -> bytes:
            if type(client) is IPv4Address:  # the usual client: `find` without its dispatch
                return v4.find(client._ip).value  # type: ignore[attr-defined]
            return geo.find(client).value

        return value
    source = CLIENT_INPUTS.get(geo.source.name)
    if source is None:
        return None
    return lambda client, text, port: geo.find(parse_addr(source(client, text, port))).value


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


COMMANDS = (Command(DirectiveSpec("geo", HTTP_MAIN, BLOCK | TAKE12, Merge.LOCAL), _geo),)

MODULE = Module("ngx_http_geo_module", COMMANDS)
