"""The stock directive table: every directive nginx 1.22.1 knows, with its ngx_command_t type masks.

Derived from crossplane's analyzer (`crossplane.analyzer.DIRECTIVES`, one mask per nginx command of
that name), corrected to match nginx 1.22.1's own command tables:

- Known: every module of the nginx 1.22.1 source tree that Debian builds, statically or as a
  dynamic module (geoip, image_filter, perl, xslt, mail, stream). The oracle binary lacks the
  dynamic ones unless `load_module`d and would say ``unknown directive``; a full install accepts
  them, and a config written for it should validate.
- Unknown (removed from crossplane's table): NGINX Plus directives (``api``, ``health_check``,
  ``match``, ``sticky``, ``zone_sync*``...), directives removed before 1.22 (``limit_zone``,
  ``spdy_*``), and third-party modules crossplane lists (njs ``js_*`` in an outdated form,
  ``*_cache_purge`` in Plus syntax). Modules outside the nginx tree (njs, echo, headers-more,
  lua...) are not stock: pass their specs to `validate` when a config loads them.
- Added: 1.22.1 directives crossplane 0.5.8 lacks (``keepalive_time``, ``ssl_reject_handshake``,
  ``*_ssl_conf_command``, ``proxy_cookie_flags``...), and masks fixed where crossplane differs.
- Not built on Linux, so unknown: the degradation and google_perftools modules and the event
  modules of other systems (kqueue, /dev/poll, eventport, iocp).

Checked against nginx 1.22.1's ngx_command_t arrays and, name by name, against the
binary: each name here is either accepted by nginx-light or belongs to a Debian dynamic module.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from crossplane import analyzer as _cp

from nginxsim.conf.spec import (
    EVENTS,
    FLAG,
    HTTP_LIF,
    HTTP_LMT,
    HTTP_LOC,
    HTTP_MAIN,
    HTTP_SIF,
    HTTP_SRV,
    HTTP_UPS,
    MAIN,
    ONEMORE,
    TAKE1,
    TAKE2,
    TAKE3,
    TAKE123,
    TAKE1234,
)

# Contexts spec.py leaves out because nginxsim simulates neither mail nor stream.
MAIL_MAIN: int = _cp.NGX_MAIL_MAIN_CONF
MAIL_SRV: int = _cp.NGX_MAIL_SRV_CONF
STREAM_MAIN: int = _cp.NGX_STREAM_MAIN_CONF
STREAM_SRV: int = _cp.NGX_STREAM_SRV_CONF
STREAM_UPS: int = _cp.NGX_STREAM_UPS_CONF

_HTTP = HTTP_MAIN | HTTP_SRV | HTTP_LOC
_MAIL = MAIL_MAIN | MAIL_SRV
_STREAM = STREAM_MAIN | STREAM_SRV
_ANY_CONTEXT = (
    MAIN | EVENTS | _HTTP | HTTP_SIF | HTTP_LIF | HTTP_LMT | HTTP_UPS | _MAIL | _STREAM | STREAM_UPS
)

_NOT_IN_NGINX_1_22_1 = frozenset(
    """
    api auth_jwt auth_jwt_claim_set auth_jwt_header_set auth_jwt_key_file auth_jwt_key_request
    auth_jwt_leeway f4f f4f_buffer_size fastcgi_cache_purge google_perftools_profiles
    health_check health_check_timeout hls hls_buffers hls_forward_args hls_fragment
    hls_mp4_buffer_size hls_mp4_max_buffer_size js_access js_content js_filter js_include js_path
    js_preread js_set keyval keyval_zone least_time limit_zone match memcached_force_ranges
    mp4_limit_rate mp4_limit_rate_after ntlm proxy_cache_purge queue scgi_cache_purge session_log
    session_log_format session_log_zone spdy_chunk_size spdy_headers_comp state status
    status_format status_zone sticky sticky_cookie_insert upstream_conf uwsgi_cache_purge zone_sync
    zone_sync_buffers zone_sync_connect_retry_interval zone_sync_connect_timeout zone_sync_interval
    zone_sync_recv_buffer_size zone_sync_server zone_sync_ssl zone_sync_ssl_certificate
    zone_sync_ssl_certificate_key zone_sync_ssl_ciphers zone_sync_ssl_crl zone_sync_ssl_name
    zone_sync_ssl_password_file zone_sync_ssl_protocols zone_sync_ssl_server_name
    zone_sync_ssl_trusted_certificate zone_sync_ssl_verify zone_sync_ssl_verify_depth
    zone_sync_timeout
    """.split()
)

# nginx 1.22.1 commands crossplane lacks or describes differently (module in the comment).
_CORRECTIONS: Mapping[str, tuple[int, ...]] = {
    "auth_delay": (_HTTP | TAKE1,),  # http core
    "epoll_events": (EVENTS | TAKE1,),  # ngx_epoll_module
    "grpc_ssl_conf_command": (_HTTP | TAKE2,),
    "gzip_hash": (_HTTP | TAKE1,),  # gzip filter, undocumented
    "gzip_no_buffer": (_HTTP | FLAG,),
    "gzip_window": (_HTTP | TAKE1,),
    "include": (_ANY_CONTEXT | TAKE1,),  # NGX_ANY_CONF: also inside if and limit_except
    "http2_pool_size": (HTTP_MAIN | HTTP_SRV | TAKE1,),  # obsolete, still parsed
    "http2_streams_index_size": (HTTP_MAIN | HTTP_SRV | TAKE1,),
    "keepalive_time": (_HTTP | TAKE1, HTTP_UPS | TAKE1),  # http core, upstream keepalive
    "limit_conn_dry_run": (_HTTP | FLAG, _STREAM | FLAG),
    "limit_req_dry_run": (_HTTP | FLAG,),
    "limit_req_zone": (HTTP_MAIN | TAKE3,),  # crossplane adds Plus's 4th argument
    "max_errors": (_MAIL | TAKE1,),
    "mp4_start_key_frame": (_HTTP | FLAG,),
    "open_file_cache_events": (_HTTP | FLAG,),
    "post_action": (_HTTP | HTTP_LIF | TAKE1,),
    "postpone_gzipping": (_HTTP | TAKE1,),
    "proxy": (_MAIL | FLAG,),  # mail proxy
    "proxy_cookie_flags": (_HTTP | TAKE1234,),
    "proxy_downstream_buffer": (_STREAM | TAKE1,),  # stream proxy, obsolete
    "proxy_half_close": (_STREAM | FLAG,),
    "proxy_protocol": (_MAIL | FLAG, _STREAM | FLAG),
    "proxy_smtp_auth": (_MAIL | FLAG,),
    "proxy_ssl_conf_command": (_HTTP | TAKE2, _STREAM | TAKE2),
    "proxy_upstream_buffer": (_STREAM | TAKE1,),
    "resolver": (_HTTP | ONEMORE, _MAIL | ONEMORE, _STREAM | ONEMORE),  # no Plus upstream resolver
    "set": (HTTP_SRV | HTTP_SIF | HTTP_LOC | HTTP_LIF | TAKE2, STREAM_SRV | TAKE2),
    "set_real_ip_from": (_HTTP | TAKE1, _MAIL | TAKE1, _STREAM | TAKE1),
    "ssi_ignore_recycled_buffers": (_HTTP | FLAG,),
    "ssl_alpn": (_STREAM | ONEMORE,),
    "ssl_conf_command": (HTTP_MAIN | HTTP_SRV | TAKE2, _MAIL | TAKE2, _STREAM | TAKE2),
    "ssl_ocsp": (HTTP_MAIN | HTTP_SRV | FLAG,),
    "ssl_ocsp_cache": (HTTP_MAIN | HTTP_SRV | TAKE1,),
    "ssl_ocsp_responder": (HTTP_MAIN | HTTP_SRV | TAKE1,),
    "ssl_reject_handshake": (HTTP_MAIN | HTTP_SRV | FLAG,),
    "userid_flags": (_HTTP | TAKE123,),
    "uwsgi_ssl_conf_command": (_HTTP | TAKE2,),
    "uwsgi_string": (_HTTP | TAKE1,),
}

STOCK_SPECS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        **{name: tuple(masks) for name, masks in _cp.DIRECTIVES.items() if name not in _NOT_IN_NGINX_1_22_1},
        **_CORRECTIONS,
    }
)
"""Directive name to the masks of the nginx commands of that name, in nginx's module order."""
