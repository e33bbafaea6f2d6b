"""The simulated nginx modules, one file each, in nginx's module order.

Order matters where nginx's does: phase handlers run in the order modules register them.
"""

from __future__ import annotations

from . import (
    access,
    auth_basic,
    auth_request,
    content,
    core,
    fastcgi,
    geo,
    grpc,
    headers,
    log,
    map,
    notices,
    proxy,
    realip,
    response,
    rewrite,
    scgi,
    split_clients,
    try_files,
    upstream,
    uwsgi,
)
from .base import Command, Module

MODULES: tuple[Module, ...] = (
    core.MODULE,
    log.MODULE,
    response.MODULE,
    rewrite.MODULE,
    realip.MODULE,
    geo.MODULE,
    map.MODULE,
    split_clients.MODULE,
    upstream.MODULE,
    proxy.MODULE,
    uwsgi.MODULE,
    fastcgi.MODULE,
    scgi.MODULE,
    grpc.MODULE,
    content.MODULE,
    try_files.MODULE,  # the only PRECONTENT handler simulated (mirror is not)
    headers.MODULE,
    # nginx registers auth_request, auth_basic, access in that order and runs a phase's handlers
    # last-registered first (ngx_http_init_phase_handlers); ours run in list order, hence reversed
    access.MODULE,
    auth_basic.MODULE,
    auth_request.MODULE,
    notices.MODULE,  # warnings only: no phase handler
)

INERT = core.INERT

__all__ = ["MODULES", "INERT", "Command", "Module"]
