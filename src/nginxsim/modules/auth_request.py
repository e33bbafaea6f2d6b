"""`ngx_http_auth_request_module`: not simulated (it asks a subrequest), but its variables exist.

`auth_request_set $var value` creates `$var` (so configs that use it load); both directives are
listed in a Decision's `not_simulated`, since the subrequest's answer decides access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import HTTP_LOC, HTTP_MAIN, HTTP_SRV, TAKE2, DirectiveSpec, Merge
from ..plan import Compiler, Level, error
from .base import Command, Module

if TYPE_CHECKING:
    from ..http.context import Context


def _auth_request_set(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_auth_request_set`: the name must start with '$'; its value comes from the
    subrequest's response, which nginxsim does not run."""
    name = d.args[0]
    if not name.startswith("$"):
        raise error(d, f'invalid variable name "{name}"')

    def get(r: Context) -> bytes | None:
        r.note_unsimulated(f"${name[1:]}")
        return None

    cc.variables.define(name[1:], get, d, cacheable=False, duplicate_ok=True)
    cc.complex(d.args[1], d)
    level.unsimulated.append(d)


COMMANDS = (
    Command(DirectiveSpec("auth_request_set", HTTP_MAIN | HTTP_SRV | HTTP_LOC, TAKE2, Merge.LOCAL),
            _auth_request_set),
)

MODULE = Module("ngx_http_auth_request_module", COMMANDS)
