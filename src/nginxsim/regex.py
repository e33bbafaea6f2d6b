"""nginx's regular expressions: PCRE2 called the way nginx 1.22.1 calls it.

Mirrors `ngx_regex_compile` / `ngx_regex_exec` (src/core/ngx_regex.c) and what
`ngx_http_regex_compile` / `ngx_http_regex_exec` (src/http/ngx_http_variables.c) keep of a
match.  Patterns are compiled as bytes with no options but `PCRE2_CASELESS` (no UTF, no UCP:
`\\w`, `\\d`, caseless folding and `.` work on single bytes; `(*UTF)` in the pattern turns UTF
on, as in nginx), and matched unanchored from offset 0 with default limits.

Python's `re` is not an option: it rejects `(?<n>..)`, `\\z`, `\\h`, `\\K`, `(*VERB)`s, `\\Q..\\E`,
recursion..., and reads `\\v` differently.  Two engines are available:

* ``system``: the host's ``libpcre2-8`` through ctypes.  Preferred, because it is the library
  an nginx built on this host links (Debian 12's nginx 1.22.1 links libpcre2 10.42), so syntax,
  `nginx -t` messages and error offsets match exactly.
* ``bundled``: the copy of PCRE2 (10.47) inside the `pcre2` package, used when the host has no
  libpcre2.  It differs from 10.42 in corner cases: `\\C` is rejected, `a{,3}` and `a{ 2 }` are
  quantifiers (literals in 10.42), variable-length lookbehind and `(?[..])` are accepted, `\\x`
  not followed by a hex digit is an error, and several error texts/offsets changed.
"""

from __future__ import annotations

import ctypes
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ENGINE",
    "Engine",
    "Match",
    "Regex",
    "RegexError",
    "RegexMatchError",
    "available_engines",
    "compile_regex",
    "server_name_caseless",
]

_CASELESS = 0x00000008  # PCRE2_CASELESS, the only option nginx sets (NGX_REGEX_CASELESS)
_ALT_BSUX = 0x00000002  # set by the pcre2 package; nginx does not set it
_NEVER_BACKSLASH_C = 0x00100000  # idem
_JIT_COMPLETE = 0x00000001
_INFO_CAPTURECOUNT, _INFO_NAMECOUNT, _INFO_NAMEENTRYSIZE, _INFO_NAMETABLE = 4, 17, 18, 19
_CONFIG_VERSION = 11
_ERROR_NOMATCH = -1
_UNSET = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1  # PCRE2_UNSET as read from the ovector

_NGX_MAX_CONF_ERRSTR = 1024  # size of the buffer ngx_regex_compile formats its error into


class RegexError(Exception):
    """A pattern PCRE2 refuses; `message` is nginx's text, e.g.
    ``pcre2_compile() failed: missing closing parenthesis in "(abc"``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RegexMatchError(Exception):
    """`pcre2_match()` failed (match limit, invalid UTF-8 under `(*UTF)`, ...).

    nginx logs `message` at alert level and the regex user returns NGX_ERROR, which in practice
    ends the request with 500.  `rc` is PCRE2's negative return code.
    """

    def __init__(self, rc: int, message: str) -> None:
        super().__init__(message)
        self.rc = rc
        self.message = message


_Exec = Callable[[bytes], "list[int] | None"]
"""Runs a compiled pattern: nginx's `r->captures[0 : 2*rc]` (-1 for unset), None for no
match; raises `_ExecFailed` for any other negative return code."""


class _ExecFailed(Exception):
    def __init__(self, rc: int) -> None:
        super().__init__(rc)
        self.rc = rc


class Engine(ABC):
    """A PCRE2 library: `compile` returns (exec, capture count, name table) or raises
    `RegexError` with the message formatted by `_compile_error`."""

    name: str
    version: str

    @abstractmethod
    def compile(
        self, pattern: bytes, options: int, jit: bool
    ) -> tuple[_Exec, int, tuple[tuple[str, int], ...]]:
        """Compile `pattern` with PCRE2 `options`, JIT-compiling it if asked."""

    def __repr__(self) -> str:
        return f"<{self.name} PCRE2 {self.version}>"


def _compile_error(message: str, pattern: bytes, offset: int) -> RegexError:
    """`ngx_regex_compile` (PCRE2 branch): the tail after `at` is printed with `%s`, so it
    stops at a NUL; the whole text is cut to the NGX_MAX_CONF_ERRSTR buffer."""
    head = b"pcre2_compile() failed: " + message.encode() + b' in "' + pattern + b'"'
    if offset != len(pattern):
        head += b' at "' + pattern[offset:].split(b"\0", 1)[0] + b'"'
    return RegexError(head[:_NGX_MAX_CONF_ERRSTR].decode("utf-8", "surrogateescape"))


class _MatchData:
    """A PCRE2 match data and a view of its ovector, freed with the object."""

    __slots__ = ("_lib", "md", "pairs", "ovector")

    def __init__(self, lib: ctypes.PyDLL, pairs: int) -> None:
        self._lib, self.pairs = lib, pairs
        self.md = ctypes.c_void_p(lib.pcre2_match_data_create_8(pairs, None))
        if not self.md:  # pragma: no cover
            raise MemoryError
        ov = (ctypes.c_size_t * (2 * pairs)).from_address(lib.pcre2_get_ovector_pointer_8(self.md))
        self.ovector = memoryview(ov).cast("B").cast("N")  # type: ignore[call-overload]  # "N": size_t

    def __del__(self) -> None:
        self.ovector.release()
        self._lib.pcre2_match_data_free_8(self.md)


class _ThreadState(threading.local):
    """One match data per thread, replaced by a larger one on demand, like nginx's single
    `ngx_regex_match_data` (which nginx sizes for the largest capture count in the config)."""

    def __init__(self, lib: ctypes.PyDLL) -> None:
        self.data = _MatchData(lib, 1)


class _SystemEngine(Engine):
    """The host's libpcre2-8 through ctypes (`PyDLL`: calls keep the GIL, they are short)."""

    name = "system"

    def __init__(self, lib: ctypes.PyDLL) -> None:
        sz, vp, u32 = ctypes.c_size_t, ctypes.c_void_p, ctypes.c_uint32
        self._lib = lib
        lib.pcre2_compile_8.restype = vp
        lib.pcre2_compile_8.argtypes = [
            ctypes.c_char_p,
            sz,
            u32,
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(sz),
            vp,
        ]
        lib.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p, sz]
        lib.pcre2_pattern_info_8.argtypes = [vp, u32, vp]
        lib.pcre2_jit_compile_8.argtypes = [vp, u32]
        lib.pcre2_code_free_8.argtypes = [vp]
        lib.pcre2_match_data_create_8.restype = vp
        lib.pcre2_match_data_create_8.argtypes = [u32, vp]
        lib.pcre2_match_data_free_8.argtypes = [vp]
        lib.pcre2_get_ovector_pointer_8.restype = vp
        lib.pcre2_get_ovector_pointer_8.argtypes = [vp]
        # Called with ready-made ctypes objects and no prototype: converting seven arguments
        # through `argtypes` would double the cost of a search.
        self._match = lib["pcre2_match_8"]
        self._match.restype = ctypes.c_int
        buf = ctypes.create_string_buffer(64)
        lib.pcre2_config_8.argtypes = [u32, vp]
        lib.pcre2_config_8(_CONFIG_VERSION, buf)
        self.version = buf.value.decode().split()[0]
        self._tls = _ThreadState(lib)

    def _info(self, code: int, what: int, ctype: Any) -> Any:
        out = ctype()
        if self._lib.pcre2_pattern_info_8(code, what, ctypes.byref(out)) < 0:  # pragma: no cover
            raise RegexError(f"pcre2_pattern_info() failed for {what}")
        return out.value

    def compile(
        self, pattern: bytes, options: int, jit: bool
    ) -> tuple[_Exec, int, tuple[tuple[str, int], ...]]:
        lib = self._lib
        err, off = ctypes.c_int(), ctypes.c_size_t()
        code: int | None = lib.pcre2_compile_8(
            pattern, len(pattern), options, ctypes.byref(err), ctypes.byref(off), None
        )
        if not code:
            buf = ctypes.create_string_buffer(128)  # nginx's errstr[128]
            lib.pcre2_get_error_message_8(err.value, buf, 128)
            raise _compile_error(buf.value.decode(), pattern, off.value)
        holder = _CodeHolder(lib, code)
        if jit:
            lib.pcre2_jit_compile_8(code, _JIT_COMPLETE)  # failure: nginx carries on without JIT
        ncaptures = self._info(code, _INFO_CAPTURECOUNT, ctypes.c_uint32)
        table: list[tuple[str, int]] = []
        count = self._info(code, _INFO_NAMECOUNT, ctypes.c_uint32)
        if count:
            size = self._info(code, _INFO_NAMEENTRYSIZE, ctypes.c_uint32)
            raw = ctypes.string_at(self._info(code, _INFO_NAMETABLE, ctypes.c_void_p), count * size)
            for i in range(0, count * size, size):
                entry = raw[i : i + size]
                table.append((entry[2:].split(b"\0", 1)[0].decode("latin-1"), entry[0] << 8 | entry[1]))

        pairs = ncaptures + 1
        tls, match, size_t, zero = self._tls, self._match, ctypes.c_size_t, ctypes.c_size_t(0)

        def exec_(subject: bytes) -> list[int] | None:
            if subject.__class__ is not bytes:  # without a prototype, ctypes would pass a str as wchar_t*
                raise TypeError(f"subject must be bytes, not {type(subject).__name__}")
            data = tls.data
            if data.pairs < pairs:
                data = tls.data = _MatchData(lib, pairs)
            rc: int = match(holder.code, subject, size_t(len(subject)), zero, 0, data.md, None)
            if rc < 0:
                if rc == _ERROR_NOMATCH:
                    return None
                raise _ExecFailed(rc)
            offsets: list[int] = data.ovector[: 2 * rc].tolist()
            if _UNSET in offsets:
                return [-1 if o == _UNSET else o for o in offsets]
            return offsets

        return exec_, ncaptures, tuple(table)


class _CodeHolder:
    """Frees the compiled pattern with its last user."""

    __slots__ = ("_lib", "code")

    def __init__(self, lib: ctypes.PyDLL, code: int) -> None:
        self._lib, self.code = lib, ctypes.c_void_p(code)

    def __del__(self) -> None:
        self._lib.pcre2_code_free_8(self.code)


class _BundledEngine(Engine):
    """PCRE2 inside the `pcre2` package.  Its low-level `_cy` layer is used because the public
    `compile` forces PCRE2_ALT_BSUX (`\\x{41}` would be a literal) and its Match is slow."""

    name = "bundled"

    def __init__(self) -> None:
        from pcre2 import _EMPTY_MATCH_CONTEXT, _cy

        self._cy, self._ctx = _cy, _EMPTY_MATCH_CONTEXT
        self.version = str(_cy.__libpcre2_version__).split()[0]

    def compile(
        self, pattern: bytes, options: int, jit: bool
    ) -> tuple[_Exec, int, tuple[tuple[str, int], ...]]:
        cy, ctx = self._cy, self._ctx
        try:
            code = cy.compile(pattern, options, _ALT_BSUX | _NEVER_BACKSLASH_C)
        except cy.PatternError as e:
            raise _compile_error(cy.LibraryError(e.code).msg, pattern, e.pos) from None
        if jit:
            cy.jit_compile(code)
        ncaptures = int(cy.pattern_capture_count(code))
        table = tuple(sorted(cy.pattern_name_dict(code).items()))
        span, match, groups = cy.match_substring_span_bynumber, cy.match, range(ncaptures + 1)

        def exec_(subject: bytes) -> list[int] | None:
            try:
                md = match(code, subject, len(subject), 0, ctx)[0]
            except cy.LibraryError as e:
                raise _ExecFailed(e.code) from None
            if md is None:
                return None
            offsets: list[int] = []
            for g in groups:
                offsets.extend(span(md, subject, g))
            while offsets[-1] == -1:  # rc counts up to the highest group that was set
                del offsets[-2:]
            return offsets

        return exec_, ncaptures, table


def _load_system() -> Engine | None:
    for soname in ("libpcre2-8.so.0", "libpcre2-8.0.dylib", "libpcre2-8.dylib"):
        try:
            return _SystemEngine(ctypes.PyDLL(soname))
        except (OSError, AttributeError):
            continue
    return None


def _load_bundled() -> Engine | None:
    try:
        return _BundledEngine()
    except ImportError:
        return None


_ENGINES: tuple[Engine, ...] = tuple(e for e in (_load_system(), _load_bundled()) if e is not None)
if not _ENGINES:  # pragma: no cover
    raise ImportError("nginxsim.regex needs libpcre2-8 on the host or the pcre2 package")
ENGINE: Engine = _ENGINES[0]
"""The engine `compile_regex` uses by default: the host's libpcre2 if present."""


def available_engines() -> tuple[Engine, ...]:
    """All loadable engines, preferred first."""
    return _ENGINES


class Match:
    """A successful `Regex.search`, holding what nginx keeps of it.

    `offsets` is `r->captures[0 : r->ncaptures]`: start/end pairs up to the highest group that
    took part (PCRE2's return code), -1 for unset groups.
    """

    __slots__ = ("regex", "subject", "offsets")

    def __init__(self, regex: Regex, subject: bytes, offsets: list[int]) -> None:
        self.regex, self.subject, self.offsets = regex, subject, offsets

    def group(self, n: int) -> bytes | None:
        """Group n's bytes; None if unset or past the groups set (nginx then yields "")."""
        o = self.offsets
        if 2 * n + 1 >= len(o) or o[2 * n] < 0:
            return None
        return self.subject[o[2 * n] : o[2 * n + 1]]

    @property
    def captures(self) -> tuple[bytes | None, ...]:
        """Groups 0..ncaptures (all of the pattern's groups), None for unset ones."""
        s, o = self.subject, self.offsets
        caps: list[bytes | None] = []
        for i in range(0, len(o), 2):  # a plain loop: twice as fast as a comprehension over zip
            start = o[i]
            caps.append(None if start < 0 else s[start : o[i + 1]])
        caps += [None] * (self.regex.ncaptures + 1 - len(caps))
        return tuple(caps)

    @property
    def named(self) -> dict[str, bytes | None]:
        """Named groups as `ngx_http_regex_exec` sets their variables: in name-table order, a
        later entry of a duplicated name (`(?J)`) overwriting an earlier one.  None means unset,
        which nginx turns into an empty, found value."""
        return {name: self.group(n) for name, n in self.regex.name_table}

    def __repr__(self) -> str:
        return f"<Match {self.regex.source!r} {self.captures!r}>"


@dataclass(frozen=True)
class Regex:
    """A compiled nginx regex.

    `name_table` is PCRE2's name table: (name, group) sorted by name; with `(?J)` a name may
    repeat (the bundled engine only sees its last entry, the one whose value nginx keeps).
    """

    source: str
    caseless: bool
    ncaptures: int
    name_table: tuple[tuple[str, int], ...]
    engine: Engine = field(repr=False, compare=False)
    _exec: _Exec = field(repr=False, compare=False)

    @property
    def names(self) -> tuple[str, ...]:
        """The distinct group names, in name-table order (each becomes a `$name` variable)."""
        return tuple(dict.fromkeys(name for name, _ in self.name_table))

    def search(self, subject: bytes) -> Match | None:
        """`ngx_regex_exec`: first match anywhere in `subject`, None if there is none."""
        try:
            offsets = self._exec(subject)
        except _ExecFailed as e:
            raise RegexMatchError(e.rc, self._match_error(e.rc, subject)) from None
        return None if offsets is None else Match(self, subject, offsets)

    def _match_error(self, rc: int, subject: bytes) -> str:
        """The alert `ngx_http_regex_exec` logs."""
        text = subject.decode("utf-8", "surrogateescape")
        return f'pcre2_match() failed: {rc} on "{text}" using "{self.source}"'


def compile_regex(
    source: str, *, caseless: bool = False, jit: bool = False, engine: Engine | None = None
) -> Regex:
    """`ngx_regex_compile`: compile config text (as its UTF-8 bytes, surrogate escapes giving
    back the file's raw bytes) with PCRE2_CASELESS for `~*`.

    `jit` mirrors `pcre_jit on`: results are identical except where a match hits PCRE2's
    resource limits, which the JIT counts differently.  Raises RegexError with nginx's message.
    """
    eng = engine or ENGINE
    pattern = source.encode("utf-8", "surrogateescape")
    exec_, ncaptures, table = eng.compile(pattern, _CASELESS if caseless else 0, jit)
    return Regex(source, caseless, ncaptures, table, eng, exec_)


def server_name_caseless(source: str) -> bool:
    """`ngx_http_core_server_name`: a `~regex` server name is compiled caseless iff its text
    (after `~`) holds an ASCII uppercase letter; host names are lowercased before matching."""
    return any("A" <= ch <= "Z" for ch in source)
