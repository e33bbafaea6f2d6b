"""`ngx_http_core_module`: http, server, listen, server_name, location, and the flags routing reads.

Mirrors `ngx_http_core_server`, `ngx_http_core_listen`, `ngx_http_core_server_name`,
`ngx_http_core_location` (modifier parsing and nesting rules) and the core merge of location
settings. Building the lookup tables from what these handlers collect is `finish_http`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from ..conf.directive import Directive
from ..conf.spec import (
    BLOCK,
    FLAG,
    HTTP_LIF,
    HTTP_LOC,
    HTTP_MAIN,
    HTTP_SRV,
    MAIN,
    NOARGS,
    ONEMORE,
    TAKE1,
    TAKE12,
    TWOMORE,
    DirectiveSpec,
    Merge,
)
from ..http.files import SYMLINKS_IF_NOT_OWNER, SYMLINKS_OFF, SYMLINKS_ON
from ..http.script import Complex
from ..plan import Compiler, Level, Listen, LocationConf, ServerConf, error
from ..regex import server_name_caseless
from .base import Command, Module

HTTP_ANY = HTTP_MAIN | HTTP_SRV | HTTP_LOC


def flag(d: Directive) -> bool:
    """`ngx_conf_set_flag_slot`: exactly "on" or "off" (case-insensitive)."""
    v = d.args[0].lower()
    if v not in ("on", "off"):
        raise error(d, f'invalid value "{d.args[0]}" in "{d.name}" directive, it must be "on" or "off"')
    return v == "on"


def _flag(d: Directive, level: Level, cc: Compiler) -> bool:
    return flag(d)


# -- http / server ------------------------------------------------------------------------------


def _http(d: Directive, level: Level, cc: Compiler) -> None:
    if cc.http_level is not None:
        raise error(d, '"http" directive is duplicate')
    http = Level("http", level, d)
    cc.http_level = http
    cc.block(d.block or (), http)


def _server(d: Directive, level: Level, cc: Compiler) -> None:
    server = ServerConf(d, len(cc.servers))
    slevel = Level("server", level, d, server)
    server.loc = LocationConf("server", "", d, slevel, None)
    server.loc.server = server
    slevel.owner = server.loc
    cc.servers.append(server)
    cc.block(d.block or (), slevel)


_LISTEN_FLAGS = {"default_server", "default", "ssl", "http2", "proxy_protocol", "reuseport", "bind",
                 "deferred", "spdy"}
_LISTEN_VALUES = ("backlog=", "rcvbuf=", "sndbuf=", "accept_filter=", "setfib=", "fastopen=", "ipv6only=",
                  "so_keepalive=")


def parse_listen_address(text: str, d: Directive) -> tuple[Any, int]:
    """`ngx_parse_url` with `listen = 1`: returns (address or None for wildcard, port)."""
    if text.startswith("unix:"):
        return text, 0
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise error(d, f'invalid host in "{text}" of the "listen" directive')
        host, rest = text[1:end], text[end + 1 :]
        try:
            addr: Any = ipaddress.IPv6Address(host)
        except ValueError:
            raise error(d, f'invalid IPv6 address in "{text}" of the "listen" directive') from None
        if rest and not rest.startswith(":"):
            raise error(d, f'invalid host in "{text}" of the "listen" directive')
        port_text = rest[1:] if rest else "80"
        return addr, _port(port_text, text, d)  # [::] stays: IPv6 sockets are ipv6only
    if text.isdigit():
        return None, _port(text, text, d)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, "80"
    if host == "*":
        return None, _port(port_text, text, d)
    try:
        addr = ipaddress.IPv4Address(host)
    except ValueError:
        if host.lower() == "localhost":
            addr = ipaddress.IPv4Address("127.0.0.1")
        else:
            raise error(d, f'host not found in "{text}" of the "listen" directive '
                           "(nginxsim resolves only IP addresses and localhost)") from None
    return (None if addr == ipaddress.IPv4Address("0.0.0.0") else addr), _port(port_text, text, d)


def _port(port_text: str, text: str, d: Directive) -> int:
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise error(d, f'invalid port in "{text}" of the "listen" directive')
    return int(port_text)


def _listen(d: Directive, level: Level, cc: Compiler) -> None:
    server: ServerConf = level.owner.server
    addr, port = parse_listen_address(d.args[0], d)
    default = False
    ssl = False
    for p in d.args[1:]:
        if p in ("default_server", "default"):
            default = True
        elif p == "ssl":
            ssl = True
        elif p in _LISTEN_FLAGS or p.startswith(_LISTEN_VALUES):
            continue
        else:
            raise error(d, f'invalid parameter "{p}"')
    server.listens.append(Listen(addr, port, default, ssl, d))


def _server_name(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_core_server_name`: names are lowercased unless they are regexes."""
    server: ServerConf = level.owner.server
    for name in d.args:
        if (name.startswith("*") and (len(name) < 3 or name[1] != ".")) or (name.startswith(".") and len(name) < 2):
            raise error(d, f'server name "{name}" is invalid')
        if name.lower() == "$hostname":
            name = cc.hostname.decode()
        if name.startswith("~"):
            if len(name) == 1:
                raise error(d, f'empty regex in server name "{name}"')
            rx = cc.regex(name[1:], server_name_caseless(name[1:]), d)
            server.names.append((name, d, rx))
        else:
            server.names.append((name.lower(), d, None))


# -- location -----------------------------------------------------------------------------------


def _location(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_core_location`: modifiers, nesting rules, then the block."""
    parent: LocationConf = level.owner
    args = d.args
    regex_caseless: bool | None = None
    if len(args) == 2:
        mod, name = args
        if mod == "=":
            kind = "exact"
        elif mod == "^~":
            kind = "noregex"
        elif mod == "~":
            kind, regex_caseless = "regex", False
        elif mod == "~*":
            kind, regex_caseless = "iregex", True
        else:
            raise error(d, f'invalid location modifier "{mod}"')
    else:
        name = args[0]
        if name.startswith("="):
            kind, name = "exact", name[1:]
        elif name.startswith("^~"):
            kind, name = "noregex", name[2:]
        elif name.startswith("~*"):
            kind, name, regex_caseless = "iregex", name[2:], True
        elif name.startswith("~"):
            kind, name, regex_caseless = "regex", name[1:], False
        elif name.startswith("@"):
            kind = "named"
        else:
            kind = "prefix"
    if parent.kind != "server":
        if parent.kind == "exact":
            raise error(d, f'location "{name}" cannot be inside the exact location "{parent.name}"')
        if parent.kind == "named":
            raise error(d, f'location "{name}" cannot be inside the named location "{parent.name}"')
        if kind == "named":
            raise error(d, f'named location "{name}" can be on the server level only')
        if regex_caseless is None and not name.startswith(parent.name):
            raise error(d, f'location "{name}" is outside location "{parent.name}"')
    llevel = Level("location", level, d)
    loc = LocationConf(kind, name, d, llevel, parent)
    llevel.owner = loc
    loc.server = parent.server
    if regex_caseless is not None:
        loc.regex = cc.regex(name, regex_caseless, d)
    if kind == "named":
        parent.named.setdefault(name, loc)
    elif regex_caseless is not None:
        parent.regexes.append(loc)
    else:
        for other in parent.static:
            if other.name == name and (other.kind == "exact") == (kind == "exact"):
                raise error(d, f'duplicate location "{name}"')
        parent.static.append(loc)
    cc.block(d.block or (), llevel)


_GET_IMPLIES = {"GET": ("GET", "HEAD")}
_METHODS = frozenset("GET HEAD POST PUT DELETE MKCOL COPY MOVE OPTIONS PROPFIND PROPPATCH LOCK UNLOCK PATCH".split())


def _limit_except(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_core_limit_except`: methods not listed switch to the block's configuration."""
    loc: LocationConf = level.owner
    if loc.limit_except is not None:
        raise error(d, '"limit_except" directive is duplicate')
    allowed: set[bytes] = set()
    for m in d.args:
        if m.upper() not in _METHODS:
            raise error(d, f'invalid method "{m}"')
        allowed.update(x.encode() for x in _GET_IMPLIES.get(m.upper(), (m.upper(),)))
    blevel = Level("limit_except", level, d)
    block = LocationConf("limit_except", " ".join(d.args), d, blevel, loc)
    block.server = loc.server
    blevel.owner = block
    loc.limit_except = (frozenset(allowed), block)
    cc.state.setdefault("limit_except_blocks", []).append(block)
    cc.block(d.block or (), blevel)


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """One `error_page` directive: its codes, `=`/`=NNN` (-1: keep, 0: the target's status)."""

    codes: frozenset[int]
    overwrite: int
    value: Complex
    args: bytes | None  # of a constant target (None: $args not found after the redirect)
    d: Directive


_BAD_REQUEST_CODES = frozenset((497, 495, 496, 494))  # answered as 400 unless "=" is given


def _error_page(d: Directive, level: Level, cc: Compiler) -> ErrorPage:
    """`ngx_http_core_error_page`."""
    args = d.args
    if len(args) < 2:
        raise error(d, f'invalid number of arguments in "{d.name}" directive')
    last = args[-2]
    if last.startswith("="):
        if len(args) == 2:
            raise error(d, f'invalid value "{last}"')
        if len(last) > 1:
            if not last[1:].isdigit():
                raise error(d, f'invalid value "{last}"')
            overwrite = int(last[1:])
        else:
            overwrite = 0
        codes_text = args[:-2]
    else:
        overwrite = -1
        codes_text = args[:-1]
    uri = args[-1]
    value = cc.complex(uri, d)
    extra = None  # ngx_str_null: no '?' means no args at all
    if value.const is not None and uri.startswith("/") and "?" in uri:
        path, _, rest = uri.partition("?")
        value = cc.complex(path, d)
        extra = rest.encode("utf-8", "surrogateescape")
    codes = set()
    for text in codes_text:
        if not text.isdigit() or int(text) == 499:
            raise error(d, f'invalid value "{text}"')
        code = int(text)
        if not 300 <= code <= 599:
            raise error(d, f'value "{text}" must be between 300 and 599')
        codes.add(code)
    if overwrite == -1 and codes & _BAD_REQUEST_CODES:
        # nginx stores these codes with overwrite=400; one entry per such code keeps it exact
        for code in sorted(codes & _BAD_REQUEST_CODES):
            level.values.setdefault("error_page", []).append(ErrorPage(frozenset((code,)), 400, value, extra, d))
        codes -= _BAD_REQUEST_CODES
    return ErrorPage(frozenset(codes), overwrite, value, extra, d)


def _internal(d: Directive, level: Level, cc: Compiler) -> bool:
    return True


def _satisfy(d: Directive, level: Level, cc: Compiler) -> str:
    """`ngx_conf_set_enum_slot` over all|any (case-insensitive): read by the ACCESS phase
    checker (engine._access); the duplicate check comes before the value's."""
    if "satisfy" in level.values:
        raise error(d, '"satisfy" directive is duplicate')
    value = d.args[0].lower()
    if value not in ("all", "any"):
        raise error(d, f'invalid value "{d.args[0]}"')
    return value


def _root(d: Directive, level: Level, cc: Compiler) -> tuple[str, Any, Directive, bytes, bool]:
    """`ngx_http_core_root`: root and alias share one slot, so they are inherited as a unit."""
    if "root" in level.values:
        prev = level.values["root"][0]
        if prev == d.name:
            raise error(d, f'"{d.name}" directive is duplicate')
        raise error(d, f'"{d.name}" directive is duplicate, "{prev}" directive was specified earlier')
    loc: LocationConf | None = level.owner  # None at http level
    if d.name == "alias" and loc is not None and loc.kind == "named":
        raise error(d, 'the "alias" directive cannot be used inside the named location')
    text = d.args[0]
    for var in ("document_root", "realpath_root"):
        if f"${var}" in text or f"${{{var}}}" in text:
            raise error(d, f'the ${var} variable cannot be used in the "{d.name}" directive')
    path = text[:-1] if d.name == "root" and text.endswith("/") else text
    if not text.startswith(("/", "$")):  # ngx_conf_full_name; "/" itself stays "" (absolute)
        path = cc.tree.prefix.rstrip("/") + "/" + path
    # alias keeps the name length of the location it is written in: nested locations inherit it
    name_b, in_regex = (loc.name_b, loc.regex is not None) if loc is not None else (b"", False)
    return (d.name, cc.complex(path, d), d, name_b, in_regex)


@dataclass(frozen=True, slots=True)
class DisableSymlinks:
    """A `disable_symlinks` directive: the mode (`SYMLINKS_*`) and its `from=` prefix, if any.
    Mode and prefix are one value, inherited together (nginx merges them apart, but every
    directive sets both)."""

    how: int
    source: Complex | None


_SYMLINK_MODES = {"off": SYMLINKS_OFF, "on": SYMLINKS_ON, "if_not_owner": SYMLINKS_IF_NOT_OWNER}


def _disable_symlinks(d: Directive, level: Level, cc: Compiler) -> DisableSymlinks:
    """`ngx_http_disable_symlinks`: the last mode and `from=` given win; the checks run in
    nginx's order (a repeat before the arguments are read)."""
    if "disable_symlinks" in level.values:
        raise error(d, '"disable_symlinks" directive is duplicate')
    how: int | None = None
    source: Complex | None = None
    for arg in d.args:
        if arg in _SYMLINK_MODES:
            how = _SYMLINK_MODES[arg]
        elif arg.startswith("from="):
            source = cc.complex(arg[5:], d)
        else:
            raise error(d, f'invalid parameter "{arg}"')
    if how is None:
        raise error(d, '"disable_symlinks" must have "off", "on" or "if_not_owner" parameter')
    if len(d.args) == 1:
        return DisableSymlinks(how, None)
    if source is None:
        raise error(d, f'duplicate parameters "{d.args[0]} {d.args[1]}"')
    if how == SYMLINKS_OFF:
        raise error(d, '"from=" cannot be used with "off" parameter')
    return DisableSymlinks(how, source)


COMMANDS = (
    Command(DirectiveSpec("http", MAIN, BLOCK | NOARGS, Merge.LOCAL), _http),
    Command(DirectiveSpec("server", HTTP_MAIN, BLOCK | NOARGS, Merge.LOCAL), _server),
    Command(DirectiveSpec("listen", HTTP_SRV, ONEMORE, Merge.LOCAL), _listen),
    Command(DirectiveSpec("server_name", HTTP_SRV, ONEMORE, Merge.LOCAL), _server_name),
    Command(DirectiveSpec("location", HTTP_SRV | HTTP_LOC, BLOCK | TAKE12, Merge.LOCAL), _location),
    Command(DirectiveSpec("limit_except", HTTP_LOC, BLOCK | ONEMORE, Merge.LOCAL), _limit_except),
    Command(DirectiveSpec("internal", HTTP_LOC, NOARGS), _internal),
    Command(DirectiveSpec("satisfy", HTTP_ANY, TAKE1), _satisfy),
    Command(DirectiveSpec("error_page", HTTP_ANY | HTTP_LIF, TWOMORE, Merge.ARRAY), _error_page),
    Command(DirectiveSpec("recursive_error_pages", HTTP_ANY, FLAG), _flag),
    Command(DirectiveSpec("merge_slashes", HTTP_MAIN | HTTP_SRV, FLAG), _flag),
    Command(DirectiveSpec("underscores_in_headers", HTTP_MAIN | HTTP_SRV, FLAG), _flag),
    Command(DirectiveSpec("ignore_invalid_headers", HTTP_MAIN | HTTP_SRV, FLAG), _flag),
    Command(DirectiveSpec("absolute_redirect", HTTP_ANY, FLAG), _flag),
    Command(DirectiveSpec("server_name_in_redirect", HTTP_ANY, FLAG), _flag),
    Command(DirectiveSpec("port_in_redirect", HTTP_ANY, FLAG), _flag),
    Command(DirectiveSpec("root", HTTP_ANY | HTTP_LIF, TAKE1), _root, slot="root"),
    Command(DirectiveSpec("alias", HTTP_LOC, TAKE1), _root, slot="root"),
    Command(DirectiveSpec("disable_symlinks", HTTP_ANY, TAKE12), _disable_symlinks),
)

# Stock directives that cannot change which server/location/handler answers or what the
# upstream receives (logging, timeouts, buffers, TLS material...). Others we do not simulate
# are listed in a Decision's `not_simulated`.
INERT = frozenset("""
    access_log error_log log_format log_not_found log_subrequest open_log_file_cache rewrite_log
    uninitialized_variable_warn sendfile sendfile_max_chunk tcp_nopush tcp_nodelay keepalive_timeout
    keepalive_requests keepalive_time keepalive_disable send_timeout client_body_timeout
    client_header_timeout client_header_buffer_size large_client_header_buffers client_body_buffer_size
    client_body_temp_path client_body_in_file_only client_body_in_single_buffer reset_timedout_connection
    lingering_close lingering_time lingering_timeout resolver resolver_timeout server_tokens
    types_hash_max_size types_hash_bucket_size server_names_hash_bucket_size server_names_hash_max_size
    variables_hash_max_size variables_hash_bucket_size map_hash_max_size map_hash_bucket_size
    proxy_headers_hash_max_size proxy_headers_hash_bucket_size
    gzip gzip_vary gzip_proxied gzip_comp_level gzip_buffers gzip_http_version gzip_types gzip_min_length
    gzip_disable gzip_static gunzip charset source_charset charset_types override_charset
    ssl_certificate ssl_certificate_key ssl_protocols ssl_ciphers ssl_prefer_server_ciphers ssl_session_cache
    ssl_session_timeout ssl_session_tickets ssl_dhparam ssl_stapling ssl_stapling_verify ssl_trusted_certificate
    ssl_ecdh_curve ssl_buffer_size ssl_session_ticket_key ssl_early_data ssl_conf_command ssl_password_file
    ssl_client_certificate ssl_verify_depth ssl_crl ssl_ocsp ssl_ocsp_cache ssl_reject_handshake ssl
    proxy_connect_timeout proxy_read_timeout proxy_send_timeout proxy_buffering proxy_buffers proxy_buffer_size
    proxy_busy_buffers_size proxy_temp_path proxy_max_temp_file_size proxy_temp_file_write_size
    proxy_request_buffering proxy_next_upstream proxy_next_upstream_tries proxy_next_upstream_timeout
    proxy_cache proxy_cache_path proxy_cache_key proxy_cache_valid proxy_cache_bypass proxy_no_cache
    proxy_cache_use_stale proxy_cache_lock proxy_cache_methods proxy_cache_min_uses proxy_cache_revalidate
    proxy_cache_background_update proxy_cache_lock_timeout proxy_cache_lock_age proxy_ignore_headers
    proxy_ssl_verify proxy_ssl_server_name proxy_ssl_name proxy_ssl_protocols proxy_ssl_ciphers
    proxy_ssl_session_reuse proxy_ssl_trusted_certificate proxy_ssl_certificate proxy_ssl_certificate_key
    proxy_socket_keepalive proxy_ignore_client_abort
    uwsgi_read_timeout uwsgi_send_timeout uwsgi_connect_timeout uwsgi_buffers uwsgi_buffer_size uwsgi_buffering
    uwsgi_temp_path uwsgi_next_upstream uwsgi_cache uwsgi_cache_path uwsgi_cache_key
    uwsgi_cache_valid uwsgi_request_buffering uwsgi_max_temp_file_size uwsgi_busy_buffers_size
    fastcgi_read_timeout fastcgi_send_timeout fastcgi_connect_timeout fastcgi_buffers fastcgi_buffer_size
    fastcgi_buffering fastcgi_temp_path fastcgi_next_upstream fastcgi_cache
    fastcgi_cache_path fastcgi_cache_key fastcgi_cache_valid fastcgi_keep_conn fastcgi_busy_buffers_size
    fastcgi_temp_file_write_size fastcgi_max_temp_file_size fastcgi_request_buffering fastcgi_ignore_client_abort
    fastcgi_cache_bypass fastcgi_no_cache fastcgi_cache_use_stale fastcgi_cache_methods fastcgi_cache_lock
    fastcgi_ignore_headers
    scgi_read_timeout scgi_send_timeout scgi_connect_timeout scgi_buffers scgi_buffer_size scgi_temp_path
    grpc_read_timeout grpc_send_timeout grpc_connect_timeout grpc_buffer_size grpc_ssl_verify
    grpc_ssl_certificate grpc_ssl_certificate_key grpc_ssl_trusted_certificate grpc_next_upstream
    grpc_socket_keepalive
    open_file_cache open_file_cache_valid open_file_cache_min_uses open_file_cache_errors directio
    directio_alignment aio aio_write output_buffers postpone_output read_ahead
    limit_rate limit_rate_after etag if_modified_since add_trailer auth_delay
    default_type types chunked_transfer_encoding msie_padding msie_refresh
    max_ranges ssi_types sub_filter_types
    events worker_processes worker_connections worker_rlimit_nofile worker_cpu_affinity worker_priority
    pid user daemon master_process pcre_jit thread_pool timer_resolution working_directory env lock_file
    load_module multi_accept accept_mutex accept_mutex_delay use debug_connection worker_shutdown_timeout
    stream mail ssl_engine google_perftools_profiles
    keepalive keepalive_timeout zone resolver_timeout
    status_zone log_format http2_max_field_size http2_max_header_size
    http2_push_preload http2_recv_buffer_size http2_body_preread_size http2_idle_timeout
    http2_max_concurrent_streams http2_max_requests http2_chunk_size http2_push
""".split())

MODULE = Module("ngx_http_core_module", COMMANDS)
