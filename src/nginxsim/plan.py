"""Compiling: the directive tree becomes a Plan once per config (`ngx_http_block` and its merges).

The `Compiler` walks the tree, hands every directive to its module's handler, then merges each
level with the enclosing one by the directive's rule (`merge_loc_conf`), and finally builds the
lookup structures requests use: listen addresses with their server-name tables, and per-server
location trees. Requests never see directives, only the Plan's objects.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .conf import ConfTree, spec
from .conf.directive import Directive
from .conf.spec import Merge
from .decision import Place
from .errors import ConfigError
from .http.files import Entry, Files, RealFiles, VirtualFiles
from .http.script import Complex, compile_complex
from .http.variables import VariableTable, register_builtins
from .modules.base import Command, Module
from .regex import Regex, RegexError, compile_regex

# ---------------------------------------------------------------------------------------------
# Levels: one per context block while compiling.


class Level:
    """A context block (http, server, location, if, limit_except) and the values set in it."""

    __slots__ = ("kind", "parent", "directive", "values", "merged", "owner", "unsimulated")

    def __init__(self, kind: str, parent: Level | None, directive: Directive | None, owner: Any = None) -> None:
        self.kind = kind
        self.parent = parent
        self.directive = directive
        self.values: dict[str, Any] = {}
        self.merged: dict[str, Any] = {}
        self.owner = owner
        self.unsimulated: list[Directive] = []

    def find(self, kind: str) -> Level | None:
        level: Level | None = self
        while level is not None and level.kind != kind:
            level = level.parent
        return level


# ---------------------------------------------------------------------------------------------
# Runtime objects of the Plan.


class LocationConf:
    """A location (or the server-level "null" location, an `if` block, a `limit_except` block).

    `conf` holds the merged directive values this block runs with; `script` is its own list of
    rewrite-module operations (never inherited); `handler` its content handler (proxy_pass...).
    """

    __slots__ = (
        "kind", "name", "name_b", "regex", "file", "line", "level", "parent", "server",
        "conf", "script", "handler", "auto_redirect", "internal",
        "static", "regexes", "named", "limit_except", "unsimulated", "unsimulated_names", "place",
    )

    def __init__(self, kind: str, name: str, d: Directive | None, level: Level, parent: LocationConf | None) -> None:
        self.kind = kind  # server | exact | prefix | noregex | regex | iregex | named | if | limit_except
        self.name = name
        self.name_b = name.encode("utf-8", "surrogateescape")
        self.regex: Regex | None = None
        self.file = d.file if d else None
        self.line = d.line if d else None
        self.level = level
        self.parent = parent
        self.server: ServerConf = None  # type: ignore[assignment]
        self.conf: dict[str, Any] = {}
        self.script: tuple[Any, ...] = ()
        self.handler: Any = None
        self.auto_redirect = False
        self.internal = False
        self.static: list[LocationConf] = []  # exact/prefix/^~ children, config order
        self.regexes: list[LocationConf] = []  # regex children, config order
        self.named: dict[str, LocationConf] = {}
        self.limit_except: tuple[frozenset[bytes], LocationConf] | None = None
        self.unsimulated: tuple[Directive, ...] = ()
        self.unsimulated_names: tuple[str, ...] = ()
        self.place: Place = None  # type: ignore[assignment]  # set by build_plan

    @property
    def label(self) -> str:
        """How nginx users write it: `location ~* \\.php$`, `location = /x`, `server`."""
        mod = {"exact": "= ", "noregex": "^~ ", "regex": "~ ", "iregex": "~* "}.get(self.kind, "")
        if self.kind == "server":
            return "(server level, no location)"
        if self.kind in ("if", "limit_except"):
            return f"{self.kind} {self.name}"
        return f"location {mod}{self.name}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""


@dataclass(eq=False)
class Listen:
    """A `listen` as parsed by `ngx_http_core_listen`: address (None = wildcard) and port."""

    addr: Any  # ipaddress.IPv4Address | IPv6Address | None (wildcard) | str ("unix:/path")
    port: int
    default_server: bool
    ssl: bool
    directive: Directive | None

    @property
    def text(self) -> str:
        if isinstance(self.addr, str):
            return self.addr
        if self.addr is None:
            return f"*:{self.port}"
        if self.addr.version == 6:
            return f"[{self.addr}]:{self.port}"
        return f"{self.addr}:{self.port}"


class ServerConf:
    """A `server {}` block: its names, listens and its server-level location."""

    __slots__ = ("file", "line", "names", "server_name", "listens", "loc", "index", "place")

    def __init__(self, d: Directive, index: int) -> None:
        self.file = d.file
        self.line = d.line
        self.names: list[tuple[str, Directive | None, Regex | None]] = []
        self.server_name = b""
        self.listens: list[Listen] = []
        self.loc: LocationConf = None  # type: ignore[assignment]
        self.index = index
        self.place: Place = None  # type: ignore[assignment]  # set by build_plan

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def label(self) -> str:
        names = " ".join(n for n, _, _ in self.names) or '""'
        return f"server {names}"


@dataclass
class Plan:
    """The compiled config: immutable once built, shared by every request."""

    tree: ConfTree
    variables: VariableTable
    variable_count: int
    addresses: dict[int, Any]  # port -> servers.PortTable
    servers: list[ServerConf]
    upstreams: dict[str, Any]
    hostname: bytes
    post_read: tuple[Any, ...] = ()
    preaccess: tuple[Any, ...] = ()
    access: tuple[Any, ...] = ()
    precontent: tuple[Any, ...] = ()
    header_filters: tuple[Any, ...] = ()
    warnings: tuple[str, ...] = ()
    modules_state: dict[str, Any] = field(default_factory=dict)
    files: Files = field(default_factory=RealFiles)  # what stat and realpath answer
    # Memo of the location search, a pure function of (server, $uri): see engine._find_config.
    location_memo: dict[tuple[int, bytes, bool], Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The compiler.


@dataclass
class Collect:
    """A compile that records errors and goes on (`nginxsim lint`) instead of raising the first.

    `skip`: ids of directives that failed nginx's generic checks (their handlers never run).
    `errors`: each with the last directive read when nginx meets it, None for the checks made
    once the http block is read. A directive's handler that fails stops only that directive.
    """

    skip: frozenset[int]
    errors: list[tuple[ConfigError, Directive | None]] = field(default_factory=list)


class Compiler:
    """Walks the directive tree once, dispatching to module handlers (`ngx_conf_parse`)."""

    def __init__(self, tree: ConfTree, modules: Sequence[Module], collect: Collect | None = None) -> None:
        self.tree = tree
        self.collect = collect
        self.position: Directive | None = None  # the directive being read, or the last one read inside it
        self._walked: Iterable[Directive] | None = None  # the block just walked, if nothing was entered since
        self.commands: dict[str, list[Command]] = {}
        for m in modules:
            for c in m.commands:
                self.commands.setdefault(c.name, []).append(c)
        self.local_slots = {c.slot or c.name for m in modules for c in m.commands if c.merge is Merge.LOCAL}
        self.local_slots.update(s for m in modules for s in m.local_slots)
        self.variables = VariableTable()
        register_builtins(self.variables)
        self.servers: list[ServerConf] = []
        self.upstreams: dict[str, Any] = {}
        self.http_level: Level | None = None
        self.state: dict[str, Any] = {}  # per-module compile state (e.g. implicit upstream groups)
        self.warnings: list[str] = []  # what `nginx -t` prints as [warn], in reading order
        self.complexes: list[Complex] = []  # strings with variables, settled once all are known
        self.hostname = socket.gethostname().lower().encode()
        self.modules = tuple(modules)
        for m in modules:
            for name, getter, cacheable in m.variables:
                self.variables.builtin(name, getter, cacheable=cacheable)

    # -- walking -------------------------------------------------------------------------------
    def locations(self) -> Iterator[LocationConf]:
        """Every location of every server (nested, regex and named ones), then the `if` and
        `limit_except` blocks, which nginx also treats as locations: for `Module.finish` work
        done once per location."""

        def walk(loc: LocationConf) -> Iterator[LocationConf]:
            yield loc
            for child in (*loc.static, *loc.regexes, *loc.named.values()):
                yield from walk(child)

        for server in self.servers:
            yield from walk(server.loc)
        for key in ("if_blocks", "limit_except_blocks"):
            yield from self.state.get(key, ())

    def block(self, directives: Iterable[Directive], level: Level) -> None:
        for d in directives:
            self.directive(d, level)
        self._walked = directives

    def directive(self, d: Directive, level: Level) -> None:
        bit = LEVEL_CONTEXT[level.kind] if level.kind != "if" else _if_bit(level)
        cmd = next((c for c in self.commands.get(d.name, ()) if c.spec.contexts & bit), None)
        if self.collect is not None:
            self.position, self._walked = d, None
        if cmd is None:
            level.unsimulated.append(d)
        elif self.collect is None:
            self._handle(cmd, d, level)
        elif id(d) not in self.collect.skip:
            self._handle_collecting(cmd, d, level, self.collect)

    def _handle(self, cmd: Command, d: Directive, level: Level) -> None:
        value = cmd.handler(d, level, self) if cmd.handler is not None else d
        if value is not None:
            self.store(level, cmd, d, value)

    def _handle_collecting(self, cmd: Command, d: Directive, level: Level, collect: Collect) -> None:
        """`_handle`, recording its error. What a block's handler finds once the block is walked
        is dropped when the block was cut short by a read error (nginx never gets back to the
        handler) or its content had errors (nginx stops there; a fix would change the verdict)."""
        before = len(collect.errors)
        try:
            self._handle(cmd, d, level)
        except ConfigError as e:
            closing = d.block is not None and self._walked is d.block
            if not closing or (d.end_line is not None and len(collect.errors) == before
                               and not _any_skipped(d.block or (), collect.skip)):
                collect.errors.append((e, self.position))
        except Exception:
            if not collect.errors:
                raise
            # a state only earlier errors explain (nginx stops at the first): nothing to report

    def failed_after_walk(self, e: ConfigError) -> None:
        """One of several checks made once the http block is read failed: raise, or when
        collecting record it and let the step check the rest."""
        if self.collect is None:
            raise e
        self.collect.errors.append((e, None))

    @contextmanager
    def after_walk(self) -> Iterator[None]:
        """A check nginx makes once the http block is read; collecting, its error is recorded
        and the next check runs."""
        if self.collect is None:
            yield
            return
        try:
            yield
        except ConfigError as e:
            self.collect.errors.append((e, None))

    def store(self, level: Level, cmd: Command, d: Directive, value: Any) -> None:
        slot = cmd.slot or cmd.name
        if cmd.merge is Merge.VALUE:
            if slot in level.values:
                raise ConfigError(f'"{d.name}" directive is duplicate', d.file, d.line)
            level.values[slot] = value
        else:
            level.values.setdefault(slot, []).append(value)

    # -- helpers for module handlers --------------------------------------------------------------
    def complex(self, text: str, d: Directive) -> Complex:
        c = compile_complex(text, self.variables, d)
        if c.const is None:
            self.complexes.append(c)
        return c

    def warn(self, d: Directive, message: str) -> None:
        """A `[warn]` nginx logs while reading `d` (`ngx_conf_log_error(NGX_LOG_WARN, ...)`)."""
        self.warnings.append(f"{message} in {d.file}:{d.line}")

    def regex(self, source: str, caseless: bool, d: Directive) -> Regex:
        """`ngx_http_regex_compile`: compile, and declare a variable for every named capture."""
        try:
            rx = compile_regex(source, caseless=caseless)
        except RegexError as e:
            raise ConfigError(e.message, d.file, d.line) from None
        for name in rx.names:
            self.variables.define(name, None, d, duplicate_ok=True)
        return rx

    def merge(self, level: Level) -> None:
        """`merge_loc_conf`: inherit every non-local slot this level does not set itself."""
        parent = level.parent.merged if level.parent is not None else {}
        merged = {k: v for k, v in parent.items() if k not in level.values and self._inherits(k)}
        merged.update(level.values)
        level.merged = merged

    def _inherits(self, slot: str) -> bool:
        return slot not in self.local_slots


LEVEL_CONTEXT = {
    "main": spec.MAIN, "http": spec.HTTP_MAIN, "server": spec.HTTP_SRV, "location": spec.HTTP_LOC,
    "limit_except": spec.HTTP_LMT, "upstream": spec.HTTP_UPS,
}


def _any_skipped(block: tuple[Directive, ...], skip: frozenset[int]) -> bool:
    return any(id(d) in skip or _any_skipped(d.block or (), skip) for d in block)


def _if_bit(level: Level) -> int:
    return spec.HTTP_SIF if level.parent is not None and level.parent.kind == "server" else spec.HTTP_LIF


def error(d: Directive, message: str) -> ConfigError:
    return ConfigError(message, d.file, d.line)


def variable_name(d: Directive, text: str) -> str:
    """The `$name` a block directive defines (`ngx_http_map_block`, `ngx_http_geo_block`...):
    it must start with `$`, and `$` alone fails in `ngx_http_add_variable`."""
    if not text.startswith("$"):
        raise error(d, f'invalid variable name "{text}"')
    if text == "$":
        raise error(d, 'invalid variable name "$"')
    return text[1:]


# ---------------------------------------------------------------------------------------------
# From the walked tree to the Plan.


def build_plan(tree: ConfTree, modules: Sequence[Module], inert: frozenset[str],
               fs: Mapping[str, Entry] | None = None, collect: Collect | None = None) -> Plan:
    """Compile a read (and validated) tree: walk, merge every level, build the lookup tables.
    `fs`: a virtual file tree (relative paths under the prefix) instead of the real one.
    `collect`: record errors in it and go on (the Plan is then only good for its warnings)."""
    from .http.servers import build_addresses

    cc = Compiler(tree, modules, collect)
    main = Level("main", None, None)
    cc.block(tree.directives, main)
    if cc.http_level is not None:
        cc.merge(cc.http_level)
    for server in cc.servers:
        _finish_location(cc, server.loc, inert)
        server.server_name = _primary_name(server)
        server.place = Place(server.label, server.server_name.decode("utf-8", "surrogateescape"),
                             server.file, server.line, "server")
    for key in ("if_blocks", "limit_except_blocks"):
        for block in cc.state.get(key, []):
            _finish_location(cc, block, inert)
    for m in modules:
        if m.finish is not None:
            with cc.after_walk():
                m.finish(cc)
    with cc.after_walk():
        cc.variables.freeze()
        for c in cc.complexes:
            c.settle()
    warnings = list(cc.warnings)
    addresses: dict[int, Any] = {}
    with cc.after_walk():
        addresses = build_addresses(cc.servers, warnings, cc.failed_after_walk)
    return Plan(
        tree=tree,
        variables=cc.variables,
        variable_count=len(cc.variables.by_name),
        addresses=addresses,
        servers=cc.servers,
        upstreams=cc.upstreams,
        hostname=cc.hostname,
        post_read=tuple(m.post_read for m in modules if m.post_read is not None),
        preaccess=tuple(m.preaccess for m in modules if m.preaccess is not None),
        access=tuple(m.access for m in modules if m.access is not None),
        precontent=tuple(m.precontent for m in modules if m.precontent is not None),
        header_filters=tuple(m.header_filter for m in modules if m.header_filter is not None),
        warnings=tuple(warnings),
        modules_state=dict(cc.state),
        files=RealFiles() if fs is None else VirtualFiles(fs, tree.prefix),
    )


def _finish_location(cc: Compiler, loc: LocationConf, inert: frozenset[str]) -> None:
    """Merge a location with its enclosing level and fix what requests read from it."""
    level = loc.level
    cc.merge(level)
    loc.conf = level.merged
    loc.script = tuple(level.values.get("rewrite:script", ()))
    loc.handler = level.values.get("content:handler")
    loc.internal = bool(loc.conf.get("internal", False))
    seen: dict[str, Directive] = {}
    lvl: Level | None = level
    while lvl is not None:
        for d in lvl.unsimulated:
            if d.name not in inert:
                seen.setdefault(d.name, d)
        lvl = lvl.parent
    loc.unsimulated = tuple(seen.values())
    loc.unsimulated_names = tuple(sorted(seen))
    owner = loc
    while owner.kind in ("if", "limit_except") and owner.parent is not None:
        owner = owner.parent
    loc.place = Place(owner.label, owner.name, owner.file, owner.line, owner.kind)
    for child in (*loc.static, *loc.regexes, *loc.named.values()):
        _finish_location(cc, child, inert)


def _primary_name(server: ServerConf) -> bytes:
    """`$server_name`: the first name; regexes keep their '~', a leading '.' is dropped."""
    if not server.names:
        return b""
    name = server.names[0][0]
    if name.startswith("."):
        name = name[1:]
    return name.encode("utf-8", "surrogateescape")
