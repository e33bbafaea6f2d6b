"""A strict parser and checker for the subset of the Hurl file format (https://hurl.dev) the PSF uses.

Supported, as Hurl defines them:

- comments (``# ...`` on their own line or after an assert) and blank lines;
- a request line ``METHOD URL`` (the URL may use ``{{variables}}``) and request headers ``Name: value``;
- a response line ``HTTP <status>`` (also ``HTTP/1.0``, ``HTTP/1.1``, ``HTTP/2``, ``HTTP/3``,
  status ``*`` for any), which asserts the status;
- an ``[Asserts]`` section with ``header "<name>" == "<string>"`` and ``body contains "<string>"``.

Anything else (request sections and bodies, captures, implicit response-header asserts, other
queries or predicates, unquoted escapes) raises `HurlError` naming the file and line: an expectation
this module cannot evaluate must never be dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_METHOD = re.compile(r"([A-Z]+)[ \t]+(\S.*?)[ \t]*")
_RESPONSE = re.compile(r"HTTP(?:/1\.0|/1\.1|/2|/3)?[ \t]+(\d{3}|\*)[ \t]*")
_HEADER = re.compile(r"([A-Za-z0-9!#$%&'*+.^_`|~-]+)[ \t]*:[ \t]*(.*?)[ \t]*")
_SECTION = re.compile(r"\[([A-Za-z]+)\][ \t]*")
_TEMPLATE = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\}\}")
_WORD = re.compile(r"[ \t]*([^ \t\"]+)")
_UNICODE = re.compile(r"u\{([0-9a-fA-F]{1,6})\}")
_QUOTED_ESCAPES = {'"': '"', "\\": "\\", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class HurlError(ValueError):
    """A construct outside the supported subset, or a malformed file (message: ``file:line: ...``)."""


_Fail = Callable[[str], HurlError]


@dataclass(frozen=True, slots=True)
class Assert:
    """One explicit assert: `query` is ``header`` (with `name`) or ``body``; `op` ``==`` or ``contains``."""

    query: str
    name: str | None
    op: str
    value: str
    line: int

    def __str__(self) -> str:
        q = f'header "{self.name}"' if self.query == "header" else self.query
        return f'{q} {self.op} "{self.value}"'


@dataclass(frozen=True, slots=True)
class Entry:
    """One request of a spec file and what its response must satisfy."""

    file: Path
    line: int
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    status: int | None = None  # None: no response section, or ``HTTP *``
    asserts: tuple[Assert, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file.name}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.method} {self.url}"


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response as the checks see it (header names compared case-insensitively)."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def header_values(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A failed expectation: `kind` is ``status``, ``header <Name>`` or ``body``."""

    kind: str
    expected: str
    actual: str
    line: int

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: expected {self.expected}, got {self.actual}"


@dataclass(slots=True)
class _Builder:
    file: Path
    line: int
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None
    asserts: list[Assert] = field(default_factory=list)

    def build(self) -> Entry:
        return Entry(
            self.file, self.line, self.method, self.url, tuple(self.headers), self.status, tuple(self.asserts)
        )


def parse_file(path: Path, variables: Mapping[str, str]) -> list[Entry]:
    """Every entry of the Hurl file at `path`, with ``{{name}}`` replaced from `variables`."""
    return parse(path.read_text(encoding="utf-8"), variables, path)


def parse(text: str, variables: Mapping[str, str], file: Path = Path("<string>")) -> list[Entry]:
    """Every entry of a Hurl text; raises `HurlError` on anything outside the supported subset."""
    entries: list[Entry] = []
    cur: _Builder | None = None
    state = "start"  # start | request | response | asserts
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip(" \t")
        if not line or line.startswith("#"):
            continue

        def fail(msg: str, lineno: int = lineno) -> HurlError:
            return HurlError(f"{file}:{lineno}: {msg}")

        m = _METHOD.fullmatch(line)
        if m and not _RESPONSE.fullmatch(line):
            if cur is not None:
                entries.append(cur.build())
            cur, state = _Builder(file, lineno, m.group(1), _unquoted(m.group(2), variables, fail)), "request"
            continue
        if cur is None:
            raise fail(f"expected a request line (METHOD URL), got {line!r}")
        r = _RESPONSE.fullmatch(line)
        if r and state == "request":
            cur.status = None if r.group(1) == "*" else int(r.group(1))
            state = "response"
            continue
        s = _SECTION.fullmatch(line)
        if s:
            if state == "response" and s.group(1) == "Asserts":
                state = "asserts"
                continue
            raise fail(f"section [{s.group(1)}] is not supported here")
        if state == "asserts":
            cur.asserts.append(_assert(line, lineno, variables, fail))
            continue
        h = _HEADER.fullmatch(line)
        if h and state == "request":
            cur.headers.append((h.group(1), _unquoted(h.group(2), variables, fail)))
            continue
        if h and state == "response":
            raise fail(f"implicit response header assert {line!r} is not supported")
        raise fail(f"not understood ({state} section): {line!r}")
    if cur is not None:
        entries.append(cur.build())
    return entries


def _assert(line: str, lineno: int, variables: Mapping[str, str], fail: _Fail) -> Assert:
    """``header "<name>" == "<s>"`` or ``body contains "<s>"``, optionally followed by a comment."""
    pos = 0

    def word() -> str:
        nonlocal pos
        m = _WORD.match(line, pos)
        if m is None:
            raise fail(f"assert not understood: {line!r}")
        pos = m.end()
        return m.group(1)

    def quoted() -> str:
        nonlocal pos
        value, pos = _quoted(line, pos, variables, fail)
        return value

    query = word()
    name: str | None = None
    if query == "header":
        name = quoted()
    elif query != "body":
        raise fail(f"assert query {query!r} is not supported (only header, body): {line!r}")
    op = word()
    if (query, op) not in (("header", "=="), ("body", "contains")):
        raise fail(f"predicate {op!r} on {query} is not supported: {line!r}")
    value = quoted()
    rest = line[pos:].strip(" \t")
    if rest and not rest.startswith("#"):
        raise fail(f"unexpected text after the assert: {rest!r}")
    return Assert(query, name, op, value, lineno)


def _quoted(line: str, pos: int, variables: Mapping[str, str], fail: _Fail) -> tuple[str, int]:
    """A Hurl quoted string starting at `pos` (after blanks): escapes and templates resolved."""
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    if pos >= len(line) or line[pos] != '"':
        raise fail(f"expected a quoted string at column {pos + 1}: {line!r}")
    out: list[str] = []
    i = pos + 1
    while i < len(line):
        c = line[i]
        if c == '"':
            return _expand("".join(out), variables, fail), i + 1
        if c == "\\":
            nxt = line[i + 1 : i + 2]
            u = _UNICODE.match(line, i + 1)
            if nxt in _QUOTED_ESCAPES:
                out.append(_QUOTED_ESCAPES[nxt])
                i += 2
            elif u:
                out.append(chr(int(u.group(1), 16)))
                i = u.end()
            else:
                raise fail(f"unknown escape \\{nxt} in a quoted string: {line!r}")
            continue
        out.append(c)
        i += 1
    raise fail(f"unterminated quoted string: {line!r}")


def _unquoted(text: str, variables: Mapping[str, str], fail: _Fail) -> str:
    """A URL or header value: templates resolved; escapes and inline comments refused."""
    if "\\" in text or "#" in text:
        raise fail(f"escapes and inline comments in unquoted values are not supported: {text!r}")
    return _expand(text, variables, fail)


def _expand(text: str, variables: Mapping[str, str], fail: _Fail) -> str:
    """Replace ``{{name}}`` templates; an undefined name or a stray brace pair is an error."""
    if "{{" in _TEMPLATE.sub("", text) or "}}" in _TEMPLATE.sub("", text):
        raise fail(f"malformed template in {text!r}")
    undefined = [n for n in _TEMPLATE.findall(text) if n not in variables]
    if undefined:
        raise fail(f"undefined variable {undefined[0]!r} (defined: {', '.join(sorted(variables)) or 'none'})")
    return _TEMPLATE.sub(lambda m: variables[m.group(1)], text)


def check(entry: Entry, response: Response) -> list[Mismatch]:
    """Hurl's verdict on `response`: the status line first, then each assert in order."""
    out: list[Mismatch] = []
    if entry.status is not None and response.status != entry.status:
        out.append(Mismatch("status", str(entry.status), str(response.status), entry.line))
    for a in entry.asserts:
        if a.query == "header":
            assert a.name is not None
            values = response.header_values(a.name)
            if values != [a.value]:
                got = "no such header" if not values else " | ".join(repr(v) for v in values)
                out.append(Mismatch(f"header {a.name}", repr(a.value), got, a.line))
        elif response.body is None or a.value not in response.body:
            got = "no body" if response.body is None else repr(_clip(response.body))
            out.append(Mismatch("body", f"contains {a.value!r}", got, a.line))
    return out


def _clip(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n] + "..."
