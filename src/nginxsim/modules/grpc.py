"""`ngx_http_grpc_module`: `grpc_pass` and the headers sent as HTTP/2 to the backend.

The pass shares the proxy module's machinery; `grpc_set_header` is inherited all-or-nothing.
"""

from __future__ import annotations

from ..conf.spec import HTTP_LOC, HTTP_MAIN, HTTP_SRV, TAKE2, DirectiveSpec, Merge
from .base import Command, Module
from .proxy import header_directive, hide_commands, pass_command

COMMANDS = (
    pass_command("grpc", "grpc"),
    Command(DirectiveSpec("grpc_set_header", HTTP_MAIN | HTTP_SRV | HTTP_LOC, TAKE2, Merge.ARRAY), header_directive),
    *hide_commands("grpc"),
)

MODULE = Module("ngx_http_grpc_module", COMMANDS)
