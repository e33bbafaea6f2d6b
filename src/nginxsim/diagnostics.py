"""Every error and warning `nginx -t` would print for a config, and more: `lint` reads on past
the first error, where nginx stops.

nginx meets a config's problems in one order: it reads directive by directive, runs each
directive's generic checks (`ngx_conf_handler`) and then its handler, and when the http block
closes it makes the checks that need the whole block (`ngx_http_block`: upstream
initialisation, merges, location trees, variables, server names); the `events` check comes
once everything is read. nginxsim finds the same problems in other passes (validation, the
compile walk, the Plan's tables), so each one is placed back at the point of that reading where
nginx meets it, and the first in that order is exactly what `nginx -t` reports.

What `lint` continues past, and what it then cannot see:

- a directive failing the generic checks: its handler is not run and its block is not entered
  (nor is any block's content whose header failed those checks);
- a directive whose handler fails: the rest of that directive is not checked; a block handler
  that fails before reading its content (a bad `location` regex, a `map` with a bad variable
  name) hides the handler errors inside, not the generic ones;
- the checks made once the http block is read: each step reports its first failure only
  (one unknown variable, one listen conflict);
- a read error (syntax, a missing include) ends everything, as in nginx.

Findings after the first error are nginx's own checks on parts it never reaches
(`Finding.reached` is False): some may be consequences of an earlier error (a failed `map` leaves
its variable unknown).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from .conf import ConfTree, Directive, ReadError, read
from .conf.validate import failures, missing_events
from .config import _SPECS
from .errors import ConfigError
from .modules import INERT, MODULES
from .plan import Collect, build_plan

Severity = Literal["emerg", "warn"]


@dataclass(frozen=True)
class Finding:
    """One line `nginx -t` prints (`[emerg]` or `[warn]`), with nginx's message and location.

    `file`/`line` are None where nginx names none. `reached` is False for what nginx -t never
    gets to because it stops at its first error.
    """

    level: Severity
    message: str
    file: str | None
    line: int | None
    reached: bool = True

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file or "nginx"
        return f"{where}: [{self.level}] {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"level": self.level, "message": self.message, "file": self.file, "line": self.line,
                "reached": self.reached}


def lint(
    path: str | None = None,
    *,
    text: str | None = None,
    files: Mapping[str, str] | None = None,
    prefix: str | None = None,
) -> list[Finding]:
    """Every error and warning of a config (arguments as for `nginxsim.load`), in the order nginx
    meets them; the first error is the one `nginx -t` reports, at the same file:line."""
    found: list[Finding] = []
    reached = True
    for level, e in _ordered(path, text, files, prefix):
        found.append(Finding(level, e.message, e.file, e.line, reached))
        reached = reached and level != "emerg"
    return found


def first_error(
    path: str | None = None,
    *,
    text: str | None = None,
    files: Mapping[str, str] | None = None,
    prefix: str | None = None,
) -> ConfigError | None:
    """The error `nginx -t` reports for this config, None when it has none."""
    return next((e for level, e in _ordered(path, text, files, prefix) if level == "emerg"), None)


def _ordered(
    path: str | None, text: str | None, files: Mapping[str, str] | None, prefix: str | None
) -> list[tuple[Severity, ConfigError]]:
    try:
        tree, read_error = read(path, text=text, files=files, prefix=prefix), None
    except ReadError as e:
        tree, read_error = e.partial, e
    placed = sorted(_placed(tree, read_error), key=lambda p: p[0])
    return [(level, e) for _, level, e in placed]


# --- where nginx meets each problem -----------------------------------------------------------

# A finding's place in nginx's reading: (index of the last directive read, then the step at it:
# 0 generic checks, 1 handler, 2 the checks once the http block is read, 3 after everything).
_Key = tuple[int, int, int]
_GENERIC, _HANDLER, _AFTER_HTTP, _AT_END = range(4)

# Errors nginxsim finds once everything is walked but nginx meets in the handler of the
# directive at the line they name (`ngx_http_add_listen`, `ngx_http_upstream_add`): its name.
_AT_HANDLER = (
    (re.compile(r"a duplicate listen |a duplicate default server for "), re.compile(r"listen$")),
    (re.compile(r'upstream ".*" may not have port '), re.compile(r".*_pass$|upstream$")),
)

# The checks nginx makes once the http block is read, by the step of `ngx_http_block` that makes
# them (init_main_conf and merges, location trees, variables, server names); others are step 0.
_AFTER_HTTP_STEPS = (
    (re.compile(r"duplicate location "), 1),
    (re.compile(r'unknown ".*" variable$'), 2),
    (re.compile(r"invalid server name or wildcard |conflicting server name "), 3),
)


def _placed(tree: ConfTree, read_error: ReadError | None) -> Iterator[tuple[_Key, Severity, ConfigError]]:
    """Every finding with its key; with a read error, nothing after it and no http-block checks
    unless the http block was closed before it."""
    order = _Order(tree)
    generic = failures(tree, _SPECS)
    for d, e in generic:
        yield (order.index[id(d)], _GENERIC, 0), "emerg", e
    collect = Collect(frozenset(id(d) for d, _ in generic))
    warnings: tuple[str, ...] = ()
    try:
        warnings = build_plan(tree, MODULES, INERT, collect=collect).warnings
    except Exception:
        if not generic and not collect.errors:
            raise
        # only earlier errors explain this state (nginx would have stopped at the first)
    http = order.http(collect.skip)
    http_closed = http is not None and http.end_line is not None
    http_end = order.end_of(http) if http is not None else len(order.index)
    for e, position in collect.errors:
        key = order.key(e, position, http_end)
        if read_error is None or key[1] != _AFTER_HTTP or http_closed:
            yield key, "emerg", e
    for w in warnings:
        warning = order.warning(w)
        key = order.key(warning, None, http_end, warning=True)
        if read_error is None or key[1] != _AFTER_HTTP or http_closed:
            yield key, "warn", warning
    end = len(order.index)
    if read_error is not None:
        yield (end, _AT_END, 0), "emerg", read_error
    elif (no_events := missing_events(tree)) is not None:
        yield (end, _AT_END, 0), "emerg", no_events


class _Order:
    """The directives in the order nginx reads them (includes spliced in, blocks depth first)."""

    def __init__(self, tree: ConfTree) -> None:
        self.tree = tree
        self.index: dict[int, int] = {}
        self.at: dict[tuple[str, int], list[Directive]] = {}  # by file:line, in reading order
        for i, d in enumerate(self._walk(tree.directives)):
            self.index[id(d)] = i
            self.at.setdefault((d.file, d.line), []).append(d)

    def _walk(self, block: tuple[Directive, ...]) -> Iterator[Directive]:
        for d in block:
            yield d
            if d.block:
                yield from self._walk(d.block)

    def http(self, skip: frozenset[int]) -> Directive | None:
        """The http block nginx compiles (a second one fails the generic checks)."""
        return next((d for d in self.tree.directives if d.name == "http" and id(d) not in skip), None)

    def end_of(self, d: Directive) -> int:
        return self.index[id(d)] + sum(1 for _ in self._walk(d.block or ()))

    def key(self, e: ConfigError, position: Directive | None, http_end: int, warning: bool = False) -> _Key:
        """Where nginx meets `e`: found by the walk at `position`, else (None) after it; a
        warning is met where it names, if it names a place."""
        for pattern, step in _AFTER_HTTP_STEPS:
            if pattern.match(e.message):
                return http_end, _AFTER_HTTP, step
        if position is not None:
            return self.index[id(position)], _HANDLER, 0
        there = self.at.get((e.file, e.line), []) if e.file and e.line else []
        if there and warning:
            return self.index[id(there[0])], _HANDLER, 0
        for message, name in _AT_HANDLER:
            named = [d for d in there if name.match(d.name)] if message.match(e.message) else []
            if named:
                return self.index[id(named[-1])], _HANDLER, 0
        return http_end, _AFTER_HTTP, 0

    def warning(self, text: str) -> ConfigError:
        """A warning as nginx prints it ("message in file:line" or just "message"), located."""
        for file in self.tree.files:
            head, sep, line = text.rpartition(f" in {file}:")
            if sep and line.isdigit():
                return ConfigError(head, file, int(line))
        return ConfigError(text)

