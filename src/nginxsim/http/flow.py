"""How a phase ends the walk: a final status, an internal redirect, a named-location jump.

Kept apart from the engine so that modules (the content phase, error pages...) can end or
redirect a request without importing the engine that calls them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .context import Context


class Redirect(Exception):
    """An internal redirect: restart at SERVER_REWRITE with a new URI (`ngx_http_internal_redirect`)."""


class NamedJump(Exception):
    """A jump to a named location: restart at its REWRITE phase (`ngx_http_named_location`)."""


class Finalize(Exception):
    """Ends the phase walk with a status (nginx's `ngx_http_finalize_request(r, status)`).

    `special` is False only for responses sent with a body (`return 200 "text"`): those never
    reach `ngx_http_special_response_handler`, so `error_page` cannot intercept them.
    """

    def __init__(self, status: int, location: bytes | None = None, body: bytes | None = None,
                 special: bool = True) -> None:
        super().__init__(status)
        self.status = status
        self.location = location
        self.body = body
        self.special = special


def internal_redirect(r: Context, uri: bytes, args: bytes | None) -> NoReturn:
    """`ngx_http_internal_redirect`: counts toward the 10 changes, then restarts the phases."""
    count_uri_change(r, f"internally redirecting to {_s(uri)}")
    r.uri, r.args = uri, args
    r.valid_unparsed_uri = False
    r.module_state.pop("add_uri_to_alias", None)
    r.module_state.pop("ctx", None)  # nginx clears the modules' request contexts (r->ctx)
    r.loc = r.server.loc
    raise Redirect


def named_location(r: Context, name: str) -> NoReturn:
    """`ngx_http_named_location`: $uri, $args and the method are kept; no location search."""
    count_uri_change(r, f"jumping to named location {name}")
    if not r.uri:
        r.notes.append(f'empty URI in redirect to named location "{name}": 500')
        raise Finalize(500)
    loc = r.server.loc.named.get(name)
    if loc is None:
        r.notes.append(f'could not find named location "{name}": 500')
        raise Finalize(500)
    r.loc = loc
    r.module_state.pop("ctx", None)  # nginx clears the modules' request contexts (r->ctx)
    if r.trace.enabled:
        r.trace.add("location", f"jump to {name}", loc.label, loc.file, loc.line)
    raise NamedJump


def count_uri_change(r: Context, what: str) -> None:
    """`r->uri_changes`: 10 changes are allowed, the 11th ends the request with 500."""
    r.uri_changes -= 1
    r.internal = True
    if r.uri_changes == 0:
        r.notes.append(f"rewrite or internal redirection cycle ({what})")
        raise Finalize(500)



def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")
