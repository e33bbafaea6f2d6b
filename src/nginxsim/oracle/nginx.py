"""A real nginx serving a rewritten copy of a config on loopback, with echo servers as upstreams."""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..errors import RequestError
from .echo import Echo, UpstreamRecord
from .errors import NginxStartError, OracleError
from .lexer import quote
from .rewrite import LOOPBACK_V4, Endpoint, Listen, PeerSpec, Prepared, Rewriter, Source, listen_key
from .tls import SelfSigned
from .wire import DEFAULT_PORTS, IPAddress, OracleRequest, OracleResponse, complete, parse_response

_SEARCH = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_ATTEMPTS = 3  # a port found free can be taken before nginx binds it: start again with others


def nginx_path() -> str | None:
    """The nginx binary: $NGINXSIM_NGINX, `nginx` on PATH, else the usual install places; None if
    none is an executable file (a wrong $NGINXSIM_NGINX is "not found", not a crash later)."""
    given = os.environ.get("NGINXSIM_NGINX")
    if given:
        return given if os.path.isfile(given) and os.access(given, os.X_OK) else None
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in _SEARCH if os.access(p, os.X_OK)), None)


@functools.cache
def _compiled_prefix(binary: str) -> str:
    """nginx's built-in prefix (what relative paths mean without -p), from `nginx -V`."""
    out = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False).stderr
    m = re.search(r"--prefix=(\S+)", out)
    return m.group(1) if m else "/usr/local/nginx"


@functools.cache
def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def _free_port(port: int, hosts: Sequence[str]) -> int:
    """A TCP port free on every loopback host in `hosts` (the original `port` is not used)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK_V4, 0))
            candidate: int = s.getsockname()[1]
        try:
            for host in hosts:
                with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as t:
                    t.bind((host, candidate))
        except OSError:
            continue
        return candidate
    raise OracleError(f"no free port on {', '.join(hosts)} (standing for port {port})")


def _dead_port() -> int:
    """A loopback UDP port nothing listens on: the `resolver` every config gets."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK_V4, 0))
        port: int = s.getsockname()[1]
    return port


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return ""


def _shutdown(proc: subprocess.Popen[bytes] | None, echo: Echo | None, root: str) -> None:
    """Stop nginx by its pid (SIGQUIT, then SIGKILL to its process group), the echo servers, the files."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if echo is not None:
        echo.close()
    shutil.rmtree(root, ignore_errors=True)


class Nginx:
    """One nginx process serving one config; a context manager (stops and cleans up on exit).

    `path` (+ `prefix`) or `text` (+ `files`, virtual files: relative names live in the conf
    directory) as `nginxsim.load` takes them. `extra_http` directives (one line each) are added to
    every `http {}`. `debug` makes the error log a debug log. Requests are served one at a time in
    the order given, so balancer sequences (round robin...) are reproducible.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        text: str | None = None,
        files: Mapping[str, str] | None = None,
        prefix: str | os.PathLike[str] | None = None,
        extra_http: Sequence[str] = (),
        worker_processes: int = 1,
        debug: bool = False,
        binary: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.binary = binary or nginx_path() or ""
        if not self.binary:
            raise OracleError("nginx not found (looked on PATH and in " + ", ".join(_SEARCH) + ")")
        self.timeout = timeout
        self.root = tempfile.mkdtemp(prefix="nginxsim-oracle-")
        self._proc: subprocess.Popen[bytes] | None = None
        certificate = SelfSigned(os.path.join(self.root, "_tls"))
        self._echo = Echo(os.path.join(self.root, "_run"), certificate, timeout)
        self._finalizer = weakref.finalize(self, _shutdown, None, self._echo, self.root)
        try:
            os.makedirs(os.path.join(self.root, "_run"))  # the echo servers' sockets come first
            source = Source(_str(path), text, files, _str(prefix))
            for attempt in range(_ATTEMPTS):
                self.prepared = _prepare(
                    source,
                    self.root,
                    self.binary,
                    self._echo.endpoint,
                    certificate,
                    worker_processes=worker_processes,
                    debug=debug,
                    extra_http=extra_http,
                )
                try:
                    self._start(debug)
                    break
                except NginxStartError as e:
                    if "Address already in use" not in str(e) or attempt == _ATTEMPTS - 1:
                        raise
            self._echo.start()
        except BaseException:
            self.close()
            raise
        # implicit proxy_pass addresses: the echo's address stands where nginx wrote $proxy_host
        self._restore = sorted(
            ((e, s.proxy_host) for e, s in self.prepared.peers.items() if s.proxy_host is not None),
            key=lambda t: -len(t[0]),
        )

    # --- process -----------------------------------------------------------------------------

    def _start(self, debug: bool) -> None:
        for name in ("nginx.pid", "error.log", "stderr.log"):
            if os.path.exists(os.path.join(self.root, name)):
                os.unlink(os.path.join(self.root, name))
        pid_file = os.path.join(self.root, "nginx.pid")
        args = _command(self.binary, self.root, self.prepared.main, debug)
        with open(os.path.join(self.root, "stderr.log"), "wb") as err:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, self._echo, self.root)
        deadline = time.monotonic() + _START_TIMEOUT
        # nginx writes its pid file after it has bound every listening socket.
        while not _read(pid_file).strip():
            if self._proc.poll() is not None:
                self._proc.wait()
                raise NginxStartError(
                    f"nginx exited with status {self._proc.returncode} at start-up",
                    self._messages(_read(os.path.join(self.root, "stderr.log"))),
                    self._messages(self.error_log()),
                )
            if time.monotonic() > deadline:
                raise NginxStartError(
                    f"nginx did not start within {_START_TIMEOUT:g}s",
                    self._messages(_read(os.path.join(self.root, "stderr.log"))),
                    self._messages(self.error_log()),
                )
            time.sleep(0.002)

    @property
    def pid(self) -> int | None:
        """The pid of nginx (the master process unless the config says `master_process off`)."""
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        """Stop nginx and the echo servers, delete the temporary prefix. Idempotent."""
        self._finalizer()

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def error_log(self) -> str:
        """The error log so far (a debug log with `debug=True`)."""
        return _read(os.path.join(self.root, "error.log"))

    def access_log(self) -> str:
        """The access log so far: every `access_log` of the config writes here."""
        return _read(os.path.join(self.root, "access.log"))

    def _messages(self, text: str) -> str:
        return _relabel(text, self.prepared)

    @classmethod
    def test_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        text: str | None = None,
        files: Mapping[str, str] | None = None,
        prefix: str | os.PathLike[str] | None = None,
        binary: str | None = None,
    ) -> tuple[bool, str]:
        """`nginx -t` on the rewritten copy: (accepted, stderr with the user's file names)."""
        binary = binary or nginx_path()
        if binary is None:
            raise OracleError("nginx not found (looked on PATH and in " + ", ".join(_SEARCH) + ")")
        root = tempfile.mkdtemp(prefix="nginxsim-oracle-")
        try:
            run_dir = os.path.join(root, "_run")

            def endpoint(spec: PeerSpec) -> str:
                return f"unix:{run_dir}/upstream.sock" if spec.unix else f"{LOOPBACK_V4}:9"

            prepared = _prepare(
                Source(_str(path), text, files, _str(prefix)),
                root,
                binary,
                endpoint,
                SelfSigned(os.path.join(root, "_tls")),
            )
            done = subprocess.run(
                [*_command(binary, root, prepared.main, False), "-t"], capture_output=True, check=False
            )
            return done.returncode == 0, _relabel(done.stderr.decode("utf-8", "surrogateescape"), prepared)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    # --- requests ----------------------------------------------------------------------------

    def listen_for(self, scheme: str = "http", server_addr: str | None = None, port: int | None = None) -> Listen:
        """The listen a connection to original address `server_addr` (None: any) and `port` reaches."""
        port = DEFAULT_PORTS.get(scheme, 80) if port is None else port
        listens = self.prepared.listens
        if server_addr is not None and server_addr.lower().startswith("unix:"):
            found = next((li for li in listens if li.kind == "unix" and li.addr == server_addr[5:]), None)
        elif server_addr is None:
            on_port = [li for li in listens if li.port == port and li.kind != "unix"]
            found = next(
                (li for li in on_port if li.addr == "*"),
                next((li for li in on_port if li.addr == "::"), on_port[0] if on_port else None),
            )
        else:
            key = listen_key(f"[{server_addr.strip('[]')}]:{port}" if ":" in server_addr else f"{server_addr}:{port}")
            if key is None:
                raise RequestError(f"invalid server address {server_addr!r}")
            wildcard = "::" if key[0] == "ipv6" else "*"
            found = next((li for li in listens if (li.kind, li.addr, li.port) == key), None) or next(
                (li for li in listens if li.addr == wildcard and li.port == port), None
            )
        if found is None:
            where = server_addr or "any address"
            raise RequestError(f"the config has no listen that accepts {where} port {port}")
        return found

    def port_for(
        self, scheme: str = "http", orig_addr: str | None = None, orig_port: int | None = None
    ) -> tuple[str, int]:
        """(loopback address, port) standing for the original listen address and port."""
        li = self.listen_for(scheme, orig_addr, orig_port)
        if li.kind == "unix":
            raise RequestError(f"unix:{li.addr} is served on the socket {li.host}, not a TCP port")
        return li.host, li.mapped_port

    def request(self, req: OracleRequest) -> OracleResponse:
        """Send one request and read the whole response: until nginx closes the connection, or
        (when the request asks for keep-alive) until the response's own length is reached."""
        listen = self.listen_for(req.scheme, req.server_addr, req.port)
        client = req.client_ip()
        first: list[tuple[str, str]] = []
        last: list[tuple[str, str]] = []
        header = self.prepared.realip.header
        if header is not None and client is not None:
            (last if header.lower() == "x-forwarded-for" else first).append((header, str(client)))
        data = req.to_bytes(first, last)
        raw = self._exchange(listen, req, client, data)
        status, headers, body = parse_response(raw, req.method)
        records = self._echo.take()
        for rec in records:
            self._restore_record(rec, listen, first + last)
        return OracleResponse(status, self._restore_location(headers, listen, req.scheme), body, records, raw)

    def request_many(self, requests: Iterable[OracleRequest]) -> list[OracleResponse]:
        """`request` for each, in order (one nginx, one connection at a time)."""
        return [self.request(r) for r in requests]

    def _exchange(self, listen: Listen, req: OracleRequest, client: IPAddress | None, data: bytes) -> bytes:
        if listen.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = listen.host
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in listen.host else socket.AF_INET, socket.SOCK_STREAM)
            address = (listen.host, listen.mapped_port)
        sock.settimeout(self.timeout)
        chunks: list[bytes] = []
        try:
            sock.connect(address)
            conn = sock
            proxy = self._preamble(listen, req, client)
            if req.scheme == "https":
                sock.sendall(proxy)  # before the handshake
                proxy = b""
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                conn = ctx.wrap_socket(sock, server_hostname=None if _is_ip(req.host) else req.host)
            conn.sendall(proxy + data)
            while chunk := conn.recv(65536):
                chunks.append(chunk)
                if req.keeps_alive and complete(b"".join(chunks), req.method):
                    break
        except (ConnectionResetError, BrokenPipeError):
            pass  # nginx closed first (444, lingering close): what arrived is the answer
        except ssl.SSLError as e:
            raise OracleError(f"TLS with nginx failed for {req.url}: {e}") from e
        except TimeoutError as e:
            raise OracleError(
                f"no complete answer from nginx within {self.timeout:g}s for {req.url}; "
                f"received so far: {b''.join(chunks)[:300]!r}"
            ) from e
        finally:
            sock.close()
        return b"".join(chunks)

    def _preamble(self, listen: Listen, req: OracleRequest, client: IPAddress | None) -> bytes:
        """What goes before the request: the harness's PROXY line posing the client (unless the
        config's own listen reads the caller's), then the caller's PROXY line if any."""
        own = b""
        if req.proxy_protocol is not None:
            own = req.proxy_protocol.encode("utf-8", "surrogateescape")
            own += b"" if own.endswith(b"\r\n") else b"\r\n"
        if self.prepared.realip.header is not None or (own and listen.proxy_protocol):
            return own
        return _proxy_line(client, req.client_port, listen.port) + own

    def _restore_location(self, headers: list[tuple[str, str]], listen: Listen, scheme: str) -> list[tuple[str, str]]:
        """nginx writes its own port into absolute redirects; put the original one back."""
        if listen.kind == "unix":
            return headers
        pattern = re.compile(rf"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*?):{listen.mapped_port}(?=[/?#]|$)")
        original = "" if listen.port == DEFAULT_PORTS[scheme] else f":{listen.port}"
        return [
            (k, pattern.sub(lambda m: m.group(1) + original, v) if k.lower() == "location" else v) for k, v in headers
        ]

    def _restore_record(self, rec: UpstreamRecord, listen: Listen, added: list[tuple[str, str]]) -> None:
        """Give the record the original names and ports, and drop the header the harness added."""

        def fix(value: str) -> str:
            for endpoint, proxy_host in self._restore:
                value = value.replace(endpoint, proxy_host)
            return str(listen.port) if listen.kind != "unix" and value == str(listen.mapped_port) else value

        rec.headers = [(k, fix(v)) for k, v in rec.headers]
        if rec.params is not None:
            rec.params = [(k, fix(v)) for k, v in rec.params]
        for name, value in added:
            _drop(rec.headers, name, value, last=name.lower() == "x-forwarded-for")
            if rec.params is not None:
                _drop(
                    rec.params,
                    "HTTP_" + name.upper().replace("-", "_"),
                    value,
                    last=name.lower() == "x-forwarded-for",
                )


def _drop(items: list[tuple[str, str]], name: str, value: str, last: bool) -> None:
    order = range(len(items) - 1, -1, -1) if last else range(len(items))
    for i in order:
        if items[i][0].lower() == name.lower() and items[i][1] == value:
            del items[i]
            return


def _prepare(
    source: Source,
    root: str,
    binary: str,
    endpoint: Endpoint,
    certificate: Callable[[], tuple[str, str]],
    *,
    worker_processes: int = 1,
    debug: bool = False,
    extra_http: Sequence[str] = (),
) -> Prepared:
    """Rewrite `source` into `root` and write the files."""
    prepared = Rewriter(
        source,
        root,
        ports=_free_port,
        endpoint=endpoint,
        certificate=certificate,
        dead_port=_dead_port(),
        compiled_prefix=_compiled_prefix(binary),
        ipv6=_has_ipv6_loopback(),
        worker_processes=worker_processes,
        debug=debug,
        extra_http=extra_http,
        user="root" if os.geteuid() == 0 else None,
    ).run()
    for d in ("_tmp", "_run"):  # nginx makes only the last level of temp dirs, none for sockets
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for target, content in prepared.files.items():
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(content)
    return prepared


def _command(binary: str, root: str, main: str, debug: bool) -> list[str]:
    level = " debug" if debug else ""
    g = (
        f"daemon off; pid {quote(os.path.join(root, 'nginx.pid'))}; "
        f"error_log {quote(os.path.join(root, 'error.log'))}{level};"
    )
    return [binary, "-p", root + "/", "-c", main, "-g", g]


def _relabel(text: str, prepared: Prepared) -> str:
    """nginx's messages with the user's listen addresses and file names instead of the copies'."""
    for li in prepared.listens:
        if li.kind == "unix":
            text = text.replace(f"unix:{li.host}", f"unix:{li.addr}")
            continue
        mapped = f"[{li.host}]:{li.mapped_port}" if ":" in li.host else f"{li.host}:{li.mapped_port}"
        addr = {"*": "0.0.0.0", "::": "[::]"}.get(li.addr, f"[{li.addr}]" if li.kind == "ipv6" else li.addr)
        text = re.sub(re.escape(mapped) + r"(?!\d)", f"{addr}:{li.port}", text)
    for target, label in sorted(prepared.labels, key=lambda t: -len(t[0])):
        text = text.replace(target, label)
    return text


def _proxy_line(client: IPAddress | None, client_port: int, port: int) -> bytes:
    """PROXY protocol v1 header announcing `client` as the peer."""
    if client is None:
        return b"PROXY UNKNOWN\r\n"
    family, dst = ("TCP6", "::1") if client.version == 6 else ("TCP4", LOOPBACK_V4)
    return f"PROXY {family} {client} {dst} {client_port} {port or 80}\r\n".encode()


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _str(p: str | os.PathLike[str] | None) -> str | None:
    return None if p is None else os.fspath(p)
