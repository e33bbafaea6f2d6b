"""`ngx_http_headers_filter_module`: `add_header`, applied once the response status is known.

Headers come from the location that finally produced the response (after error_page and
internal redirects), are inherited all-or-nothing, and without `always` are added only for
the statuses `ngx_http_headers_filter` lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import HTTP_LIF, HTTP_LOC, HTTP_MAIN, HTTP_SRV, TAKE23, DirectiveSpec, Merge
from ..http.script import Complex
from ..plan import Compiler, Level, error
from .base import Command, Module

if TYPE_CHECKING:
    from ..http.context import Context

_SUCCESS = frozenset((200, 201, 204, 206, 301, 302, 303, 304, 307, 308))


@dataclass(frozen=True, slots=True)
class AddHeader:
    name: str
    value: Complex
    always: bool
    d: Directive


def _add_header(d: Directive, level: Level, cc: Compiler) -> AddHeader:
    """`ngx_http_headers_add`: NAME VALUE [always]."""
    if len(d.args) == 3 and d.args[2] != "always":
        raise error(d, f'invalid parameter "{d.args[2]}"')
    return AddHeader(d.args[0], cc.complex(d.args[1], d), len(d.args) == 3, d)


def header_filter(r: Context) -> None:
    """`ngx_http_headers_filter`: main request only; an empty value adds nothing."""
    entries = r.loc.conf.get("add_header") if r.loc is not None else None
    if not entries:
        return
    status = r.err_status or r.status
    if status is None:
        status = 200  # passed upstream: shown as for a successful upstream answer
        r.notes.append("add_header without 'always' is shown as for a 2xx/3xx upstream answer")
    for h in entries:
        if h.always or status in _SUCCESS:
            v = h.value.eval(r)
            if v:
                r.headers_out.append((h.name, v.decode("utf-8", "surrogateescape")))
                if r.trace.enabled:
                    r.trace.add("headers", f"add_header {h.name}", v.decode("utf-8", "surrogateescape"),
                                h.d.file, h.d.line)


COMMANDS = (
    Command(DirectiveSpec("add_header", HTTP_MAIN | HTTP_SRV | HTTP_LOC | HTTP_LIF, TAKE23, Merge.ARRAY),
            _add_header),
)

MODULE = Module("ngx_http_headers_filter_module", COMMANDS, header_filter=header_filter)
