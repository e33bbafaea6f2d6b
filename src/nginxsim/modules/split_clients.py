"""`ngx_http_split_clients_module`: `split_clients "key" $var { 0.5% a; 2% b; * c; }`.

The key is hashed with MurmurHash2 and the hash space [0, 2^32) is cut into consecutive parts,
one per percentage. nginx computes each part's upper bound once, flooring per part
(`last += percent * 0xffffffff / 10000`), and a request takes the first part whose bound is
above its hash; `*` takes everything left. Hashes above the last bound get "" when the parts
sum to less than 100% and, in 1.22.1, also when explicit parts sum to exactly 100% (the per-part
flooring leaves the top few thousand hashes uncovered; nginx 1.31.2 made that last part a
catch-all).

Everything is computed at config time: a request hashes the key and bisects a sorted tuple.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from ..conf.directive import Directive
from ..conf.spec import BLOCK, HTTP_MAIN, TAKE2, DirectiveSpec, Merge
from ..errors import ConfigError
from ..hashing import murmurhash2, murmurhash2_raw
from ..http.context import Context
from ..http.script import Complex, NoBufferSpace
from ..http.variables import CLIENT_INPUTS, ClientInput, IPAddress
from ..plan import Compiler, Level, error, variable_name
from .base import Command, Module

HASH_SPACE = 1 << 32
_U32 = HASH_SPACE - 1
_WHOLE = 10000  # 100% in nginx's unit, hundredths of a percent
_INT_MAX = (1 << 63) - 1  # NGX_MAX_INT_T_VALUE on 64-bit Linux


def parse_fixed_point(text: str, point: int) -> int | None:
    """`ngx_atofp(text, len, point)`: a decimal with at most `point` fractional digits, scaled by
    10**point; None where nginx returns NGX_ERROR (empty, a sign, a second dot, a digit too many,
    overflow of a 64-bit signed integer)."""
    if not text:
        return None
    value, dot = 0, False
    for ch in text:
        if point == 0:
            return None
        if ch == ".":
            if dot:
                return None
            dot = True
            continue
        if not "0" <= ch <= "9":
            return None
        value = value * 10 + ord(ch) - 48
        if value > _INT_MAX:
            return None
        point -= dot
    value *= 10**point
    return None if value > _INT_MAX else value


@dataclass(frozen=True, slots=True)
class Part:
    """One line of the block. `percent` is what nginx stores from it (hundredths of a percent,
    already truncated to 32 bits; 0 for `*`); the part owns the hashes in [lo, hi) (lo == hi when
    earlier parts cover its range); `line` is where it is written."""

    percent: int
    value: bytes
    lo: int
    hi: int
    file: str
    line: int

    @property
    def share(self) -> float:
        """The exact fraction of the 2^32 hash space this part receives."""
        return (self.hi - self.lo) / HASH_SPACE


@dataclass(frozen=True, slots=True)
class SplitClients:
    """A compiled `split_clients` block.

    `bounds` are nginx's per-part boundaries as `ngx_conf_split_clients_block` leaves them in
    `part[i].percent` (0 for `*`); `edges` are the distinct increasing upper bounds that can be
    reached, `edge_parts` the part owning each, `rest` the part taking hashes past the last edge
    (the first `*`, or None: ""). `unassigned` is the size of the hash range that gets "".
    """

    key: Complex
    name: str
    parts: tuple[Part, ...]
    bounds: tuple[int, ...]
    edges: tuple[int, ...]
    edge_parts: tuple[Part, ...]
    rest: Part | None
    d: Directive

    @property
    def unassigned(self) -> int:
        return 0 if self.rest is not None else HASH_SPACE - (self.edges[-1] if self.edges else 0)

    def part_for(self, key: bytes) -> tuple[int, Part | None]:
        """`ngx_http_split_clients_variable`'s loop: the hash and the first part whose bound is
        above it (or the catch-all); None when no part takes it (the value is "")."""
        h = murmurhash2(key)
        i = bisect_right(self.edges, h)
        return h, self.edge_parts[i] if i < len(self.edge_parts) else self.rest

    def get(self, r: Context) -> bytes | None:
        """The variable's getter: evaluate the key, hash it, pick the part ("" if the key fails)."""
        try:
            key = self.key.eval(r)
        except NoBufferSpace as e:
            r.notes.append(f"{e.message}: ${self.name} is empty")
            return b""
        h, part = self.part_for(key)
        if r.trace.enabled:
            where = part if part is not None else self.d
            r.trace.later("variable", self._step, (key, h, part), where.file, where.line)
        return part.value if part is not None else b""

    def leaf(self) -> ClientInput | None:
        """The value as a function of the client alone (`Variable.client_leaf`), when the key
        is made of client inputs and text only: the getter's steps without a request."""
        if self.key.has_captures or not all(v.name in CLIENT_INPUTS for v in self.key.variables):
            return None
        pieces = [p if isinstance(p, bytes) else CLIENT_INPUTS[p.name] for p in self.key.pieces()]
        edges = self.edges
        values = [p.value for p in self.edge_parts] + [self.rest.value if self.rest is not None else b""]
        inputs = [i for i, p in enumerate(pieces) if not isinstance(p, bytes)]
        if len(inputs) == 1 and pieces[inputs[0]] is CLIENT_INPUTS["remote_addr"]:  # the usual key
            before, after = b"".join(pieces[: inputs[0]]), b"".join(pieces[inputs[0] + 1 :])  # type: ignore[arg-type]
            return lambda client, text, port: values[bisect_right(edges, murmurhash2_raw(before + text + after, 0))]

        def value(client: IPAddress | None, text: bytes, port: int) -> bytes:
            key = b"".join([p if isinstance(p, bytes) else p(client, text, port) for p in pieces])
            return values[bisect_right(edges, murmurhash2(key))]

        return value

    def _step(self, key: bytes, h: int, part: Part | None) -> tuple[str, str]:
        what = f'split_clients "{self.key.source}" = "{_text(key)}"'
        if part is None:
            top = self.edges[-1] if self.edges else 0
            return what, f'"" (hash {h} in [{top}, {HASH_SPACE}): no part)'
        value = _text(part.value) or '""'
        return what, f"{value} (hash {h} in [{part.lo}, {part.hi}))"


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _lines(d: Directive) -> list[tuple[str, bytes, Directive]]:
    """`ngx_http_split_clients` per line: (percent token, value, line). A line with a single
    token reads `value[1]` from nginx's reused argument array: the second word of the latest
    statement that had one (at worst the block's own key argument)."""
    stale = d.args[0]
    out = []
    for line in d.block or ():
        if line.args:
            stale = line.args[0]
        out.append((line.name, stale.encode("utf-8", "surrogateescape"), line))
    return out


def _split_clients(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_conf_split_clients_block` with `ngx_http_split_clients` for each line."""
    key = cc.complex(d.args[0], d)
    var = cc.variables.define(variable_name(d, d.args[1]), None, d, replace=True)
    percents: list[tuple[int, bytes, Directive]] = []
    for token, value, line in _lines(d):
        if token == "*":
            percents.append((0, value, line))
            continue
        n = parse_fixed_point(token[:-1], 2) if token.endswith("%") else None
        if not n:
            raise error(line, f'invalid percent value "{token}"')
        percents.append((n & _U32, value, line))
    bounds: list[int] = []
    total = last = 0
    for p, _, _ in percents:
        total = (total + p) & _U32 if p else _WHOLE
        if total > _WHOLE:  # reported once the block is read: at its "}"
            raise ConfigError("percent total is greater than 100%", d.file, d.end_line or d.line)
        if p:
            last = (last + p * 0xFFFFFFFF // _WHOLE) & _U32
        bounds.append(last if p else 0)
    split = _compile(key, var.name, percents, bounds, d)
    var.getter = split.get
    var.client_leaf = split.leaf()
    cc.state.setdefault("split_clients", []).append(split)


def _compile(key: Complex, name: str, percents: list[tuple[int, bytes, Directive]], bounds: list[int],
             d: Directive) -> SplitClients:
    """Turn nginx's boundaries into disjoint ranges: a part is reached only by hashes at or above
    every earlier bound and below its own, so only bounds that raise the running maximum count
    (they always do, unless absurd percentages wrapped nginx's 32-bit arithmetic)."""
    parts: list[Part] = []
    edges: list[int] = []
    edge_parts: list[Part] = []
    rest: Part | None = None
    top = 0
    for (p, value, line), bound in zip(percents, bounds, strict=True):
        if rest is not None:
            lo = hi = HASH_SPACE
        elif bound == 0:
            lo, hi = top, HASH_SPACE
        else:
            lo, hi = top, max(top, bound)
        part = Part(p, value, lo, hi, line.file, line.line)
        parts.append(part)
        if rest is None and bound == 0:
            rest = part
        elif rest is None and bound > top:
            edges.append(bound)
            edge_parts.append(part)
            top = bound
    return SplitClients(key, name, tuple(parts), tuple(bounds), tuple(edges), tuple(edge_parts), rest, d)


COMMANDS = (
    Command(DirectiveSpec("split_clients", HTTP_MAIN, BLOCK | TAKE2, Merge.LOCAL), _split_clients),
)
MODULE = Module("ngx_http_split_clients_module", COMMANDS)
