"""The simulated nginx modules, one file each, in nginx's module order.

Order matters where nginx's does: phase handlers run in the order modules register them.
"""

from __future__ import annotations

from . import content, core, fastcgi, grpc, headers, proxy, rewrite, scgi, upstream, uwsgi
from .base import Command, Module

MODULES: tuple[Module, ...] = (
    core.MODULE,
    rewrite.MODULE,
    upstream.MODULE,
    proxy.MODULE,
    uwsgi.MODULE,
    fastcgi.MODULE,
    scgi.MODULE,
    grpc.MODULE,
    content.MODULE,
    headers.MODULE,
)

INERT = core.INERT

__all__ = ["MODULES", "INERT", "Command", "Module"]
