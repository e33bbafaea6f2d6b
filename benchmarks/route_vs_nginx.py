"""Route decisions per second: nginxsim's `Config.route` against real nginx, as a ratio, in one run.

nginxsim: `Config.route` in process, single thread, pinned to one core, over a pre-generated request
mix (trace on, the default API, and off). nginx: a derived copy of the config answering
`return 200 "<decision>"` where it would pass to a backend or serve a file (see _nginx_bench.py),
`worker_processes 1`, pinned to the same core, loaded by `wrk -t1 -c32` pinned to the other core with
the same mix, the client address sent in X-Real-IP. A sample of nginx's answers is checked against
`cfg.route` first. Then, after a warm-up, `--seconds` rounds of 1 s nginxsim trace on, 1 s off, 1 s
wrk, so both sides see the same machine. Medians are taken over the clean rounds: nginx's worker busy
(not limited by wrk or the host) and nginxsim not preempted, both for >= 90% of the time. On a shared
machine, the CPU-time ratio (CPU µs per decision of nginx's worker / of nginxsim) is the steadier one.

Run: python benchmarks/route_vs_nginx.py [--config PATH]... [--seconds N] [--json]
     python benchmarks/route_vs_nginx.py --profile [on|off] [--config PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import ipaddress
import json
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _nginx_bench import Req, Unsupported, WrkResult, check, nginx_version, run_wrk, serving

import nginxsim
from nginxsim.conf.directive import Directive

REPO = Path(__file__).resolve().parents[1]
FIXTURES = {REPO / "fixtures/basic/nginx.conf": "basic", REPO / "fixtures/canary/nginx.conf": "canary"}
MIX_SIZE = 100_000
WARMUP = 0.5  # seconds of nginxsim routing before the timed rounds
CHECKED = 300  # responses of nginx checked against nginxsim before the load
BUSY = 0.9  # a clean round: nginx's worker and nginxsim each got this share of their core
SIM_CPU, WRK_CPU = 0, 1  # nginxsim and nginx share a core; wrk has the other

_EMPLOYEES = ipaddress.IPv4Network("69.12.128.0/17")
_TESTERS = ipaddress.IPv4Network("128.32.0.0/16")
_BASIC_REQUESTS = (  # (Host, path): every server and location of fixtures/basic
    ("shop.example.com", "/"), ("shop.example.com", "/cart?id=3"), ("www.shop.example.com", "/checkout"),
    ("shop.example.com", "/static/css/site.css"), ("shop.example.com", "/img/logo.png"),
    ("shop.example.com", "/account/orders"), ("shop.example.com", "/account/orders/export"),
    ("shop.example.com", "/old-cart"), ("shop.example.com", "/healthz"),
    ("api.example.com", "/v1/users/42"), ("api.example.com", "/v2/items?page=2"),
    ("api.example.com", "/legacy/users/7"), ("acme.apps.example.net", "/dashboard"),
    ("blog.example.com", "/post/1"), ("unknown.example.org", "/"),
)


def _in(rng: random.Random, net: ipaddress.IPv4Network) -> str:
    return str(net[rng.randrange(net.num_addresses)])


def _public(rng: random.Random) -> str:
    """A unicast address outside the employees' and testers' networks and 0/8, 10/8, 127/8."""
    while True:
        a = ipaddress.IPv4Address(rng.randrange(1 << 24, 224 << 24))
        if a not in _EMPLOYEES and a not in _TESTERS and a.packed[0] not in (10, 127):
            return str(a)


def canary_mix(rng: random.Random) -> list[Req]:
    """10% employees, 20% testers, 70% public; `/` and `/static/app.css` half each."""
    out = []
    for _ in range(MIX_SIZE):
        x = rng.random()
        client = _in(rng, _EMPLOYEES) if x < 0.1 else _in(rng, _TESTERS) if x < 0.3 else _public(rng)
        out.append((client, "shop.example.com", rng.choice(("/", "/static/app.css"))))
    return out


def basic_mix(rng: random.Random) -> list[Req]:
    """Every server/location of the basic fixture equally often, from public clients."""
    return [(_public(rng), *rng.choice(_BASIC_REQUESTS)) for _ in range(MIX_SIZE)]


def generic_mix(cfg: nginxsim.Config, rng: random.Random) -> list[Req]:
    """For other configs: each server's first plain name with each of its literal location paths."""
    pairs = []
    for top in cfg.plan.tree.directives:
        for srv in _blocks(top, "server"):
            names = [a for d in srv.block or () if d.name == "server_name" for a in d.args
                     if a and not a.startswith("~") and "*" not in a and a != "_"]
            paths = [d.args[-1] for d in _all(srv) if d.name == "location" and d.args[-1].startswith("/")
                     and (len(d.args) == 1 or d.args[0] in ("=", "^~"))]
            pairs += [(names[0] if names else "localhost", p) for p in paths or ["/"]]
    return [(_public(rng), *rng.choice(pairs)) for _ in range(MIX_SIZE)]


def _blocks(d: Directive, name: str) -> list[Directive]:
    return [d] if d.name == name else [b for c in d.block or () for b in _blocks(c, name)]


def _all(d: Directive) -> list[Directive]:
    return [d, *(x for c in d.block or () for x in _all(c))]


def mix_for(path: Path, cfg: nginxsim.Config) -> list[Req]:
    rng = random.Random(1)
    name = FIXTURES.get(path)
    if name == "canary":
        return canary_mix(rng)
    return basic_mix(rng) if name == "basic" else generic_mix(cfg, rng)


def _calls(cfg: nginxsim.Config, mix: Sequence[Req], trace: bool) -> Callable[[], int]:
    """A function routing the next batch of 1,000 requests of `mix` (cycling), returning how many."""
    urls = [(c, f"http://{h}{p}") for c, h, p in mix]
    batches = [urls[i:i + 1000] for i in range(0, len(urls), 1000)]
    route, state = cfg.route, {"i": 0}

    def run() -> int:
        batch = batches[state["i"]]
        state["i"] = (state["i"] + 1) % len(batches)
        for client, url in batch:
            route(client, url, trace=trace)
        return len(batch)

    return run


@dataclass(frozen=True)
class SimRate:
    """One timed second of nginxsim: decisions, wall-clock and CPU seconds."""

    decisions: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.decisions / self.wall

    @property
    def cpu_share(self) -> float:
        """Below 1 when another process had the core for part of the time."""
        return self.cpu / self.wall


def time_route(run: Callable[[], int], seconds: float) -> SimRate:
    """Route batches for `seconds` (time.perf_counter), pinned to `SIM_CPU`."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SIM_CPU})
    try:
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while (elapsed := time.perf_counter() - t0) < seconds:
            n += run()
        return SimRate(n, elapsed, time.process_time() - c0)
    finally:
        os.sched_setaffinity(0, allowed)


@dataclass(frozen=True)
class Round:
    """1 s of nginxsim with trace on, 1 s with trace off, then 1 s of wrk against nginx."""

    on: SimRate
    off: SimRate
    nginx: WrkResult

    @property
    def clean(self) -> bool:
        """Each side had its core: nginx's worker was the limit, nginxsim was not preempted."""
        return self.nginx.worker_busy >= BUSY and min(self.on.cpu_share, self.off.cpu_share) >= BUSY


@dataclass
class Row:
    """One config's rounds; medians over the clean ones (over all, flagged, when none is clean)."""

    config: str
    rounds: list[Round]
    checked: int

    @property
    def kept(self) -> list[Round]:
        return [r for r in self.rounds if r.clean] or self.rounds

    def to_dict(self) -> dict[str, Any]:
        kept = self.kept

        def sim(rates: list[SimRate]) -> dict[str, Any]:
            med = statistics.median(r.rate for r in rates)
            return {"median": round(med), "us_per_decision": round(1e6 / med, 2),
                    "cpu_us_per_decision": round(sum(r.cpu for r in rates) / sum(r.decisions for r in rates)
                                                 * 1e6, 2)}

        ng = [r.nginx for r in kept]
        on, off = sim([r.on for r in kept]), sim([r.off for r in kept])
        ng_cpu = sum(n.worker_cpu for n in ng) / sum(n.requests for n in ng) * 1e6
        return {
            "config": self.config,
            "nginxsim_trace_on": on,
            "nginxsim_trace_off": off,
            "nginx": {"median": round(statistics.median(n.rate for n in ng)),
                      "worker_cpu_us_per_request": round(ng_cpu, 2),
                      "requests": sum(n.requests for n in ng), "non_2xx_3xx": sum(n.non_2xx_3xx for n in ng),
                      "socket_errors": [n.socket_errors for n in ng if n.socket_errors]},
            "ratio_trace_on": round(statistics.median(r.on.rate / r.nginx.rate for r in kept), 4),
            "ratio_trace_off": round(statistics.median(r.off.rate / r.nginx.rate for r in kept), 4),
            "cpu_ratio_trace_on": round(ng_cpu / on["cpu_us_per_decision"], 4),
            "cpu_ratio_trace_off": round(ng_cpu / off["cpu_us_per_decision"], 4),
            "clean_rounds": sum(r.clean for r in self.rounds),
            "rounds": [{"trace_on": round(r.on.rate), "trace_off": round(r.off.rate),
                        "nginx": round(r.nginx.rate),
                        "nginxsim_cpu_share": round(min(r.on.cpu_share, r.off.cpu_share), 3),
                        "nginx_worker_busy": round(r.nginx.worker_busy, 3), "clean": r.clean}
                       for r in self.rounds],
            "checked_responses": self.checked,
        }


def measure(path: Path, rounds: int) -> Row:
    """Check a sample of nginx's answers, then interleaved rounds of nginxsim and wrk."""
    cfg = nginxsim.load(str(path))
    mix = mix_for(path, cfg)
    on, off = _calls(cfg, mix, True), _calls(cfg, mix, False)
    row = Row(FIXTURES.get(path, str(path)), [], CHECKED)
    with serving(cfg, SIM_CPU, mix) as server:
        problems = check(cfg, server.derived, mix[:CHECKED])
        if problems:
            raise SystemExit(f"{path}: nginx and nginxsim disagree on {len(problems)}/{CHECKED} requests:\n"
                             + "\n".join(problems[:10]))
        time_route(on, WARMUP)
        time_route(off, WARMUP)
        for _ in range(rounds):
            row.rounds.append(Round(time_route(on, 1.0), time_route(off, 1.0), run_wrk(server, 1, WRK_CPU)))
    return row


def table(rows: Sequence[Row]) -> str:
    head = ("config", "nginxsim trace=on", "trace=off", "nginx req/s", "ratio on/off", "CPU-time ratio",
            "clean rounds")
    lines = [head]
    for r in rows:
        d = r.to_dict()
        on, off = d["nginxsim_trace_on"], d["nginxsim_trace_off"]
        lines.append((r.config, f"{on['median']:,}/s ({on['us_per_decision']:.1f} µs)",
                      f"{off['median']:,}/s ({off['us_per_decision']:.1f} µs)", f"{d['nginx']['median']:,}/s",
                      f"{d['ratio_trace_on']:.3f} / {d['ratio_trace_off']:.3f}",
                      f"{d['cpu_ratio_trace_on']:.3f} / {d['cpu_ratio_trace_off']:.3f}",
                      f"{d['clean_rounds']}/{len(r.rounds)}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def profile(path: Path, trace: bool, calls: int = 20_000, top: int = 20) -> None:
    """cProfile of `calls` routes over the config's mix, top functions by own time."""
    cfg = nginxsim.load(str(path))
    mix = mix_for(path, cfg)
    run = _calls(cfg, mix, trace)
    run()
    prof = cProfile.Profile()
    prof.enable()
    done = 0
    while done < calls:
        done += run()
    prof.disable()
    print(f"== {FIXTURES.get(path, path)}: {calls:,} routes, trace={'on' if trace else 'off'}")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", type=Path,
                    help="nginx.conf to measure (repeatable; default: fixtures basic and canary)")
    ap.add_argument("--seconds", type=int, default=5,
                    help="rounds per config: 1 s of nginxsim trace on, 1 s off, 1 s of wrk each (default 5)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--profile", nargs="?", const="on", choices=("on", "off"),
                    help="instead of the benchmark, profile route (trace on by default) with cProfile")
    args = ap.parse_args(argv)
    paths = [p.resolve() for p in args.config] if args.config else list(FIXTURES)
    if args.profile:
        for p in paths:
            profile(p, args.profile == "on")
        return 0
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two CPUs: one for nginx and nginxsim, one for wrk", file=sys.stderr)
        return 2
    if args.seconds < 1:
        ap.error("--seconds must be at least 1")
    try:
        rows = [measure(p, args.seconds) for p in paths]
    except Unsupported as e:
        print(f"cannot derive a backend-free nginx config: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"nginx": nginx_version(), "python": platform.python_version(),
                          "seconds": args.seconds, "mix_size": MIX_SIZE,
                          "results": [r.to_dict() for r in rows]}, indent=2))
        return 0
    print(f"nginxsim {nginxsim.__version__} (Python {platform.python_version()}) vs {nginx_version()}, "
          f"{MIX_SIZE:,}-request mixes, {args.seconds} rounds of 1 s nginxsim trace on, 1 s off, 1 s wrk.")
    print("Medians over the clean rounds; ratio = nginxsim decisions/s / nginx req/s; CPU-time ratio = "
          "nginx worker CPU per request / nginxsim CPU per decision (steadier on a shared machine).")
    print(table(rows))
    for r in rows:
        d = r.to_dict()
        ng, on, off = d["nginx"], d["nginxsim_trace_on"], d["nginxsim_trace_off"]
        print(f"{r.config}: {r.checked} nginx answers checked against nginxsim, all agree; CPU per decision: "
              f"nginx {ng['worker_cpu_us_per_request']:.1f} µs, nginxsim {on['cpu_us_per_decision']:.1f} µs "
              f"(trace on) {off['cpu_us_per_decision']:.1f} µs (off); wrk: {ng['requests']:,} requests, "
              f"{ng['non_2xx_3xx']:,} non-2xx/3xx (as decided), socket errors: {ng['socket_errors'] or 'none'}")
        if not d["clean_rounds"]:
            print(f"{r.config}: WARNING no clean round (other processes share the machine): the wall-clock "
                  "numbers are unreliable, the CPU-time ratio less so")
    return 0


if __name__ == "__main__":
    sys.exit(main())
