"""The checks nginx applies to every directive before its handler runs (ngx_conf_handler).

Given a directive tree and the directive tables (our modules' `DirectiveSpec`s over the stock
table of `nginxsim.conf.stock`), report what `nginx -t` reports, at the same file:line:

- ``unknown directive "x"``
- ``"x" directive is not allowed here`` (no command of that name for this context)
- ``directive "x" is not terminated by ";"`` / ``directive "x" has no opening "{"``
- ``invalid number of arguments in "x" directive``
- ``"http" directive is duplicate`` (and events, stream, mail: their block handlers refuse a second)
- ``no "events" section in configuration`` (ngx_event_init_conf, once the whole file is read)

Contexts follow the block handlers: ``if`` inside a server is NGX_HTTP_SIF_CONF and inside a
location NGX_HTTP_LIF_CONF, ``limit_except`` is NGX_HTTP_LMT_CONF. The lines of custom-parsed
blocks (map, geo, types...) are data, not directives, and are not checked here; neither are the
contents of a directive that failed, which nginx never reaches.

What a directive's handler checks (its values, a repeated ``root``...) belongs to the module that
owns it. Which directives exist at all is the stock table's decision (see `nginxsim.conf.stock`:
nginx 1.22.1 with Debian's modules; NGINX Plus and third-party modules are unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from types import MappingProxyType
from typing import TypeAlias

from nginxsim.conf.directive import Directive
from nginxsim.conf.reader import ConfTree, ReadError, read
from nginxsim.conf.spec import (
    ANY,
    BLOCK,
    EVENTS,
    FLAG,
    HTTP_LIF,
    HTTP_LMT,
    HTTP_LOC,
    HTTP_MAIN,
    HTTP_SIF,
    HTTP_SRV,
    HTTP_UPS,
    MAIN,
    ONEMORE,
    TWOMORE,
    DirectiveSpec,
)
from nginxsim.conf.stock import MAIL_MAIN, MAIL_SRV, STOCK_SPECS, STREAM_MAIN, STREAM_SRV, STREAM_UPS
from nginxsim.errors import ConfigError

Specs: TypeAlias = Mapping[str, DirectiveSpec | Sequence[DirectiveSpec]]
"""Our modules' tables: one spec per name, or several when modules share a name (``server``)."""

NGX_CONF_MAX_ARGS = 8  # counting the name
_ARG_BITS = 0xFFFF  # below the context bits

# The context a block handler sets for its content (cf->cmd_type), by enclosing context and name.
_CHILD_CONTEXT: Mapping[tuple[int, str], int] = {
    (MAIN, "events"): EVENTS,  # ngx_events_block
    (MAIN, "http"): HTTP_MAIN,  # ngx_http_block
    (MAIN, "stream"): STREAM_MAIN,
    (MAIN, "mail"): MAIL_MAIN,
    (HTTP_MAIN, "server"): HTTP_SRV,  # ngx_http_core_server
    (HTTP_MAIN, "upstream"): HTTP_UPS,  # ngx_http_upstream
    (HTTP_SRV, "location"): HTTP_LOC,  # ngx_http_core_location
    (HTTP_LOC, "location"): HTTP_LOC,
    (HTTP_SRV, "if"): HTTP_SIF,  # ngx_http_rewrite_if
    (HTTP_LOC, "if"): HTTP_LIF,
    (HTTP_LOC, "limit_except"): HTTP_LMT,  # ngx_http_core_limit_except
    (STREAM_MAIN, "server"): STREAM_SRV,
    (STREAM_MAIN, "upstream"): STREAM_UPS,
    (MAIL_MAIN, "server"): MAIL_SRV,
}


# Top-level blocks whose handler refuses a second one (ngx_events_block, ngx_http_block...).
_ONCE = frozenset({"events", "http", "stream", "mail"})


def _table(specs: Specs) -> Mapping[str, tuple[int, ...]]:
    """Stock masks with ours laid over them: ours win in the contexts they declare."""
    if not specs:
        return STOCK_SPECS
    table = dict(STOCK_SPECS)
    for name, given in specs.items():
        own = [given] if isinstance(given, DirectiveSpec) else list(given)
        covered = 0
        for spec in own:
            covered |= spec.contexts
        stock = [m for m in table.get(name, ()) if not m & covered & ~_ARG_BITS]
        table[name] = (*(s.contexts | s.args for s in own), *stock)
    return table


def _args_ok(mask: int, n: int) -> bool:
    """The argument-count test of ngx_conf_handler (`n` excludes the name)."""
    if mask & ANY:
        return True
    if mask & FLAG:
        return n == 1
    if mask & ONEMORE:
        return n >= 1
    if mask & TWOMORE:
        return n >= 2
    return n < NGX_CONF_MAX_ARGS and bool(mask & (1 << n))  # NGX_CONF_NOARGS, TAKE1..TAKE7


def _problem(d: Directive, context: int, masks: tuple[int, ...]) -> str | None:
    """ngx_conf_handler for one directive: the first command of that name allowed here decides."""
    if not masks:
        return f'unknown directive "{d.name}"'
    for mask in masks:
        if not mask & context:
            continue
        if d.block is not None and not mask & BLOCK:
            return f'directive "{d.name}" is not terminated by ";"'
        if d.block is None and mask & BLOCK:
            return f'directive "{d.name}" has no opening "{{"'
        if not _args_ok(mask, len(d.args)):
            return f'invalid number of arguments in "{d.name}" directive'
        return None
    return f'"{d.name}" directive is not allowed here'


def _failures(
    block: Iterable[Directive], context: int, table: Mapping[str, tuple[int, ...]]
) -> Iterator[tuple[Directive, ConfigError]]:
    """Failed directives and their errors in config order; a block is entered only when its
    directive passed."""
    seen: set[str] = set()
    for d in block:
        problem = _problem(d, context, table.get(d.name, ()))
        if problem is None and context == MAIN and d.name in _ONCE:
            problem = f'"{d.name}" directive is duplicate' if d.name in seen else None
            seen.add(d.name)
        if problem is not None:
            yield d, ConfigError(problem, d.file, d.line)
        elif d.block is not None and (inner := _CHILD_CONTEXT.get((context, d.name))) is not None:
            yield from _failures(d.block, inner, table)


def _directive_errors(
    block: Iterable[Directive], context: int, table: Mapping[str, tuple[int, ...]]
) -> Iterator[ConfigError]:
    return (e for _, e in _failures(block, context, table))


def failures(tree: ConfTree, specs: Specs) -> list[tuple[Directive, ConfigError]]:
    """Every directive that fails the generic checks, with its error, in config order.

    For `nginxsim lint`, which reads on past them: nginx never runs such a directive's handler.
    """
    return list(_failures(tree.directives, MAIN, _table(specs)))


def missing_events(tree: ConfTree) -> ConfigError | None:
    """`ngx_event_init_conf`'s refusal, checked once the whole configuration is read."""
    if any(d.name == "events" for d in tree.directives):
        return None
    return ConfigError('no "events" section in configuration')


def _first_or_all(errors: Iterator[ConfigError], collect: bool) -> list[ConfigError]:
    if collect:
        return list(errors)
    first = next(errors, None)
    return [] if first is None else [first]


def validate(tree: ConfTree, specs: Specs, *, collect: bool = False) -> list[ConfigError]:
    """The generic checks nginx makes on a config it has read, first error only unless `collect`.

    `specs` override the stock table for the contexts they declare (a name's stock commands for
    other contexts, e.g. stream's ``server``, stay).
    """
    errors = _directive_errors(tree.directives, MAIN, _table(specs))
    no_events = missing_events(tree)
    if no_events is not None:
        errors = chain(errors, [no_events])
    return _first_or_all(errors, collect)


def check(
    path: str | None = None,
    *,
    text: str | None = None,
    files: Mapping[str, str] | None = None,
    prefix: str | None = None,
    specs: Specs = MappingProxyType({}),
    collect: bool = False,
) -> tuple[ConfTree, list[ConfigError]]:
    """`read` then `validate`, with errors in the order `nginx -t` meets them.

    nginx checks each directive as soon as it has read it, so when reading fails the directives
    read before the failure are checked first; the tree returned is then the part read (see
    `ReadError.partial`) and the read error is the last error.
    """
    try:
        tree = read(path, text=text, files=files, prefix=prefix)
    except ReadError as e:
        errors = _directive_errors(e.partial.directives, MAIN, _table(specs))
        return e.partial, _first_or_all(chain(errors, [e]), collect)
    return tree, validate(tree, specs, collect=collect)
