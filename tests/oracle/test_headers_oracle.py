"""Differential tests of `expires`, `add_header`, `proxy_redirect` and the upstream answer
(`Upstream.reply`) against a real nginx 1.22.1.

nginx runs with its real clock: nginxsim is pinned to the second of nginx's Date header, which is
the cached time `expires` reads too. For upstream answers a backend started here (one thread per
connection on 127.0.0.1, a free port) answers each request with the status and header lines the
request's X-Reply header asks for, over HTTP, SCGI or uwsgi; the client-visible header lines are
compared with `decision.upstream.reply(...)` after dropping the ones nginx writes itself (Server,
Date, Content-Length, Connection) unless the answer's own were passed.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nginxsim
from nginxsim.modules.headers import parse_expires

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_conf_validate import nginx_t  # noqa: E402  (the shared `nginx -t` runner)

pytestmark = pytest.mark.oracle

_FRAMING = ("content-length", "connection", "keep-alive", "transfer-encoding")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def conf_text(directory: str, http: str) -> str:
    """A whole nginx.conf around `http` (the body of http{}), with everything in `directory`."""
    temp = " ".join(f"{k}_temp_path {directory}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"events {{ worker_connections 64; }}\nhttp {{\naccess_log off;\n{temp}\n{http}\n}}\n")


class Runner:
    """One nginx (`master_process off`) on a config written to a temporary directory; stopped by
    its own pid."""

    def __init__(self, binary: str, directory: str, http: str, port: int) -> None:
        self.directory, self.port = directory, port
        self.text = conf_text(directory, http)
        Path(directory, "nginx.conf").write_text(self.text, "utf-8", "surrogateescape")
        cmd = [binary, "-p", f"{directory}/", "-c", f"{directory}/nginx.conf", "-g",
               f"daemon off; master_process off; pid {directory}/nginx.pid; error_log {directory}/error.log;"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else b""
                raise RuntimeError(f"nginx did not start: {err!r}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("nginx did not start listening") from None
                time.sleep(0.02)

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": "a.test", "Connection": "close", **headers})
            resp = conn.getresponse()
            resp.read()
            return resp.status, resp.getheaders()
        finally:
            conn.close()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


class Backend:
    """Answers every HTTP, FastCGI, SCGI or uwsgi request with what its X-Reply header (base64
    JSON: status, header lines) asks; CGI-style protocols get a Status line."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            buf = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                found = _request_fields(buf)
                if found is not None:
                    break
            protocol, fields = found
            spec = json.loads(base64.b64decode(fields["x-reply"]))
            first = f"HTTP/1.1 {spec['s']} X" if protocol == "http" else f"Status: {spec['s']} X"
            head = "".join(f"{n}: {v}\r\n" for n, v in spec["h"])
            answer = f"{first}\r\n{head}Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
            if protocol == "fastcgi":  # one STDOUT record, an empty one, END_REQUEST
                answer = (_record(6, answer) + _record(6, b"") + _record(3, bytes(8)))
            conn.sendall(answer)

    def close(self) -> None:
        self.sock.close()


def _record(kind: int, content: bytes) -> bytes:
    return bytes((1, kind, 0, 1)) + len(content).to_bytes(2, "big") + b"\0\0" + content


def _request_fields(buf: bytes) -> tuple[str, dict[str, str]] | None:
    """(protocol, header fields by lowercase name) once the whole request head arrived."""
    if buf[:2] == b"\x01\x01":  # FastCGI records, up to the empty STDIN one
        return _fastcgi(buf)
    if buf[:1].isdigit():  # SCGI: a netstring of NUL-separated names and values
        length, _, rest = buf.partition(b":")
        if len(rest) < int(length) + 1:
            return None
        items = rest[: int(length)].split(b"\0")
        return "cgi", _params(items[0::2], items[1::2])
    if buf[:1].isalpha():  # HTTP
        if b"\r\n\r\n" not in buf:
            return None
        lines = buf.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
        pairs = (line.partition(b":") for line in lines)
        return "http", {k.strip().lower().decode(): v.strip().decode() for k, _, v in pairs}
    if len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[1:3], "little"):  # uwsgi packet
        return None
    body, names, values, i = buf[4 : 4 + int.from_bytes(buf[1:3], "little")], [], [], 0
    while i < len(body):
        n = int.from_bytes(body[i : i + 2], "little")
        names.append(body[i + 2 : i + 2 + n])
        i += 2 + n
        n = int.from_bytes(body[i : i + 2], "little")
        values.append(body[i + 2 : i + 2 + n])
        i += 2 + n
    return "cgi", _params(names, values)


def _fastcgi(buf: bytes) -> tuple[str, dict[str, str]] | None:
    params, i = b"", 0
    while i + 8 <= len(buf):
        kind, length, padding = buf[i + 1], int.from_bytes(buf[i + 4 : i + 6], "big"), buf[i + 6]
        if i + 8 + length + padding > len(buf):
            return None
        if kind == 4:
            params += buf[i + 8 : i + 8 + length]
        if kind == 5 and length == 0:
            break
        i += 8 + length + padding
    else:
        return None
    names, values, j = [], [], 0
    while j < len(params):
        sizes = []
        for _ in range(2):
            if params[j] & 0x80:
                sizes.append(int.from_bytes(params[j : j + 4], "big") & 0x7FFFFFFF)
                j += 4
            else:
                sizes.append(params[j])
                j += 1
        names.append(params[j : j + sizes[0]])
        values.append(params[j + sizes[0] : j + sizes[0] + sizes[1]])
        j += sizes[0] + sizes[1]
    return "fastcgi", _params(names, values)


def _params(names: list[bytes], values: list[bytes]) -> dict[str, str]:
    pairs = zip(names, values, strict=False)  # SCGI ends with a NUL: one empty name too many
    return {n.decode()[5:].lower().replace("_", "-"): v.decode() for n, v in pairs if n.startswith(b"HTTP_")}


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    yield b
    b.close()


def _date(headers: list[tuple[str, str]]) -> str:
    value = next(v for k, v in headers if k.lower() == "date")
    return str(int(email.utils.parsedate_to_datetime(value).timestamp()))


def _pick(headers: Any, names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() in names or k.lower().startswith("x-")]


# -- expires ----------------------------------------------------------------------------------

UNITS = ("y", "M", "w", "d", "h", "m", "s")


def time_text(rng: random.Random) -> str:
    """A time nginx parses, or (rarely) one it refuses at run time."""
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(["0", "-0", "+0", "1", "86400", "9223372036854775807", "100y", "30000y"])
    if roll < 0.15:
        return rng.choice(["junk", "", "1ms", "1h1d", "1h 1h", "5x", "99999999999999999999", "-", "@"])
    picked = sorted(rng.sample(range(len(UNITS)), rng.randint(1, 3)))
    parts = [f"{rng.randint(0, 50)}{UNITS[i]}" for i in picked]
    text = rng.choice(["", " "]).join(parts)
    if rng.random() < 0.2:
        text += str(rng.randint(0, 99))
    return rng.choice(["", "", "+", "-"]) + text


def daily_text(rng: random.Random) -> str:
    h, m, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    return "@" + rng.choice([f"{h}h{m}m", f"{h}h", f"{m}m{s}s", str(h * 3600 + m * 60 + s), "24h", "0", "1d"])


def expires_value(rng: random.Random, modified: bool) -> str:
    """An `expires` argument nginx accepts at config time."""
    while True:
        roll = rng.random()
        if roll < 0.15 and not modified:
            text = rng.choice(["epoch", "max", "off"])
        elif roll < 0.35 and not modified:
            text = daily_text(rng)
        else:
            text = time_text(rng)
        kind = "modified" if modified else "access"
        try:
            parse_expires(text.encode(), kind)
        except ValueError:
            continue
        return text


def quote(text: str) -> str:
    return '"' + text + '"'


def test_expires_against_nginx(nginx_binary: str) -> None:
    rng = random.Random(1221)
    with tempfile.TemporaryDirectory(prefix="nginxsim-exp-") as d:
        files = Path(d, "files")
        files.mkdir()
        now = int(time.time())
        mtimes = [now - 10, now + 10, now - 86400 * 400, now + 86400 * 40, 1000000000, 4000000000, 0, 1]
        for i, mtime in enumerate(mtimes):
            Path(files, f"f{i}").write_text("x")
            os.utime(Path(files, f"f{i}"), (mtime, mtime))
        locations, paths = [], []
        for i in range(60):
            value = expires_value(rng, modified=False)
            status = rng.choice(["200 x", "200 x", "302 /to", "404", "204", "500 e", "301 /p", "304"])
            extra = rng.choice(["", "add_header X-A a;", "add_header Cache-Control private always;",
                                "add_header Expires soon; add_header Cache-Control x;",
                                "add_header ETag e; add_header Last-Modified lm;"])
            locations.append(f"location = /e{i} {{ expires {quote(value)}; {extra} return {status}; }}")
            paths.append(f"/e{i}")
        for i in range(40):
            value = expires_value(rng, modified=True)
            where = f"alias {files}/f{i % len(mtimes)};"
            locations.append(f"location = /m{i} {{ {where} expires modified {quote(value)}; }}")
            paths.append(f"/m{i}")
        day = now % 86400
        edges = [f"@{min(day + k, 86400)}" for k in (-1, 0, 1, 2, 3)] + [
            "9223372036854775807", "-9223372036854775807", "292471208677y", "-292471208677y", "30000y", "@86400",
            "@0", "0", "-0", "+0", "epoch", "max", "modified 9223372036854775807", "modified -9223372036854775807",
            "modified 0", "modified 1", "modified -1", "modified 300000y"]
        for i, value in enumerate(edges):
            where = f"alias {files}/f{i % len(mtimes)};" if value.startswith("modified") else "return 200 x;"
            form = "modified " + quote(value[9:]) if value.startswith("modified") else quote(value)
            locations.append(f"location = /edge{i} {{ expires {form}; {where} }}")
            paths.append(f"/edge{i}")
        locations.append("location /v { expires $arg_e; add_header X-V v; return 200 x; }")
        locations.append(f"location /vm/ {{ alias {files}/; expires modified $arg_e; }}")
        locations.append("location /in/ { expires 2h; location /in/off { expires off; return 200 x; }\n"
                         "  location /in/keep { return 200 x; } if ($arg_x) { return 302 /x; } return 200 x; }")
        locations.append("location /ep { error_page 404 =200 /e0; return 404; }")
        for _ in range(80):
            value = rng.choice([expires_value(rng, modified=False), time_text(rng), daily_text(rng),
                                "@25h", "epoch", "max", "off", "modified"])
            paths.append("/v?e=" + value.replace(" ", "%20"))
        for _ in range(60):
            value = rng.choice([time_text(rng), "epoch", "max", "@1h"])
            paths.append(f"/vm/f{rng.randrange(len(mtimes))}?e=" + value.replace(" ", "%20"))
        paths += ["/in/off", "/in/keep", "/in/x", "/in/x?x=1", "/ep"]
        port = free_port()
        http = f"server {{ listen 127.0.0.1:{port}; server_name a.test;\nexpires 1d;\n" + "\n".join(locations) + "\n}"
        ng = Runner(nginx_binary, d, http, port)
        try:
            answers = [ng.get(p, {}) for p in paths]
        finally:
            ng.close()
        cfg = nginxsim.load(f"{d}/nginx.conf")
        decisions = [cfg.route("127.0.0.1", f"http://a.test:{port}{path}", server_addr="127.0.0.1",
                               headers=[("Host", "a.test")], pinned={"msec": _date(headers)})
                     for path, (_, headers) in zip(paths, answers, strict=True)]
    bad = []
    names = ("expires", "cache-control", "etag", "last-modified")
    for path, (status, headers), dec in zip(paths, answers, decisions, strict=True):
        got = _pick(dec.headers.items_list(), names)
        want = _pick(headers, names)
        if dec.file is not None:  # nginx's own ETag/Last-Modified of a file
            want = [(k, v) for k, v in want if k.lower() not in ("etag", "last-modified")]
            got = [(k, v) for k, v in got if k.lower() not in ("etag", "last-modified")]
        if dec.status != status or got != want:
            bad.append((path, status, want, dec.status, got))
    print(f"expires oracle: {len(paths)} requests compared, {len(bad)} differ")
    assert not bad, "\n".join(map(str, bad[:10]))


# -- proxy_redirect and the upstream's answer ------------------------------------------------


def redirect_lines(rng: random.Random, bp: int, has_pass: str | None) -> list[str]:
    """Random `proxy_redirect` lines for one level; `has_pass` is its static proxy_pass URL."""
    roll = rng.random()
    if roll < 0.35:
        return []
    if roll < 0.45:
        return ["proxy_redirect off;"]
    pool = [
        f"proxy_redirect http://127.0.0.1:{bp}/ /;",
        f"proxy_redirect http://127.0.0.1:{bp}/x/ /r/;",
        "proxy_redirect http://backend/ http://$host:$server_port/b/;",
        "proxy_redirect http://$proxy_host/ /ph/;",
        r'proxy_redirect "~^http://([^/:]+)(:\d+)?/(.*)$" https://$1.example/$3;',
        r'proxy_redirect "~*^HTTP://BACKEND(/.*)?$" /ci$1;',
        r'proxy_redirect "~/(?<last>\w+)$" /named/$last;',
        "proxy_redirect / /abs/;",
        'proxy_redirect "" /empty;',
        "proxy_redirect http://other.test/ $scheme://$http_host/o/;",
        "proxy_redirect ~no-such-thing /never;",
        f"proxy_redirect ~^http://127.0.0.1:{bp}/ /g[$1]/;",
    ]
    lines = rng.sample(pool, rng.randint(1, 3))
    if has_pass is not None and "$" not in has_pass and rng.random() < 0.4:
        lines.insert(rng.randrange(len(lines) + 1), "proxy_redirect default;")
    return lines


def level_extras(rng: random.Random, prefix: str = "proxy") -> list[str]:
    out = []
    if rng.random() < 0.25:
        out.append(rng.choice([f"{prefix}_hide_header X-Custom;", f"{prefix}_pass_header Server;",
                               f"{prefix}_pass_header X-Accel-Expires;", f"{prefix}_hide_header Cache-Control;",
                               f"{prefix}_pass_header X-Pad; {prefix}_hide_header Link;",
                               f"{prefix}_pass_header Status;", f"{prefix}_hide_header Status;"]))
    if rng.random() < 0.3:
        out.append(rng.choice(["add_header X-Added a;", "add_header X-Always b always;",
                               "add_header Cache-Control extra;", "add_header ETag new;",
                               'add_header ETag "";', "add_header Last-Modified lm always;",
                               "add_header X-Cap $1;"]))
    if rng.random() < 0.3:
        out.append("expires " + rng.choice(["1h", "-5m", "epoch", "max", "modified 1d", "modified -1d", "0",
                                            "@3h", "off"]) + ";")
    return out


def pass_url(rng: random.Random, bp: int) -> str:
    return rng.choice([f"http://127.0.0.1:{bp}", f"http://127.0.0.1:{bp}/", f"http://127.0.0.1:{bp}/x/",
                       f"http://127.0.0.1:{bp}/x", "http://backend", "http://backend/y/", "http://BACKEND/",
                       f"http://127.0.0.1:{bp}$request_uri", "http://backend?a=1"])


def redirect_config(rng: random.Random, bp: int) -> str:
    """An http{} body: a server with random proxy_redirect/hide/add_header/expires levels."""
    out = [f"upstream backend {{ server 127.0.0.1:{bp}; }}"]
    server = ["server_name a.test;", *redirect_lines(rng, bp, None), *level_extras(rng)]
    for i, form in enumerate(["/l0/", "/l1", "= /l2", "~ ^/l3/(.*)$", "^~ /l4/"]):
        url = pass_url(rng, bp)
        if "~" in form and ("/" in url.split("//", 1)[1] or "?" in url) and "$" not in url:
            url = rng.choice([f"http://127.0.0.1:{bp}", "http://backend"])
        body = [f"proxy_pass {url};", *redirect_lines(rng, bp, url), *level_extras(rng)]
        rng.shuffle(body)  # `proxy_redirect default` before proxy_pass is a config error: filtered below
        if i == 0:
            inner_url = pass_url(rng, bp)
            inner = [f"proxy_pass {inner_url};", *redirect_lines(rng, bp, inner_url), *level_extras(rng)]
            body.append(f"location /l0/in/ {{ {' '.join(inner)} }}")
            body.append(f"if ($arg_if) {{ proxy_pass http://127.0.0.1:{bp}; }}")
        out_body = " ".join(body)
        server.append(f"location {form} {{ {out_body} }}")
    server.append(f"location /sc/ {{ scgi_pass 127.0.0.1:{bp}; {' '.join(level_extras(rng, 'scgi'))} }}")
    server.append(f"location /uw/ {{ uwsgi_pass 127.0.0.1:{bp}; {' '.join(level_extras(rng, 'uwsgi'))} }}")
    server.append(f"location /fc/ {{ fastcgi_pass 127.0.0.1:{bp}; fastcgi_param HTTP_X_REPLY $http_x_reply; "
                  f"{' '.join(level_extras(rng, 'fastcgi'))} }}")
    return "\n".join(out) + "\nserver {\nlisten 127.0.0.1:PORT;\n" + "\n".join(server) + "\n}"


def answer(rng: random.Random, bp: int) -> tuple[int, list[tuple[str, str]]]:
    """A backend's answer: status and header lines."""
    status = rng.choice([200, 200, 301, 302, 303, 307, 308, 404, 500, 204, 201])
    targets = [f"http://127.0.0.1:{bp}/x/foo", f"http://127.0.0.1:{bp}/", f"http://127.0.0.1:{bp}/y/z?q=1",
               "http://backend/y/z", "http://backend/", "HTTP://BACKEND/up", "http://other.test/p/q", "/rel/a",
               "/x/abc", "https://backend/s", "", "rel", f"http://127.0.0.1:{bp}/abc"]
    headers: list[tuple[str, str]] = []
    if rng.random() < 0.8:
        headers.append(("Location", rng.choice(targets)))
    if rng.random() < 0.3:
        headers.append(("Refresh", rng.choice(["5; url=", "0;URL=", "3; Url = ", "7"]) + rng.choice(targets)))
    extras = [("Server", "up/1"), ("X-Pad", "avoid"), ("X-Accel-Expires", "10"), ("Cache-Control", "public"),
              ("Cache-Control", "no-transform"), ("Expires", "Thu, 01 Jan 2037 00:00:00 GMT"), ("ETag", '"e1"'),
              ("Last-Modified", rng.choice(["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                                            "Sun Nov  6 08:49:37 1994", "garbage", "Wed, 01 Jan 2031 00:00:00 GMT"])),
              ("Set-Cookie", "a=b; Path=/"), ("Content-Type", "text/plain"), ("X-Custom", "c"), ("Link", "</s>; rel=x"),
              ("Location", "/second")]
    headers += rng.sample(extras, rng.randint(0, 6))
    rng.shuffle(headers)
    return status, headers


def test_upstream_reply_against_nginx(nginx_binary: str, backend: Backend) -> None:
    rng = random.Random(4242)
    bp = backend.port
    compared, bad, configs, refused, rewritten = 0, [], 0, 0, 0
    paths = ["/l0/a", "/l0/in/b", "/l0/c?if=1", "/l1/d", "/l2", "/l3/e", "/l4/f", "/sc/g", "/uw/h", "/fc/i"]
    while configs < 24:
        port = free_port()
        http = redirect_config(rng, bp).replace("PORT", str(port))
        with tempfile.TemporaryDirectory(prefix="nginxsim-redir-") as d:
            text = conf_text(d, http)
            Path(d, "nginx.conf").write_text(text)
            refusal = nginx_t(nginx_binary, d)
            if refusal is not None:  # e.g. `proxy_redirect default` before proxy_pass
                with pytest.raises(nginxsim.ConfigError) as e:
                    nginxsim.load(f"{d}/nginx.conf")
                assert (e.value.message, e.value.file, e.value.line) == refusal
                refused += 1
                continue
            configs += 1
            cfg = nginxsim.load(f"{d}/nginx.conf")
            ng = Runner(nginx_binary, d, http, port)
            try:
                for _ in range(30):
                    path = rng.choice(paths)
                    status, headers = answer(rng, bp)
                    spec = base64.b64encode(json.dumps({"s": status, "h": headers}).encode()).decode()
                    got_status, got = ng.get(path, {"X-Reply": spec})
                    dec = cfg.route("127.0.0.1", f"http://a.test:{port}{path}", server_addr="127.0.0.1",
                                    headers=[("Host", "a.test"), ("X-Reply", spec)], pinned={"msec": _date(got)})
                    assert dec.upstream is not None, (path, http)
                    if dec.upstream.protocol in ("scgi", "uwsgi", "fastcgi"):  # the Status line is a header line there
                        headers = [("Status", f"{status} X"), *headers]
                    reply = dec.upstream.reply(status, headers)
                    names = {k.lower() for k, _ in reply.headers.items_list()}
                    want = [(k, v) for k, v in got if k.lower() not in _FRAMING
                            and (k.lower() not in ("server", "date") or k.lower() in names)]
                    compared += 1
                    rewritten += any(k.lower() in ("location", "refresh") and (k, v) not in headers
                                     for k, v in reply.headers.items_list())
                    if (got_status, want) != (reply.status, reply.headers.items_list()):
                        bad.append((http, path, status, headers, got_status, want, reply.headers.items_list()))
            finally:
                ng.close()
    print(f"upstream reply oracle: {compared} answers over {configs} configs compared ({rewritten} with Location or "
          f"Refresh rewritten; {refused} configs refused by both), {len(bad)} differ")
    assert not bad, "\n\n".join(map(str, bad[:5]))


# -- config errors ----------------------------------------------------------------------------

ERRORS = {
    "expires-duplicate": "expires 1h;\nexpires 2h;",
    "expires-invalid": "expires bogus;",
    "expires-daily-modified": "expires modified @1h;",
    "expires-daily-24h": "expires @25h;",
    "expires-bad-first": "expires foo 1h;",
    "expires-modified-epoch": "expires modified epoch;",
    "expires-ms": "expires 1ms;",
    "expires-two-times": 'expires "1h 1h";',
    "expires-overflow": "expires 99999999999999999999;",
    "expires-unknown-var": "expires $nosuch;",
    "expires-dup-invalid": "expires 1h;\nexpires bogus;",
    "redirect-off-then-rule": "proxy_redirect off;\nproxy_redirect a b;",
    "redirect-rule-then-off": "proxy_redirect a b;\nproxy_redirect off;",
    "redirect-off-twice": "proxy_redirect off;\nproxy_redirect off;",
    "redirect-bad-word": "proxy_redirect bogus;",
    "redirect-default-first": "location / {\nproxy_redirect default;\nproxy_pass http://127.0.0.1:1;\n}",
    "redirect-default-vars": "location / {\nproxy_pass http://127.0.0.1:1$uri;\nproxy_redirect default;\n}",
    "redirect-default-server": "proxy_redirect default;",
    "redirect-default-uwsgi": "location / {\nuwsgi_pass 127.0.0.1:1;\nproxy_redirect default;\n}",
    "redirect-bad-regex": 'proxy_redirect "~(a" b;',
    "redirect-unknown-var": "proxy_redirect a $nosuch;",
    "redirect-in-if": "location / {\nif ($arg_a) {\nproxy_redirect a b;\n}\n}",
    "hide-two-args": "proxy_hide_header a b;",
    "redirect-three-args": "proxy_redirect a b c;",
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_config_errors_match_nginx_t(case: str, nginx_binary: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        text = f"events {{}}\nhttp {{\nserver {{\nlisten 127.0.0.1:{free_port()};\n{ERRORS[case]}\n}}\n}}\n"
        Path(d, "nginx.conf").write_text(text)
        expected = nginx_t(nginx_binary, d)
        assert expected is not None, f"nginx -t accepted {case}"
        with pytest.raises(nginxsim.ConfigError) as e:
            nginxsim.load(f"{d}/nginx.conf")
        assert (e.value.message, e.value.file, e.value.line) == expected
