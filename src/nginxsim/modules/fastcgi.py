"""`ngx_http_fastcgi_module`: `fastcgi_pass` and the parameters the backend receives.

The pass shares the proxy module's machinery (`proxy.PassHandler`); what is specific is the
parameter list (`fastcgi_param`, inherited all-or-nothing) and `fastcgi_pass_request_headers`, which
passes client headers as `HTTP_*` parameters, and `$fastcgi_script_name`/`$fastcgi_path_info`
(`fastcgi_split_path_info`, `fastcgi_index`), which PHP configs test files with
(`if (!-f $document_root$fastcgi_script_name)`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import HTTP_LOC, HTTP_MAIN, HTTP_SRV, TAKE1, DirectiveSpec
from ..plan import Compiler, Level, error
from ..regex import Regex, RegexError, compile_regex
from .base import Command
from .proxy import params_module

if TYPE_CHECKING:
    from ..http.context import Context


def _split_path_info(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_fastcgi_split_path_info`: a plain regex (no variables for named groups) with
    exactly two captures; a second one at the same level replaces the first."""
    try:
        rx = compile_regex(d.args[0])
    except RegexError as e:
        raise error(d, e.message) from None
    if rx.ncaptures != 2:
        raise error(d, f'pattern "{d.args[0]}" must have 2 captures')
    level.values["fastcgi_split_path_info"] = rx


def _index(d: Directive, level: Level, cc: Compiler) -> bytes:
    """`fastcgi_index` (`ngx_conf_set_str_slot`): appended to a script name ending in '/'."""
    return d.args[0].encode("utf-8", "surrogateescape")


def _split(r: Context) -> tuple[bytes, bytes]:
    """`ngx_http_fastcgi_split`: (script name, path info) of $uri by the split regex, or ($uri,
    ""). Kept in the module's request context once the script name is non-empty, so a later
    change of $uri (try_files) does not change it until an internal redirect clears it."""
    ctx = r.module_state.setdefault("ctx", {})
    kept: tuple[bytes, bytes] | None = ctx.get("fastcgi")
    if kept is not None and kept[0]:
        return kept
    rx: Regex | None = r.loc.conf.get("fastcgi_split_path_info")
    m = rx.search(r.uri) if rx is not None else None
    split = (m.group(1) or b"", m.group(2) or b"") if m is not None else (r.uri, b"")
    ctx["fastcgi"] = split
    return split


def _script_name(r: Context) -> bytes | None:
    """`ngx_http_fastcgi_script_name_variable`: a script name ending in '/' gets `fastcgi_index`."""
    name = _split(r)[0]
    if name.endswith(b"/"):
        index: bytes = r.loc.conf.get("fastcgi_index", b"")
        return name + index
    return name


def _path_info(r: Context) -> bytes | None:
    return _split(r)[1]


_BASE = params_module("fastcgi", "ngx_http_fastcgi_module")
_SPLIT_CONTEXTS = HTTP_MAIN | HTTP_SRV | HTTP_LOC

MODULE = dataclasses.replace(
    _BASE,
    commands=(*_BASE.commands,
              Command(DirectiveSpec("fastcgi_index", _SPLIT_CONTEXTS, TAKE1), _index),
              Command(DirectiveSpec("fastcgi_split_path_info", _SPLIT_CONTEXTS, TAKE1), _split_path_info)),
    variables=(*_BASE.variables, ("fastcgi_script_name", _script_name, False),
               ("fastcgi_path_info", _path_info, False)),
)
