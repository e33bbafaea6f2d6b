"""`ngx_http_log_module`: `log_format`, `access_log`, and the line nginx writes for a request.

A format is compiled once into operations like nginx's (`ngx_http_log_compile_format`): literal
text, the log module's own fields ($status, $body_bytes_sent, $bytes_sent, $request_length,
$request_time, $msec, $time_local, $time_iso8601, $pipe: never escaped, never "-"), and any
other variable, escaped per `escape=` (default: `\\xHH` for controls, `"`, `\\` and bytes
>= 0x7f, "-" when not found; json; none). Logging runs in the LOG phase, against the location that
finally handled the request (after internal redirects and error_page), with its final state.

The answer's fields come from `modules/response.py`. What a simulation cannot know (the answer
of an upstream, TLS, timing) is written as `<name>` and listed in `LogLine.placeholders`, unless
the caller pins it (`route(..., pinned={"status": "200", "body_bytes_sent": "512"})`); times are
the pinned `msec`/`time_local`/`time_iso8601`/`request_time` or the request's fixed clock.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import (
    HTTP_LIF,
    HTTP_LMT,
    HTTP_LOC,
    HTTP_MAIN,
    HTTP_SRV,
    ONEMORE,
    TAKE1234,
    TWOMORE,
    DirectiveSpec,
    Merge,
)
from ..decision import LogLine, Upstream
from ..http.files import FileInfo
from ..http.request import BadRequest, Request, normalize_uri, parse_request_line, validate_host
from ..http.script import Complex
from ..http.variables import UNSIMULATED, Getter, Variable, VariableTable
from ..plan import Compiler, Level, error
from .base import Command, Module
from .headers import parse_time
from .response import HANDLED, Answer, Unknown, answer, bitmask_bytes, parse_msec

if TYPE_CHECKING:
    from ..http.context import Context

DEFAULT_PATH = "/var/log/nginx/access.log"  # NGX_HTTP_LOG_PATH of the Debian build nginxsim follows
COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
            '"$http_referer" "$http_user_agent"')
# ngx_http_log_vars: written by the log module itself, whatever `escape=` says
_OWN_FIELDS = frozenset(("pipe", "time_local", "time_iso8601", "msec", "request_time", "status", "bytes_sent",
                         "body_bytes_sent", "request_length"))
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_LIT, _VAR, _OWN = 0, 1, 2

# ngx_http_log_escape: controls, '"', '\\' and 0x7f-0xff become \xHH
_ESCAPED = bitmask_bytes((0xFFFFFFFF, 0x00000004, 0x10000000, 0x80000000) + (0xFFFFFFFF,) * 4)
_DEFAULT_TABLE = tuple(b"\\x%02X" % c if c in _ESCAPED else bytes((c,)) for c in range(256))
_JSON_SHORT = {0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x08: b"\\b", 0x0C: b"\\f", 0x22: b'\\"', 0x5C: b"\\\\"}
_JSON_TABLE = tuple(_JSON_SHORT.get(c, b"\\u00%d%X" % (c >> 4, c & 0xF) if c < 0x20 else bytes((c,)))
                    for c in range(256))
_JSON_ESCAPED = frozenset(range(0x20)) | {0x22, 0x5C}

_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock", "authpriv",
               "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2", "local3", "local4", "local5",
               "local6", "local7")
_SEVERITIES = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_ANSWER = "log:answer"  # set while the LOG phase runs: what the answer was
_UNKNOWN = "log:unknown"  # the placeholders written so far for the current log


@dataclass(frozen=True, slots=True)
class Format:
    """A compiled `log_format`: operations, and the variables to flush first (None for the
    predefined combined format, which nginx compiles without flushes)."""

    name: str
    escape: str
    ops: tuple[tuple[int, bytes | Variable | str], ...]
    flushes: tuple[Variable, ...] | None


@dataclass(frozen=True, slots=True)
class Syslog:
    """A `syslog:` destination (`ngx_syslog_process_conf`)."""

    facility: int
    severity: int
    tag: str
    nohostname: bool


@dataclass(frozen=True, slots=True)
class AccessLog:
    """One `access_log`: the path (full name, maybe with variables), format and `if=` filter."""

    path: Complex
    format: Format
    condition: Complex | None
    syslog: Syslog | None
    d: Directive | None


@dataclass(frozen=True, slots=True)
class Off:
    """`access_log off`: nothing is logged at a level that has it, whatever else it lists."""


@dataclass
class LogState:
    """The module's main conf: formats in definition order (combined first), the buffered
    files (`access_log "x" already defined with conflicting parameters`), the default log."""

    formats: list[Format]
    default: AccessLog
    buffers: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    answer_vars: list[Variable] = field(default_factory=list)  # built-ins whose value is the answer's


def _state(cc: Compiler) -> LogState:
    st: LogState | None = cc.state.get("log")
    if st is None:
        combined = compile_format("combined", (COMBINED,), cc.variables, None, flushes=False)
        st = cc.state["log"] = LogState([combined], AccessLog(_literal(DEFAULT_PATH), combined, None, None, None))
    return st


def _literal(text: str) -> Complex:
    """A path taken as written (no variables: a syslog destination may hold a '$')."""
    b = text.encode("utf-8", "surrogateescape")
    return Complex(text, ((0, b),), b)


# -- log_format ---------------------------------------------------------------------------------


def compile_format(name: str, args: tuple[str, ...], table: VariableTable, d: Directive | None,
                   flushes: bool) -> Format:
    """`ngx_http_log_compile_format`: `escape=` first, then each string split into literals,
    the log module's own fields and variables; the strings are joined without separator."""
    escape = "default"
    if args and args[0].startswith("escape="):
        escape = args[0][7:]
        if escape not in ("default", "json", "none"):
            raise _error(d, f'unknown log format escaping "{escape}"')
        args = args[1:]
    ops: list[tuple[int, bytes | Variable | str]] = []
    for text in args:
        i, n = 0, len(text)
        while i < n:
            start = i
            if text[i] != "$":
                i = text.find("$", i)
                i = n if i < 0 else i
                lit = text[start:i].encode("utf-8", "surrogateescape")
                if ops and ops[-1][0] == _LIT:  # strings in a row: one literal
                    prev = ops.pop()[1]
                    assert isinstance(prev, bytes)
                    lit = prev + lit
                ops.append((_LIT, lit))
                continue
            i += 1
            if i == n:
                raise _error(d, f'invalid parameter "{text[start:]}"')
            bracket = text[i] == "{"
            if bracket:
                i += 1
                if i == n:
                    raise _error(d, f'invalid parameter "{text[start:]}"')
            begin = i
            while i < n:
                if text[i] == "}" and bracket:
                    bracket = False
                    i += 1
                    break
                if text[i] not in _NAME_CHARS:
                    break
                i += 1
            var = text[begin:i].rstrip("}")
            if bracket:
                raise _error(d, f'the closing bracket in "{var}" variable is missing')
            if not var:
                raise _error(d, f'invalid parameter "{text[start:]}"')
            if var in _OWN_FIELDS:
                ops.append((_OWN, var))
            else:
                ops.append((_VAR, table.ref(var, d)))
    variables = tuple(v for k, v in ops if isinstance(v, Variable))
    return Format(name, escape, tuple(ops), variables if flushes else None)


def _error(d: Directive | None, message: str) -> Exception:
    assert d is not None  # the predefined format compiles
    return error(d, message)


def _log_format(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_log_set_format`: names are unique as written (case-sensitive, combined included)."""
    st = _state(cc)
    name = d.args[0]
    if any(f.name == name for f in st.formats):
        raise error(d, f'duplicate "log_format" name "{name}"')
    st.formats.append(compile_format(name, d.args[1:], cc.variables, d, flushes=True))


# -- access_log ---------------------------------------------------------------------------------


def _access_log(d: Directive, level: Level, cc: Compiler) -> AccessLog | Off:
    """`ngx_http_log_set_log`: `off`, or PATH [FORMAT [buffer=] [gzip[=N]] [flush=] [if=]]."""
    args = d.args
    if args[0] == "off":
        if len(args) > 1:
            raise error(d, f'invalid parameter "{args[1]}"')
        return Off()
    st = _state(cc)
    syslog = None
    if args[0].startswith("syslog:"):
        syslog = _syslog(d, args[0][7:])
        text = args[0]
    else:
        prefix = cc.tree.prefix if cc.tree.prefix.endswith("/") else cc.tree.prefix + "/"
        text = args[0] if args[0].startswith("/") else prefix + args[0]  # ngx_conf_full_name
    path = cc.complex(text, d) if syslog is None and "$" in args[0] else _literal(text)
    name = args[1] if len(args) >= 2 else "combined"
    fmt = next((f for f in st.formats if f.name.lower() == name.lower()), None)
    if fmt is None:
        raise error(d, f'unknown log format "{name}"')
    size = flush = gzip = 0
    condition = None
    for a in args[2:]:
        if a.startswith("buffer="):
            size = parse_size(a[7:])
            if size <= 0:
                raise error(d, f'invalid buffer size "{a[7:]}"')
        elif a.startswith("flush="):
            flush = parse_msec(a[6:]) or 0
            if flush == 0:
                raise error(d, f'invalid flush time "{a[6:]}"')
        elif a == "gzip" or a.startswith("gzip="):
            size = size or 64 * 1024
            gzip = int(a[5:]) if a[5:].isascii() and a[5:].isdigit() else -1 if a != "gzip" else 1
            if not 1 <= gzip <= 9:
                raise error(d, f'invalid compression level "{a[5:]}"')
        elif a.startswith("if="):
            condition = cc.complex(a[3:], d)
        else:
            raise error(d, f'invalid parameter "{a}"')
    if flush and not size:
        raise error(d, f'no buffer is defined for access_log "{args[0]}"')
    if size:
        if path.const is None:
            raise error(d, "buffered logs cannot have variables in name")
        if syslog is not None:
            raise error(d, "logs to syslog cannot be buffered")
        known = st.buffers.setdefault(text, (size, flush, gzip))
        if known != (size, flush, gzip):
            raise error(d, f'access_log "{args[0]}" already defined with conflicting parameters')
    return AccessLog(path, fmt, condition, syslog, d)


def parse_size(text: str) -> int:
    """`ngx_parse_size`: digits with an optional k/K or m/M; -1 when invalid."""
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit() or not digits.isascii() or int(digits) * scale >= 2**63:
        return -1
    return int(digits) * scale


def _syslog(d: Directive, spec: str) -> Syslog:
    """`ngx_syslog_parse_args`: comma-separated server=, facility=, severity=, tag=, nohostname."""
    server = None
    facility: int | None = None
    severity: int | None = None
    tag: str | None = None
    nohostname = False
    for p in spec.split(","):
        if p.startswith("server="):
            if server is not None:
                raise error(d, 'duplicate syslog "server"')
            if not p[7:]:
                raise error(d, f'no host in syslog server "{p[7:]}"')
            server = p[7:]
        elif p.startswith("facility="):
            if facility is not None:
                raise error(d, 'duplicate syslog "facility"')
            if p[9:] not in _FACILITIES:
                raise error(d, f'unknown syslog facility "{p[9:]}"')
            facility = _FACILITIES.index(p[9:])
        elif p.startswith("severity="):
            if severity is not None:
                raise error(d, 'duplicate syslog "severity"')
            if p[9:] not in _SEVERITIES:
                raise error(d, f'unknown syslog severity "{p[9:]}"')
            severity = _SEVERITIES.index(p[9:])
        elif p.startswith("tag="):
            if tag is not None:
                raise error(d, 'duplicate syslog "tag"')
            if len(p) - 4 > 32:
                raise error(d, "syslog tag length exceeds 32")
            if not all(c.isascii() and (c.isalnum() or c == "_") for c in p[4:]):
                raise error(d, 'syslog "tag" only allows alphanumeric characters and underscore')
            tag = p[4:]
        elif p == "nohostname":
            nohostname = True
        else:
            raise error(d, f'unknown syslog parameter "{p}"')
    if server is None:
        raise error(d, "no syslog server specified")
    return Syslog(23 if facility is None else facility, 6 if severity is None else severity,
                  "nginx" if tag is None else tag, nohostname)


def _open_log_file_cache(d: Directive, level: Level, cc: Compiler) -> bool:
    """`ngx_http_log_open_file_cache`: max=N [inactive=T] [min_uses=N] [valid=T] | off. Which
    file descriptors stay open changes no line; only the checks are kept."""
    off, has_max = False, False
    for a in d.args:
        if a.startswith("max="):
            ok = a[4:].isdigit()
            has_max = ok and int(a[4:]) > 0
        elif a.startswith(("inactive=", "valid=")):
            ok = parse_time(a.partition("=")[2].encode()) is not None
        elif a.startswith("min_uses="):
            ok = a[9:].isdigit()
        elif a == "off":
            ok = off = True
        else:
            ok = False
        if not ok:
            raise error(d, f'invalid "open_log_file_cache" parameter "{a}"')
    if not off and not has_max:
        raise error(d, '"open_log_file_cache" must have "max" parameter')
    return not off


# -- the LOG phase ------------------------------------------------------------------------------


def log_lines(r: Context) -> tuple[LogLine, ...]:
    """`ngx_http_log_handler` for the request as it ended: each access_log of the final
    location (nothing where `off` is set), its `if=` filter, then the line. Evaluating variables
    here leaves the request's state as routing left it (Decision.variables does not change)."""
    st: LogState = r.plan.modules_state["log"]
    entries: list[AccessLog | Off] = r.loc.conf.get("access_log") or [st.default]
    if any(isinstance(e, Off) for e in entries):
        return ()
    up = r.upstream
    if isinstance(up, Upstream):
        up.headers  # noqa: B018 -- nginx built the upstream request before logging
    saved = (list(r.slots), len(r.evaluated), dict(r.volatile), len(r.notes), r.captures)
    r.module_state[_ANSWER] = answer(r)
    for var in st.answer_vars:  # values read while routing predate the answer
        r.volatile.pop(var.index, None)
    try:
        return tuple(line for e in entries if isinstance(e, AccessLog) and (line := _write(r, e)) is not None)
    finally:
        slots, evaluated, volatile, notes, captures = saved
        r.slots[:] = slots
        del r.evaluated[evaluated:]
        r.volatile.clear()
        r.volatile.update(volatile)
        del r.notes[notes:]
        r.captures = captures
        del r.module_state[_ANSWER]
        r.module_state.pop(_UNKNOWN, None)


def _write(r: Context, log: AccessLog) -> LogLine | None:
    """One access_log: the filter, the line (`op->run` over the format), the file it goes to."""
    unknown: list[str] = []
    r.module_state[_UNKNOWN] = unknown
    undecided = None
    if log.condition is not None:
        value = log.condition.eval(r)
        if unknown:
            undecided = log.condition.source
        elif value in (b"", b"0"):
            return None
    if log.path.const is None and not _root_exists(r):
        return None  # ngx_http_log_script_write: "simulate successful logging"
    fmt = log.format
    if fmt.flushes:  # ngx_http_script_flush_no_cacheable_variables
        for var in fmt.flushes:
            if not var.cacheable:
                r.volatile.pop(var.index, None)
    parts: list[bytes] = []
    escape = fmt.escape
    for kind, val in fmt.ops:
        if kind == _LIT:
            parts.append(val)  # type: ignore[arg-type]
        elif kind == _OWN:
            parts.append(_own_field(r, val))  # type: ignore[arg-type]
        else:
            parts.append(_variable(r.get_indexed(val), escape))  # type: ignore[arg-type]
    text = b"".join(parts)
    path = log.path.eval(r)
    if log.syslog is not None:
        text = _syslog_header(r, log.syslog) + text
    else:
        text += b"\n"
    d = log.d
    return LogLine(_s(path), _s(text), fmt.name, tuple(dict.fromkeys(unknown)), undecided, d.where if d else "")


def _variable(value: bytes | None, escape: str) -> bytes:
    """`ngx_http_log_variable` / `_json_variable` / `_unescaped_variable`."""
    if value is None:
        return b"-" if escape == "default" else b""
    if escape == "default":
        if any(c in _ESCAPED for c in value):
            return b"".join(map(_DEFAULT_TABLE.__getitem__, value))
        return value
    if escape == "json" and any(c in _JSON_ESCAPED for c in value):
        return b"".join(map(_JSON_TABLE.__getitem__, value))
    return value


def _own_field(r: Context, name: str) -> bytes:
    """The log module's own fields (`ngx_http_log_vars`): the same values as the variables of
    those names, written as they are."""
    if name == "pipe":
        return b"."  # each request of a simulation is the first on its connection
    value = r.get(r.plan.variables.by_name[name])
    assert value is not None
    return value


def _root_exists(r: Context) -> bool:
    """A log path with variables is written only if the location's root directory exists (or
    the static module opened a file under it: `r->root_tested`)."""
    if r.module_state.get("file") is not None and not r.err_status:
        return True
    root = r.get(r.plan.variables.by_name["document_root"])
    info = r.open(root) if root else None
    return isinstance(info, FileInfo) and stat.S_ISDIR(info.mode)


def _syslog_header(r: Context, s: Syslog) -> bytes:
    """`ngx_syslog_add_header`: `<PRI>Mmm dd hh:mm:ss host tag: ` in the clock's local time."""
    t = r.clock
    stamp = f"{_MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S}"
    host = b"" if s.nohostname else r.plan.hostname + b" "
    return b"<%d>%s %s%s: " % (s.facility * 8 + s.severity, stamp.encode(), host, s.tag.encode())


# -- the variables the answer gives -------------------------------------------------------------


def request_length(r: Context) -> int:
    """`r->request_length`: the request line and header lines as read, CRLF-terminated (the
    Host line nginxsim adds from the URL first); no request body is simulated. A request found
    bad while reading it was read up to the fault: the request line, or the Host line at fault."""
    req = r.request
    size = len(req.request_line) + 2
    if req.http_version == "0.9":
        return size
    headers = list(req.headers)
    if req.url_host is not None and not any(n.lower() == b"host" for n, _ in headers):
        headers.insert(0, (b"Host", req.url_host))
    ended_early = r.status == 400 and not r.module_state.get(HANDLED)
    if ended_early and not _request_line_valid(req):
        return size
    seen: set[bytes] = set()
    for name, value in headers:  # ngx_http_process_request_headers
        size += len(name) + len(value) + 4
        low = name.lower()
        if ended_early and low in _ONCE:
            if low in seen or (low == b"host" and validate_host(value) is None):
                return size  # ngx_http_process_host, ngx_http_process_unique_header_line
            seen.add(low)
    return size + 2


# The request headers nginx accepts once (`ngx_http_process_host`, `_unique_header_line`).
_ONCE = frozenset((b"host", b"if-modified-since", b"if-unmodified-since", b"if-match", b"if-none-match",
                   b"content-length", b"content-range", b"if-range", b"transfer-encoding", b"expect",
                   b"authorization"))


def _request_line_valid(req: Request) -> bool:
    """Whether `ngx_http_process_request_line` (with `ngx_http_process_request_uri`) accepts it."""
    try:
        line = parse_request_line(req)
        if not line.empty_path:
            normalize_uri(line.path)
    except BadRequest:
        return False
    return line.host is None or validate_host(line.host) is not None


def _status(r: Context, a: Answer) -> bytes | None:
    if a.status is None:
        raise Unknown(a.unknown)
    return b"%03d" % a.status


def _body_bytes_sent(r: Context, a: Answer) -> bytes | None:
    if a.body_size is None:
        raise Unknown(a.unknown)
    return b"%d" % a.body_size


def _bytes_sent(r: Context, a: Answer) -> bytes | None:
    if a.body_size is None or a.header_size is None:
        raise Unknown(a.unknown)
    return b"%d" % (a.header_size + a.body_size)


def _upstream(r: Context, a: Answer) -> bytes | None:
    """`$upstream_*`: not found unless the request went upstream, then the upstream's."""
    if r.upstream is None:
        return None
    raise Unknown("it comes from the upstream")


def _ssl(r: Context, a: Answer) -> bytes | None:
    if r.request.scheme == "https":
        raise Unknown("TLS is not simulated")
    return None


def _sent_http(name: str) -> Callable[[Context, Answer], bytes | None]:
    def get(r: Context, a: Answer) -> bytes | None:
        value = a.sent_header(name)
        return value.encode("utf-8", "surrogateescape") if value is not None else None

    return get


def _never_known(r: Context, a: Answer) -> bytes | None:
    raise Unknown("not simulated")


_AT_LOG: dict[str, Callable[[Context, Answer], bytes | None]] = {
    "status": _status,
    "body_bytes_sent": _body_bytes_sent,
    "bytes_sent": _bytes_sent,
    "request_length": lambda r, a: b"%d" % request_length(r),
    "request_time": lambda r, a: b"0.000",
    "connection_time": lambda r, a: b"0.000",
    "request_completion": lambda r, a: b"OK" if a.complete else b"",
    "request_body": lambda r, a: None,
    "request_body_file": lambda r, a: None,
    "http2": lambda r, a: b"",
    "sent_http_content_type": _sent_http("content_type"),
    **{n: _upstream for n in UNSIMULATED if n.startswith("upstream_")},
    **{n: _ssl for n in UNSIMULATED if n.startswith("ssl_")},
}
_FAMILIES: dict[str, Callable[[str], Callable[[Context, Answer], bytes | None]]] = {
    "sent_http_": _sent_http,
    "upstream_http_": lambda suffix: _upstream,
    "upstream_trailer_": lambda suffix: _upstream,
    "upstream_cookie_": lambda suffix: _upstream,
}


def _at_log(name: str, before: Getter, rule: Callable[[Context, Answer], bytes | None]) -> Getter:
    """A variable whose value is the answer's: as before while routing (no answer yet); in the
    LOG phase the pinned value, else the rule, else `<name>` recorded as a placeholder."""

    def get(r: Context) -> bytes | None:
        a: Answer | None = r.module_state.get(_ANSWER)
        if a is None:
            return before(r)
        pinned = r.pinned.get(name)
        if pinned is not None:
            return pinned
        try:
            return rule(r, a)
        except Unknown:
            r.module_state[_UNKNOWN].append(name)
            return b"<" + name.encode() + b">"

    return get


def _remote_user(r: Context) -> bytes | None:
    """`ngx_http_auth_basic_user`: the user of the first Authorization line's Basic credentials."""
    auth = next((v for n, v in r.headers_in if n.lower() == b"authorization"), None)
    if auth is None or len(auth) < 6 or auth[:6].lower() != b"basic ":
        return None
    decoded = decode_base64(auth[6:].lstrip(b" "))
    if not decoded:
        return None
    user, colon, _ = decoded.partition(b":")
    return user if colon and user else None


_B64 = {c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def decode_base64(src: bytes) -> bytes | None:
    """`ngx_decode_base64`: stops at the first '=', refuses other non-alphabet bytes and a
    length of 4n+1; a partial last group gives the bytes it holds."""
    end = src.find(b"=")
    data = src if end < 0 else src[:end]
    if any(c not in _B64 for c in data) or len(data) % 4 == 1:
        return None
    out = bytearray()
    for i in range(0, len(data), 4):
        group = data[i : i + 4]
        n = 0
        for c in group:
            n = n << 6 | _B64[c]
        n <<= 6 * (4 - len(group))
        out += n.to_bytes(3, "big")[: len(group) - 1]
    return bytes(out)


def _finish(cc: Compiler) -> None:
    """Give the answer-dependent built-ins their LOG-phase values (a `map` over `$status` in an
    `if=` sees the status), and every config its default log and combined format."""
    st = _state(cc)
    table = cc.variables
    for name in UNSIMULATED:
        var = table.by_name.get(name)
        if var is not None and var.getter is not None and var.origin == "built-in":
            var.getter = _at_log(name, var.getter, _AT_LOG.get(name, _never_known))
            st.answer_vars.append(var)
    user = table.by_name.get("remote_user")
    if user is not None and user.origin == "built-in":
        user.getter, user.cacheable = _remote_user, True
    for prefix, rule in _FAMILIES.items():
        factory = table.prefixes.get(prefix)
        if factory is not None:
            table.prefixes[prefix] = _family(prefix, factory, rule)


def _family(prefix: str, factory: Callable[[str], tuple[Getter, bool]],
            rule: Callable[[str], Callable[[Context, Answer], bytes | None]]) -> Callable[[str], tuple[Getter, bool]]:
    def make(suffix: str) -> tuple[Getter, bool]:
        getter, cacheable = factory(suffix)
        return _at_log(prefix + suffix, getter, rule(suffix)), cacheable

    return make


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


_LOGS = HTTP_MAIN | HTTP_SRV | HTTP_LOC

COMMANDS = (
    Command(DirectiveSpec("log_format", HTTP_MAIN, TWOMORE, Merge.LOCAL), _log_format),
    Command(DirectiveSpec("access_log", _LOGS | HTTP_LIF | HTTP_LMT, ONEMORE, Merge.ARRAY), _access_log),
    Command(DirectiveSpec("open_log_file_cache", _LOGS, TAKE1234), _open_log_file_cache),
)

MODULE = Module("ngx_http_log_module", COMMANDS, variables=(("pipe", lambda r: b".", True),), finish=_finish)
