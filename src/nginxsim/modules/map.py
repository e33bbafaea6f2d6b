"""`ngx_http_map_module`: `map "source" $var { key value; ~regex value; default value; }`.

A lookup (`ngx_http_map_variable` -> `ngx_http_map_find`) evaluates the source, then tries, in
this order: exact keys (case-insensitive), `hostnames` wildcards (`.x`/`*.x`, then `x.*`), and
regexes in config order against the original-case source (never for an empty source); the first
regex that matches sets the request's captures. Without a hit the value is `default` (or "").
The chosen value is evaluated then, so `$1` in it comes from the map's own regex.

Everything is compiled once: a dict for exact keys, nginx's label-by-label wildcard tables
(`ngx_hash_wildcard_init`), the regex list (each with a literal that spares most PCRE calls),
compiled values. The variable is cacheable unless the block says `volatile`. Config errors,
including `ngx_hash_init`'s sizing errors and warning, are nginx's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any

from ..conf.directive import Directive
from ..conf.spec import BLOCK, HTTP_MAIN, TAKE1, TAKE2, DirectiveSpec, Merge
from ..errors import ConfigError
from ..http.context import Context
from ..http.script import Complex, NoBufferSpace
from ..plan import Compiler, Level, error, variable_name
from ..regex import Regex, RegexMatchError
from .base import Command, Module

_CACHELINE = 64  # ngx_cacheline_size on x86-64
_PTR = 8  # sizeof(void *)
_U64 = (1 << 64) - 1
_INT_MAX = (1 << 63) - 1


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the block: its key as traces show it, its compiled value, and where it is."""

    label: str
    value: Complex
    file: str
    line: int


# ---------------------------------------------------------------------------------------------
# map_hash_max_size / map_hash_bucket_size, and the checks ngx_hash_init makes with them.


@dataclass(slots=True)
class HashConf:
    """`ngx_http_map_conf_t`. The first map block fixes unset sizes to their defaults, so a
    `map_hash_*` directive after it is a duplicate."""

    max_size: int | None = None
    bucket_size: int | None = None

    def fix(self) -> tuple[int, int]:
        """`ngx_http_map_block`'s preamble: defaults, and an explicit bucket size aligned."""
        if self.max_size is None:
            self.max_size = 2048
        self.bucket_size = _CACHELINE if self.bucket_size is None else _align(self.bucket_size, _CACHELINE)
        return self.max_size, self.bucket_size


def _align(n: int, a: int) -> int:
    return (n + a - 1) & ~(a - 1)


def _elt_size(key: bytes) -> int:
    """`NGX_HASH_ELT_SIZE`: value pointer, 2-byte length, the name, padded to a pointer."""
    return _PTR + _align(len(key) + 2, _PTR)


def _hash_key(key: bytes) -> int:
    """`ngx_hash_key_lc` (keys are already lower-case): `key * 31 + c` in 64 bits."""
    h = 0
    for c in key:
        h = (h * 31 + c) & _U64
    return h


def hash_init(keys: Sequence[bytes], max_size: int, bucket_size: int, cc: Compiler) -> None:
    """`ngx_hash_init` named "map_hash": only its verdict matters (lookups here are dicts), i.e.
    the errors and the warning nginx prints while looking for a table size where every bucket
    fits in `bucket_size` bytes."""
    def fail(message: str) -> ConfigError:
        return ConfigError(f"could not build map_hash, {message}", cc.tree.main_file, None)

    if max_size == 0:
        raise fail(f"you should increase map_hash_max_size: {max_size}")
    if bucket_size > 65536 - _CACHELINE:
        raise fail(f"too large map_hash_bucket_size: {bucket_size}")
    items = [(_hash_key(k), _elt_size(k)) for k in keys]
    if any(bucket_size < size + _PTR for _, size in items):
        raise fail(f"you should increase map_hash_bucket_size: {bucket_size}")
    room = bucket_size - _PTR
    start = len(items) // (room // (2 * _PTR)) or 1
    if max_size > 10000 and items and max_size // len(items) < 100:
        start = max_size - 1000
    for size in range(start, max_size + 1):
        test = [0] * size
        for h, n in items:
            k = h % size
            test[k] += n
            if test[k] > room:
                break
        else:
            return
    cc.warnings.append(
        f"could not build optimal map_hash, you should increase either map_hash_max_size: {max_size} "
        f"or map_hash_bucket_size: {bucket_size}; ignoring map_hash_bucket_size"
    )
    test = [_PTR] * max_size
    for h, n in items:
        test[h % max_size] += n
        if test[h % max_size] > 65536 - _CACHELINE:
            raise fail(f"you should increase map_hash_max_size: {max_size}")


# ---------------------------------------------------------------------------------------------
# Keys: ngx_hash_add_key and the wildcard tables.


@dataclass(slots=True)
class Wild:
    """`ngx_hash_wildcard_t`: one level of labels. A label maps to (an entry or the next level,
    wildcard-only flag); `value` is the entry for a name that ends at this level."""

    labels: dict[bytes, tuple[Entry | Wild, bool]] = field(default_factory=dict)
    value: Entry | None = None


def find_wc_head(w: Wild, name: bytes) -> Entry | None:
    """`ngx_hash_find_wc_head`: match `.x` / `*.x` keys from the last label leftwards."""
    n = name.rfind(b".") + 1
    hit = w.labels.get(name[n:])
    if hit is None:
        return w.value
    found, wildcard_only = hit
    if isinstance(found, Wild):
        if n == 0:
            return None if wildcard_only else found.value
        deeper = find_wc_head(found, name[: n - 1])
        return deeper if deeper is not None else found.value
    return None if wildcard_only and n == 0 else found


def find_wc_tail(w: Wild, name: bytes) -> Entry | None:
    """`ngx_hash_find_wc_tail`: match `x.*` keys from the first label rightwards; at least one
    label must follow the key."""
    i = name.find(b".")
    if i < 0:
        return None
    hit = w.labels.get(name[:i])
    if hit is None:
        return w.value
    found, _ = hit
    if isinstance(found, Wild):
        deeper = find_wc_tail(found, name[i + 1 :])
        return deeper if deeper is not None else found.value
    return found


def _dns_cmp(a: bytes, b: bytes) -> int:
    """`ngx_dns_strcmp`: case-insensitive, with '.' sorting below every other character."""
    for c1, c2 in zip(a + b"\0", b + b"\0", strict=False):
        c1 = c1 | 0x20 if 65 <= c1 <= 90 else c1
        c2 = c2 | 0x20 if 65 <= c2 <= 90 else c2
        if c1 == c2:
            if c1 == 0:
                return 0
            continue
        return (32 if c1 == 46 else c1) - (32 if c2 == 46 else c2)
    return 0


def wildcard_init(names: list[tuple[bytes, Entry]], max_size: int, bucket_size: int, cc: Compiler) -> Wild:
    """`ngx_hash_wildcard_init` over keys already reversed ("com.example." for `*.example.com`,
    "com.example" for `.example.com`, "www.example" for `www.example.*`) and sorted: group names
    by their first label and recurse on the rest. A trailing dot marks a wildcard-only label."""
    level = Wild()
    labels: list[bytes] = []
    n = 0
    while n < len(names):
        key, entry = names[n]
        dot = key.find(b".")
        length = dot if dot >= 0 else len(key)
        label, dot_len = key[:length], length + 1
        if dot >= 0:
            length += 1
        rest: list[tuple[bytes, Entry]] = [(key[length:], entry)] if len(key) != length else []
        i = n + 1
        while i < len(names):
            other = names[i][0]
            if other[:length] != key[:length] or (dot < 0 and len(other) > length and other[length] != 0x2E):
                break
            rest.append((other[dot_len:], names[i][1]))
            i += 1
        labels.append(label)
        found: Entry | Wild = entry
        if rest:
            found = wildcard_init(rest, max_size, bucket_size, cc)
            if len(key) == length:
                found.value = entry
        level.labels.setdefault(label, (found, dot >= 0))
        n = i
    hash_init(labels, max_size, bucket_size, cc)
    return level


@dataclass(slots=True)
class Keys:
    """`ngx_hash_keys_arrays_t` as `ngx_hash_add_key` fills it: exact keys, and the reversed
    wildcard keys, with the name sets it checks conflicts against."""

    exact: dict[bytes, Entry] = field(default_factory=dict)
    exact_names: set[bytes] = field(default_factory=set)  # exact keys and the "x" of ".x"
    head: list[tuple[bytes, Entry]] = field(default_factory=list)
    head_names: set[bytes] = field(default_factory=set)
    tail: list[tuple[bytes, Entry]] = field(default_factory=list)
    tail_names: set[bytes] = field(default_factory=set)

    def add(self, key: bytes, entry: Entry, hostnames: bool) -> str | None:
        """`ngx_hash_add_key`: None, or nginx's complaint ("invalid"/"conflicting")."""
        if hostnames:
            if key.count(b"*") > 1 or b".." in key or b"\0" in key:
                return "invalid"
            if len(key) > 1 and key[:1] == b".":
                return self._head(key, 1, entry)
            if len(key) > 2 and key[:2] == b"*.":
                return self._head(key, 2, entry)
            if len(key) > 2 and key[-2:] == b".*":
                name = key[:-2].lower()
                return self._wild(self.tail, self.tail_names, name, name, entry)
            if b"*" in key:
                return "invalid"
        low = key.lower()
        if low in self.exact_names:
            return "conflicting"
        self.exact_names.add(low)
        self.exact[low] = entry
        return None

    def _head(self, key: bytes, skip: int, entry: Entry) -> str | None:
        """`.x` (skip 1, which also claims the exact name "x") or `*.x` (skip 2), stored with
        its labels reversed."""
        name = key[skip:].lower()
        if skip == 1:
            if name in self.exact_names:
                return "conflicting"
            self.exact_names.add(name)
        reversed_key = b".".join(reversed(name.split(b"."))) + (b"." if skip == 2 else b"")
        return self._wild(self.head, self.head_names, name, reversed_key, entry)

    @staticmethod
    def _wild(keys: list[tuple[bytes, Entry]], names: set[bytes], name: bytes, stored: bytes,
              entry: Entry) -> str | None:
        """A wildcard key, unless its name is taken already."""
        if name in names:
            return "conflicting"
        names.add(name)
        keys.append((stored, entry))
        return None


# ---------------------------------------------------------------------------------------------
# Regexes, with literal shortcuts.
#
# Not nginx's: a PCRE call costs ~1.5 µs through ctypes, so a literal read off the start of a
# pattern either rules a subject out before calling PCRE or, when the pattern is nothing but
# that literal (`^/old/page$`, `\.php$`, `^testers_`), decides the match without PCRE.

_META = frozenset(b"\\^$.[]|()?*+{}")
_QUANTIFIERS = frozenset(b"?*+{")


def leading_literal(pattern: bytes) -> tuple[bool, bytes, bytes]:
    """Split a pattern into (anchored by `^`, the plain characters that follow, the rest).

    Plain means an ordinary character or a backslash before ASCII punctuation, and not followed
    by a quantifier. Every match has the literal at the subject's start (anchored) or somewhere
    in it; a pattern with `|` anywhere yields no literal. The last character is given up before
    a group or a letter escape, which may hide a quantifier (`a(?#note)?`, `a\\E?` mean `a?`)."""
    if b"|" in pattern:
        return False, b"", pattern
    anchored = pattern[:1] == b"^"
    i = 1 if anchored else 0
    out = bytearray()
    starts: list[int] = []  # where each literal character is written
    while i < len(pattern):
        c, step = pattern[i], 1
        if c == 0x5C:  # backslash
            if i + 1 >= len(pattern) or not 0x21 <= pattern[i + 1] < 0x7F or chr(pattern[i + 1]).isalnum():
                c = -1
            else:
                c, step = pattern[i + 1], 2
        elif c == 0x28:  # (
            c = -1
        elif c in _META:
            break
        if c < 0:
            if starts:
                i = starts.pop()
                del out[-1]
            break
        if i + step < len(pattern) and pattern[i + step] in _QUANTIFIERS:
            break
        out.append(c)
        starts.append(i)
        i += step
    return anchored, bytes(out), pattern[i:]


@dataclass(frozen=True, slots=True)
class MapRegex:
    """A `~`/`~*` key: the regex, its entry, and its literal (lower-cased when the regex is
    caseless, then compared with the lower-cased subject). The literal is required at the start
    (`anchored`) or anywhere; `whole`: the pattern is just `[^]literal[$]` (`dollar`) and is
    matched here without PCRE."""

    regex: Regex
    entry: Entry
    caseless: bool
    anchored: bool
    literal: bytes
    whole: bool
    dollar: bool

    def search(self, r: Context, src: bytes, subject: bytes) -> bool:
        """`ngx_http_regex_exec` for this key, once the literal is known to be there (`subject`
        is `src`, lower-cased when caseless): on a match the captures become the request's."""
        if self.whole:
            at = self._literal_match(subject)
            if at < 0:
                return False
            r.captures = (src[at : at + len(self.literal)],)  # no groups: $1..$9 become empty
            return True
        m = self.regex.search(src)
        if m is None:
            return False
        r.set_captures(self.regex, m)
        return True

    def _literal_match(self, s: bytes) -> int:
        """Where PCRE's leftmost match of `[^]literal[$]` starts, or -1. `$` matches at the end
        or before a final newline (PCRE2 without DOLLAR_ENDONLY)."""
        lit = self.literal
        if not self.dollar:
            return s.find(lit) if not self.anchored else 0
        n = len(s) - len(lit)
        for at, ok in ((n - 1, s[-1:] == b"\n" and s[:-1].endswith(lit)), (n, s.endswith(lit))):
            if ok and (at == 0 or not self.anchored):
                return at
        return -1


def _map_regex(rx: Regex, entry: Entry) -> MapRegex:
    """A map regex with its literal (none for a caseless one with non-ASCII bytes: PCRE folds
    ASCII only, and so does `bytes.lower`, but keep to what is certain)."""
    anchored, literal, rest = leading_literal(_b(rx.source))
    if rx.caseless:
        if not literal.isascii():
            return MapRegex(rx, entry, True, False, b"", False, False)
        literal = literal.lower()
    return MapRegex(rx, entry, rx.caseless, anchored, literal, rest in (b"", b"$"), rest == b"$")


# ---------------------------------------------------------------------------------------------
# The compiled map and its variable.


@dataclass(frozen=True, slots=True)
class Map:
    """A compiled `map` block (`ngx_http_map_ctx_t`)."""

    source: Complex
    name: str
    hostnames: bool
    exact: dict[bytes, Entry]
    head: Wild | None
    tail: Wild | None
    regexes: tuple[MapRegex, ...]
    default: Entry

    def find(self, r: Context, src: bytes) -> Entry:
        """`ngx_http_map_find` plus the default: the entry whose value the variable takes."""
        low = src.lower()
        entry = self.exact.get(low)
        if entry is not None or not src:
            return entry or self.default
        if self.head is not None:
            entry = find_wc_head(self.head, low)
        if entry is None and self.tail is not None:
            entry = find_wc_tail(self.tail, low)
        if entry is not None:
            return entry
        try:
            for rx in self.regexes:
                subject = low if rx.caseless else src
                lit = rx.literal
                if lit and not (subject.startswith(lit) if rx.anchored else lit in subject):
                    continue
                if rx.search(r, src, subject):
                    return rx.entry
        except RegexMatchError as e:
            r.notes.append(f"{e.message}: nginx logs an alert and ${self.name} takes the default value")
        return self.default

    def get(self, r: Context) -> bytes | None:
        """`ngx_http_map_variable`: the variable's getter; a failed string makes it not found."""
        try:
            src = self.source.eval(r)
            if self.hostnames and src[-1:] == b".":
                src = src[:-1]
            entry = self.find(r, src)
            value = entry.value.eval(r)
        except NoBufferSpace as e:
            r.notes.append(f"{e.message}: ${self.name} is not found")
            return None
        if r.trace.enabled:
            r.trace.later("variable", self._step, (src, value, entry), entry.file, entry.line)
        return value

    def _step(self, src: bytes, value: bytes, entry: Entry) -> tuple[str, str]:
        return f'map "{self.source.source}" = "{_s(src)}"', f"{_s(value) or EMPTY} ({entry.label})"


_NO_DEFAULT = Complex("", (), b"")
EMPTY = '""'


def _number(text: str) -> int | None:
    """`ngx_atoi`: unsigned decimal digits only; None on anything else or overflow."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    n = int(text)
    return n if n <= _INT_MAX else None


def _hash_conf(cc: Compiler) -> HashConf:
    conf: HashConf = cc.state.setdefault("map_hash", HashConf())
    return conf


def _hash_size(d: Directive, level: Level, cc: Compiler) -> None:
    """`map_hash_max_size` / `map_hash_bucket_size` (`ngx_conf_set_num_slot`)."""
    conf = _hash_conf(cc)
    attr = "max_size" if d.name == "map_hash_max_size" else "bucket_size"
    if getattr(conf, attr) is not None:
        raise error(d, f'"{d.name}" directive is duplicate')
    n = _number(d.args[0])
    if n is None:
        raise error(d, f'"{d.name}" directive invalid number')
    setattr(conf, attr, n)


def _map(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_map_block` reading its lines with `ngx_http_map`."""
    max_size, bucket_size = _hash_conf(cc).fix()
    source = cc.complex(d.args[0], d)
    var = cc.variables.define(variable_name(d, d.args[1]), None, d, replace=True)
    keys = Keys()
    regexes: list[MapRegex] = []
    values: dict[str, Complex] = {}
    default: Entry | None = None
    hostnames = volatile = False
    for line in d.block or ():
        words = (line.name, *line.args)
        if words == ("hostnames",):
            hostnames = True
            continue
        if words == ("volatile",):
            volatile = True
            continue
        if len(words) != 2:
            raise error(line, "invalid number of the map parameters")
        key, text = words
        value = values.get(text)
        if value is None:
            with _in_block_file(line, d):
                value = values[text] = cc.complex(text, line)
        label = key if key == "default" or key.startswith("~") else f'"{key}"'
        entry = Entry(label, value, line.file, line.line)
        if key == "default":
            if default is not None:
                raise error(line, "duplicate default map parameter")
            default = entry
        elif key.startswith("~"):
            caseless = key[1:2] == "*"
            with _in_block_file(line, d):
                regexes.append(_map_regex(cc.regex(key[2:] if caseless else key[1:], caseless, line), entry))
        else:
            written = key[1:] if key.startswith("\\") else key
            problem = keys.add(_b(written), entry, hostnames)
            if problem == "invalid":
                raise error(line, f'invalid hostname or wildcard "{written}"')
            if problem == "conflicting":
                raise error(line, f'conflicting parameter "{_ascii_lower(written)}"')
    if keys.exact:
        hash_init(list(keys.exact), max_size, bucket_size, cc)
    head = tail = None
    if keys.head:
        head = wildcard_init(sorted(keys.head, key=_DNS_ORDER), max_size, bucket_size, cc)
    if keys.tail:
        tail = wildcard_init(sorted(keys.tail, key=_DNS_ORDER), max_size, bucket_size, cc)
    m = Map(
        source=source,
        name=var.name,
        hostnames=hostnames,
        exact=keys.exact,
        head=head,
        tail=tail,
        regexes=tuple(regexes),
        default=default or Entry("no match, no default", _NO_DEFAULT, d.file, d.line),
    )
    var.getter = m.get
    if volatile:
        var.cacheable = False
    cc.state.setdefault("map", []).append(m)


_DNS_ORDER: Any = cmp_to_key(lambda a, b: _dns_cmp(a[0], b[0]))


@contextmanager
def _in_block_file(line: Directive, block: Directive) -> Iterator[None]:
    """Errors of a map line's value or regex: nginx logs them through the `cf` it saved when the
    block began (`ngx_http_map`'s ctx->cf), so a line read from an include is located at that
    include's line in the block's own file."""
    try:
        yield
    except ConfigError as e:
        depth = len(block.via)
        if len(line.via) <= depth:
            raise
        raise ConfigError(e.message, block.file, line.via[depth][1]) from None


def _ascii_lower(key: str) -> str:
    """The key as nginx prints a conflict: `ngx_hash_add_key` has lower-cased it in place."""
    return "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in key)


COMMANDS = (
    Command(DirectiveSpec("map", HTTP_MAIN, BLOCK | TAKE2, Merge.LOCAL), _map),
    Command(DirectiveSpec("map_hash_max_size", HTTP_MAIN, TAKE1, Merge.LOCAL), _hash_size),
    Command(DirectiveSpec("map_hash_bucket_size", HTTP_MAIN, TAKE1, Merge.LOCAL), _hash_size),
)
MODULE = Module("ngx_http_map_module", COMMANDS)
