"""`ngx_http_rewrite_module`: rewrite, return, if, set, break as one linear script per level.

Each server, location and `if` block compiles its rewrite directives, in config order, into a
tuple of operations (`ngx_http_rewrite_handler` runs `ngx_http_script_*_code`s). The engine runs
the server script in SERVER_REWRITE and the location's in REWRITE; an `if` whose condition holds
switches the request to the if block's configuration and runs its own operations inline.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..conf.directive import Directive
from ..conf.spec import (
    BLOCK,
    FLAG,
    HTTP_LIF,
    HTTP_LOC,
    HTTP_MAIN,
    HTTP_SIF,
    HTTP_SRV,
    NOARGS,
    ONEMORE,
    TAKE2,
    TAKE12,
    TAKE23,
    DirectiveSpec,
    Merge,
)
from ..errors import UndefinedBehavior
from ..http.files import FileInfo
from ..http.script import Complex, escape_args
from ..http.variables import Variable
from ..plan import Compiler, Level, LocationConf, error
from ..regex import Regex
from .base import Command, Module

if TYPE_CHECKING:
    from ..http.context import Context

REWRITE_CTX = HTTP_SRV | HTTP_SIF | HTTP_LOC | HTTP_LIF

# What running one operation tells the script loop.
NEXT, STOP, FINAL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Return:
    """`return code [text]` / `return URL` (`ngx_http_rewrite_return`)."""

    code: int
    text: Complex | None
    d: Directive

    def run(self, r: Context, quote: list[Any]) -> int:
        r.trace.add("rewrite", f"return {' '.join(self.d.args)}", f"status {self.code}", self.d.file, self.d.line)
        text = self.text.eval(r) if self.text is not None else None
        r.module_state["return"] = (self.code, text, self.d)
        return FINAL


@dataclass(frozen=True, slots=True)
class Rewrite:
    """`rewrite regex replacement [flag]`: `ngx_http_script_regex_start_code` / `_end_code`."""

    regex: Regex
    uri_part: Complex  # before the first literal '?' (or the whole replacement)
    args_part: Complex | None  # after it
    add_args: bool  # False when the replacement ended in '?'
    redirect: int  # 0, 301 or 302
    flag: str  # "", last, break, redirect, permanent
    whole: Complex  # the whole replacement (for redirects)
    d: Directive

    def run(self, r: Context, quote: list[Any]) -> int:
        m = self.regex.search(r.uri)
        if m is None:
            r.captures = ()
            r.trace.add("rewrite", f"rewrite {self.d.args[0]} against $uri {_s(r.uri)}", "no match",
                        self.d.file, self.d.line)
            return NEXT
        r.set_captures(self.regex, m)
        quote[0] = False
        if self.redirect:
            loc = redirect_unescape(self.whole.eval(r, escape_captures=True, script=True))
            if self.add_args and r.args:
                loc += (b"&" if self.args_part is not None else b"?") + r.args
            r.module_state["return"] = (self.redirect, loc, self.d)
            r.trace.add("rewrite", f"rewrite {self.d.args[0]} against $uri {_s(r.uri)}",
                        f"redirect {self.redirect} to {_s(loc)}", self.d.file, self.d.line)
            return FINAL
        uri = self.uri_part.eval(r, script=True)
        if self.args_part is not None:
            quote.append(self.d)  # nginx's e->is_args stays set for the rest of this script
            args = self.args_part.eval(r, escape_captures=True, script=True)
            if self.add_args and r.args:
                args += b"&" + r.args
            r.args = args
        elif not self.add_args:
            r.args = b"" if r.args is not None else None  # r->args.len = 0: found only if it was
        r.internal = True
        r.valid_unparsed_uri = False
        if self.flag == "break":
            r.uri_changed = False
            r.valid_location = False
        else:
            r.uri_changed = True
        r.uri = uri
        r.trace.add("rewrite", f"rewrite {self.d.args[0]} {self.d.args[1]}{' ' + self.flag if self.flag else ''}",
                    f"$uri={_s(uri)} $args={_s(r.args or b'')}", self.d.file, self.d.line)
        if not uri:
            r.module_state["return"] = (500, None, self.d)
            r.notes.append("the rewritten URI has a zero length")
            return FINAL
        return STOP if self.flag in ("last", "break") else NEXT


@dataclass(frozen=True, slots=True)
class Set:
    """`set $var value`: evaluated in place; captures escaped before the first matched rewrite."""

    var: Variable
    value: Complex
    d: Directive

    def run(self, r: Context, quote: list[Any]) -> int:
        _refuse_leaked_escape(r, self.value, quote, self.d)
        v = self.value.eval(r, escape_captures=quote[0], script=True)
        r.set(self.var, v)
        r.trace.add("rewrite", f"set ${self.var.name}", _s(v), self.d.file, self.d.line)
        return NEXT


@dataclass(frozen=True, slots=True)
class Break:
    d: Directive

    def run(self, r: Context, quote: list[Any]) -> int:
        r.trace.add("rewrite", "break", "stop rewrite directives", self.d.file, self.d.line)
        if r.uri_changed:  # ngx_http_script_break_code
            r.uri_changed = False
            r.valid_location = False
        return STOP


@dataclass(frozen=True, slots=True)
class If:
    """`if (condition) {...}`: on success the request runs with the block's configuration."""

    var: Variable | None
    op: str  # "" (truth), "=", "!=", "~", "~*", "!~", "!~*", "-f", "!-f", ...
    value: Complex | None
    regex: Regex | None
    block: LocationConf
    d: Directive

    def test(self, r: Context, quote_state: list[Any]) -> bool:
        quote = bool(quote_state[0])
        op = self.op
        if op.startswith(("-", "!-")):
            assert self.value is not None
            info = r.open(self.value.eval(r, escape_captures=quote, script=True))
            return _file_test(op, info if isinstance(info, FileInfo) else None)
        assert self.var is not None
        v = r.get(self.var) or b""
        if not op:
            return v not in (b"", b"0")
        if op in ("=", "!="):
            assert self.value is not None
            _refuse_leaked_escape(r, self.value, quote_state, self.d)
            return (v == self.value.eval(r, escape_captures=quote, script=True)) == (op == "=")
        assert self.regex is not None
        m = self.regex.search(v)
        if m is None:
            r.captures = ()
            return op.startswith("!")
        r.set_captures(self.regex, m)
        return not op.startswith("!")

    def run(self, r: Context, quote: list[Any]) -> int:
        ok = self.test(r, quote)
        r.trace.add("rewrite", f"if {' '.join(self.d.args)}", "true" if ok else "false", self.d.file, self.d.line)
        if not ok:
            return NEXT
        if self.block.kind == "if" and self.block.parent is not None and self.block.parent.kind != "server":
            r.loc = self.block
        return run_ops(r, self.block.script, quote)


def _refuse_leaked_escape(r: Context, value: Complex, state: list[Any], d: Directive) -> None:
    """1.22.1 bug: after a matched `rewrite` with args ('?') in the same script, captures in a
    set/if value are measured unescaped but copied escaped: a heap overrun. Refuse to guess."""
    if len(state) < 2 or not value.has_captures or not r.quoted_uri:
        return
    for kind, n in value.parts:
        if kind == 2:
            c = r.capture(n)  # type: ignore[arg-type]
            if c and escape_args(c) != c:
                rw: Directive = state[1]
                raise UndefinedBehavior(
                    f"nginx 1.22.1 overruns memory here: captures in \"{d.name}\" after the matched "
                    f"\"rewrite\" with arguments at {rw.where} (fixed in nginx 1.31.1)", d.file, d.line)


def _file_test(op: str, info: FileInfo | None) -> bool:
    """`ngx_http_script_file_code`: the path as written (no root prepended), stat()ed."""
    neg = op.startswith("!")
    if info is None:
        return neg
    kind = op[-1]
    if kind == "f":
        res = stat.S_ISREG(info.mode)
    elif kind == "d":
        res = stat.S_ISDIR(info.mode)
    elif kind == "e":
        res = True
    else:
        res = bool(info.mode & stat.S_IXUSR)
    return res != neg


def run_ops(r: Context, ops: tuple[Any, ...], quote: list[Any]) -> int:
    for op in ops:
        res = op.run(r, quote)
        if res != NEXT:
            return int(res)
    return NEXT


def run_script(r: Context, ops: tuple[Any, ...]) -> int:
    """`ngx_http_rewrite_handler`: captures escape in set/if until a rewrite matches."""
    if not ops:
        return NEXT
    return run_ops(r, ops, [True])


_HEXB = b"0123456789abcdefABCDEF"


def redirect_unescape(s: bytes) -> bytes:
    """`ngx_unescape_uri(NGX_UNESCAPE_REDIRECT)` as applied to rewrite redirects."""
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == 0x3F:  # literal '?': the rest is copied as is
            out += s[i:]
            break
        if c != 0x25:
            out.append(c)
            i += 1
            continue
        h1 = s[i + 1] if i + 1 < n else None
        if h1 is None:
            break
        if h1 not in _HEXB:
            out.append(h1)
            i += 2
            continue
        h2 = s[i + 2] if i + 2 < n else None
        if h2 is None:
            break
        if h2 not in _HEXB:
            i += 3
            continue
        v = int(s[i + 1 : i + 3], 16)
        if 0x26 <= v <= 0x7E:
            out.append(v)
            i += 3
            if v == 0x3F:
                out += s[i:]
                break
        else:
            out += s[i : i + 3]
            i += 3
    return bytes(out)


def _s(b: bytes) -> str:
    return b.decode("utf-8", "backslashreplace")


# -- compiling ----------------------------------------------------------------------------------


def _add(level: Level, op: Any) -> None:
    level.values.setdefault("rewrite:script", []).append(op)


def _return(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_rewrite_return`: a code (0-999), or a URL that starts with http(s):// or $scheme."""
    first = d.args[0]
    if len(d.args) == 1 and first.startswith(("http://", "https://", "$scheme")):
        _add(level, Return(302, cc.complex(first, d), d))
        return
    if not first.isdigit() or int(first) > 999:
        raise error(d, f'invalid return code "{first}"')
    code = int(first)
    text = cc.complex(d.args[1], d) if len(d.args) == 2 else None
    _add(level, Return(code, text, d))


def _rewrite(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_rewrite`: flags, the trailing '?', redirect detection, the literal '?' split."""
    pattern, repl = d.args[0], d.args[1]
    flag = d.args[2] if len(d.args) == 3 else ""
    if flag not in ("", "last", "break", "redirect", "permanent"):
        raise error(d, f'invalid parameter "{flag}"')
    regex = cc.regex(pattern, False, d)
    redirect = {"redirect": 302, "permanent": 301}.get(flag, 0)
    if repl.startswith(("http://", "https://", "$scheme")):
        redirect = redirect or 302
    add_args = True
    if repl.endswith("?"):
        repl, add_args = repl[:-1], False
    if not repl and not add_args:
        pass
    uri_src, q, args_src = repl.partition("?")
    whole = cc.complex(repl, d)
    _add(level, Rewrite(regex, cc.complex(uri_src, d), cc.complex(args_src, d) if q else None,
                        add_args, redirect, flag, whole, d))


def _set(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_rewrite_set`: the name must start with '$'; built-ins that cannot change refuse."""
    name = d.args[0]
    if not name.startswith("$"):
        raise error(d, f'invalid variable name "{name}"')
    var = cc.variables.by_name.get(name[1:].lower())
    if var is not None and var.getter is not None and not var.changeable:
        raise error(d, f'the duplicate "{name[1:].lower()}" variable')
    if var is None or var.getter is None:
        var = cc.variables.define(name[1:], None, d, duplicate_ok=True)
    _add(level, Set(var, cc.complex(d.args[1], d), d))


def _break(d: Directive, level: Level, cc: Compiler) -> None:
    _add(level, Break(d))


def _if(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_rewrite_if` + `ngx_http_rewrite_if_condition`."""
    args = list(d.args)
    if not args[0].startswith("("):
        raise error(d, f'invalid condition "{args[0]}"')
    if args[0] == "(":
        args = args[1:]
    else:
        args[0] = args[0][1:]
    if not args or not args[-1].endswith(")"):
        raise error(d, f'invalid condition "{d.args[-1]}"')
    if args[-1] == ")":
        args = args[:-1]
    else:
        args[-1] = args[-1][:-1]
    if not args:
        raise error(d, 'invalid condition "("')
    first = args[0]
    var = None
    op = ""
    value = None
    regex = None
    if len(first) > 1 and first.startswith("$"):
        if len(args) not in (1, 3):
            raise error(d, f'invalid condition "{first}"')
        name = first[1:]
        if not all(c.isalnum() or c == "_" for c in name):
            raise error(d, f'unknown "{name}" variable')
        var = cc.variables.ref(name, d)
        if len(args) == 3:
            op = args[1]
            if op in ("=", "!="):
                value = cc.complex(args[2], d)
            elif op in ("~", "~*", "!~", "!~*"):
                regex = cc.regex(args[2], op.endswith("*"), d)
            else:
                raise error(d, f'unexpected "{op}" in condition')
    elif first in ("-f", "-d", "-e", "-x", "!-f", "!-d", "!-e", "!-x"):
        if len(args) != 2:
            raise error(d, f'invalid condition "{first}"')
        op = first
        value = cc.complex(args[1], d)
    else:
        raise error(d, f'invalid condition "{first}"')
    parent_loc: LocationConf = level.owner
    ilevel = Level("if", level, d)
    block = LocationConf("if", " ".join(d.args), d, ilevel, parent_loc)
    block.server = parent_loc.server
    ilevel.owner = block
    cc.block(d.block or (), ilevel)
    cc.state.setdefault("if_blocks", []).append(block)
    _add(level, If(var, op, value, regex, block, d))


COMMANDS = (
    Command(DirectiveSpec("return", REWRITE_CTX, TAKE12, Merge.LOCAL), _return),
    Command(DirectiveSpec("rewrite", REWRITE_CTX, TAKE23, Merge.LOCAL), _rewrite),
    Command(DirectiveSpec("set", REWRITE_CTX, TAKE2, Merge.LOCAL), _set),
    Command(DirectiveSpec("break", REWRITE_CTX, NOARGS, Merge.LOCAL), _break),
    Command(DirectiveSpec("if", HTTP_SRV | HTTP_LOC, BLOCK | ONEMORE, Merge.LOCAL), _if),
    Command(DirectiveSpec("rewrite_log", HTTP_MAIN | REWRITE_CTX, FLAG)),
    Command(DirectiveSpec("uninitialized_variable_warn", HTTP_MAIN | REWRITE_CTX, FLAG)),
)

MODULE = Module("ngx_http_rewrite_module", COMMANDS, local_slots=("rewrite:script",))
