"""nginx's config tokenizer with source offsets, so the harness can edit a config in place.

Why not crossplane's parse + build: its builder re-quotes with Python's ``repr`` (a U+2028 in a
quoted string comes back as the six characters ``\\u2028``), its reader replaces bytes that are not
UTF-8 with U+FFFD, and the rebuilt file has different line numbers, so `nginx -t` would report
errors at other places than in the user's file. Editing single tokens in the original text keeps
every other byte and every line number as written.

The scanner follows ``ngx_conf_read_token`` (1.22.1): words end at space, ``;`` or ``{`` (never at
``}``), ``${`` does not open a block, a backslash escapes the next character, a quoted word must be
followed by a space, ``;``, ``{`` or ``)``. It is tolerant: on a syntax error it stops and returns
what it read, leaving the error for nginx itself to report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPACE = " \t\r\n"
_BARE_STOP = re.compile(r"[ \t\r\n;{\\$]")
_UNESCAPE = re.compile(r"\\([\"'\\tnr])")
_UNESCAPED = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_SAFE_BARE = re.compile(r"[^\s;{}\"'\\#$]+")


@dataclass(frozen=True, slots=True)
class Token:
    """One word: nginx's value (escapes resolved) and where it is written (quotes included)."""

    value: str
    start: int
    end: int
    line: int


@dataclass(slots=True)
class Stmt:
    """A directive: its words, its extent in the text, and its block when it has one.

    `body` is the offset just after ``{`` (where text can be inserted inside the block) and
    `end` the offset just after the closing ``;`` or ``}``.
    """

    words: list[Token]
    end: int
    body: int | None = None
    block: list[Stmt] | None = None

    @property
    def name(self) -> str:
        return self.words[0].value

    @property
    def args(self) -> list[Token]:
        return self.words[1:]

    @property
    def start(self) -> int:
        return self.words[0].start


def unescape(raw: str) -> str:
    """The value nginx stores for a word's raw text (ngx_conf_read_token's copy loop)."""
    if "\\" not in raw:
        return raw
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], raw)


def quote(value: str) -> str:
    """Write `value` so that nginx reads it back unchanged."""
    if _SAFE_BARE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse(text: str) -> list[Stmt]:
    """The statements of one file; block statements hold their children.

    A block left open by a syntax error or the end of the file keeps what was read inside it.
    """
    top: list[Stmt] = []
    stack: list[tuple[list[Stmt], Stmt | None]] = [(top, None)]
    words: list[Token] = []
    i, n, line = 0, len(text), 1
    while True:
        while i < n and (text[i] in _SPACE or text[i] == "#"):
            if text[i] == "#":
                nl = text.find("\n", i)
                i = n if nl < 0 else nl
                continue
            if text[i] == "\n":
                line += 1
            i += 1
        if i >= n:
            return top
        ch = text[i]
        if ch in ";{":
            if not words:
                return top
            stmt = Stmt(words, i + 1)
            stack[-1][0].append(stmt)
            if ch == "{":
                stmt.body, stmt.block = i + 1, []
                stack.append((stmt.block, stmt))
            words = []
            i += 1
            continue
        if ch == "}":
            closing = stack[-1][1]
            if words or closing is None:
                return top
            closing.end = i + 1
            stack.pop()
            i += 1
            continue
        start = i
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            if j >= n or (j + 1 < n and text[j + 1] not in _SPACE + ";{)"):
                return top
            raw, i = text[start + 1 : j], j + 1
        else:
            j = i
            while j < n:
                m = _BARE_STOP.search(text, j)
                if m is None:
                    j = n
                    break
                j = m.start()
                c = text[j]
                if c == "\\":
                    j += 2
                elif c == "$":
                    j += 1
                    while j < n and text[j] == "{":
                        j += 1
                else:
                    break
            j = min(j, n)
            raw, i = text[start:j], j
        words.append(Token(unescape(raw), start, i, line))
        line += text.count("\n", start, i)
