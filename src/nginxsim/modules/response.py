"""The answer as nginx puts it on the wire: status line, header block and body sizes.

Mirrors `ngx_http_header_filter` (what the header block holds and so its size), the special
responses of `ngx_http_special_response.c` (error and redirect pages with their tail, the MSIE
padding and refresh), `ngx_http_send_response` (`return` with a text), the static handler's
headers, and the keep-alive choice of `ngx_http_handler` / `ngx_http_update_location_config`.
The access log reads it for `$status`, `$bytes_sent`, `$body_bytes_sent` and `$sent_http_*`.

The directives it reads belong to nginx's core module (server_tokens, keepalive_*, msie_*,
types, default_type, etag) and to the charset and gzip filters, which are not simulated: where
they would change the answer's bytes, the sizes are unknown rather than wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import (
    BLOCK,
    FLAG,
    HTTP_LIF,
    HTTP_LOC,
    HTTP_MAIN,
    HTTP_SRV,
    NOARGS,
    TAKE1,
    TAKE12,
    DirectiveSpec,
    Merge,
)
from ..http.variables import text_addr
from ..plan import Compiler, Level, error
from .base import Command, Module
from .core import flag
from .headers import http_time, parse_time

if TYPE_CHECKING:
    from ..http.context import Context

_ANY = HTTP_MAIN | HTTP_SRV | HTTP_LOC
_CRLF = 2
NGINX_VER = "nginx/1.22.1"  # Debian builds without --build: NGINX_VER_BUILD is the same

_STATUS_LINES = {
    200: "200 OK", 201: "201 Created", 202: "202 Accepted", 204: "204 No Content", 206: "206 Partial Content",
    301: "301 Moved Permanently", 302: "302 Moved Temporarily", 303: "303 See Other", 304: "304 Not Modified",
    307: "307 Temporary Redirect", 308: "308 Permanent Redirect",
    400: "400 Bad Request", 401: "401 Unauthorized", 402: "402 Payment Required", 403: "403 Forbidden",
    404: "404 Not Found", 405: "405 Not Allowed", 406: "406 Not Acceptable", 408: "408 Request Time-out",
    409: "409 Conflict", 410: "410 Gone", 411: "411 Length Required", 412: "412 Precondition Failed",
    413: "413 Request Entity Too Large", 414: "414 Request-URI Too Large", 415: "415 Unsupported Media Type",
    416: "416 Requested Range Not Satisfiable", 421: "421 Misdirected Request", 429: "429 Too Many Requests",
    500: "500 Internal Server Error", 501: "501 Not Implemented", 502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out", 505: "505 HTTP Version Not Supported",
    507: "507 Insufficient Storage",
}

# The titles of nginx's built-in pages (ngx_http_error_pages); 498 borrows 404's page.
_PAGE_TITLES = {
    301: "301 Moved Permanently", 302: "302 Found", 303: "303 See Other", 307: "307 Temporary Redirect",
    308: "308 Permanent Redirect", 400: "400 Bad Request", 401: "401 Authorization Required",
    402: "402 Payment Required", 403: "403 Forbidden", 404: "404 Not Found", 405: "405 Not Allowed",
    406: "406 Not Acceptable", 408: "408 Request Time-out", 409: "409 Conflict", 410: "410 Gone",
    411: "411 Length Required", 412: "412 Precondition Failed", 413: "413 Request Entity Too Large",
    414: "414 Request-URI Too Large", 415: "415 Unsupported Media Type",
    416: "416 Requested Range Not Satisfiable", 421: "421 Misdirected Request", 429: "429 Too Many Requests",
    494: "400 Request Header Or Cookie Too Large", 495: "400 The SSL certificate error",
    496: "400 No required SSL certificate was sent", 497: "400 The plain HTTP request was sent to HTTPS port",
    498: "404 Not Found", 500: "500 Internal Server Error", 501: "501 Not Implemented",
    502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out",
    505: "505 HTTP Version Not Supported", 507: "507 Insufficient Storage",
}
_PAGES = {code: (f"<html>\r\n<head><title>{t}</title></head>\r\n<body>\r\n<center><h1>{t}</h1></center>\r\n").encode()
          for code, t in _PAGE_TITLES.items()}
_TAILS = {
    "on": f"<hr><center>{NGINX_VER}</center>\r\n</body>\r\n</html>\r\n".encode(),
    "build": f"<hr><center>{NGINX_VER}</center>\r\n</body>\r\n</html>\r\n".encode(),
    "off": b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
}
_SERVER = {"on": f"Server: {NGINX_VER}\r\n", "build": f"Server: {NGINX_VER}\r\n", "off": "Server: nginx\r\n"}
_PADDING = len(b"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n") * 6
_REFRESH_HEAD = len(b'<html><head><meta http-equiv="Refresh" content="0; URL=')
_REFRESH_TAIL = len(b'"></head><body></body></html>\r\n')
_DATE_LINE = len("Date: Mon, 28 Sep 1970 06:00:00 GMT\r\n")
_LAST_MODIFIED_LINE = len("Last-Modified: Mon, 28 Sep 1970 06:00:00 GMT\r\n")
# ngx_http_special_response_handler closes the connection after these
_CLOSING = frozenset((400, 413, 414, 497, 495, 496, 500, 501))
_DEFAULT_TYPES = {"html": "text/html", "gif": "image/gif", "jpg": "image/jpeg"}  # ngx_http_core_default_types
_CONDITIONAL = frozenset((b"if-modified-since", b"if-unmodified-since", b"if-match", b"if-none-match", b"range",
                          b"if-range"))


def bitmask_bytes(words: tuple[int, ...]) -> frozenset[int]:
    """The bytes an nginx escape table (eight 32-bit words, bit c & 31 of word c >> 5) marks."""
    return frozenset(c for c in range(256) if words[c >> 5] & (1 << (c & 0x1F)))


# ngx_escape_uri(NGX_ESCAPE_REFRESH)
_REFRESH_ESCAPE = bitmask_bytes((0xFFFFFFFF, 0x50000085, 0x50000000, 0xD8000001) + (0xFFFFFFFF,) * 4)


class Unknown(Exception):
    """A value of the answer nginxsim cannot know (it comes from an upstream, or from a filter
    that is not simulated); the message says why."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What nginx sent for a request, as far as known. `header_size` (`r->header_size`) and
    `body_size` (bytes of body written) are None when unknown, with `unknown` saying why;
    `lines` is the `headers_out` list (`$sent_http_*`), None when unknown."""

    status: int | None
    header_size: int | None
    body_size: int | None
    keepalive: bool
    content_type: str | None = None
    content_length: int | None = None
    location: str | None = None
    last_modified: int | None = None
    keepalive_header: int | None = None
    lines: tuple[tuple[str, str], ...] | None = ()
    unknown: str = ""
    complete: bool = True  # `r->request_complete`: not for a connection closed by 444
    v09: bool = False
    written_location: bytes | None = None  # HTTP/0.9: the Location as written (None: unknown)

    def sent_header(self, name: str) -> str | None:
        """`$sent_http_NAME` (`ngx_http_variable_unknown_header` over `headers_out`, and the
        special cases of `ngx_http_core_variables`); Unknown when the answer is."""
        if self.lines is None:
            raise Unknown(self.unknown)
        if name == "content_type":
            return self.content_type or None
        if name == "content_length":
            return str(self.content_length) if self.content_length is not None else None
        if name == "location":
            if self.location is not None and self.v09:
                if self.written_location is None:
                    raise Unknown("the Location as written, which HTTP/0.9 leaves relative")
                return self.written_location.decode("utf-8", "surrogateescape")
            return self.location
        if name == "last_modified":
            return http_time(self.last_modified) if self.last_modified is not None else None
        # ngx_http_set_keepalive clears r->keepalive before the request is logged; 444 never gets there
        keepalive = self.keepalive and not self.complete
        if name == "connection":
            return "keep-alive" if keepalive else "close"
        if name == "keep_alive":
            return f"timeout={self.keepalive_header}" if keepalive and self.keepalive_header else None
        if name == "transfer_encoding":
            return None
        if name in ("cache_control", "link"):
            values = [v for k, v in self.lines if _var_name(k) == name]
            return ", ".join(values) if values else None
        return next((v for k, v in self.lines if _var_name(k) == name), None)


def _var_name(header: str) -> str:
    return header.lower().replace("-", "_")


def answer(r: Context) -> Answer:
    """The answer nginx sent for the request as it ended (status already `err_status` where
    one was set)."""
    status = r.status
    if status == 444:  # ngx_http_terminate_request: the connection is closed, nothing sent
        return Answer(444, 0, 0, _keepalive(r, None), complete=False)
    if status is None:
        why = "it comes from the upstream's answer"
        return Answer(None, None, None, _keepalive(r, None), lines=None, unknown=why)
    conf = r.loc.conf
    head_only = r.method == b"HEAD"
    lines = list(r.headers_out)
    location = next((v for k, v in lines if k.lower() == "location"), None)
    last_modified = None
    ctype: str | None
    length: int | None
    special = False
    path: str | None = r.module_state.get("file")
    v09 = r.request.http_version == "0.9"  # ngx_http_header_filter never runs: nothing is cleared
    if r.body is not None:  # ngx_http_send_response: `return` with a text, or a code below 400
        ctype, length = content_type(r), len(r.body)
        if status == 204 and not v09:
            ctype, length, head_only = None, None, True
        head_only = head_only or (status == 304 and not v09)
    elif path is not None:  # ngx_http_static_handler
        info = r.stat(path.encode("utf-8", "surrogateescape"))
        if info is None:
            return _unknown(r, status, "the file changed since it was looked up")
        if any(n.lower() in _CONDITIONAL for n, _ in r.headers_in):
            return _unknown(r, status, "a conditional or range request (304, 206, 412...) is not simulated")
        ctype, length = content_type(r), info.size
        if status in (200, 206, 304) or v09:
            last_modified = info.mtime
        if conf.get("etag", True):
            lines.insert(0, ("ETag", f'"{info.mtime:x}-{info.size:x}"'))
        if status == 200 and not v09:  # ngx_http_range_header_filter
            lines.append(("Accept-Ranges", "bytes"))
    elif status < 300:
        return _unknown(r, status, "the body of this answer (autoindex...) is not simulated")
    else:  # ngx_http_send_special_response / ngx_http_send_refresh
        special = True
        msie, chrome, _, _ = agent(r)
        if conf.get("msie_refresh", False) and msie and location is not None and status in (301, 302):
            written = location_as_written(r, location)
            if written is None:
                return _unknown(r, 200, "the Location as written, before it was made absolute")
            escaped = sum(c in _REFRESH_ESCAPE for c in written)
            status, ctype = 200, "text/html"
            length = _REFRESH_HEAD + len(written) + 2 * escaped + _REFRESH_TAIL
            lines = [(k, v) for k, v in lines if k.lower() != "location"]
            location = None
        elif status in _PAGES:
            ctype = "text/html"
            length = len(_PAGES[status]) + len(_TAILS[conf.get("server_tokens", "on")])
            if conf.get("msie_padding", True) and (msie or chrome) and not v09 and status >= 400:
                length += _PADDING
        else:
            ctype, length = None, 0
    charset = conf.get("charset", "off")
    if ctype is not None and charset != "off":
        return _unknown(r, status, f'"charset {charset}" is not simulated')
    if conf.get("gzip", False) and any(n.lower() == b"accept-encoding" for n, _ in r.headers_in):
        return _unknown(r, status, "gzip is not simulated")
    # the special response closing the connection ran first when error_page answered
    keepalive = _keepalive(r, status if special or r.err_status else None)
    body = 0 if head_only else (length or 0)
    header_timeout: int | None = conf.get("keepalive_timeout", (75000, None))[1]
    if v09:  # ngx_http_header_filter sends no header to HTTP/0.9
        header = 0
    else:
        header = _header_size(r, status, ctype, length, last_modified, lines, keepalive, header_timeout)
    return Answer(status, header, body, keepalive, ctype, length, location, last_modified, header_timeout,
                  tuple(lines), v09=v09,
                  written_location=location_as_written(r, location) if v09 and location is not None else None)


def location_as_written(r: Context, location: str) -> bytes | None:
    """The Location before `ngx_http_header_filter` made it absolute (what the MSIE refresh
    page and HTTP/0.9 see); None when it cannot be told apart from one written absolute."""
    value = location.encode("utf-8", "surrogateescape")
    conf = r.loc.conf
    if not conf.get("absolute_redirect", True):
        return value
    if conf.get("server_name_in_redirect", False):
        host = r.server.server_name
    else:
        host = r.host or text_addr(r.local_addr)
    port = r.request.server_port
    default = 443 if r.request.scheme == "https" else 80
    port_part = b"" if port == default or not conf.get("port_in_redirect", True) else b":%d" % port
    prefix = r.request.scheme.encode() + b"://" + host + port_part + b"/"
    return None if value.startswith(prefix) else value


def _unknown(r: Context, status: int, why: str) -> Answer:
    return Answer(status, None, None, _keepalive(r, None), lines=None, unknown=why)


def _header_size(r: Context, status: int, ctype: str | None, length: int | None, last_modified: int | None,
                 lines: list[tuple[str, str]], keepalive: bool, header_timeout: int | None) -> int:
    """`ngx_http_header_filter`: the length of the status line and header block it writes."""
    size = len("HTTP/1.1 ") + len(_STATUS_LINES.get(status, f"{status:03d} ")) + _CRLF
    size += len(_SERVER[r.loc.conf.get("server_tokens", "on")]) + _DATE_LINE
    if ctype:
        size += len("Content-Type: ") + len(ctype.encode("utf-8", "surrogateescape")) + _CRLF
    if length is not None:
        size += len("Content-Length: ") + len(str(length)) + _CRLF
    if last_modified is not None:
        size += _LAST_MODIFIED_LINE
    if keepalive:
        size += len("Connection: keep-alive\r\n")
        if header_timeout:
            size += len(f"Keep-Alive: timeout={header_timeout}\r\n")
    else:
        size += len("Connection: close\r\n")
    for name, value in lines:
        size += len(name.encode("utf-8", "surrogateescape")) + 2 + len(value.encode("utf-8", "surrogateescape")) + 2
    return size + _CRLF


def agent(r: Context) -> tuple[bool, bool, bool, bool]:
    """`ngx_http_process_user_agent` on the first User-Agent line: (msie, chrome, msie6, safari)."""
    ua = next((v for n, v in r.headers_in if n.lower() == b"user-agent"), None)
    if ua is None:
        return False, False, False, False
    msie = msie6 = False
    at = ua.find(b"MSIE ")
    if at >= 0 and at + 7 < len(ua):
        msie = True
        if ua[at + 6 : at + 7] == b".":
            major = ua[at + 5 : at + 6]
            msie6 = major in (b"4", b"5") or (major == b"6" and b"SV1" not in ua[at + 8 :])
    if b"Opera" in ua:
        return False, False, False, False
    chrome = safari = False
    if not msie and b"Gecko/" not in ua:
        if b"Chrome/" in ua:
            chrome = True
        elif b"Safari/" in ua and b"Mac OS X" in ua:
            safari = True
    return msie, chrome, msie6, safari


def _keepalive(r: Context, special: int | None) -> bool:
    """`r->keepalive`: set by `ngx_http_handler` from the Connection header and the version,
    dropped by `ngx_http_update_location_config` (keepalive_timeout 0, keepalive_requests,
    keepalive_disable) and by the special responses that close the connection."""
    if not r.module_state.get(HANDLED):  # ended while reading the header: ngx_http_handler never ran
        return False
    kind = None
    for name, value in r.headers_in:  # ngx_http_process_connection, for each Connection line
        if name.lower() == b"connection":
            low = value.lower()
            kind = "close" if b"close" in low else "keep-alive" if b"keep-alive" in low else kind
    keep = r.request.http_version == "1.1" if kind is None else kind == "keep-alive"
    if not keep:
        return False
    conf = r.loc.conf
    requests = r.pinned.get("connection_requests", b"1")
    _, _, msie6, safari = agent(r)
    disabled = conf.get("keepalive_disable", frozenset(("msie6",)))
    if conf.get("keepalive_timeout", (75000, None))[0] == 0 \
            or (requests.isdigit() and int(requests) >= conf.get("keepalive_requests", 1000)) \
            or (msie6 and r.request.method == b"POST" and "msie6" in disabled) \
            or (safari and "safari" in disabled):
        return False
    return special not in _CLOSING


HANDLED = "response:handled"


def _handled(r: Context) -> None:
    """POST_READ: the request reached `ngx_http_handler`, which sets `r->keepalive`."""
    r.module_state[HANDLED] = True


def content_type(r: Context) -> str:
    """`ngx_http_set_content_type`: the type of `r->exten` (the final URI's extension,
    lowercased) from `types`, else `default_type`."""
    uri = r.uri
    exten = b""
    for i in range(len(uri) - 1, 1, -1):  # ngx_http_set_exten
        if uri[i] == 0x2E and uri[i - 1] != 0x2F:
            exten = uri[i + 1 :]
            break
        if uri[i] == 0x2F:
            break
    conf = r.loc.conf
    if exten:
        key = exten.lower().decode("utf-8", "surrogateescape")
        blocks: list[dict[str, str]] | None = conf.get("types")
        if blocks is None:
            found = _DEFAULT_TYPES.get(key)
        else:
            found = next((b[key] for b in reversed(blocks) if key in b), None)
        if found is not None:
            return found
    return conf.get("default_type", "text/plain")  # type: ignore[no-any-return]


# -- directives ----------------------------------------------------------------------------------


def _flag(d: Directive, level: Level, cc: Compiler) -> bool:
    return flag(d)


def _server_tokens(d: Directive, level: Level, cc: Compiler) -> str:
    """`ngx_conf_set_enum_slot` over on|off|build."""
    value = d.args[0].lower()
    if value not in _TAILS:
        raise error(d, f'invalid value "{d.args[0]}"')
    return value


_MAX = 2**63 - 1  # NGX_MAX_INT_T_VALUE
# ngx_parse_time's units: letter -> (step reached, seconds)
_STEPS = {"y": (1, 365 * 86400), "M": (2, 30 * 86400), "w": (3, 7 * 86400), "d": (4, 86400), "h": (5, 3600),
          "m": (6, 60), "s": (7, 1), " ": (9, 1)}


def parse_msec(text: str) -> int | None:
    """`ngx_parse_time(..., is_sec=0)`: milliseconds ("75s", "1m 30s", "500ms", a bare number of
    seconds); no years nor months; None where nginx fails."""
    total = value = 0
    valid = False
    step = 2  # st_month: years and months are refused
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        i += 1
        if "0" <= c <= "9":
            value = value * 10 + ord(c) - 0x30
            if value > _MAX:
                return None
            valid = True
            continue
        if c == "m" and i < n and text[i] == "s":
            if step >= 8:
                return None
            i, step, scale = i + 1, 8, 1
        else:
            unit = _STEPS.get(c)
            if unit is None or step >= min(unit[0], 7 if c == " " else unit[0]):
                return None
            step, scale = unit[0], unit[1] * 1000
        if value > _MAX // scale:
            return None
        total += value * scale
        if total > _MAX:
            return None
        value = 0
        while i < n and text[i] == " ":
            i += 1
    if not valid or value > _MAX // 1000 or total + value * 1000 > _MAX:
        return None
    return total + value * 1000


def _keepalive_timeout(d: Directive, level: Level, cc: Compiler) -> tuple[int, int | None]:
    """`ngx_http_core_keepalive`: TIMEOUT [HEADER_TIMEOUT]."""
    timeout = parse_msec(d.args[0])
    header = parse_time(d.args[1].encode()) if len(d.args) == 2 else None
    if timeout is None or (len(d.args) == 2 and header is None):
        raise error(d, '"keepalive_timeout" directive invalid value')
    return timeout, header


def _keepalive_requests(d: Directive, level: Level, cc: Compiler) -> int:
    """`ngx_conf_set_num_slot`."""
    if not d.args[0].isdigit():
        raise error(d, '"keepalive_requests" directive invalid number')
    return int(d.args[0])


def _keepalive_disable(d: Directive, level: Level, cc: Compiler) -> frozenset[str]:
    """`ngx_conf_set_bitmask_slot` over none|msie6|safari."""
    for a in d.args:
        if a.lower() not in ("none", "msie6", "safari"):
            raise error(d, f'invalid value "{a}"')
    return frozenset(a.lower() for a in d.args)


def _text(d: Directive, level: Level, cc: Compiler) -> str:
    return d.args[0]


def _types(d: Directive, level: Level, cc: Compiler) -> dict[str, str]:
    """`ngx_http_core_types` / `ngx_http_core_type`: `TYPE EXT...` lines; an extension given
    again (in this block or an earlier one of the same level) takes the later type, with a warning."""
    earlier: list[dict[str, str]] = level.values.get("types", [])
    table: dict[str, str] = {}
    for line in d.block or ():
        for ext in line.args:
            ext = ext.lower()
            old = table.get(ext) or next((b[ext] for b in reversed(earlier) if ext in b), None)
            if old is not None:
                cc.warn(line, f'duplicate extension "{ext}", content type: "{line.name}", '
                              f'previous content type: "{old}"')
            table[ext] = line.name
    return table


COMMANDS = (
    Command(DirectiveSpec("server_tokens", _ANY, TAKE1), _server_tokens),
    Command(DirectiveSpec("keepalive_timeout", _ANY, TAKE12), _keepalive_timeout),
    Command(DirectiveSpec("keepalive_requests", _ANY, TAKE1), _keepalive_requests),
    Command(DirectiveSpec("keepalive_disable", _ANY, TAKE12), _keepalive_disable),
    Command(DirectiveSpec("msie_padding", _ANY, FLAG), _flag),
    Command(DirectiveSpec("msie_refresh", _ANY, FLAG), _flag),
    Command(DirectiveSpec("etag", _ANY, FLAG), _flag),
    Command(DirectiveSpec("default_type", _ANY, TAKE1), _text),
    Command(DirectiveSpec("types", _ANY, BLOCK | NOARGS, Merge.ARRAY), _types),
    Command(DirectiveSpec("charset", _ANY | HTTP_LIF, TAKE1), _text),
    Command(DirectiveSpec("gzip", _ANY | HTTP_LIF, FLAG), _flag),
)

MODULE = Module("ngx_http_header_filter_module", COMMANDS, post_read=_handled)
