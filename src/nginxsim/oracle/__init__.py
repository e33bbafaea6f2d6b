"""The real-nginx harness: the oracle every nginxsim behavior is tested against.

    from nginxsim.oracle import Nginx, OracleRequest
    with Nginx(text=conf) as ng:                      # or Nginx("nginx.conf", prefix=...)
        r = ng.request(OracleRequest(client="128.32.1.5", url="http://shop.example/x?a=1"))
        r.status, r.headers, r.body, r.upstream       # upstream: what the echo server received
    Nginx.test_config(text=conf)                      # (ok, stderr) of `nginx -t`
    compare("nginx.conf", requests)                   # nginxsim's decisions vs nginx's answers

nginx runs a rewritten copy of the config, on loopback only, with echo servers for upstreams;
`nginxsim.oracle.rewrite` lists every rewrite. Requests go one at a time, in order, each on its
own connection (`Connection: close`), so upstream records belong to their request and balancer
sequences are reproducible. Where the harness shows:

- the client: sent as a PROXY protocol line (no header is added), so `$proxy_protocol_addr` is the
  client and `$realip_remote_addr` is 127.0.0.1. A config that uses realip itself gets the client
  in its own header (visible as `$http_<header>`; dropped again from upstream records): exact for
  clients the config does not trust, and for trusted ones only with `real_ip_recursive on`; an
  HTTP/0.9 request then carries no client.
- the server side: `$server_addr` and `$server_port` are the loopback ones (`port_for` maps them);
  a Location naming the loopback port is given the original port back (dropped when it is the
  scheme's default: an explicit `http://$host:$server_port` for port 80 comes back without ":80"),
  and so is a header or parameter sent upstream whose whole value is that port ($server_port).
- upstreams: each `server` line and literal `*_pass` address is one echo server. The record names
  the original address (`peer`) and group; `$proxy_host` in what reaches it is the original one,
  `$proxy_port` and `$upstream_addr` are not. Consistent hashing (`hash ... consistent`) hashes
  the rewritten addresses, so its peer choice differs from the original's; a host name that
  resolves to several addresses is one peer. HTTP/1.x, uwsgi, FastCGI, SCGI and memcached
  requests are decoded in full; for gRPC only the protocol and peer are recorded (no HPACK).
  `*_pass` with variables is not rewritten: an upstream name works, anything else fails (no
  connection leaves loopback; `resolver`s point at a dead loopback port).
- TLS: `listen ... ssl` works (missing certificate files are replaced by a generated self-signed
  pair; requests with an https URL use TLS with SNI), and so do `https://`/`grpcs://` upstreams.
  Plain-text `listen ... http2` expects HTTP/2, which the harness does not speak.
- listens: IPv6 wildcards map to [::1] when it exists, other IPv6 and named addresses to further
  127.0.0.x; `unix:` listens to sockets in the prefix (reach them with server_addr="unix:/path").
  `stream {}` and `mail {}` blocks are dropped.
"""

from __future__ import annotations

from .compare import Mismatch, check, compare
from .echo import UpstreamRecord
from .errors import NginxStartError, OracleError
from .nginx import Nginx, nginx_path
from .wire import OracleRequest, OracleResponse

__all__ = [
    "Mismatch",
    "Nginx",
    "NginxStartError",
    "OracleError",
    "OracleRequest",
    "OracleResponse",
    "UpstreamRecord",
    "check",
    "compare",
    "nginx_path",
]
