"""`ngx_http_headers_filter_module`: `expires` and `add_header`, applied once the response status is known.

Both come from the location that finally produced the response (after error_page and internal
redirects), are inherited all-or-nothing, and (without `always`) apply only to the statuses
`ngx_http_headers_filter` lists. `expires` runs first, so its Expires and Cache-Control lines
come before every `add_header` line. Times are the request's clock (a pinned `msec`, else
`Context.clock`), in seconds as nginx's cached time is.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import HTTP_LIF, HTTP_LOC, HTTP_MAIN, HTTP_SRV, TAKE12, TAKE23, DirectiveSpec, Merge
from ..http.script import Complex
from ..plan import Compiler, Level, error
from .base import Command, Module

if TYPE_CHECKING:
    from ..http.context import Context

_SAFE = frozenset((200, 201, 204, 206, 301, 302, 303, 304, 307, 308))
_MAX = 2**63 - 1  # NGX_MAX_INT_T_VALUE (and time_t) on 64-bit Linux


@dataclass(frozen=True, slots=True)
class AddHeader:
    name: str
    value: Complex
    always: bool
    d: Directive


@dataclass(frozen=True, slots=True)
class Expires:
    """A compiled `expires`: `kind` is access/modified (the form, when `value` has variables),
    or off/epoch/max/daily; `time` is in seconds (0 with variables, as nginx keeps it)."""

    kind: str
    time: int
    value: Complex | None
    d: Directive


@dataclass
class Pointers:
    """The header lines `ngx_http_headers_out_t` points at (indexes into `r.headers_out`): an
    upstream's answer sets them (`ngx_http_upstream_process_headers`); `expires` and `add_header`
    rewrite those lines in place instead of adding new ones."""

    expires: int | None = None
    cache_control: list[int] = field(default_factory=list)
    etag: int | None = None
    last_modified: int | None = None
    last_modified_time: int = -1


def _add_header(d: Directive, level: Level, cc: Compiler) -> AddHeader:
    """`ngx_http_headers_add`: NAME VALUE [always]."""
    if len(d.args) == 3 and d.args[2] != "always":
        raise error(d, f'invalid parameter "{d.args[2]}"')
    return AddHeader(d.args[0], cc.complex(d.args[1], d), len(d.args) == 3, d)


def _expires(d: Directive, level: Level, cc: Compiler) -> Expires:
    """`ngx_http_headers_expires`: `[modified] TIME|epoch|max|off`; a value with variables is
    parsed per request, a constant one now (with nginx's messages)."""
    if "expires" in level.values:  # checked before the arguments, as nginx does
        raise error(d, '"expires" directive is duplicate')
    if len(d.args) == 1:
        kind, text = "access", d.args[0]
    elif d.args[0] != "modified":
        raise error(d, '"expires" directive invalid value')
    else:
        kind, text = "modified", d.args[1]
    value = cc.complex(text, d)
    if value.const is None:
        return Expires(kind, 0, value, d)
    try:
        kind, seconds = parse_expires(value.const, kind)
    except ValueError as e:
        raise error(d, f'"expires" directive {e}') from None
    return Expires(kind, seconds, None, d)


def parse_expires(text: bytes, kind: str) -> tuple[str, int]:
    """`ngx_http_parse_expires`: (kind, seconds); ValueError with nginx's message. After
    `modified` the words epoch/max/off are not recognised and `@` is refused."""
    if kind != "modified":
        if text == b"epoch":
            return "epoch", 0
        if text == b"max":
            return "max", 0
        if text == b"off":
            return "off", 0
    minus = False
    if text[:1] == b"@":
        if kind == "modified":
            raise ValueError('daily time cannot be used with "modified" parameter')
        kind, text = "daily", text[1:]
    elif text[:1] in (b"+", b"-"):
        minus, text = text[:1] == b"-", text[1:]
    seconds = parse_time(text)
    if seconds is None:
        raise ValueError("invalid value")
    if kind == "daily" and seconds > 24 * 60 * 60:
        raise ValueError("daily time value must be less than 24 hours")
    return kind, -seconds if minus else seconds


# ngx_parse_time's units: letter -> (steps that must not have been reached, step after, seconds)
_START, _YEAR, _MONTH, _WEEK, _DAY, _HOUR, _MIN, _SEC, _MSEC, _LAST = range(10)
_UNITS = {
    ord("y"): (_YEAR, _YEAR, 365 * 86400), ord("M"): (_MONTH, _MONTH, 30 * 86400),
    ord("w"): (_WEEK, _WEEK, 7 * 86400), ord("d"): (_DAY, _DAY, 86400), ord("h"): (_HOUR, _HOUR, 3600),
    ord("m"): (_MIN, _MIN, 60), ord("s"): (_SEC, _SEC, 1), ord(" "): (_SEC, _LAST, 1),
}


def parse_time(text: bytes) -> int | None:
    """`ngx_parse_time(..., is_sec=1)`: "1y 2M 3w 4d 5h 6m 7s" in this order, each unit at most
    once, a bare number meaning seconds; None where nginx fails (overflow included)."""
    total = value = 0
    valid = False
    step = _START
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        i += 1
        if 0x30 <= c <= 0x39:
            if value >= _MAX // 10 and (value > _MAX // 10 or c - 0x30 > _MAX % 10):
                return None
            value = value * 10 + c - 0x30
            valid = True
            continue
        unit = _UNITS.get(c)
        if unit is None or step >= unit[0]:
            return None
        if c == 0x6D and i < n and text[i] == 0x73:  # "ms": not in seconds
            return None
        step, scale = unit[1], unit[2]
        if value > _MAX // scale:
            return None
        value *= scale
        if total > _MAX - value:
            return None
        total += value
        value = 0
        while i < n and text[i] == 0x20:
            i += 1
    if not valid or total > _MAX - value:
        return None
    return total + value


_WEEK_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH = _dt.datetime(1970, 1, 1)


def http_time(t: int) -> str:
    """`ngx_http_time`: RFC 1123 in GMT; before 1970 is the epoch, after 9999 its last second
    (`ngx_gmtime`'s limits)."""
    days, sec = divmod(max(t, 0), 86400)
    if days > 2932896:
        days, sec = 2932896, 86399
    d = _EPOCH + _dt.timedelta(days=days, seconds=sec)
    return f"{_WEEK_DAYS[d.weekday()]}, {d.day:02d} {_MONTHS[d.month - 1]} {d.year:4d} {d:%H:%M:%S} GMT"


_MDAY = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def parse_http_time(value: bytes) -> int:
    """`ngx_parse_http_time`: RFC 822/1123, RFC 850 or asctime dates; -1 when it fails (as a date
    one second before 1970 would be). Reads past the end as the NUL nginx's strings end with."""
    n = len(value)

    def at(i: int) -> int:
        return value[i] if i < n else 0

    def digits(i: int, count: int) -> int | None:
        if not all(0x30 <= at(i + k) <= 0x39 for k in range(count)):
            return None
        return int(value[i : i + count])

    isoc = False
    p = 0
    while p < n and value[p] != 0x2C:
        if value[p] == 0x20:
            isoc = True
            break
        p += 1
    p += 1
    while p < n and value[p] == 0x20:
        p += 1
    if n - p < 18:
        return -1
    rfc822 = False
    day = year = 0
    if not isoc:
        parsed = digits(p, 2)
        if parsed is None:
            return -1
        day, p = parsed, p + 2
        if at(p) == 0x20:
            if n - p < 18:
                return -1
            rfc822 = True
        elif at(p) != 0x2D:
            return -1
        p += 1
    c, c1, c2 = at(p), at(p + 1), at(p + 2)
    month = {0x4A: 0 if c1 == 0x61 else 5 if c2 == 0x6E else 6, 0x46: 1, 0x4D: 2 if c2 == 0x72 else 4,
             0x41: 3 if c1 == 0x70 else 7, 0x53: 8, 0x4F: 9, 0x4E: 10, 0x44: 11}.get(c)
    if month is None:
        return -1
    p += 3
    if not isoc and at(p) != (0x20 if rfc822 else 0x2D):
        return -1
    p += 1
    if not isoc:
        parsed = digits(p, 4 if rfc822 else 2)
        if parsed is None:
            return -1
        year = parsed if rfc822 else parsed + (2000 if parsed < 70 else 1900)
        p += 4 if rfc822 else 2
    else:
        if at(p) == 0x20:
            p += 1
        if not 0x30 <= at(p) <= 0x39:
            return -1
        day, p = at(p) - 0x30, p + 1
        if at(p) != 0x20:
            if not 0x30 <= at(p) <= 0x39:
                return -1
            day, p = day * 10 + at(p) - 0x30, p + 1
        if n - p < 14:
            return -1
    if at(p) != 0x20:
        return -1
    hour, minute, sec = digits(p + 1, 2), digits(p + 4, 2), digits(p + 7, 2)
    if hour is None or at(p + 3) != 0x3A or minute is None or at(p + 6) != 0x3A or sec is None:
        return -1
    if isoc:
        parsed = digits(p + 10, 4) if at(p + 9) == 0x20 else None
        if parsed is None:
            return -1
        year = parsed
    if hour > 23 or minute > 59 or sec > 59:
        return -1
    if day == 29 and month == 1:
        if year & 3 or (year % 100 == 0 and year % 400 != 0):
            return -1
    elif day > _MDAY[month]:
        return -1
    month -= 1  # Gauss' formula counts from March
    if month <= 0:
        month, year = month + 12, year - 1
    y = year % 2**64  # nginx's unsigned arithmetic
    days = 365 * y + y // 4 - y // 100 + y // 400 + 367 * month // 12 - 30 + day - 1 - 719527 + 31 + 28
    return _time_t(days * 86400 + hour * 3600 + minute * 60 + sec)


def _time_t(v: int) -> int:
    """A value as a 64-bit time_t holds it (C wraps around where the arithmetic overflows)."""
    return (v + 2**63) % 2**64 - 2**63


def _now(r: Context) -> int:
    """`ngx_time()`: the pinned `msec`'s whole seconds, else the request's clock."""
    pinned = r.pinned.get("msec")
    if pinned is not None:
        whole = pinned.partition(b".")[0]
        if whole.lstrip(b"-").isdigit():
            return int(whole)
    return int(r.clock.timestamp())


def _next_time(r: Context, when: int, t: int) -> int:
    """`ngx_next_time`: the next moment (strictly after now) at `when` seconds past local
    midnight; local time is the clock's time zone (UTC unless the clock says otherwise)."""
    tz = r.clock.tzinfo or _dt.timezone.utc
    midnight = _dt.datetime.fromtimestamp(t, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    at = int((midnight + _dt.timedelta(seconds=when)).timestamp())
    return at if at - t > 0 else int((midnight + _dt.timedelta(days=1, seconds=when)).timestamp())


def _set_expires(r: Context, conf: Expires, lines: list[tuple[str, str] | None], ptr: Pointers) -> None:
    """`ngx_http_set_expires`: Expires and Cache-Control, reusing the lines an upstream sent (the
    first Cache-Control line gets the value, the others go). A variable value that does not parse
    (or says off) sets nothing."""
    kind, seconds = conf.kind, conf.time
    if conf.value is not None:
        try:
            kind, seconds = parse_expires(conf.value.eval(r), kind)
        except ValueError:
            return
        if kind == "off":
            return
    if kind == "epoch":
        expires, cache = "Thu, 01 Jan 1970 00:00:01 GMT", "no-cache"
    elif kind == "max":
        expires, cache = "Thu, 31 Dec 2037 23:55:55 GMT", "max-age=315360000"
    elif seconds == 0 and kind != "daily":
        expires, cache = http_time(_now(r)), "max-age=0"
    else:
        t = _now(r)
        if kind == "daily":
            at = _next_time(r, seconds, t)
            max_age = at - t
        elif kind == "access" or ptr.last_modified_time == -1:
            max_age, at = seconds, _time_t(seconds + t)
        else:
            at = _time_t(seconds + ptr.last_modified_time)
            max_age = _time_t(at - t)
        expires = http_time(at)
        cache = "no-cache" if conf.time < 0 or max_age < 0 else f"max-age={max_age}"
    if ptr.expires is not None:
        name = lines[ptr.expires][0]  # type: ignore[index]
        lines[ptr.expires] = (name, expires)
    else:
        ptr.expires = len(lines)
        lines.append(("Expires", expires))
    if ptr.cache_control:
        first, *rest = ptr.cache_control
        lines[first] = (lines[first][0], cache)  # type: ignore[index]
        for i in rest:
            lines[i] = None
        ptr.cache_control = [first]
    else:
        ptr.cache_control = [len(lines)]
        lines.append(("Cache-Control", cache))
    if r.trace.enabled:
        r.trace.add("headers", f"expires {' '.join(conf.d.args)}", f"Expires: {expires}, Cache-Control: {cache}",
                    conf.d.file, conf.d.line)


def _add(h: AddHeader, value: str, lines: list[tuple[str, str] | None], ptr: Pointers) -> None:
    """The handler `ngx_http_headers_add` chose by name: ETag and Last-Modified replace (or, empty,
    remove) the line already there (`ngx_http_set_response_header`); others add a non-empty line."""
    low = h.name.lower()
    if low not in ("etag", "last-modified"):
        if value:
            if low == "cache-control":
                ptr.cache_control.append(len(lines))
            lines.append((h.name, value))
        return
    old = ptr.etag if low == "etag" else ptr.last_modified
    if not value:
        if old is not None:
            lines[old] = None
        new = None
    elif old is not None:
        lines[old] = (h.name, value)
        new = old
    else:
        new = len(lines)
        lines.append((h.name, value))
    if low == "etag":
        ptr.etag = new
    else:
        ptr.last_modified = new
        ptr.last_modified_time = parse_http_time(value.encode("utf-8", "surrogateescape")) if value else -1


def header_filter(r: Context) -> None:
    """`ngx_http_headers_filter`: main request only; `expires` then `add_header`, both skipped
    for other statuses unless `always`."""
    conf = r.loc.conf if r.loc is not None else {}
    entries = conf.get("add_header")
    expires: Expires | None = conf.get("expires")
    if expires is not None and expires.kind == "off":
        expires = None
    if not entries and expires is None:
        return
    status = r.err_status or r.status
    if status == 444:  # the connection is closed: no header is sent
        return
    if status is None:
        status = 200  # passed upstream: shown as for a successful upstream answer
        r.notes.append("add_header and expires without 'always' are shown as for a 2xx/3xx upstream answer; "
                       "Upstream.reply() gives the answer to a given upstream status and headers")
    ptr: Pointers | None = r.module_state.pop("headers_out", None)
    if ptr is None:
        modified = expires is not None and expires.kind == "modified"
        ptr = Pointers(last_modified_time=_file_mtime(r) if modified else -1)
    lines: list[tuple[str, str] | None] = list(r.headers_out)
    safe = status in _SAFE
    if expires is not None and safe:
        _set_expires(r, expires, lines, ptr)
    for h in entries or ():
        if h.always or safe:
            v = h.value.eval(r).decode("utf-8", "surrogateescape")
            _add(h, v, lines, ptr)
            if v and r.trace.enabled:
                r.trace.add("headers", f"add_header {h.name}", v, h.d.file, h.d.line)
    r.headers_out = [line for line in lines if line is not None]


def _file_mtime(r: Context) -> int:
    """`r->headers_out.last_modified_time` of a static answer: the file's mtime (else -1)."""
    path: str | None = r.module_state.get("file")
    info = r.stat(path.encode("utf-8", "surrogateescape")) if path is not None else None
    return info.mtime if info is not None else -1


COMMANDS = (
    Command(DirectiveSpec("expires", HTTP_MAIN | HTTP_SRV | HTTP_LOC | HTTP_LIF, TAKE12, Merge.VALUE), _expires),
    Command(DirectiveSpec("add_header", HTTP_MAIN | HTTP_SRV | HTTP_LOC | HTTP_LIF, TAKE23, Merge.ARRAY),
            _add_header),
)

MODULE = Module("ngx_http_headers_filter_module", COMMANDS, header_filter=header_filter)
