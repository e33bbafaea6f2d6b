"""Echo servers standing in for upstreams: record what nginx sends, answer 200.

One thread serves every echo socket, one connection at a time: the harness sends requests one
after another and reads each response to the end, so whatever reaches an echo server between a
request and the end of its response belongs to that request. The protocol is recognised from the
first bytes (TLS is unwrapped first), so one peer can serve `proxy_pass` and `uwsgi_pass` alike:
HTTP/1.x, uwsgi, FastCGI, SCGI and memcached are parsed; gRPC (HTTP/2) is only recognised.
"""

from __future__ import annotations

import os
import selectors
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .rewrite import LOOPBACK_V4, PeerSpec

PEER_HEADER = "X-Oracle-Peer"
_ENC = "utf-8"
_ERR = "surrogateescape"


def _text(b: bytes) -> str:
    return b.decode(_ENC, _ERR)


@dataclass
class UpstreamRecord:
    """What one upstream (echo) server received.

    For uwsgi/FastCGI/SCGI `params` holds the variables in order and `method`, `uri` and
    `http_version` come from REQUEST_METHOD, REQUEST_URI and SERVER_PROTOCOL ("" when not sent);
    `headers` is empty. For memcached `uri` is the key. For gRPC only `protocol` and `peer` are known.
    """

    protocol: str  # http | https | uwsgi | fastcgi | scgi | memcached | grpc | grpcs
    peer: str  # the original address, as the config wrote it (implicit groups: host:port)
    method: str
    uri: str
    http_version: str
    headers: list[tuple[str, str]]
    params: list[tuple[str, str]] | None
    body: bytes
    group: str = ""  # the upstream block's name, or the address as written for implicit groups

    def header(self, name: str) -> str | None:
        """The first header (or param) of that name, case-insensitively."""
        low = name.lower()
        return next((v for k, v in (self.params or self.headers) if k.lower() == low), None)


class _Reader:
    """Buffered reads from a blocking socket; a short read means the peer closed early."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed mid-request")
        self.buf += chunk

    def peek(self, n: int) -> bytes:
        while len(self.buf) < n:
            try:
                self._more()
            except EOFError:
                break
        return self.buf[:n]

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def until(self, delim: bytes) -> bytes:
        """Everything before `delim` (consumed)."""
        while (i := self.buf.find(delim)) < 0:
            self._more()
        out, self.buf = self.buf[:i], self.buf[i + len(delim) :]
        return out


class Echo:
    """The set of echo servers of one harness instance, served by one background thread."""

    def __init__(self, run_dir: str, certificate: Callable[[], tuple[str, str]], timeout: float) -> None:
        self._run_dir, self._certificate, self._timeout = run_dir, certificate, timeout
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._endpoints: dict[PeerSpec, str] = {}
        self._records: list[UpstreamRecord] = []
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._thread = threading.Thread(target=self._loop, name="nginxsim-oracle-echo", daemon=True)

    def endpoint(self, spec: PeerSpec) -> str:
        """The address nginx should use for `spec` ("127.0.0.1:P" or "unix:/path"); one socket per peer.

        Called before `start` (the selector is not shared with a running thread).
        """
        found = self._endpoints.get(spec)
        if found is not None:
            return found
        if spec.unix:
            path = os.path.join(self._run_dir, f"upstream{len(self._endpoints)}.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            found = f"unix:{path}"
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK_V4, 0))
            found = f"{LOOPBACK_V4}:{sock.getsockname()[1]}"
        sock.listen(64)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, spec)
        self._endpoints[spec] = found
        return found

    def start(self) -> None:
        self._thread.start()

    def take(self) -> list[UpstreamRecord]:
        """The records received since the last call, in arrival order."""
        with self._lock:
            out, self._records = self._records, []
        return out

    def close(self) -> None:
        if self._thread.is_alive():
            self._wake_w.send(b"q")
            self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._wake_w.close()

    def _loop(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    return
                listener: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                with conn:
                    conn.setblocking(True)
                    conn.settimeout(self._timeout)
                    try:
                        self._serve(conn, key.data)
                    except (OSError, EOFError, ValueError):
                        pass  # nginx sees a broken upstream (502); the test sees no record

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self._certificate())
            self._tls = ctx
        return self._tls

    def _serve(self, conn: socket.socket, spec: PeerSpec) -> None:
        tls = conn.recv(1, socket.MSG_PEEK) == b"\x16"
        if tls:
            with self._tls_context().wrap_socket(conn, server_side=True) as wrapped:
                self._answer(wrapped, spec, tls)
        else:
            self._answer(conn, spec, tls)

    def _answer(self, conn: socket.socket, spec: PeerSpec, tls: bool) -> None:
        r = _Reader(conn)
        head = r.peek(4)
        if head.startswith(b"PRI "):
            reply = self._grpc(r, spec, tls)
        elif head[:2] == b"\x01\x01":
            reply = self._fastcgi(r, spec)
        elif head[:1].isdigit():
            reply = self._scgi(r, spec)
        elif head.startswith((b"get ", b"gets")):
            reply = self._memcached(r, spec)
        elif head[:1].isalpha():
            reply = self._http(r, spec, tls)
        else:
            reply = self._uwsgi(r, spec)
        conn.sendall(reply)

    def _add(self, record: UpstreamRecord) -> None:
        with self._lock:
            self._records.append(record)

    def _body(self, spec: PeerSpec) -> bytes:
        return f"nginxsim oracle echo: {spec.text}\n".encode(_ENC, _ERR)

    def _cgi_reply(self, spec: PeerSpec, status_line: bool) -> bytes:
        body = self._body(spec)
        first = "HTTP/1.1 200 OK" if status_line else "Status: 200 OK"
        head = f"{first}\r\nContent-Type: text/plain\r\n{PEER_HEADER}: {spec.text}\r\nContent-Length: {len(body)}\r\n"
        if status_line:
            head += "Connection: close\r\n"
        return head.encode(_ENC, _ERR) + b"\r\n" + body

    def _params_record(self, protocol: str, spec: PeerSpec, params: list[tuple[str, str]], body: bytes) -> None:
        get = dict(params).get
        version = get("SERVER_PROTOCOL", "")
        self._add(
            UpstreamRecord(
                protocol,
                spec.text,
                get("REQUEST_METHOD", ""),
                get("REQUEST_URI", ""),
                version[5:] if version.startswith("HTTP/") else version,
                [],
                params,
                body,
                spec.group,
            )
        )

    @staticmethod
    def _body_of(r: _Reader, params: list[tuple[str, str]]) -> bytes:
        """The request body after the params: CONTENT_LENGTH long (else the client's length)."""
        get = dict(params).get
        value = get("CONTENT_LENGTH") or get("HTTP_CONTENT_LENGTH") or ""
        return r.take(int(value)) if value.isdigit() else b""

    def _http(self, r: _Reader, spec: PeerSpec, tls: bool) -> bytes:
        lines = r.until(b"\r\n\r\n").split(b"\r\n")
        method, _, rest = lines[0].partition(b" ")
        uri, _, version = rest.rpartition(b" ")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((_text(name), _text(value[1:] if value.startswith(b" ") else value)))
        fields = {k.lower(): v for k, v in reversed(headers)}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while (size := int(r.until(b"\r\n").split(b";")[0], 16)) > 0:
                body += r.take(size)
                r.take(2)
            while r.until(b"\r\n"):
                pass
        else:
            length = fields.get("content-length", "")
            body = r.take(int(length)) if length.isdigit() else b""
        self._add(
            UpstreamRecord(
                "https" if tls else "http",
                spec.text,
                _text(method),
                _text(uri),
                _text(version[5:]) if version.startswith(b"HTTP/") else _text(version),
                headers,
                None,
                body,
                spec.group,
            )
        )
        reply = self._cgi_reply(spec, status_line=True)
        return reply.split(b"\r\n\r\n")[0] + b"\r\n\r\n" if method == b"HEAD" else reply

    def _uwsgi(self, r: _Reader, spec: PeerSpec) -> bytes:
        head = r.take(4)
        block = r.take(int.from_bytes(head[1:3], "little"))
        params: list[tuple[str, str]] = []
        i = 0
        while i < len(block):
            klen = int.from_bytes(block[i : i + 2], "little")
            key = block[i + 2 : i + 2 + klen]
            i += 2 + klen
            vlen = int.from_bytes(block[i : i + 2], "little")
            params.append((_text(key), _text(block[i + 2 : i + 2 + vlen])))
            i += 2 + vlen
        self._params_record("uwsgi", spec, params, self._body_of(r, params))
        return self._cgi_reply(spec, status_line=True)

    def _fastcgi(self, r: _Reader, spec: PeerSpec) -> bytes:
        raw_params, body, request_id = b"", b"", 1
        while True:
            h = r.take(8)
            kind, rid, length, padding = (
                h[1],
                int.from_bytes(h[2:4], "big"),
                int.from_bytes(h[4:6], "big"),
                h[6],
            )
            content = r.take(length)
            r.take(padding)
            if kind == 1:  # FCGI_BEGIN_REQUEST
                request_id = rid
            elif kind == 4:  # FCGI_PARAMS
                raw_params += content
            elif kind == 5:  # FCGI_STDIN; the empty one ends the request
                if not length:
                    break
                body += content
        params: list[tuple[str, str]] = []
        i = 0
        while i < len(raw_params):
            lengths = []
            for _ in range(2):
                if raw_params[i] < 128:
                    lengths.append(raw_params[i])
                    i += 1
                else:
                    lengths.append(int.from_bytes(raw_params[i : i + 4], "big") & 0x7FFFFFFF)
                    i += 4
            key = raw_params[i : i + lengths[0]]
            value = raw_params[i + lengths[0] : i + lengths[0] + lengths[1]]
            params.append((_text(key), _text(value)))
            i += lengths[0] + lengths[1]
        self._params_record("fastcgi", spec, params, body)

        def record(kind: int, content: bytes) -> bytes:
            return (
                bytes([1, kind]) + request_id.to_bytes(2, "big") + len(content).to_bytes(2, "big") + b"\0\0" + content
            )

        out = self._cgi_reply(spec, status_line=False)
        return record(6, out) + record(6, b"") + record(3, bytes(8))  # STDOUT, end of STDOUT, END_REQUEST

    def _scgi(self, r: _Reader, spec: PeerSpec) -> bytes:
        block = r.take(int(r.until(b":")))
        r.take(1)  # the netstring's ","
        items = block.split(b"\0")[:-1]
        params = [(_text(k), _text(v)) for k, v in zip(items[::2], items[1::2], strict=False)]
        self._params_record("scgi", spec, params, self._body_of(r, params))
        return self._cgi_reply(spec, status_line=False)

    def _grpc(self, r: _Reader, spec: PeerSpec, tls: bool) -> bytes:
        """Read HTTP/2 frames up to the end of the first stream; answer 200 (no HPACK decoding)."""
        r.take(24)  # the connection preface
        while True:
            h = r.take(9)
            length, kind, flags, stream = (
                int.from_bytes(h[:3], "big"),
                h[3],
                h[4],
                int.from_bytes(h[5:], "big"),
            )
            r.take(length)
            if stream and kind in (0, 1) and flags & 1:  # DATA or HEADERS with END_STREAM
                break
        self._add(UpstreamRecord("grpcs" if tls else "grpc", spec.text, "", "", "", [], None, b"", spec.group))
        name, value = PEER_HEADER.lower().encode(), spec.text.encode(_ENC, _ERR)[:126]
        block = b"\x88\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value  # :status 200, literal
        settings, ack = b"\0\0\0\x04\0\0\0\0\0", b"\0\0\0\x04\x01\0\0\0\0"
        return settings + ack + len(block).to_bytes(3, "big") + b"\x01\x05" + stream.to_bytes(4, "big") + block

    def _memcached(self, r: _Reader, spec: PeerSpec) -> bytes:
        command, _, key = r.until(b"\r\n").partition(b" ")
        self._add(UpstreamRecord("memcached", spec.text, _text(command), _text(key), "", [], None, b"", spec.group))
        body = self._body(spec)
        return b"VALUE " + key + b" 0 " + str(len(body)).encode() + b"\r\n" + body + b"\r\nEND\r\n"
