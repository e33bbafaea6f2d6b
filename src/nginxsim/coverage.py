"""Route coverage: which parts of a config a set of requests exercised.

What exists comes from the compiled Plan: servers, locations (nested and named ones included),
`if` blocks, map entries, geo entries and split_clients parts that some address or key can reach,
and the `server` lines of `upstream {}` groups (those not marked `down`). What a request
exercised comes from its Decision: the server, the locations it ran in (the winner of each
location search, named locations jumped to), the `if` blocks whose condition held, the map, geo
and split_clients lines that gave a variable its value (the trace's `variable` steps), and the
upstream peer it reached.

Items are identified by file:line, so two entries written on one line count as one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .config import Config
from .decision import Decision
from .http.trace import Step
from .modules.map import Wild
from .plan import LocationConf

KINDS = ("servers", "locations", "if blocks", "map entries", "geo entries", "split parts", "upstream peers")
_VARIABLE_KINDS = ("map entries", "geo entries", "split parts")


@dataclass(frozen=True, slots=True)
class Item:
    """One thing a request can exercise: its kind, how it is written, and where."""

    kind: str
    label: str
    file: str | None
    line: int | None
    key: tuple[Any, ...]  # identity: (kind, file, line), or (kind, group, address) for a peer

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "file": self.file, "line": self.line}


def items(cfg: Config) -> list[Item]:
    """Everything of the config that coverage counts, kind by kind in config order."""
    plan = cfg.plan
    out: list[Item] = []
    for server in plan.servers:
        out.append(_at("servers", server.label, server.file, server.line))
    for server in plan.servers:
        out += [_at("locations", loc.label, loc.file, loc.line) for loc in _locations(server.loc)]
    out += [_at("if blocks", block.label, block.file, block.line) for block in plan.modules_state.get("if_blocks", ())]
    for m in plan.modules_state.get("map", ()):
        entries = [*m.exact.values(), *_wild_entries(m.head), *_wild_entries(m.tail), *(rx.entry for rx in m.regexes)]
        if m.default.label == "default":
            entries.append(m.default)
        entries.sort(key=lambda e: e.line)
        out += [_at("map entries", f"map ${m.name}: {e.label}", e.file, e.line) for e in _unique(entries)]
    for geo in plan.modules_state.get("geo", {}).values():
        reachable = [*geo.v4.entries, *(geo.v6.entries if geo.v6 is not None else ())]
        reachable.sort(key=lambda e: e.line)
        out += [_at("geo entries", f"geo ${geo.name}: {e.net}", e.file, e.line) for e in _unique(reachable)]
    for split in plan.modules_state.get("split_clients", ()):
        out += [_at("split parts", _part_label(split.name, p),
                    p.file, p.line) for p in split.parts if p.hi > p.lo]
    for group in plan.upstreams.values():
        if not group.explicit or group.directive is None:
            continue
        lines = [d for d in group.directive.block or () if d.name == "server"]
        for peer, d in zip(group.peers, lines, strict=True):
            if not peer.down:
                out.append(Item("upstream peers", f"upstream {group.name}: server {peer.address}", d.file, d.line,
                                ("upstream peers", group.name.lower(), peer.address)))
    return out


def _at(kind: str, label: str, file: str | None, line: int | None) -> Item:
    return Item(kind, label, file, line, (kind, file, line))


def _locations(level: LocationConf) -> Iterator[LocationConf]:
    for loc in (*level.static, *level.regexes, *level.named.values()):
        yield loc
        yield from _locations(loc)


def _wild_entries(w: Wild | None) -> Iterator[Any]:
    if w is None:
        return
    if w.value is not None:
        yield w.value
    for found, _ in w.labels.values():
        if isinstance(found, Wild):
            yield from _wild_entries(found)
        else:
            yield found


def _unique(entries: Iterable[Any]) -> list[Any]:
    """Once each, by identity (geo's interval tables repeat an entry per interval)."""
    seen: set[int] = set()
    out = []
    for e in entries:
        if id(e) not in seen:
            seen.add(id(e))
            out.append(e)
    return out


def _part_label(name: str, part: Any) -> str:
    percent = "*" if part.percent == 0 else f"{part.percent / 100:g}%"
    return f"split_clients ${name}: {percent} {part.value.decode('utf-8', 'replace')}"


class Coverage:
    """Counts, per item of one config, the requests that exercised it (`add` each decision)."""

    def __init__(self, cfg: Config) -> None:
        self.items = items(cfg)
        self._by_key = {item.key: item for item in self.items}
        self._locations = {item.key for item in self.items if item.kind == "locations"}
        self.hits: Counter[Item] = Counter()

    def add(self, d: Decision, peer: str | None = None) -> None:
        """Count what `d` exercised. `peer` overrides the decision's (a pick made with `rand`).
        Reads the trace, so a decision shared between clients is routed again in full."""
        found: set[tuple[Any, ...]] = set()
        if d.server is not None:
            found.add(("servers", d.server.file, d.server.line))
        if d.location is not None:
            found.add(("locations", d.location.file, d.location.line))
        up = d.upstream
        if up is not None:
            found.add(("upstream peers", up.name.lower(), peer if peer is not None else up.peer))
        d.variables  # noqa: B018 -- variables read by the upstream request add their steps to the trace
        found.update(self._from_trace(d.trace))
        for key in found:
            item = self._by_key.get(key)
            if item is not None:
                self.hits[item] += 1

    def _from_trace(self, steps: Iterable[Step]) -> Iterator[tuple[Any, ...]]:
        chosen: tuple[Any, ...] | None = None  # the winner of the location search under way
        for s in steps:
            if s.phase == "location":
                key = ("locations", s.file, s.line)
                if key in self._locations and s.result != "regex did not match":
                    chosen = key
                continue
            if chosen is not None:
                yield chosen
                chosen = None
            if s.phase == "variable":
                yield from ((kind, s.file, s.line) for kind in _VARIABLE_KINDS)
            elif s.phase == "rewrite" and s.what.startswith("if ") and s.result == "true":
                yield ("if blocks", s.file, s.line)
        if chosen is not None:
            yield chosen

    def counts(self, kind: str | None = None) -> tuple[int, int]:
        """(items exercised, items) of one kind, or of all."""
        chosen = [i for i in self.items if kind is None or i.kind == kind]
        return sum(1 for i in chosen if self.hits[i]), len(chosen)

    def percent(self, kind: str | None = None) -> float:
        """The share exercised, in percent (100 when there is nothing of that kind)."""
        hit, total = self.counts(kind)
        return 100.0 * hit / total if total else 100.0

    def missed(self) -> list[Item]:
        return [i for i in self.items if not self.hits[i]]

    def report(self, missed: bool = False, relative: Callable[[str | None], str] = str) -> str:
        """A table of the kinds (and with `missed`, every item never exercised, with file:line);
        `relative` turns a file name into how it is shown."""
        lines = []
        for kind in (*KINDS, None):
            hit, total = self.counts(kind)
            if total or kind is None:
                lines.append(f"  {kind or 'total':<15} {hit:>4}/{total:<4} {self.percent(kind):6.1f}%")
        if missed and self.missed():
            lines.append("  never exercised:")
            lines += [f"    {i.label}  [{relative(i.file)}:{i.line}]" for i in self.missed()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        kinds = {}
        for kind in KINDS:
            hit, total = self.counts(kind)
            kinds[kind] = {"hit": hit, "total": total, "percent": self.percent(kind)}
        return {"percent": self.percent(), "kinds": kinds, "missed": [i.to_dict() for i in self.missed()]}
