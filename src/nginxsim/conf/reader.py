"""Read an nginx configuration into a directive tree, the way nginx 1.22.1 reads it.

This is nginx's own reader restated (src/core/ngx_conf_file.c), not crossplane's: crossplane's lexer
keeps escapes as two characters, ends a token at any ``}``, treats every Unicode space as a
separator and ignores nginx's 4096-byte token limit, so configs that nginx reads differently (or
rejects) would slip through. The tokenizer below mirrors ``ngx_conf_read_token`` byte for byte, the
block/file structure mirrors ``ngx_conf_parse`` and includes mirror ``ngx_conf_include``.

Conventions that follow from mirroring nginx:

- A directive's ``line`` is the line of the ``;`` or ``{`` that ends it: nginx reports every error
  about a directive (unknown, not allowed, invalid value, duplicate location...) at that line.
- File names are built like nginx builds them (conf dir + ``/`` + name, never normalised), so
  ``include ./a.conf`` reads ``/etc/nginx/./a.conf`` and error messages name that path.
- Blocks whose content nginx hands to a custom parser (``types``, ``map``, ``geo``,
  ``split_clients``, ``charset_map``) hold their lines as childless Directives (first word as the
  name); ``{`` inside them is an error, and ``include`` works only where that parser supports it.
- Files are read as bytes; words are decoded as UTF-8 with ``surrogateescape`` (lossless).
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from fnmatch import fnmatchcase
from typing import Protocol

from nginxsim.conf.directive import Directive
from nginxsim.errors import ConfigError

NGX_CONF_BUFFER = 4096  # ngx_conf_file.c: the read buffer; no token may fill it
_EOF_IN_STATEMENT = 'unexpected end of file, expecting ";" or "}"'


@dataclass(frozen=True)
class ConfTree:
    """A configuration as nginx loaded it: top-level directives with includes spliced in."""

    main_file: str  # absolute, as nginx names it (-c joined to -p when relative)
    prefix: str  # nginx -p: what relative root/alias paths resolve against
    conf_dir: str  # the main file's directory: what relative includes resolve against
    directives: tuple[Directive, ...]
    files: tuple[str, ...]  # every file read, first-read order (as nginx -T lists them)


class ReadError(ConfigError):
    """A configuration nginx stops reading at (syntax error, include that cannot be read...).

    `partial` is everything read before the error (open blocks included, with the children read so
    far): nginx runs each directive's handler as soon as it has read it, so an error that the
    handlers raise inside `partial` comes before this one (see `nginxsim.conf.check`).
    """

    def __init__(self, error: ConfigError, partial: ConfTree) -> None:
        super().__init__(error.message, error.file, error.line)
        self.partial = partial


# --- ngx_conf_read_token ------------------------------------------------------------------------

_SPACE = re.compile(rb"[ \t\r\n]*")
# A bare word: escape pairs, "$" with any "{" after it (so "${" does not open a block), and any
# byte but a separator, ";", "{", "\" or "$". Empty only for a backslash that ends the file.
_BARE = re.compile(rb"(?:\\[\s\S]|\$\{*|[^ \t\r\n;{\\$])*")
_QUOTED = {ord('"'): re.compile(rb'(?:\\[\s\S]|[^"\\])*"'), ord("'"): re.compile(rb"(?:\\[\s\S]|[^'\\])*'")}
_UNESCAPE = re.compile(rb"\\([\"'\\tnr])")
_UNESCAPED = {b'"': b'"', b"'": b"'", b"\\": b"\\", b"t": b"\t", b"n": b"\n", b"r": b"\r"}
_WS = frozenset(b" \t\r\n")
_SEMI, _LBRACE, _RBRACE, _HASH, _RPAREN = b";{}#)"


@dataclass(frozen=True, slots=True)
class _Statement:
    """What one ngx_conf_read_token call returns: the words and how they ended.

    `end` is ";" (NGX_OK), "{" (NGX_CONF_BLOCK_START), "}" (NGX_CONF_BLOCK_DONE) or "" (end of
    file); `line` is the line nginx is on at that point.
    """

    end: str
    words: tuple[str, ...]
    quoted: tuple[bool, ...]
    line: int


def _word(raw: bytes) -> str:
    """The word-copy loop of ngx_conf_read_token: only these six escapes lose their backslash."""
    if b"\\" in raw:
        raw = _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], raw)
    return _raw(raw)


def _raw(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _char(byte: int) -> str:
    return _raw(bytes([byte]))


def _tokens(data: bytes, file: str) -> Iterator[_Statement]:
    """Split a file into statements exactly as ngx_conf_read_token does.

    Separators are only space, tab, CR and LF; ``#`` starts a comment only where a word could
    start; a quoted word must be followed by a separator, ``;``, ``{`` or ``)``; ``}`` ends a block
    only where a word could start. nginx also refuses a word (or comment) that would fill its
    4096-byte buffer: `too_long` reproduces the exact offsets at which its refill check fires.
    """
    n = len(data)
    line = 1  # the line of data[pos]
    pos = 0
    words: list[str] = []
    quoted: list[bool] = []

    def fail(message: str, at: int) -> ConfigError:
        return ConfigError(message, file, line + data.count(b"\n", pos, at))

    def too_long(start: int, last_read: int, quote: int | None) -> None:
        """Raise if byte start+4096 was read while `start` still marked the current word.

        nginx moves an unfinished word to the front of its buffer on refill; when the word already
        fills the buffer it gives up, naming the quote that is still open if there is one.
        """
        if last_read < start + NGX_CONF_BUFFER:
            return
        if quote is not None:
            message = f'too long parameter, probably missing terminating "{_char(quote)}" character'
        else:
            message = f'too long parameter "{_raw(data[start : start + 10])}..." started'
        raise ConfigError(message, file, line + data.count(b"\n", pos, start))

    def last_read(end: int) -> int:
        """The last byte nginx reads before moving its word start, for a word ended at `end`.

        After a separator it reads one more byte (the next word's start) before moving it.
        """
        return end + 1 if data[end] in _WS and end + 1 < n else end

    def eof_in_word(start: int, quote: int | None) -> ConfigError:
        too_long(start, n - 1, quote)
        return fail(_EOF_IN_STATEMENT, n)

    while True:
        skip = _SPACE.match(data, pos)
        assert skip is not None
        line += data.count(b"\n", pos, skip.end())
        pos = skip.end()
        if pos >= n:
            if words:
                raise fail(_EOF_IN_STATEMENT, n)
            yield _Statement("", (), (), line)
            return
        ch = data[pos]
        if ch in (_SEMI, _LBRACE, _RBRACE):
            if bool(words) == (ch == _RBRACE):  # "}" must stand alone, ";" and "{" must end words
                raise fail(f'unexpected "{_char(ch)}"', pos)
            yield _Statement(_char(ch), tuple(words), tuple(quoted), line)
            words, quoted = [], []
            pos += 1
            continue
        if ch == _HASH:
            eol = data.find(b"\n", pos)
            too_long(pos, n - 1 if eol < 0 else eol, None)
            pos = n if eol < 0 else eol
            continue
        pattern = _QUOTED.get(ch)
        if pattern is None:
            bare = _BARE.match(data, pos)
            assert bare is not None
            start, value_end = pos, bare.end()
            end = value_end
            if end >= n or data[end] == ord("\\"):  # the file ends inside the word
                raise eof_in_word(start, None)
            too_long(start, last_read(end), None)
        else:
            start = pos + 1
            body = pattern.match(data, start)
            if body is None:
                raise eof_in_word(start, ch)
            value_end = body.end() - 1
            end = value_end + 1
            still_open = ch if value_end >= start + NGX_CONF_BUFFER else None  # when nginx gave up
            if end >= n:
                raise eof_in_word(start, still_open)
            too_long(start, last_read(end), still_open)
            if data[end] not in _WS and data[end] not in (_SEMI, _LBRACE, _RPAREN):
                raise fail(f'unexpected "{_char(data[end])}"', end)
        words.append(_word(data[start:value_end]))
        quoted.append(pattern is not None)
        line += data.count(b"\n", pos, end)
        pos = end
        if data[end] in (_SEMI, _LBRACE):
            yield _Statement(_char(data[end]), tuple(words), tuple(quoted), line)
            words, quoted = [], []
            pos += 1
        # else a separator, or ")" after a quoted word, which starts the next word


# --- files: the disk or a virtual file system ---------------------------------------------------


class _FileSystem(Protocol):
    def read(self, path: str) -> bytes: ...  # raises OSError as open(2)/read(2) would

    def listdir(self, path: str) -> list[str]: ...  # [] when not a readable directory

    def exists(self, path: str) -> bool: ...


class _Disk:
    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except OSError:
            return []

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)


class _Virtual:
    """Files given as a mapping; paths are compared normalised, so "a/../b" finds "b"."""

    def __init__(self, files: Mapping[str, str], base: str) -> None:
        self._files: dict[str, bytes] = {}
        self._dirs: dict[str, set[str]] = {}
        for key, text in files.items():
            path = posixpath.normpath(posixpath.join(base, key))
            self._files[path] = text.encode("utf-8", "surrogateescape")
            while path != "/":
                parent, name = posixpath.split(path)
                self._dirs.setdefault(parent, set()).add(name)
                path = parent

    def read(self, path: str) -> bytes:
        norm = posixpath.normpath(path)
        if norm in self._files:
            return self._files[norm]
        code = errno.EISDIR if norm in self._dirs else errno.ENOENT
        raise OSError(code, os.strerror(code), path)

    def listdir(self, path: str) -> list[str]:
        return list(self._dirs.get(posixpath.normpath(path), ()))

    def exists(self, path: str) -> bool:
        norm = posixpath.normpath(path)
        return norm in self._files or norm in self._dirs


_GLOB_MAGIC = re.compile(r"[*?[]")


def _glob(fs: _FileSystem, pattern: str) -> list[str]:
    """glob(3) without flags, as ngx_open_glob/ngx_read_glob use it.

    Matched paths keep the pattern's literal parts as written; a leading "." must be matched
    explicitly; the result is sorted bytewise (nginx runs in the C locale). Bracket expressions
    follow Python's fnmatch (``[^...]`` is not a negation there, ``\\`` does not escape).
    """
    first, *parts = pattern.split("/")
    paths = [first]
    for part in parts:
        if _GLOB_MAGIC.search(part):
            hidden_ok = part.startswith(".")
            paths = [
                f"{p}/{name}"
                for p in paths
                for name in fs.listdir(p or "/")
                if fnmatchcase(name, part) and (hidden_ok or not name.startswith("."))
            ]
        else:
            paths = [f"{p}/{part}" for p in paths]
    return sorted(p for p in paths if fs.exists(p))


# --- ngx_conf_parse / ngx_conf_include ----------------------------------------------------------


class _Include(Enum):
    """How a block's parser treats a line starting with "include"."""

    DIRECTIVE = "ngx_conf_include; other than one argument is an error"  # directive lists, types
    GLOB = "ngx_conf_include when given one argument, else data"  # map (http and stream)
    LITERAL = "ngx_conf_parse of the name as written, when given one argument"  # geo
    NONE = "data like any other line"  # split_clients, charset_map


# Blocks nginx parses with a custom handler (cf->handler) instead of ngx_conf_handler.
_CUSTOM_BLOCKS: Mapping[str, _Include] = {
    "types": _Include.DIRECTIVE,  # ngx_http_core_type
    "map": _Include.GLOB,  # ngx_http_map, ngx_stream_map
    "geo": _Include.LITERAL,  # ngx_http_geo_include, ngx_stream_geo_include
    "split_clients": _Include.NONE,
    "charset_map": _Include.NONE,
}


class _Reader:
    """One run of ngx_conf_parse over the main file and everything it includes."""

    def __init__(self, fs: _FileSystem, conf_dir: str) -> None:
        self.fs = fs
        self.conf_dir = conf_dir
        self.files: list[str] = []
        self._reading: list[str] = []  # the include chain, to refuse cycles
        self._via: list[tuple[str, int]] = []  # where those includes are written (Directive.via)

    def full_name(self, name: str) -> str:
        """ngx_conf_full_name with the conf prefix: relative names join the main file's dir."""
        if name.startswith("/"):
            return name
        return f"{self.conf_dir.rstrip('/')}/{name}"

    def parse_file(
        self, path: str, into: list[Directive], custom: _Include | None, site: Directive | None
    ) -> None:
        """ngx_conf_parse(cf, filename): open the file (errors located at `site`), then read it."""
        try:
            data = self.fs.read(path)
        except IsADirectoryError:  # open(2) succeeds on a directory; nginx fails reading it
            code = errno.EISDIR
            raise ConfigError(f'pread() "{path}" failed ({code}: {os.strerror(code)})') from None
        except OSError as e:
            code = e.errno or errno.EIO
            message = f'open() "{path}" failed ({code}: {os.strerror(code)})'
            raise ConfigError(message, *((site.file, site.line) if site else ())) from None
        if path in self._reading:
            # nginx recurses until it crashes (stack overflow or EMFILE); no nginx wording exists.
            assert site is not None
            raise ConfigError(f'"{path}" includes itself (nginx would recurse forever)', site.file, site.line)
        self.parse_source(path, data, into, custom)

    def parse_source(self, path: str, data: bytes, into: list[Directive], custom: _Include | None) -> None:
        """Read one file's statements into `into` (ngx_conf_parse's parse_file mode)."""
        if path not in self.files:
            self.files.append(path)
        self._reading.append(path)
        self.parse(_tokens(data, path), path, into, custom, in_block=False)
        self._reading.pop()

    def parse(
        self,
        stmts: Iterator[_Statement],
        file: str,
        into: list[Directive],
        custom: _Include | None,
        *,
        in_block: bool,
    ) -> int | None:
        """The ngx_conf_parse loop for one block (or one file), appending what it reads to `into`.

        `custom` is set inside blocks that nginx hands to a custom handler. A block directive is
        appended even when reading its content fails, so the caller's partial tree shows it.
        Returns the line of the block's closing "}".
        """
        for st in stmts:
            if st.end == "}":
                if in_block:
                    return st.line
                raise ConfigError('unexpected "}"', file, st.line)
            if st.end == "":
                if in_block:
                    raise ConfigError('unexpected end of file, expecting "}"', file, st.line)
                return None
            directive = Directive(st.words[0], st.words[1:], file, st.line, None, st.quoted[1:],
                                  via=tuple(self._via))
            if custom is not None and st.end == "{":
                raise ConfigError('unexpected "{"', file, st.line)
            if directive.name == "include" and self._include(directive, st.end, custom, into):
                continue
            if st.end == ";":
                into.append(directive)
                continue
            children: list[Directive] = []
            end: int | None = None
            try:
                end = self.parse(stmts, file, children, _CUSTOM_BLOCKS.get(directive.name), in_block=True)
            finally:
                into.append(replace(directive, block=tuple(children), end_line=end))
        return None

    def _include(self, d: Directive, end: str, custom: _Include | None, into: list[Directive]) -> bool:
        """Expand an include where the block's parser supports it; False when it is plain data.

        Mirrors ngx_conf_handler's checks for the include command followed by ngx_conf_include
        (glob expansion; a glob that matches nothing is fine), or geo's literal include. The
        included file is read in the same mode as the block it is included into.
        """
        rule = custom or _Include.DIRECTIVE
        if rule is _Include.NONE or (rule is not _Include.DIRECTIVE and len(d.args) != 1):
            return False
        if end == "{":
            raise ConfigError('directive "include" is not terminated by ";"', d.file, d.line)
        if len(d.args) != 1:
            raise ConfigError('invalid number of arguments in "include" directive', d.file, d.line)
        path = self.full_name(d.args[0])
        literal = rule is _Include.LITERAL or not _GLOB_MAGIC.search(path)
        self._via.append((d.file, d.line))
        try:
            for p in [path] if literal else _glob(self.fs, path):
                self.parse_file(p, into, custom, d)
        finally:
            self._via.pop()
        return True


# --- entry point --------------------------------------------------------------------------------

_DUMP_MARKER = re.compile(r"^# configuration file (.+):$", re.MULTILINE)


def _split_dump(text: str) -> dict[str, str] | None:
    """The files of an `nginx -T` dump, main file first; None when `text` is not a dump.

    nginx -T writes each file as a "# configuration file NAME:" line, the file's bytes and one
    extra newline. Lines before the first marker may only be nginx's own "nginx: ..." notices.
    """
    markers = list(_DUMP_MARKER.finditer(text))
    before = text[: markers[0].start()].splitlines() if markers else ["not a dump"]
    if any(s.strip() and not s.startswith("nginx: ") for s in before):
        return None
    files: dict[str, str] = {}
    for i, m in enumerate(markers):
        body = text[m.end() + 1 : markers[i + 1].start() if i + 1 < len(markers) else len(text)]
        files.setdefault(m.group(1), body[:-1] if body.endswith("\n") else body)
    return files


def read(
    path: str | None = None,
    *,
    text: str | None = None,
    files: Mapping[str, str] | None = None,
    prefix: str | None = None,
) -> ConfTree:
    """Read a configuration like `nginx -p PREFIX -c PATH` does, includes expanded in place.

    - ``read(path)`` reads from disk; a relative `path` is relative to `prefix` (as with nginx's
      -c and -p), else to the current directory.
    - ``read(text=...)`` reads `text` as the main file, named `path` or ``<prefix or cwd>/nginx.conf``;
      an ``nginx -T`` dump is split into its files and its first file is the main file.
    - ``files={path: text}``: a virtual file system (relative keys are relative to the conf
      dir); when given, nothing is read from disk. With neither `path` nor `text` the main file
      is ``nginx.conf`` in it.

    Raises ReadError (a ConfigError, with the part read so far) where nginx stops reading.
    """
    base = os.path.abspath(prefix) if prefix is not None else os.getcwd()
    main = path or "nginx.conf"
    dump = _split_dump(text) if text is not None else None
    if dump is not None:
        if path is not None:
            raise ValueError("an nginx -T dump names its main file; do not pass `path` with it")
        main, text = next(iter(dump)), None
        files = {**dump, **(files or {})}
    if not main.startswith("/"):
        main = f"{base.rstrip('/')}/{main}"
    conf_dir = main[: main.rindex("/")] or "/"
    reader = _Reader(_Disk() if files is None else _Virtual(files, conf_dir), conf_dir)
    top: list[Directive] = []
    root = base if prefix is not None else conf_dir

    def tree() -> ConfTree:
        return ConfTree(main, root, conf_dir, tuple(top), tuple(reader.files))

    try:
        if text is None:
            reader.parse_file(main, top, None, None)
        else:
            reader.parse_source(main, text.encode("utf-8", "surrogateescape"), top, None)
    except ConfigError as e:
        raise ReadError(e, tree()) from None
    return tree()
