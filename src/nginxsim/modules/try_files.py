"""`ngx_http_try_files_module`: `try_files file ... uri|=code|@name`, a PRECONTENT handler.

Each argument but the last is evaluated and looked up under the location's root or alias; the
first one found (a directory for an argument written with a trailing '/', else anything that is
not a directory) becomes the new $uri, in the same location, and the content phase serves it.
When none is found the last argument decides: `=code` ends the request with that status, `@name`
jumps to a named location, anything else is an internal redirect (split at '?' into URI and
args). The directive is not inherited: at server level it applies only to requests that match
no location, and an `if` block that matches runs without it.

The alias quirks of 1.22.1 are kept: an argument *with variables* that starts with the first
`len(location name)` bytes of $uri loses them (so `$uri` maps under the alias, and so does a
fallback like `/prefix/index.php?$args`, which becomes the relative `index.php`); a constant
argument keeps them; in a regex location the argument is appended to the whole alias.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from ..conf.directive import Directive
from ..conf.spec import HTTP_LOC, HTTP_SRV, TWOMORE, DirectiveSpec
from ..http.files import FileInfo
from ..http.flow import Finalize, internal_redirect, named_location
from ..http.script import Complex
from ..plan import Compiler, Level, error
from .base import Command, Module
from .content import ALIAS_IN_REGEX, alias_length, map_uri_to_path

if TYPE_CHECKING:
    from ..http.context import Context


@dataclass(frozen=True, slots=True)
class TryFile:
    """One argument: its text (a trailing '/' removed when it asks for a directory)."""

    value: Complex
    test_dir: bool
    text: str


@dataclass(frozen=True, slots=True)
class TryFiles:
    """A `try_files` directive: the arguments in order; `code` is the status of a last `=code`."""

    items: tuple[TryFile, ...]
    code: int
    d: Directive


def _try_files(d: Directive, level: Level, cc: Compiler) -> TryFiles:
    """`ngx_http_try_files`: a trailing '/' marks a directory test except on the last argument;
    a last argument starting with '=' must be a code up to 999."""
    items = []
    for i, text in enumerate(d.args):
        test_dir = text.endswith("/") and i < len(d.args) - 1
        name = text[:-1] if test_dir else text
        items.append(TryFile(cc.complex(name, d), test_dir, text))
    code = 0
    last = items[-1]
    if last.text.startswith("="):
        # nginx parses one byte less when the argument has variables (its length lacks the NUL)
        digits = last.text[1:] if last.value.const is not None else last.text[1:-1]
        if not digits.isascii() or not digits.isdigit() or int(digits) > 999:
            shown = last.text if last.value.const is not None else last.text[:-1]
            raise error(d, f'invalid code "{shown}"')
        code = int(digits)
    return TryFiles(tuple(items), code, d)


def _handler(r: Context) -> None:
    """`ngx_http_try_files_handler`."""
    tf: TryFiles | None = r.loc.conf.get("try_files")
    if tf is None:
        return
    alias = alias_length(r)
    mapped = map_uri_to_path(r)
    if mapped is None:
        raise Finalize(500)
    root = mapped[0][: mapped[1]]
    d = tf.d
    last = len(tf.items) - 1
    for i, item in enumerate(tf.items):
        value = item.value
        name: bytes = value.const if value.const is not None else value.eval(r)
        if value.const is None and alias > 0 and len(name) >= alias and name[:alias] == r.uri[:alias]:
            name = name[alias:]
        if i == last:
            _fallback(r, tf, name)
        path = root + name
        info = r.open(path)
        kind = "directory" if item.test_dir else "file"
        if not isinstance(info, FileInfo):
            r.trace.add("precontent", f"try_files {item.text}", f"{_s(path)}: {errno.errorcode.get(info, info)}",
                        d.file, d.line)
            continue
        if stat.S_ISDIR(info.mode) != item.test_dir:
            r.trace.add("precontent", f"try_files {item.text}", f"{_s(path)} is not a {kind}", d.file, d.line)
            continue
        if alias == 0:
            r.uri = name
        elif alias == ALIAS_IN_REGEX:
            if not item.test_dir:
                r.uri = name
                r.module_state["add_uri_to_alias"] = True
        else:
            r.uri = r.uri[:alias] + name
        if not r.uri:
            r.module_state["slash_before_uri"] = root.endswith(b"/")
        r.trace.add("precontent", f"try_files {item.text}", f"{_s(path)}: {kind} found, $uri {_s(r.uri)}",
                    d.file, d.line)
        return


def _fallback(r: Context, tf: TryFiles, name: bytes) -> NoReturn:
    """The end of `ngx_http_try_files_handler`: the last argument is `=code`, `@name`, or an
    internal redirect to URI?args (`ngx_http_split_args`: no '?' means no args)."""
    d = tf.d
    text = tf.items[-1].text
    if tf.code:
        r.trace.add("precontent", f"try_files {text}", f"nothing found: {tf.code}", d.file, d.line)
        if tf.code in _NO_RESPONSE or (tf.code < 300 and tf.code not in (201, 204)):
            # ngx_http_finalize_request: 408/499 terminate the request, a code below 300 (but
            # 201/204) is no response at all; like 444, nginx sends nothing
            r.notes.append(f"try_files ={tf.code}: nginx sends no response")
            raise Finalize(444)
        raise Finalize(tf.code)
    r.trace.add("precontent", f"try_files {text}", f"nothing found: to {_s(name)}", d.file, d.line)
    if name.startswith(b"@"):
        named_location(r, _s(name))
    uri, _, args = name.partition(b"?")
    internal_redirect(r, uri, args)


_NO_RESPONSE = frozenset((408, 499))


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


MODULE = Module(
    "ngx_http_try_files_module",
    (Command(DirectiveSpec("try_files", HTTP_SRV | HTTP_LOC, TWOMORE), _try_files),),
    local_slots=("try_files",),  # the module has no merge function: never inherited
    precontent=_handler,
)
