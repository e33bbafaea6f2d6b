"""What a module is: a table of directives (`ngx_command_t[]`) plus the handlers that compile them.

A `Command` pairs a directive's spec with the function that turns the directive into a compiled
value. Without a handler the directive is still accepted and stored (raw) by the merge rule of
its spec, so modules we do not simulate never reject a valid config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..conf.directive import Directive
from ..conf.spec import DirectiveSpec, Merge

if TYPE_CHECKING:
    from ..http.context import Context
    from ..http.variables import Getter
    from ..plan import Compiler, Level

Handler = Callable[[Directive, "Level", "Compiler"], Any]


@dataclass(frozen=True, slots=True)
class Command:
    """A directive of a module. `handler` returns the value stored in the level's slot `slot`
    (default: the directive name) by the spec's merge rule; block handlers return None and do
    their own work."""

    spec: DirectiveSpec
    handler: Handler | None = None
    slot: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def merge(self) -> Merge:
        return self.spec.merge


PhaseHandler = Callable[["Context"], None]
AccessHandler = Callable[["Context"], "int | None"]
"""An ACCESS phase handler's answer, as `ngx_http_core_access_phase` reads it: None declines
(NGX_DECLINED), `ACCESS_OK` allows, an HTTP status (401, 403, 500) refuses."""
ACCESS_OK = 0
WWW_AUTHENTICATE = "www_authenticate"  # module_state key: the line r->headers_out.www_authenticate points at


@dataclass(frozen=True, slots=True)
class Module:
    """One nginx module as simulated: its name (nginx's), its directives, the variables it
    provides (`ngx_http_module_t.preconfiguration` adding variables) and its phase handlers
    (`postconfiguration` registering into `cmcf->phases`)."""

    name: str
    commands: tuple[Command, ...]
    local_slots: tuple[str, ...] = ()  # extra slots that are never inherited (e.g. a script)
    variables: tuple[tuple[str, Getter, bool], ...] = ()  # (name, getter, cacheable)
    post_read: PhaseHandler | None = None
    preaccess: PhaseHandler | None = None
    access: AccessHandler | None = None
    precontent: PhaseHandler | None = None
    header_filter: PhaseHandler | None = None  # runs once the response status is known
    finish: Callable[[Compiler], None] | None = None  # after merging, before the Plan is built
