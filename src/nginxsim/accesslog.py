"""Reading client populations and real traffic: a list of addresses or an nginx access log.

Each line is one of: a bare address (IPv4, IPv6 or `unix:`); nginx's `combined` or `common`
log format (`$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent`,
then `"$http_referer" "$http_user_agent"` and, as often configured, anything after); or a JSON
object (`log_format ... escape=json`) with an address under one of `ADDRESS_KEYS` and the
request as `request` or as method and URI keys. Formats may be mixed in one file.

A line that cannot be read is counted with its reason, never fatal: an access log always has
some (scanners' binary junk, truncated lines, a rotated file's partial last line).
"""

from __future__ import annotations

import json
import re
import socket
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

ADDRESS_KEYS = ("remote_addr", "client", "client_ip", "remote_ip", "ip", "addr")
METHOD_KEYS = ("method", "request_method")
URI_KEYS = ("request_uri", "uri", "path", "url")
HOST_KEYS = ("host", "http_host", "server_name", "vhost")
EXAMPLES = 5  # malformed lines quoted in a report

# `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent` ["ref" "ua"] ...
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_LINE = re.compile(
    r"(\S+) \S+ \S+ \[[^\]]*\] " + _QUOTED + r" (\d{3}|-) (?:\d+|-)(?P<combined> " + _QUOTED + " " + _QUOTED + ")?"
)
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)")
_METHOD = re.compile(r"[A-Z_-]{1,32}")


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One request of a log. `uri` is the request target as sent (nginx's escapes undone);
    `host` is None when the format does not record it; `status` is what nginx answered;
    `headers` the request headers the line records."""

    line: int
    client: str
    method: str
    uri: str
    host: str | None
    status: int | None
    format: str
    scheme: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # Referer and User-Agent of `combined`, `http_*` of JSON


@dataclass
class ParsedLog:
    """What a file gave: its clients (one per usable line, in order), the requests when asked
    for, and the lines that could not be used, by reason, with the first few quoted."""

    lines: int = 0
    clients: list[str] = field(default_factory=list)
    records: list[LogRecord] = field(default_factory=list)
    formats: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, reason, text)

    @property
    def skipped(self) -> int:
        return sum(self.malformed.values())

    def note(self) -> str | None:
        """One line for a report: how many lines were skipped, and why."""
        if not self.skipped:
            return None
        why = ", ".join(f"{n} {reason}" for reason, n in self.malformed.most_common())
        return f"{self.skipped} of {self.lines} lines skipped ({why})"

    def to_dict(self) -> dict[str, object]:
        return {"lines": self.lines, "used": len(self.records) or len(self.clients), "formats": dict(self.formats),
                "skipped": self.skipped, "reasons": dict(self.malformed),
                "examples": [{"line": n, "reason": r, "text": t} for n, r, t in self.examples]}

    def _skip(self, number: int, reason: str, text: str) -> None:
        self.malformed[reason] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append((number, reason, text[:200]))


def valid_address(text: str) -> bool:
    """An address nginx could show as `$remote_addr`: IPv4 (dotted quad), IPv6, or `unix:`."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except (OSError, ValueError):
            continue
        return True
    return text == "unix:"


def unescape(text: str) -> str:
    """Undo the log's escapes: nginx writes `"`, `\\` and bytes outside 0x20-0x7e as `\\xHH`;
    other servers write `\\"` and `\\\\`. Bytes that are not UTF-8 come back as surrogates."""
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        s = m.group(1)
        return chr(int(s[1:], 16)) if s[0] == "x" and len(s) == 3 else s

    raw = _ESCAPE.sub(one, text)
    return raw.encode("latin-1", "surrogateescape").decode("utf-8", "surrogateescape")


def parse(lines: Iterable[str], *, requests: bool = False) -> ParsedLog:
    """Read lines; `requests` also keeps each line's request (a line without one is then
    malformed), else only its client address is used."""
    out = ParsedLog()
    for number, raw in enumerate(lines, 1):
        out.lines += 1
        text = raw.strip()
        if not text or text.startswith("#"):  # blank lines and comments are not malformed
            continue
        if not requests and valid_address(text):  # the common case of a clients file first
            out.clients.append(text)
            out.formats["address"] += 1
            continue
        _line(out, number, text, requests)
    return out


def _line(out: ParsedLog, number: int, text: str, requests: bool) -> None:
    if text.startswith(("{", "[")):
        got = _json(text)
    else:
        m = _LINE.match(text)
        if m is None:
            reason = "an address without a request" if valid_address(text) else "not an address or a log line"
            out._skip(number, reason, text)
            return
        status = m.group(3)
        headers = []
        if m.group("combined"):
            referer, agent = unescape(m.group(5)), unescape(m.group(6))
            headers = [(name, v) for name, v in (("Referer", referer), ("User-Agent", agent)) if v != "-"]
        got = _Got(m.group(1), *_request(unescape(m.group(2))), None, int(status) if status != "-" else None, None,
                   tuple(headers), "combined" if m.group("combined") else "common")
    if isinstance(got, str):
        out._skip(number, got, text)
        return
    if not valid_address(got.client):
        out._skip(number, "bad client address", text)
        return
    if requests:
        if got.method is None or got.uri is None:
            out._skip(number, "no request line", text)
            return
        out.records.append(LogRecord(number, got.client, got.method, got.uri, got.host, got.status, got.format,
                                     got.scheme, got.headers))
    out.clients.append(got.client)
    out.formats[got.format] += 1


class _Got(NamedTuple):
    client: str
    method: str | None
    uri: str | None
    host: str | None
    status: int | None
    scheme: str | None
    headers: tuple[tuple[str, str], ...]
    format: str


def _request(line: str) -> tuple[str | None, str | None]:
    """Split `$request` ("GET /x HTTP/1.1", or "GET /x" for HTTP/0.9): (method, URI), both None
    when it is not a request line (`-`, a TLS handshake sent to a plain port...)."""
    parts = line.split(" ")
    if len(parts) in (2, 3) and _METHOD.fullmatch(parts[0]) and parts[1] and (
            len(parts) == 2 or parts[2].startswith("HTTP/")):
        return parts[0], parts[1]
    return None, None


def _json(text: str) -> _Got | str:
    """A JSON line; `http_*` keys other than the Host's are request headers (`http_user_agent`
    is User-Agent), as nginx names them."""
    try:
        obj = json.loads(text)
    except ValueError:
        return "invalid JSON"
    if not isinstance(obj, dict):
        return "JSON that is not an object"
    client = _first(obj, ADDRESS_KEYS)
    if client is None:
        return "JSON without a client address"
    status_text = obj.get("status")
    status = int(status_text) if isinstance(status_text, (int, str)) and str(status_text).isdigit() else None
    request = _first(obj, ("request",))
    if request is not None:
        method, uri = _request(unescape(request))
    else:
        method, uri = _first(obj, METHOD_KEYS), _first(obj, URI_KEYS)
        uri = unescape(uri) if uri is not None else None
    headers = tuple((_header_name(k[5:]), unescape(v)) for k, v in obj.items()
                    if k.startswith("http_") and k != "http_host" and isinstance(v, str) and v not in ("", "-"))
    return _Got(client, method, uri, _first(obj, HOST_KEYS), status, _first(obj, ("scheme",)), headers, "json")


def _header_name(var: str) -> str:
    """`user_agent` -> `User-Agent` (nginx's `$http_` names, back to a header)."""
    return "-".join(w.capitalize() for w in var.split("_"))


def _first(obj: dict[str, object], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = obj.get(k)
        if isinstance(v, str) and v and v != "-":
            return v
    return None


def read(path: str, *, requests: bool = False) -> ParsedLog:
    """`parse` a file (`-` for stdin); undecodable bytes are kept as surrogates."""
    if path == "-":
        return parse(sys.stdin, requests=requests)
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse(f, requests=requests)
