"""Real nginx making the same routing decisions as nginxsim, with no backend: the benchmark's baseline.

`derive` rewrites a config (token by token, line numbers kept) so that every location answers
`return 200 "<marker>"` instead of passing to a backend or serving a file, where the marker names the
location (its line) and its content directive with the directive's own variables, which nginx
evaluates: e.g. `return 200 "41 uwsgi_pass app_${instance}_django";`. Every listen becomes
127.0.0.1:PORT, `worker_processes 1`, `access_log off`, and the realip module takes the client
address from `X-Real-IP` sent from loopback, so a load generator can vary the client per request.
Server, location, geo, map, split_clients... decisions stay as written. `expected` says what that
nginx must answer for an nginxsim `Decision`, so the benchmark proves it measures the same decision.

Not supported (`Unsupported` is raised): listens on other addresses than the wildcard, on several
ports, with ssl/http2/proxy_protocol; configs that use realip themselves; the directives edited here
in included files. A `*_pass` inside `if` is left as written.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nginxsim import Config, Decision
from nginxsim.conf.directive import Directive
from nginxsim.oracle.lexer import Stmt, parse, quote

_PASS = frozenset({"proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass", "memcached_pass"})
_HTTP_ADDED = 'set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP; access_log off;'
_EDITED = _PASS | {"listen", "location", "root", "alias", "return", "access_log", "set_real_ip_from",
                  "real_ip_header"}
_MAIN_DROPPED = frozenset({"daemon", "pid", "error_log"})  # given on the command line
_LISTEN_ADDR = re.compile(r"(?:\*:|0\.0\.0\.0:)?(\d+)")
_LISTEN_REFUSED = frozenset({"ssl", "http2", "quic", "proxy_protocol"})
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_UNIT = {"ms": 1e-3, "s": 1.0, "m": 60.0}
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0

Req = tuple[str, str, str]  # (client address, Host, path)
# wrk: each thread reads the mix (client\tHost\tpath lines) once, then cycles through it.
_WRK_SCRIPT = """\
local reqs, n, i = {}, 0, 0
function init(args)
  for line in io.lines(args[1]) do
    local client, host, path = line:match("^([^\\t]+)\\t([^\\t]+)\\t(.+)$")
    reqs[#reqs + 1] = wrk.format("GET", path, {Host = host, ["X-Real-IP"] = client})
  end
  n = #reqs
end
function request()
  i = i % n + 1
  return reqs[i]
end
"""


class Unsupported(Exception):
    """The config uses something `derive` does not rewrite."""


@dataclass(frozen=True)
class Derived:
    """A derived config written to `prefix`/nginx.conf, serving on 127.0.0.1:`port`.

    `markers` maps the (file, line) of each server or location that answers a marker, as nginxsim
    names them in `Decision.location`, to the marker's text before nginx evaluates its variables.
    """

    prefix: str
    port: int
    markers: dict[tuple[str, int], str]

    @property
    def conf(self) -> str:
        return os.path.join(self.prefix, "nginx.conf")


class _Rewriter:
    """Collects in-place edits of the main file while walking its http/server/location blocks."""

    def __init__(self, text: str, main_file: str, port: int) -> None:
        self.text, self.main_file, self.port = text, main_file, port
        self.edits: list[tuple[int, int, str]] = []
        self.markers: dict[tuple[str, int], str] = {}
        self.orig_port: str | None = None

    def run(self) -> str:
        stmts = parse(self.text)
        if not any(s.name == "worker_processes" for s in stmts):
            self.edits.append((0, 0, "worker_processes 1; "))
        for s in stmts:
            if s.name in _MAIN_DROPPED:
                self.replace(s, "")
            elif s.name == "worker_processes":
                self.replace(s, "worker_processes 1;")
            elif s.name in ("stream", "mail"):
                raise self.unsupported(s, f"{s.name} block")
            elif s.name == "http" and s.block is not None:
                self.edits.append((_body(s), _body(s), " " + _HTTP_ADDED))
                root = _own_root(s.block, ("root", "html"))
                for c in s.block:
                    self.common(c)
                    if c.name == "server" and c.block is not None:
                        self.server(c, root)
        out = self.text
        for start, end, new in sorted(self.edits, reverse=True):
            out = out[:start] + new + out[end:]
        return out

    def line(self, s: Stmt) -> int:
        """The line of the block's `{` (where nginxsim places a server or location)."""
        return self.text.count("\n", 0, _body(s)) + 1

    def unsupported(self, s: Stmt, what: str) -> Unsupported:
        return Unsupported(f"{self.main_file}:{s.words[0].line}: {what}")

    def replace(self, s: Stmt, new: str) -> None:
        self.edits.append((s.start, s.end, new))

    def marker(self, s: Stmt, block_line: int, text: str, insert: bool = False) -> None:
        """Answer `text` (variables evaluated) for the block at `block_line`: replace `s` or insert."""
        self.markers[(self.main_file, block_line)] = text
        ret = f"return 200 {quote(text)};"
        if insert:
            self.edits.append((s.end - 1, s.end - 1, ret + " "))
        else:
            self.replace(s, ret)

    def common(self, s: Stmt) -> None:
        if s.name == "access_log":
            self.replace(s, "")
        elif s.name in ("set_real_ip_from", "real_ip_header"):
            raise self.unsupported(s, f"the config uses realip ({s.name})")

    def server(self, s: Stmt, root: tuple[str, str]) -> None:
        assert s.block is not None
        root = _own_root(s.block, root)
        listens = [c for c in s.block if c.name == "listen"]
        if not listens:
            self.check_port("80", s)
            self.edits.append((_body(s), _body(s), f" listen 127.0.0.1:{self.port};"))
        for li in listens:
            m = _LISTEN_ADDR.fullmatch(li.args[0].value) if li.args else None
            refused = _LISTEN_REFUSED.intersection(a.value for a in li.args[1:])
            if m is None or refused:
                raise self.unsupported(li, f"listen {' '.join(a.value for a in li.args)}")
            self.check_port(m.group(1), li)
            self.edits.append((li.args[0].start, li.args[0].end, f"127.0.0.1:{self.port}"))
        for c in s.block:
            self.common(c)
            if c.name == "return" and [a.value for a in c.args] == ["444"]:
                self.marker(c, self.line(s), f"{self.line(s)} return 444")
            elif c.name == "location" and c.block is not None:
                self.location(c, root)

    def check_port(self, port: str, s: Stmt) -> None:
        if self.orig_port not in (None, port):
            raise self.unsupported(s, f"listens on ports {self.orig_port} and {port}")
        self.orig_port = port

    def location(self, s: Stmt, root: tuple[str, str]) -> None:
        """A top-level `return` stays (a bare 444 becomes a marker); else the `*_pass` or static."""
        assert s.block is not None
        root = _own_root(s.block, root)
        line = self.line(s)
        for c in s.block:
            self.common(c)
            if c.name == "location" and c.block is not None:
                self.location(c, root)
        returns = [c for c in s.block if c.name == "return"]
        passes = [c for c in s.block if c.name in _PASS]
        if returns:
            if [a.value for a in returns[0].args] == ["444"]:
                self.marker(returns[0], line, f"{line} return 444")
        elif passes:
            p = passes[0]
            self.marker(p, line, " ".join([str(line), p.name, *(a.value for a in p.args)]))
        else:
            kind, path = root
            self.marker(s, line, f"{line} {kind} {path}" + ("$uri" if kind == "root" else ""), insert=True)


def _body(s: Stmt) -> int:
    assert s.body is not None
    return s.body


def _own_root(block: list[Stmt], inherited: tuple[str, str]) -> tuple[str, str]:
    """The level's `root`/`alias` (nginx merges them as one setting), else the inherited one."""
    own = [c for c in block if c.name in ("root", "alias") and c.args]
    return (own[0].name, own[0].args[0].value) if own else inherited


def _walk(directives: Sequence[Directive]) -> Iterator[Directive]:
    for d in directives:
        yield d
        if d.block is not None:
            yield from _walk(d.block)


def derive(cfg: Config, prefix: str, port: int) -> Derived:
    """Write the derived copy of `cfg` into `prefix` (files of its conf dir copied alongside)."""
    tree = cfg.plan.tree
    main = tree.main_file
    for d in _walk(tree.directives):
        if d.name in _EDITED and d.file != main:
            raise Unsupported(f"{d.where}: {d.name} in an included file")
    conf_dir = Path(tree.conf_dir)
    for f in tree.files[1:]:
        if Path(f).is_relative_to(conf_dir):
            target = Path(prefix) / Path(f).relative_to(conf_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
    rw = _Rewriter(Path(main).read_bytes().decode("utf-8", "surrogateescape"), main, port)
    Path(prefix, "nginx.conf").write_bytes(rw.run().encode("utf-8", "surrogateescape"))
    return Derived(prefix, port, rw.markers)


def expected(d: Decision, derived: Derived) -> tuple[int | None, str | None, str | None]:
    """(status, body, Location) the derived nginx must answer for nginxsim's decision `d`.

    A marker's variables take nginxsim's values (`$uri` its final URI); None means "not checked".
    """
    place = d.location or d.server
    text = derived.markers.get((place.file, place.line)) if place and place.file and place.line else None
    if text is None:
        return d.status, d.body, d.headers.get("Location")

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name == "uri":
            return d.uri
        if name not in d.variables:
            raise KeyError(f"nginxsim's decision has no ${name} for marker {text!r}")
        return d.variables[name]

    return 200, _VARIABLE.sub(value, text), None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (nginx binds it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class NginxServer:
    """nginx serving a derived config, pinned to `cpu`; stopped by its own pid."""

    def __init__(self, derived: Derived, cpu: int, binary: str = "/usr/sbin/nginx") -> None:
        self.derived = derived
        prefix = derived.prefix
        g = (f"daemon off; pid {quote(prefix + '/nginx.pid')}; "
             f"error_log {quote(prefix + '/error.log')};")
        self.args = ["taskset", "-c", str(cpu), binary, "-p", prefix, "-c", derived.conf, "-g", g]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start nginx (taskset execs it: our child's pid is nginx's) and wait for its pid file."""
        pid_file = Path(self.derived.prefix, "nginx.pid")
        with open(Path(self.derived.prefix, "stderr.log"), "wb") as err:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, start_new_session=True)
        deadline = time.monotonic() + _START_TIMEOUT
        while not (pid_file.exists() and pid_file.read_text().strip()):  # written once it listens
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.log()}")
            time.sleep(0.005)

    def stop(self) -> None:
        """SIGQUIT (graceful), then SIGKILL to the process group nginx leads."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        """What nginx wrote to stderr and its error log."""
        return "".join(p.read_text(errors="replace") for name in ("stderr.log", "error.log")
                       if (p := Path(self.derived.prefix, name)).exists())

    def worker_cpu_seconds(self) -> float:
        """User + system CPU time of nginx's worker processes so far."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        ticks = 0
        for pid in children:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(cfg: Config, cpu: int, mix: Sequence[Req]) -> Iterator[NginxServer]:
    """A running nginx on a derived copy of `cfg` in a temporary prefix, removed afterwards.

    The prefix also gets `mix` and the wrk script that cycles through it (see `run_wrk`).
    """
    with tempfile.TemporaryDirectory(prefix="nginxsim-bench-") as prefix:
        Path(prefix, "requests.tsv").write_text("".join(f"{c}\t{h}\t{p}\n" for c, h, p in mix))
        Path(prefix, "mix.lua").write_text(_WRK_SCRIPT)
        server = NginxServer(derive(cfg, prefix, free_port()), cpu)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def check(cfg: Config, derived: Derived, sample: Sequence[Req]) -> list[str]:
    """Send `sample` to the derived nginx; the disagreements with `cfg.route` (empty: all agree)."""
    conn = http.client.HTTPConnection("127.0.0.1", derived.port, timeout=5)
    own_port = re.compile(rf"^(https?://[^/?#]*?):{derived.port}(?=[/?#]|$)")
    problems = []
    try:
        for client, host, path in sample:
            want_status, want_body, want_location = expected(
                cfg.route(client, f"http://{host}{path}", trace=False), derived)
            conn.request("GET", path, headers={"Host": host, "X-Real-IP": client})
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", "replace")
            location = resp.getheader("Location")
            got = (resp.status, body if want_body is not None else None,
                   own_port.sub(r"\1", location) if location and want_location is not None else None)
            if got != (want_status, want_body, want_location):
                problems.append(f"{client} http://{host}{path}: nginx {got}, nginxsim "
                                f"{(want_status, want_body, want_location)}")
    finally:
        conn.close()
    return problems


@dataclass(frozen=True)
class WrkResult:
    """wrk's totals and what nginx's workers spent meanwhile."""

    rate: float  # wrk's Requests/sec
    requests: int
    non_2xx_3xx: int
    socket_errors: str | None
    seconds: float  # wrk's measured duration
    worker_cpu: float  # CPU seconds of nginx's workers during the run

    @property
    def worker_busy(self) -> float:
        """The share of a core nginx used: about 1 when nginx, not wrk or the host, is the limit."""
        return self.worker_cpu / self.seconds


def run_wrk(server: NginxServer, seconds: int, cpu: int, connections: int = 32) -> WrkResult:
    """`wrk -t1` pinned to `cpu`, cycling through the server's mix (one client address per request)."""
    prefix = server.derived.prefix
    cpu_before = server.worker_cpu_seconds()
    url = f"http://127.0.0.1:{server.derived.port}/"
    out = subprocess.run(
        ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
         "-s", f"{prefix}/mix.lua", url, "--", f"{prefix}/requests.tsv"],
        capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    worker_cpu = server.worker_cpu_seconds() - cpu_before
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:\s*(.+)", out)
    return WrkResult(float(rate.group(1)), int(total.group(1)), int(non_2xx.group(1)) if non_2xx else 0,
                     errors.group(1).strip() if errors else None,
                     float(total.group(2)) * _UNIT[total.group(3)], worker_cpu)


def nginx_version(binary: str = "/usr/sbin/nginx") -> str:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr
    return out.strip().removeprefix("nginx version: ")
