"""The simulated nginx modules, one file each, in nginx's module order.

Order matters where nginx's does: phase handlers run in the order modules register them.
"""

from __future__ import annotations

from . import (
    auth_request,
    content,
    core,
    fastcgi,
    geo,
    grpc,
    headers,
    map,
    proxy,
    realip,
    rewrite,
    scgi,
    split_clients,
    upstream,
    uwsgi,
)
from .base import Command, Module

MODULES: tuple[Module, ...] = (
    core.MODULE,
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
    headers.MODULE,
    auth_request.MODULE,
)

INERT = core.INERT

__all__ = ["MODULES", "INERT", "Command", "Module"]
