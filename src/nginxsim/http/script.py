"""Strings with variables, compiled once: `ngx_http_script_compile` / `ngx_http_complex_value`.

A config string is split at compile time into literal, variable and capture parts, so a
request only concatenates. Name rules follow `ngx_http_script_compile`: `$1`-`$9` are single-
digit captures, a name is the longest `[A-Za-z0-9_]` run, `${name}` brackets it, there is no
escape for `$`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..errors import ConfigError
from .variables import Variable, VariableTable

if TYPE_CHECKING:
    from .context import Context

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

# ngx_escape_uri(NGX_ESCAPE_ARGS): bytes a capture is escaped with inside args/redirect parts.
_ARGS_ESCAPE = frozenset(range(0x00, 0x21)) | frozenset(b'"#%&+;<>?\\^`{|}') | frozenset(range(0x7F, 0x100))


def escape_args(data: bytes) -> bytes:
    """`ngx_escape_uri(..., NGX_ESCAPE_ARGS)` with uppercase hex."""
    if not any(c in _ARGS_ESCAPE for c in data):
        return data
    return b"".join(b"%%%02X" % c if c in _ARGS_ESCAPE else bytes((c,)) for c in data)


# Part kinds: a literal (bytes), a variable, or a capture number.
_LIT, _VAR, _CAP = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Complex:
    """A compiled string. `const` is set when it has no variables (the common fast case)."""

    source: str
    parts: tuple[tuple[int, object], ...]
    const: bytes | None
    variables: tuple[Variable, ...] = ()
    plain: bool = False  # no captures, only cacheable variables: one concatenation, no flush, no recopy

    def settle(self) -> None:
        """Once every variable is resolved (`build_plan`): mark the strings that need none of
        nginx's flush/recopy subtleties, so `eval` can take the short way."""
        plain = all(kind == _VAR and val.cacheable or kind == _LIT for kind, val in self.parts)  # type: ignore[attr-defined]
        object.__setattr__(self, "plain", plain)

    @property
    def has_captures(self) -> bool:
        return any(k == _CAP for k, _ in self.parts)

    def pieces(self) -> list[bytes | Variable]:
        """Its literal texts and variables in order (for a string without captures)."""
        assert not self.has_captures
        return [val for _, val in self.parts]  # type: ignore[misc]

    def eval(self, r: Context, escape_captures: bool = False, script: bool = False) -> bytes:
        """`ngx_http_complex_value`: flush the non-cacheable variables, then concatenate, each
        evaluated at most once. `script`: a rewrite-module script (set, if, rewrite) instead,
        which reads every reference afresh (`ngx_http_get_flushed_variable`). Captures are
        ARGS-escaped when asked and the URI was quoted."""
        if self.const is not None:
            return self.const
        if self.plain:  # equivalent to the general path when nothing is volatile or captured
            get_indexed = r.get_indexed
            return b"".join([val if kind == _LIT else get_indexed(val) or b"" for kind, val in self.parts])  # type: ignore[misc, arg-type]
        if r.volatile and not script:
            for var in self.variables:
                if not var.cacheable:
                    r.volatile.pop(var.index, None)
        get = r.get if script else r.get_indexed
        out: list[bytes] = []
        measured = None  # the captures the first `$N` was taken from
        volatile = stale = False  # a non-cacheable variable was read; a variable came after it
        for kind, val in self.parts:
            if kind == _LIT:
                out.append(val)  # type: ignore[arg-type]
            elif kind == _VAR:
                stale = volatile
                out.append(get(val) or b"")  # type: ignore[arg-type]
                volatile = volatile or not val.cacheable  # type: ignore[attr-defined]
            else:
                if measured is None:
                    measured = r.captures
                out.append(_capture(r, val, escape_captures))  # type: ignore[arg-type]
        if (volatile if script else stale) or (measured is not None and r.captures is not measured):
            return self._copied(r, out, escape_captures, script)
        return b"".join(out)

    def _copied(self, r: Context, measured: list[bytes], escape_captures: bool, script: bool) -> bytes:
        """The copy pass, when it may differ from the length pass just made: it reads each
        variable again (a later map may have re-evaluated a volatile one; a script evaluates
        volatile ones afresh, regexes and all) and every `$N` from the captures a later regex
        left (`"$1$map"`).
        Plain 1.22.1 would send garbage or overrun the buffer; the oracle (Debian's 1.22.1 with
        nginx 1.31.3's `e->end` checks backported) cuts a copy that fits to its length and fails
        one that does not."""
        get = r.get if script else r.get_indexed
        copy = b"".join(
            part if kind == _LIT else _capture(r, val, escape_captures) if kind == _CAP  # type: ignore[arg-type]
            else get(val) or b""  # type: ignore[arg-type]
            for (kind, val), part in zip(self.parts, measured, strict=True)
        )
        if len(copy) > sum(map(len, measured)):
            raise NoBufferSpace()
        return copy


class NoBufferSpace(Exception):
    """`no buffer space in script copy` (`ngx_http_script_check_length`): the string evaluation
    fails; the request ends with 500 unless the caller treats the failure itself (a map or a
    split_clients key)."""

    message = "no buffer space in script copy"


def _capture(r: Context, n: int, escape: bool) -> bytes:
    """`$n`, ARGS-escaped when asked and the request's path was quoted."""
    c = r.capture(n)
    if not c:
        return b""
    return escape_args(c) if escape and r.quoted_uri else c


def compile_complex(text: str, table: VariableTable, d: Directive) -> Complex:
    """Split `text` into parts; config errors use nginx's wording and the directive's line."""
    if "$" not in text:
        b = text.encode("utf-8", "surrogateescape")
        return Complex(text, ((_LIT, b),) if b else (), b)
    parts: list[tuple[int, object]] = []
    lit: list[str] = []
    i, n = 0, len(text)

    def flush() -> None:
        if lit:
            parts.append((_LIT, "".join(lit).encode("utf-8", "surrogateescape")))
            lit.clear()

    while i < n:
        ch = text[i]
        if ch != "$":
            lit.append(ch)
            i += 1
            continue
        i += 1
        if i < n and "1" <= text[i] <= "9":
            flush()
            parts.append((_CAP, int(text[i])))
            i += 1
            continue
        bracket = i < n and text[i] == "{"
        if bracket:
            i += 1
            if i == n:  # "${" ends the string
                raise ConfigError("invalid variable name", d.file, d.line)
        start = i
        while i < n and text[i] in _NAME_CHARS:
            i += 1
        name = text[start:i]
        if bracket:
            if i >= n or text[i] != "}":
                raise ConfigError(f'the closing bracket in "{name}" variable is missing', d.file, d.line)
            i += 1
        if not name:
            raise ConfigError("invalid variable name", d.file, d.line)
        flush()
        parts.append((_VAR, table.ref(name, d)))
    flush()
    return Complex(text, tuple(parts), None, tuple(v for k, v in parts if isinstance(v, Variable)))
