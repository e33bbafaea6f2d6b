"""Directives that change nothing nginxsim answers but that nginx warns about while reading them.

`nginx -t` prints these [warn] lines (and refuses a repeated or invalid value) in the handlers
of modules nginxsim does not otherwise simulate, so `Config.warnings` and `nginxsim lint` say
the same:

- `ssl` (`ngx_http_ssl_enable`): deprecated in favour of `listen ... ssl`;
- `send_lowat`, `proxy_send_lowat` (`ngx_http_core_lowat_check`, `ngx_http_proxy_lowat_check`):
  SO_SNDLOWAT does not exist on Linux;
- `gzip_types`, `ssi_types`, `sub_filter_types`, `addition_types`, `charset_types`
  (`ngx_http_types_slot`): a MIME type listed twice at one level, text/html included.
"""

from __future__ import annotations

from ..conf.directive import Directive
from ..conf.spec import FLAG, HTTP_LOC, HTTP_MAIN, HTTP_SRV, ONEMORE, TAKE1, DirectiveSpec, Merge
from ..plan import Compiler, Level, error
from .base import Command, Module
from .core import flag
from .log import parse_size


def _ssl(d: Directive, level: Level, cc: Compiler) -> bool:
    """`ngx_conf_set_flag_slot` (a repeat is refused before the value is read), then the warning."""
    if d.name in level.values:
        return True  # stored again: "is duplicate"
    value = flag(d)
    cc.warn(d, 'the "ssl" directive is deprecated, use the "listen ... ssl" directive instead')
    return value


def _lowat(d: Directive, level: Level, cc: Compiler) -> int:
    """`ngx_conf_set_size_slot`, then its post handler, which on Linux only warns."""
    if d.name in level.values:
        return 0  # stored again: "is duplicate"
    size = parse_size(d.args[0])
    if size < 0:
        raise error(d, f'"{d.name}" directive invalid value')
    cc.warn(d, f'"{d.name}" is not supported, ignored')
    return size


def _types(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_types_slot`: the level's list starts with the directive's first default type
    (text/html for all of these); a type already there is warned about, `*` ends the list."""
    known: list[str] = level.values.setdefault(f"{d.name}:types", ["text/html"])
    if "*" in known:
        return
    for mime in d.args:
        if mime == "*":
            known.append(mime)
            return
        lowered = mime.lower()
        if lowered in known:
            cc.warn(d, f'duplicate MIME type "{lowered}"')
        else:
            known.append(lowered)


_HTTP = HTTP_MAIN | HTTP_SRV | HTTP_LOC
_TYPES = ("gzip_types", "ssi_types", "sub_filter_types", "addition_types", "charset_types")

COMMANDS = (
    Command(DirectiveSpec("ssl", HTTP_MAIN | HTTP_SRV, FLAG), _ssl),
    Command(DirectiveSpec("send_lowat", _HTTP, TAKE1), _lowat),
    Command(DirectiveSpec("proxy_send_lowat", _HTTP, TAKE1), _lowat),
    *(Command(DirectiveSpec(name, _HTTP, ONEMORE, Merge.LOCAL), _types) for name in _TYPES),
)

MODULE = Module("nginx's warnings about directives nginxsim does not simulate", COMMANDS,
                local_slots=tuple(f"{name}:types" for name in _TYPES))
