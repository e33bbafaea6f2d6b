"""Rewrite a user's config so a real nginx can serve it on loopback only, meaning the same thing.

Every file the config loads is copied into a private prefix directory and edited token by token
(line numbers stay as written, so nginx's messages point at the user's lines). The edits:

- ``listen``: each distinct original address gets its own loopback address, each original port one
  free port shared by all of them: ``*:80`` -> ``127.0.0.1:P``, ``10.0.0.1:80`` -> ``127.0.0.2:P``,
  ``[::]:80`` -> ``[::1]:P`` (or a 127.0.0.x when there is no IPv6 loopback), other IPv6 and host
  names -> further 127.0.0.x, ``unix:`` -> a socket in the prefix. nginx keeps one server table per
  address, so "a wildcard server is invisible on an explicitly listed address" still holds. A
  server without ``listen`` gets its implicit ``*:80`` written out (nginx started as root).
- The client: the realip module is told to trust loopback and take the client address from the
  PROXY protocol line the harness sends (``proxy_protocol`` is added to every listen), so no
  request header is added. A config that uses realip itself keeps its own header: loopback joins
  each of its ``set_real_ip_from`` lists and the harness sends the client address in that header.
  A config that reads PROXY lines itself (``listen ... proxy_protocol``, no realip) gets realip
  with the harness's own header, X-Nginxsim-Client, and the caller's PROXY line goes through.
- Upstreams: every ``server`` of an ``upstream`` block and every literal address of a ``*_pass``
  is replaced by an echo server on loopback (a unix socket for ``unix:`` addresses). A ``*_pass``
  with variables cannot be rewritten: its location gets ``*_bind 127.0.0.1`` so that whatever
  address it evaluates to, nginx cannot connect anywhere but loopback.
- Paths: includes point at the copies; relative ``root``/``alias``/``ssl_certificate``... are made
  absolute against the original prefix/conf dir; logs, temp and cache dirs go into the prefix;
  ``pid``/``daemon``/main ``error_log`` are dropped (given on the command line), ``user`` too
  (started as root, the workers run as root: test files under private temp dirs stay readable);
  ``stream``/``mail`` blocks are dropped; ``resolver`` points at a dead loopback port; a missing
  ``ssl_certificate``/``_key`` file is replaced by a generated self-signed pair.
"""

from __future__ import annotations

import glob as globmod
import ipaddress
import os
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .lexer import Stmt, Token, parse, quote

LOOPBACK_V4 = "127.0.0.1"
TRUSTED = ("127.0.0.0/8", "::1", "unix:")
CLIENT_HEADER = "X-Nginxsim-Client"  # carries the client when the config reads PROXY lines itself

_GLOB_MAGIC = re.compile(r"[*?[]")
_PASS = {
    "proxy_pass": "proxy",
    "uwsgi_pass": "uwsgi",
    "fastcgi_pass": "fastcgi",
    "scgi_pass": "scgi",
    "grpc_pass": "grpc",
    "memcached_pass": "memcached",
}
_SCHEMES = {
    "proxy": {"http://": 80, "https://": 443},
    "grpc": {"grpc://": 80, "grpcs://": 443},
    "uwsgi": {"uwsgi://": 0, "suwsgi://": 0},
}
_CONF_PATHS = frozenset(
    {
        "ssl_certificate",
        "ssl_certificate_key",
        "ssl_dhparam",
        "ssl_client_certificate",
        "ssl_trusted_certificate",
        "ssl_crl",
        "ssl_password_file",
        "ssl_stapling_file",
        "ssl_session_ticket_key",
        "auth_basic_user_file",
    }
    | {
        f"{m}_ssl_{d}"
        for m in ("proxy", "grpc", "uwsgi")
        for d in ("certificate", "certificate_key", "trusted_certificate", "crl", "password_file")
    }
)
_PREFIX_PATHS = frozenset({"root", "alias", "load_module"})
_TEMP_PATHS = (
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
)
_CACHE_PATHS = frozenset({"proxy_cache_path", "fastcgi_cache_path", "uwsgi_cache_path", "scgi_cache_path"})
_REALIP = frozenset({"set_real_ip_from", "real_ip_header", "real_ip_recursive"})
_MAIN_DROPPED = frozenset({"pid", "user", "daemon", "error_log"})
_DROPPED = frozenset({"ssl_stapling", "ssl_stapling_responder"})
_ACCESS_LOG_DROPPED = ("buffer=", "flush=", "gzip")
# Where each block's content is read as directives (anything else is data: map, geo, types...).
_CHILD_CONTEXT = {
    ("main", "http"): "http",
    ("main", "events"): "events",
    ("http", "server"): "server",
    ("http", "upstream"): "upstream",
    ("server", "location"): "location",
    ("location", "location"): "location",
    ("server", "if"): "if",
    ("location", "if"): "if",
    ("location", "limit_except"): "limit_except",
}
_DATA_BLOCKS = frozenset({"map", "geo", "types", "split_clients", "charset_map"})
_NO_INCLUDE = frozenset({"split_clients", "charset_map"})
_DIRECTIVE_CONTEXTS = frozenset(
    {"main", "events", "http", "server", "location", "if", "limit_except", "upstream", "other"}
)


@dataclass(frozen=True)
class Source:
    """A config as the caller gave it: a file (`path`) or text plus virtual files."""

    path: str | None = None
    text: str | None = None
    files: Mapping[str, str] | None = None
    prefix: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.text is None):
            raise ValueError("give exactly one of path= or text=")
        if self.files is not None and self.text is None:
            raise ValueError("files= goes with text=")


@dataclass(frozen=True)
class Listen:
    """One original listen address and the loopback socket standing for it."""

    kind: str  # ipv4 | ipv6 | name | unix
    addr: str  # "*", "10.0.0.1", "::", "host.example", or the socket path for unix
    port: int  # 0 for unix
    host: str  # the loopback address (or socket path) nginx listens on
    mapped_port: int
    proxy_protocol: bool  # the config's own listen reads a PROXY protocol line


@dataclass(frozen=True)
class PeerSpec:
    """An original upstream address the harness replaces with an echo server."""

    text: str  # as the record names it: "10.0.0.1:8080", "backend:80", "unix:/run/app.sock"
    group: str
    unix: bool
    proxy_host: str | None = None  # original $proxy_host, for implicit proxy_pass addresses


@dataclass(frozen=True)
class Realip:
    """How the harness tells nginx the client address: a PROXY line (header None) or a header."""

    header: str | None


@dataclass
class Prepared:
    """The rewritten copy, ready to write, and what requests need to know about it."""

    main: str
    files: dict[str, bytes]
    listens: list[Listen]
    realip: Realip
    peers: dict[str, PeerSpec]  # endpoint -> original peer
    labels: list[tuple[str, str]]  # (path of a copy, original name), for nginx's messages


@dataclass
class _File:
    label: str
    target: str
    text: str
    stmts: list[Stmt]
    edits: dict[tuple[int, int], str] = field(default_factory=dict)

    def replace(self, tok: Token | Stmt, new: str) -> None:
        self.edits[(tok.start, tok.end)] = new

    def insert(self, at: int, new: str) -> None:
        self.edits[(at, at)] = new

    def blank(self, start: int, end: int) -> None:
        self.edits[(start, end)] = re.sub(r"[^\n]", " ", self.text[start:end])

    def render(self) -> bytes:
        out = self.text
        for (start, end), new in sorted(self.edits.items(), reverse=True):
            out = out[:start] + new + out[end:]
        return out.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class _At:
    """A statement met while walking the loaded config: its file, context and enclosing blocks."""

    stmt: Stmt
    file: _File
    ctx: str
    parents: tuple[Stmt, ...]

    @property
    def block(self) -> Stmt | None:
        return self.parents[-1] if self.parents else None

    def nearest(self, name: str) -> Stmt | None:
        return next((p for p in reversed(self.parents) if p.name == name), None)


Ports = Callable[[int, Sequence[str]], int]  # (original port, loopback hosts) -> free port
Endpoint = Callable[[PeerSpec], str]  # peer -> "127.0.0.1:P" or "unix:/path"


class Rewriter:
    """One rewrite of one config into `root` (the nginx prefix directory)."""

    def __init__(
        self,
        source: Source,
        root: str,
        *,
        ports: Ports,
        endpoint: Endpoint,
        certificate: Callable[[], tuple[str, str]],
        dead_port: int,
        compiled_prefix: str,
        ipv6: bool,
        worker_processes: int = 1,
        debug: bool = False,
        extra_http: Sequence[str] = (),
        user: str | None = None,
    ) -> None:
        for d in extra_http:
            if "\n" in d:
                raise ValueError(f"extra_http directives must be single lines: {d!r}")
        self.source, self.root = source, root.rstrip("/")
        self._ports, self._endpoint, self._certificate = ports, endpoint, certificate
        self._dead_port, self._ipv6 = dead_port, ipv6
        self._workers, self._debug, self._extra_http = worker_processes, debug, tuple(extra_http)
        self._user = user
        self._virtual: dict[str, str] = {}  # target path -> text (text mode)
        if source.path is not None:
            main_path = os.path.abspath(source.path)
            self._conf_dir: str | None = os.path.dirname(main_path)
            self._prefix: str | None = os.path.abspath(source.prefix or compiled_prefix)
        else:
            self._conf_dir = None
            self._prefix = os.path.abspath(source.prefix) if source.prefix else None
            for key, text in (source.files or {}).items():
                self._virtual[self._virtual_target(key)] = text
        self._virtual_abs = [posixpath.normpath(k) for k in (source.files or {}) if k.startswith("/")]
        self._files: dict[str, _File] = {}
        self._includes: dict[int, list[_File]] = {}
        self._inside: dict[int, list[_At]] = {}  # id(block statement) -> what is read inside it
        self._file_of: dict[int, _File] = {}  # id(statement) -> the file it is written in
        self._dirs = 0
        self._peers: dict[str, PeerSpec] = {}
        self._peers_by_spec: dict[PeerSpec, str] = {}

    # --- files -------------------------------------------------------------------------------

    def _virtual_target(self, key: str) -> str:
        if key.startswith("/"):
            return posixpath.normpath(f"{self.root}/_abs{key}")
        return posixpath.normpath(f"{self.root}/{key}")

    def _copy_target(self, path: str) -> str:
        path = os.path.normpath(path)
        if self._conf_dir is not None and path.startswith(self._conf_dir + "/"):
            return f"{self.root}/_conf/{path[len(self._conf_dir) + 1 :]}"
        return f"{self.root}/_abs{path}"

    def _load(self, path: str, label: str, target: str) -> _File:
        f = self._files.get(target)
        if f is None:
            if target in self._virtual:
                text = self._virtual[target]
            else:
                with open(path, "rb") as fh:
                    text = fh.read().decode("utf-8", "surrogateescape")
            f = self._files[target] = _File(label, target, text, parse(text))
        return f

    def _resolve_include(self, value: str, literal: bool) -> list[_File] | None:
        """The files an include reads, in nginx's order; None when nginx would fail to open it."""
        magic = not literal and _GLOB_MAGIC.search(value) is not None
        if self._conf_dir is None:  # text mode: the virtual files first
            pattern = self._virtual_target(value)
            if magic:
                found = sorted(t for t in self._virtual if _glob_match(pattern, t))
                if found or not value.startswith("/"):
                    return [self._load(t, t, t) for t in found]
            elif pattern in self._virtual:
                return [self._load(pattern, pattern, pattern)]
            elif not value.startswith("/"):
                return None
            path = value
        else:
            path = value if value.startswith("/") else f"{self._conf_dir}/{value}"
        if magic:
            paths = sorted(p for p in globmod.glob(path) if os.path.isfile(p))
        elif os.path.isfile(path):
            paths = [path]
        else:
            return None
        return [self._load(p, p, self._copy_target(p)) for p in paths]

    def _expand(self, stmts: list[Stmt], ctx: str, chain: tuple[str, ...]) -> None:
        """Read every include (depth-first, as nginx does), remembering what each one expands to."""
        for s in stmts:
            if s.name == "include" and ctx not in _NO_INCLUDE and len(s.args) == 1 and s.block is None:
                if id(s) not in self._includes:
                    found = self._resolve_include(s.args[0].value, literal=ctx == "geo")
                    if found is None:
                        continue
                    self._includes[id(s)] = found
                    for inc in found:
                        if inc.target not in chain:  # a cycle: nginx fails on it by itself
                            self._expand(inc.stmts, ctx, (*chain, inc.target))
            elif s.block is not None:
                self._expand(s.block, _child_context(ctx, s.name) or "skip", chain)

    def _walk(
        self, f: _File, stmts: list[Stmt], ctx: str, parents: tuple[Stmt, ...], chain: tuple[str, ...]
    ) -> Iterator[_At]:
        """Every statement nginx reads, in its order, with includes spliced in."""
        for s in stmts:
            yield _At(s, f, ctx, parents)
            if id(s) in self._includes:
                for inc in self._includes[id(s)]:
                    if inc.target not in chain:
                        yield from self._walk(inc, inc.stmts, ctx, parents, (*chain, inc.target))
            elif s.block is not None:
                child = _child_context(ctx, s.name)
                if child is not None:
                    yield from self._walk(f, s.block, child, (*parents, s), chain)

    # --- the rewrite -------------------------------------------------------------------------

    def run(self) -> Prepared:
        src = self.source
        target = f"{self.root}/nginx.conf"
        if src.path is not None:
            main = self._load(os.path.abspath(src.path), os.path.abspath(src.path), target)
        else:
            assert src.text is not None
            self._virtual[target] = src.text
            main = self._load(target, target, target)
        self._expand(main.stmts, "main", (target,))
        seen = list(self._walk(main, main.stmts, "main", (), (target,)))
        for a in seen:
            self._file_of[id(a.stmt)] = a.file
            if a.block is not None:
                self._inside.setdefault(id(a.block), []).append(a)

        upstreams = {
            a.stmt.args[0].value.lower() for a in seen if a.ctx == "http" and a.stmt.name == "upstream" and a.stmt.args
        }
        realip = self._realip(seen)
        listens = self._listens(seen, proxy_protocol=realip.header is None)
        self._http_blocks(seen, realip)
        for a in seen:
            self._edit(a, upstreams)
        head = "" if self._user is None else f"user {self._user}; "
        if self._workers != 1 and not any(s.name == "worker_processes" for s in main.stmts):
            head += f"worker_processes {self._workers}; "
        if head:
            main.insert(0, head)
        files = {t: text.encode("utf-8", "surrogateescape") for t, text in self._virtual.items()}
        files.update({f.target: f.render() for f in self._files.values()})
        if src.path is None:
            labels = [(f"{self.root}/_abs/", "/"), (f"{self.root}/", "")]
        else:
            labels = [(f.target, f.label) for f in self._files.values()]
        return Prepared(main.target, files, listens, realip, dict(self._peers), labels)

    def _realip(self, seen: list[_At]) -> Realip:
        """How the client is posed (see the module doc): a PROXY line, the config's own realip
        header, or (when the config reads PROXY lines itself) a header of the harness's own."""
        own = [a for a in seen if a.stmt.name in _REALIP and a.ctx in ("http", "server", "location")]
        if not own:
            reads_proxy = any(
                a.stmt.name == "listen"
                and a.ctx == "server"
                and any(t.value == "proxy_protocol" for t in a.stmt.args[1:])
                for a in seen
            )
            return Realip(CLIENT_HEADER if reads_proxy else None)
        headers = [a for a in own if a.stmt.name == "real_ip_header" and a.stmt.args]
        chosen = next((a for a in headers if a.ctx == "http"), headers[0] if headers else None)
        header = chosen.stmt.args[0].value if chosen else "X-Real-IP"
        trusted = " ".join(f"set_real_ip_from {t};" for t in TRUSTED)
        done: set[int] = set()
        for a in own:
            if a.stmt.name == "set_real_ip_from" and id(a.block) not in done:
                done.add(id(a.block))
                a.file.insert(a.stmt.end, " " + trusted)
        return Realip(None if header.lower() == "proxy_protocol" else header)

    def _http_blocks(self, seen: list[_At], realip: Realip) -> None:
        """Insert the harness's own http-level directives right after each `http {`."""
        for a in seen:
            if a.stmt.name != "http" or a.ctx != "main" or a.stmt.body is None:
                continue
            here = {b.stmt.name for b in self._inside.get(id(a.stmt), [])}
            add: list[str] = []
            if "set_real_ip_from" not in here:
                add += [f"set_real_ip_from {t};" for t in TRUSTED]
            if realip.header in (None, CLIENT_HEADER) and "real_ip_header" not in here:  # not the config's
                add.append(f"real_ip_header {realip.header or 'proxy_protocol'};")
            add += [f"{d} {quote(f'{self.root}/_tmp/{d}')};" for d in _TEMP_PATHS if d not in here]
            if "access_log" not in here:
                add.append(f"access_log {quote(self.root + '/access.log')};")
            add += self._extra_http
            a.file.insert(a.stmt.body, " " + " ".join(add))

    def _listens(self, seen: list[_At], proxy_protocol: bool) -> list[Listen]:
        """Map every listen address (and each server's implicit *:80) onto loopback."""
        found: list[tuple[_At | None, tuple[str, str, int], _At]] = []
        for a in seen:
            if a.ctx == "http" and a.stmt.name == "server" and a.stmt.block is not None:
                own = [b for b in self._inside.get(id(a.stmt), []) if b.stmt.name == "listen" and b.stmt.args]
                for b in own:
                    key = listen_key(b.stmt.args[0].value)
                    if key is not None:
                        found.append((b, key, a))
                if not own:
                    found.append((None, ("ipv4", "*", 80), a))
        hosts: dict[tuple[str, str], str] = {}
        by_port: dict[int, list[str]] = {}
        for _, (kind, addr, port), _server in found:
            if kind == "unix":
                continue
            if (kind, addr) not in hosts:
                if (kind, addr) == ("ipv4", "*"):
                    hosts[(kind, addr)] = LOOPBACK_V4
                elif (kind, addr) == ("ipv6", "::") and self._ipv6:
                    hosts[(kind, addr)] = "::1"
                else:
                    hosts[(kind, addr)] = f"127.0.0.{2 + sum(h not in (LOOPBACK_V4, '::1') for h in hosts.values())}"
            on_port = by_port.setdefault(port, [])
            if hosts[(kind, addr)] not in on_port:
                on_port.append(hosts[(kind, addr)])
        mapped = {port: self._ports(port, on_port) for port, on_port in by_port.items()}
        own_pp: dict[tuple[str, str, int], bool] = {}
        for at, key, _server in found:
            has = at is not None and any(t.value == "proxy_protocol" for t in at.stmt.args[1:])
            own_pp[key] = own_pp.get(key, False) or has
        listens: dict[tuple[str, str, int], Listen] = {}
        suffix = " proxy_protocol" if proxy_protocol else ""
        for at, key, server in found:
            kind, addr, port = key
            if key not in listens:
                if kind == "unix":
                    sock = f"{self.root}/_run/listen{len(listens)}.sock"
                    listens[key] = Listen(kind, addr, port, sock, 0, own_pp[key])
                else:
                    listens[key] = Listen(kind, addr, port, hosts[(kind, addr)], mapped[port], own_pp[key])
            new = listens[key]
            if kind == "unix":
                text = f"unix:{new.host}"
            else:
                text = f"[{new.host}]:{new.mapped_port}" if ":" in new.host else f"{new.host}:{new.mapped_port}"
            if at is None:
                assert server.stmt.body is not None
                server.file.insert(server.stmt.body, f" listen {quote(text)}{suffix};")
                continue
            at.file.replace(at.stmt.args[0], quote(text))
            if proxy_protocol and not any(t.value == "proxy_protocol" for t in at.stmt.args[1:]):
                at.file.insert(at.stmt.args[-1].end, suffix)
        return list(listens.values())

    def _edit(self, a: _At, upstreams: set[str]) -> None:
        """The edits one statement needs by itself (see the module docstring)."""
        s, f, ctx, name = a.stmt, a.file, a.ctx, a.stmt.name
        if id(s) in self._includes:
            found = self._includes[id(s)]
            if found:
                f.replace(
                    s,
                    " ".join(f"include {quote(inc.target)};" for inc in found)
                    + "\n" * f.text.count("\n", s.start, s.end),
                )
            else:
                f.blank(s.start, s.end)
            return
        if ctx not in _DIRECTIVE_CONTEXTS:
            return
        args = s.args
        if (ctx == "main" and (name in _MAIN_DROPPED or name in ("stream", "mail"))) or name in _DROPPED:
            f.blank(s.start, s.end)
        elif ctx == "main" and name == "worker_processes" and args:
            f.replace(args[0], str(self._workers))
        elif name == "error_log" and args:
            f.replace(args[0], quote(self.root + "/error.log"))
            if self._debug and len(args) > 1:
                f.replace(args[1], "debug")
            elif self._debug:
                f.insert(args[0].end, " debug")
        elif name == "access_log" and args and args[0].value != "off":
            f.replace(args[0], quote(self.root + "/access.log"))
            for t in args[1:]:
                if t.value.startswith(_ACCESS_LOG_DROPPED):
                    f.blank(t.start, t.end)
        elif (name in _TEMP_PATHS or name in _CACHE_PATHS) and args:
            self._dirs += 1
            f.replace(args[0], quote(f"{self.root}/_tmp/{name}-{self._dirs}"))
        elif name == "resolver":
            for t in args:
                if "=" not in t.value:
                    f.replace(t, f"{LOOPBACK_V4}:{self._dead_port}")
        elif name in _CONF_PATHS and args:
            cert = {"ssl_certificate": 0, "ssl_certificate_key": 1}.get(name)
            self._path_arg(f, args[0], self._conf_dir, cert)
        elif name in _PREFIX_PATHS and args:
            self._path_arg(f, args[0], self._prefix, None)
        elif name in _PASS and args:
            self._pass(a, _PASS[name], upstreams)
        elif ctx == "upstream" and name == "server" and args:
            group = a.block.args[0].value if a.block is not None and a.block.args else ""
            spec = PeerSpec(args[0].value, group, unix=False)
            f.replace(args[0], quote(self._peer(spec)))

    def _path_arg(self, f: _File, tok: Token, base: str | None, cert: int | None) -> None:
        """Point a path argument at the file the original means; `cert` 0/1: a certificate/key
        whose file is missing is replaced by the generated self-signed one."""
        value = tok.value
        if value.startswith(("$", "data:")):
            return
        new: str | None = None
        if value.startswith("/"):
            literal = value.split("$", 1)[0]
            if any(_under(literal, key) for key in self._virtual_abs):
                new = f"{self.root}/_abs{value}"
        elif base is not None:
            new = f"{base}/{value}"
        effective = new or (value if value.startswith("/") else f"{self.root}/{value}")
        if cert is not None and "$" not in value and effective not in self._virtual and not os.path.exists(effective):
            new = self._certificate()[cert]
        if new is not None:
            f.replace(tok, quote(new))

    def _pass(self, a: _At, module: str, upstreams: set[str]) -> None:
        tok = a.stmt.args[0]
        value = tok.value
        if "$" in value:
            loc = a.nearest("location")
            if loc is None or loc.body is None:
                return
            bind = f"{module}_bind"
            if not any(b.stmt.name == bind for b in self._inside.get(id(loc), [])):
                self._file_of[id(loc)].insert(loc.body, f" {bind} {LOOPBACK_V4};")
            return
        split = _split_pass(module, value)
        if split is None:
            return
        scheme, authority, rest, default_port = split
        if not authority.lower().startswith("unix:") and _host_port(authority)[1] is None and not default_port:
            return  # "no port in upstream": nginx refuses it, and must keep doing so
        if authority.lower().startswith("unix:"):
            spec = PeerSpec(authority, authority, unix=True)
            endpoint = self._peer(spec)
        else:
            host, port = _host_port(authority)
            if host.lower() in upstreams:
                return
            effective = port if port is not None else default_port
            proxy_host = None
            if module == "proxy":
                proxy_host = host if port is None or port == default_port else authority
            spec = PeerSpec(f"{host}:{effective}", authority, unix=False, proxy_host=proxy_host)
            endpoint = self._peer(spec)
        a.file.replace(tok, quote(scheme + endpoint + rest))

    def _peer(self, spec: PeerSpec) -> str:
        endpoint = self._peers_by_spec.get(spec)
        if endpoint is None:
            endpoint = self._peers_by_spec[spec] = self._endpoint(spec)
            self._peers[endpoint] = spec
        return endpoint


def _child_context(ctx: str, name: str) -> str | None:
    """The context of a block's content; None for blocks the rewrite drops (stream, mail)."""
    if ctx == "main" and name in ("stream", "mail"):
        return None
    if name in _DATA_BLOCKS:
        return name
    return _CHILD_CONTEXT.get((ctx, name), "other" if ctx in _DIRECTIVE_CONTEXTS else ctx)


def _glob_match(pattern: str, path: str) -> bool:
    """glob(3) for one path: `*` stays inside a component, a leading dot must be explicit."""
    pp, cc = pattern.split("/"), path.split("/")
    return len(pp) == len(cc) and all(
        fnmatchcase(c, p) and (p.startswith(".") or not c.startswith(".") or p == c)
        for p, c in zip(pp, cc, strict=True)
    )


def _under(prefix: str, path: str) -> bool:
    """Whether `path` is `prefix` or inside it (`prefix` may end in a partial name)."""
    return path.startswith(prefix) and (prefix.endswith("/") or len(path) == len(prefix) or path[len(prefix)] == "/")


def listen_key(text: str) -> tuple[str, str, int] | None:
    """(kind, address, port) of a `listen` address as ngx_parse_url reads it; None if invalid."""
    if text.lower().startswith("unix:"):
        return ("unix", text[5:], 0)
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        try:
            ip6 = ipaddress.IPv6Address(text[1:end])
        except ValueError:
            return None
        port = _port(rest[1:]) if rest.startswith(":") else (80 if rest == "" else None)
        return None if port is None else ("ipv6", "::" if ip6.is_unspecified else ip6.compressed, port)
    if text.isdigit():
        port = _port(text)
        return None if port is None else ("ipv4", "*", port)
    host, sep, ptext = text.rpartition(":")
    if not sep:
        host, port = text, 80
    else:
        port = _port(ptext)
    if port is None or not host:
        return None
    if host == "*":
        return ("ipv4", "*", port)
    try:
        ip4 = ipaddress.IPv4Address(host)
    except ValueError:
        return ("name", host.lower(), port)
    return ("ipv4", "*" if int(ip4) == 0 else str(ip4), port)


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _split_pass(module: str, value: str) -> tuple[str, str, str, int] | None:
    """(scheme as written, address, URI part, default port) of a static `*_pass` target."""
    scheme, default = "", 0
    for prefix, port in _SCHEMES.get(module, {}).items():
        if value.lower().startswith(prefix):
            scheme, default = value[: len(prefix)], port
            break
    else:
        if module == "proxy":
            return None
        if module == "grpc":
            default = 80
    rest = value[len(scheme) :]
    if rest.lower().startswith("unix:"):
        path, sep, uri = rest[5:].partition(":")
        return scheme, "unix:" + path, sep + uri, default
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    return (scheme, rest[:cut], rest[cut:], default) if rest[:cut] else None


def _host_port(authority: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[: end + 1], authority[end + 1 :]
    else:
        host, sep, rest = authority.partition(":")
        rest = sep + rest
    port = _port(rest[1:]) if rest.startswith(":") else None
    return host, port
