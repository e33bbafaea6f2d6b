"""Per-request state (`ngx_http_request_t`): what the phases read and change.

Created once per `Config.route` call and thrown away after the Decision is built; the Plan it
points to is never modified.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from .files import FOLLOW, SYMLINKS_OFF, FileInfo, Symlinks
from .request import Request
from .variables import UNSET, Variable, remote_addr_text

if TYPE_CHECKING:
    from ..modules.core import DisableSymlinks
    from ..plan import LocationConf, Plan, ServerConf
    from ..regex import Match, Regex
    from .trace import Trace

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URI_CHANGES = 10  # NGX_HTTP_MAX_URI_CHANGES
# nginx's cached time when nothing is pinned: fixed, so unpinned $time_* / $msec are reproducible
DEFAULT_CLOCK = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)
VARIABLE_DEPTH = 100  # ngx_http_variable_depth


class Context:
    """Mutable request state. Attribute names follow nginx's `r->...` fields where one exists."""

    __slots__ = (
        "plan", "request", "trace", "pinned", "clock", "header_map",
        "client", "client_port", "local_addr", "realip_client", "realip_port",
        "server", "host", "request_uri", "quoted_uri",
        "uri", "args", "method", "valid_unparsed_uri", "internal", "uri_changed", "uri_changes",
        "loc", "captures", "slots", "status", "headers_out", "body", "upstream", "error_page_used",
        "notes", "valid_location", "module_state", "addr_conf", "headers_in", "evaluated", "err_status",
        "depth", "volatile", "down",
    )

    def __init__(self, plan: Plan, request: Request, trace: Trace, pinned: dict[str, bytes]) -> None:
        self.plan = plan
        self.request = request
        self.trace = trace
        self.pinned = pinned
        msec = pinned.get("msec")  # a pinned $msec is the request's time: $time_*, expires follow it
        self.clock = DEFAULT_CLOCK if msec is None else _dt.datetime.fromtimestamp(float(msec), _dt.timezone.utc)
        self.header_map: dict[bytes, list[bytes]] = {}
        self.client: IPAddress | None = request.client
        self.client_port = request.client_port
        self.local_addr: IPAddress | None = request.server_addr
        self.realip_client: IPAddress | None = request.client
        self.realip_port = request.client_port
        self.server: ServerConf = None  # type: ignore[assignment]  # set by server selection
        self.host: bytes | None = None
        self.request_uri: bytes | None = None  # $request_uri: not found until the request line is parsed
        self.quoted_uri = False
        self.uri = b"/"
        self.args: bytes | None = None  # None: no args at all (nginx's r->args.data NULL: $args not found)
        self.method = request.method
        self.valid_unparsed_uri = True
        self.internal = False
        self.uri_changed = False
        self.uri_changes = MAX_URI_CHANGES + 1
        self.loc: LocationConf = None  # type: ignore[assignment]
        self.captures: tuple[bytes | None, ...] = ()
        self.slots: list[object] = [UNSET] * plan.variable_count
        self.status: int | None = None
        self.headers_out: list[tuple[str, str]] = []
        self.body: bytes | None = None
        self.upstream: Any = None
        self.error_page_used = False
        self.err_status = 0
        self.notes: list[str] = []
        self.valid_location = True
        self.module_state: dict[str, Any] = {}
        self.addr_conf: Any = None
        self.headers_in: list[tuple[bytes, bytes]] = list(request.headers)
        self.evaluated: list[Variable] = []  # in order of first evaluation, for the Decision
        self.depth = VARIABLE_DEPTH  # ngx_http_variable_depth: getters that may still nest
        self.volatile: dict[int, bytes | None] = {}  # non-cacheable values, until flushed
        self.down: frozenset[str] = frozenset()  # upstream peers the caller asks to treat as down

    def get(self, var: Variable) -> bytes | None:
        """`ngx_http_get_flushed_variable`: cached values stay frozen for the whole request,
        non-cacheable ones are evaluated again."""
        v = self.slots[var.index]
        if v is not UNSET:
            return v  # type: ignore[return-value]
        return self._evaluate(var)

    def get_indexed(self, var: Variable) -> bytes | None:
        """`ngx_http_get_indexed_variable`: a non-cacheable value is kept until flushed (strings
        flush theirs once, before evaluating: `ngx_http_script_flush_complex_value`)."""
        v = self.slots[var.index]
        if v is not UNSET:
            return v  # type: ignore[return-value]
        if var.index in self.volatile:
            return self.volatile[var.index]
        return self._evaluate(var)

    def _evaluate(self, var: Variable) -> bytes | None:
        getter = var.getter
        assert getter is not None
        if not self.depth:  # a variable defined through itself (`map $m $m`)
            note = f'cycle while evaluating variable "{var.name}"'
            if note not in self.notes:
                self.notes.append(note)
            return None
        self.depth -= 1
        try:
            val = getter(self)
        finally:
            self.depth += 1
        if var.cacheable:
            self.slots[var.index] = val
            self.evaluated.append(var)
        else:
            self.volatile[var.index] = val
        return val

    def set(self, var: Variable, value: bytes) -> None:
        if var.setter is not None:
            var.setter(self, value)
        else:
            self.slots[var.index] = value
            self.evaluated.append(var)

    def set_captures(self, regex: Regex, m: Match) -> None:
        """`ngx_http_regex_exec` on a match: numbered captures are request-global, named ones
        are stored in their variables."""
        self.captures = m.captures
        for name, index in regex.name_table:
            var = self.plan.variables.by_name.get(name)
            if var is not None:
                c = m.captures[index]
                self.slots[var.index] = c if c is not None else b""  # unset group: empty, found
                self.evaluated.append(var)

    def lookup(self, path: bytes, symlinks: Symlinks = FOLLOW) -> FileInfo | int:
        """The file system, as the plan's file view answers (see http/files.py): the file's
        information or the errno of the failed stat (or open, with symlinks disabled)."""
        return self.plan.files.find(path, symlinks)

    def open(self, path: bytes) -> FileInfo | int:
        """`lookup` as the static, index and try_files handlers and `if (-f ...)` open files:
        under the location's `disable_symlinks` (`ngx_http_set_disable_symlinks`). A `from=`
        prefix of `path` ending at a component boundary is opened following links; one equal
        to `path` turns the check off; any other leaves the whole path checked."""
        ds: DisableSymlinks | None = self.loc.conf.get("disable_symlinks")
        if ds is None or ds.how == SYMLINKS_OFF:
            return self.lookup(path)
        start = 0
        if ds.source is not None:
            prefix = ds.source.eval(self)
            if prefix and path.startswith(prefix):
                if len(prefix) == len(path):
                    return self.lookup(path)
                if path[len(prefix)] == 0x2F:  # '/'
                    start = len(prefix)
                elif prefix.endswith(b"/"):
                    start = len(prefix) - 1
        return self.lookup(path, (ds.how, start))

    def stat(self, path: bytes) -> FileInfo | None:
        info = self.lookup(path)
        return info if isinstance(info, FileInfo) else None

    def realpath(self, path: bytes) -> bytes | None:
        return self.plan.files.realpath(path)

    def read_file(self, path: bytes) -> bytes:
        """A file's contents (an `auth_basic_user_file`); raises OSError as nginx's open/read fail."""
        return self.plan.files.read(path)

    def client_answer(self, key: object, answer: Callable[[IPAddress | None, bytes, int], Hashable]) -> Hashable:
        """`answer(client, $remote_addr text, port)`, a pure function of the client (e.g. which
        allow/deny rule holds): decision sharing re-asks it for each client (http/replay.py)
        instead of counting it as reading the client. `key` names the question."""
        client = self.client
        return answer(client, remote_addr_text(client, self.request), self.client_port)

    def client_for_trace(self) -> IPAddress | None:
        """The client address for a trace's text only (decision sharing does not count it)."""
        return self.client

    def note_unsimulated(self, what: str) -> None:
        note = f"{what} has no value in a simulation (it comes from the response, TLS or timing)"
        if note not in self.notes:
            self.notes.append(note)

    def capture(self, n: int) -> bytes | None:
        """`$n`: a group of the last successful regex; empty past the groups it had."""
        caps = self.captures
        return caps[n] if n < len(caps) else None
