"""The result of routing one request: plain, typed, serialisable, explainable."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .http.trace import Step, StepTuple, step


class Headers(Mapping[str, str]):
    """An ordered, case-insensitive view of header lines (repeats kept; `[name]` gives the first)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)

    def __getitem__(self, name: str) -> str:
        low = name.lower()
        for k, v in self._items:
            if k.lower() == low:
                return v
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for k, _ in self._items:
            if k.lower() not in seen:
                seen.add(k.lower())
                yield k

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self._items})

    def get_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self._items if k.lower() == low]

    def items_list(self) -> list[tuple[str, str]]:
        """Every header line in order, repeats included."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        if isinstance(other, Mapping):
            return {k.lower(): v for k, v in self.items()} == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented


@dataclass(frozen=True)
class Place:
    """A server or location of the config: how it is written and where."""

    label: str
    name: str
    file: str | None
    line: int | None
    kind: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""

    def __str__(self) -> str:
        return f"{self.label} ({self.where})" if self.file else self.label


@dataclass(frozen=True)
class Reply:
    """What the client receives when the backend answers (see `Upstream.reply`)."""

    status: int
    headers: Headers


@dataclass(eq=False)
class Upstream:
    """What the backend receives. `peer` is None when the balancer's choice is not deterministic.

    The header block and the parameters are built on first access (`build`), as nginx builds
    them last (`*_create_request`): a sweep that only asks where requests go never pays for them.
    """

    protocol: str
    name: str
    peer: str | None
    uri: str | None
    method: str
    http_version: str | None
    build: Callable[[], tuple[Headers, Headers | None]] = field(repr=False)
    group_file: str | None = None
    group_line: int | None = None
    candidates: tuple[str, ...] = ()
    shares: Mapping[str, float] = field(default_factory=dict)  # long-run split of a round robin/random group
    _built: tuple[Headers, Headers | None] | None = field(default=None, repr=False)
    respond: Callable[[int, Iterable[tuple[str, str]] | Mapping[str, str]], Reply] | None = field(
        default=None, repr=False)

    def reply(self, status: int, headers: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> Reply:
        """What the client gets if the backend answers `status` with `headers` (for uwsgi/fastcgi/
        scgi, the status nginx derives from the answer): Location/Refresh rewritten by
        `proxy_redirect`, hidden headers dropped, `expires` and `add_header` applied for that status.
        nginx's own Server, Date, Content-Length, Connection and Transfer-Encoding lines are left out."""
        if self.respond is None:
            raise ValueError("this upstream has no model of its answer")
        return self.respond(status, headers)

    def _materialize(self) -> tuple[Headers, Headers | None]:
        if self._built is None:
            self._built = self.build()
        return self._built

    @property
    def headers(self) -> Headers:
        """Request headers sent upstream (proxy, grpc), in order; empty for uwsgi/fastcgi/scgi."""
        return self._materialize()[0]

    @property
    def params(self) -> Headers | None:
        """Parameters sent to a uwsgi/fastcgi/scgi backend (`*_param` + `HTTP_*`), else None."""
        return self._materialize()[1]

    @property
    def wsgi_environ(self) -> dict[str, str] | None:
        """For uwsgi: the WSGI environ a Python app under uWSGI sees (`request.META` in Django)."""
        if self.protocol != "uwsgi" or self.params is None:
            return None
        from .modules.uwsgi import wsgi_environ  # the uwsgi module knows uWSGI; it imports this one

        return wsgi_environ(self.params.items_list())

    @property
    def request_line(self) -> str | None:
        if self.uri is None or self.http_version is None:
            return None
        return f"{self.method} {self.uri} HTTP/{self.http_version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "name": self.name, "peer": self.peer, "uri": self.uri,
            "method": self.method, "http_version": self.http_version,
            "headers": [list(h) for h in self.headers.items_list()],
            "params": [list(p) for p in self.params.items_list()] if self.params is not None else None,
            "group": f"{self.group_file}:{self.group_line}" if self.group_file else None,
            "candidates": list(self.candidates),
            "shares": dict(self.shares),
            "wsgi_environ": self.wsgi_environ,
        }


@dataclass(frozen=True)
class LogLine:
    """A line nginx writes to an access log for this request (`ngx_http_log_handler`).

    `line` is exactly what is written, newline included (a syslog message: the syslog header,
    no newline). `placeholders` name the variables a simulation cannot know, written as
    `<name>` (pin them to get nginx's text); `condition` is the `if=` text when it read one of
    them (the line is then written only if it holds); `where` is the access_log's file:line
    ("" for the default log)."""

    path: str
    line: str
    format: str = "combined"
    placeholders: tuple[str, ...] = ()
    condition: str | None = None
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "format": self.format,
                "placeholders": list(self.placeholders), "condition": self.condition, "where": self.where}


@dataclass(eq=False)
class Decision:
    """What nginx does with one request. Built by `Config.route`; treat it as read-only."""

    status: int | None
    body: str | None
    headers: Headers
    upstream: Upstream | None
    server: Place | None
    location: Place | None
    collect_variables: Callable[[], dict[str, str]] = field(repr=False)
    uri: str
    args: str
    file: str | None = None
    # the recorded steps, or what computes them (a decision shared between clients: http/replay.py)
    steps: list[StepTuple] | Callable[[], list[StepTuple]] = field(default_factory=list, repr=False)
    not_simulated: tuple[str, ...] = ()
    notes: Sequence[str] = ()
    redirects: int = 0
    describe_request: Callable[[], str] = field(default=lambda: "", repr=False)
    _variables: dict[str, str] | None = field(default=None, repr=False)
    collect_log_lines: Callable[[], tuple[LogLine, ...]] = field(default=lambda: (), repr=False)

    @property
    def request(self) -> str:
        """The client and request line, e.g. `128.32.1.5 GET / HTTP/1.1`."""
        return self.describe_request()

    @property
    def variables(self) -> dict[str, str]:
        """Every variable evaluated for this request (including by the upstream request)."""
        if self._variables is None:
            if self.upstream is not None:
                self.upstream.headers  # noqa: B018 -- builds the upstream request, which evaluates
            self._variables = self.collect_variables()
        return self._variables

    @cached_property
    def log_lines(self) -> tuple[LogLine, ...]:
        """What nginx writes to the access logs for this request, in access_log order."""
        return self.collect_log_lines()

    @property
    def trace(self) -> tuple[Step, ...]:
        """Every step taken, in order, each with the config place that drove it."""
        return tuple(step(s) for s in self.trace_steps())

    def trace_steps(self) -> list[StepTuple]:
        """The steps as recorded (deferred ones not rendered yet)."""
        return self.steps() if callable(self.steps) else self.steps

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        return {
            "request": self.request,
            "status": self.status,
            "body": self.body,
            "headers": [list(h) for h in self.headers.items_list()],
            "upstream": self.upstream.to_dict() if self.upstream else None,
            "server": _place(self.server),
            "location": _place(self.location),
            "variables": dict(self.variables),
            "uri": self.uri,
            "args": self.args,
            "file": self.file,
            "redirects": self.redirects,
            "not_simulated": list(self.not_simulated),
            "notes": list(self.notes),
            "trace": [s.to_dict() for s in self.trace],
            "log_lines": [line.to_dict() for line in self.log_lines],
        }

    def explain(self) -> str:
        """A readable account: request, each step with its config place, and the outcome."""
        out = [self.request] if self.request else []
        width = max((len(s.phase) for s in self.trace), default=0)
        for s in self.trace:
            where = f"  [{s.where}]" if s.file else ""
            out.append(f"  {s.phase:<{width}}  {_printable(s.what)}: {_printable(s.result)}{where}")
        out.append(self.summary())
        for n in self.notes:
            out.append(f"note: {n}")
        if self.not_simulated:
            out.append("not simulated (may affect this answer): " + ", ".join(self.not_simulated))
        return "\n".join(out)

    def summary(self) -> str:
        if self.upstream is not None:
            u = self.upstream
            peer = u.peer if u.peer is not None else "peer not deterministic: " + ", ".join(u.candidates)
            line = f"=> {u.protocol} upstream {u.name} ({peer})"
            if u.uri is not None:
                line += f", uri {u.uri}"
            return line
        line = f"=> {self.status}"
        loc = self.headers.get("Location")
        if loc is not None:
            line += f" Location: {loc}"
        if self.body is not None:
            line += f" body {self.body!r}"
        if self.file is not None:
            line += f" file {self.file}"
        return line


_CONTROL = {c: f"\\x{c:02x}" for c in range(0x20)} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x7F: "\\x7f"}


def _printable(text: str) -> str:
    """One line per step: control characters (a `return` text's newline...) shown escaped."""
    return text.translate(_CONTROL)


def _place(p: Place | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"label": p.label, "name": p.name, "file": p.file, "line": p.line, "kind": p.kind}
