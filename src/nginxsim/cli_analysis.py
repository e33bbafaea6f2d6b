"""`nginxsim split` and `nginxsim diff`: who goes where, and what a config change moves.

    nginxsim split -c nginx.conf [--var instance] [--by ip_range] [--clients FILE | --sample N]
                   [--url URL] [--json] [--plot out.svg|out.png]
    nginxsim diff -c old.conf -c new.conf [--var V] [--url URL]... [--clients FILE | --sample N | --exact]
                  [--requests access.log] [--max-shift PCT] [--allow FROM->TO]...

Exit status: 0 answered (and the gate holds), 1 a config is refused or the diff gate
(--max-shift, --allow) is violated, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from html import escape

from . import accesslog, analysis
from .analysis import AnalysisError, DiffReport, Group, ReplayReport, ShareTable
from .cli_args import count, header, load_config, percent
from .errors import RequestError

VIOLATED = 1
BAD_INPUT = 2
SHORT = 24  # values this long or shorter are listed on one line per group


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `split` and `diff` to the `nginxsim` command."""
    s = subparsers.add_parser("split", help="exact shares of a variable or of the routing per client group")
    s.add_argument("-c", "--config", required=True, help="nginx.conf, or - for stdin")
    _common(s)
    s.add_argument("--plot", metavar="FILE", help="also draw stacked bars per group: .svg, or .png (matplotlib)")
    s.set_defaults(func=split)

    d = subparsers.add_parser("diff", help="which clients a config change moves where (transition matrix, CI gate)")
    d.add_argument("-c", "--config", action="append", required=True, help="old.conf, then again: new.conf")
    _common(d)
    d.add_argument("--exact", action="store_true", help="fail (exit 2) unless every share is computed exactly")
    d.add_argument("--requests", metavar="FILE", help="access log whose requests are replayed through both configs")
    d.add_argument("--host", default="localhost", help="Host for logged requests that do not record one")
    d.add_argument("--max-shift", type=percent, metavar="PCT", help="exit 1 when a group's changed share exceeds PCT")
    d.add_argument("--allow", action="append", default=[], metavar="FROM->TO",
                   help="a change that is expected (fnmatch wildcards); with any, other changes exit 1")
    d.add_argument("--examples", type=count, default=3, help="example clients per cell (default 3)")
    d.set_defaults(func=diff)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--prefix", help="nginx's -p prefix (default: the config's directory)")
    p.add_argument("--var", help="the variable whose values are counted (default: the routing outcome)")
    p.add_argument("--by", default=analysis.AUTO,
                   help="the variable that groups clients (default: the first geo the route reads; - for none)")
    p.add_argument("--url", action="append", default=[], help="the request to analyse (default http://localhost/)")
    p.add_argument("-X", "--method", default="GET")
    p.add_argument("-H", "--header", action="append", type=header, default=[], help="'Name: value', repeatable")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--clients", metavar="FILE",
                     help="the population: one address per line, or an access log (combined, common, JSON lines)")
    who.add_argument("--sample", type=count, metavar="N", help="N random IPv4 clients (spread over the groups)")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _fail(message: str) -> int:
    print(f"nginxsim: {message}", file=sys.stderr)
    return BAD_INPUT


class _Bar:
    """A progress bar on stderr, drawn only for a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r  [{'#' * filled}{'-' * (width - filled)}] {done:,}/{total:,} clients")
        sys.stderr.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            sys.stderr.write("\r" + " " * 72 + "\r")
            self.drawn = False


def _population(args: argparse.Namespace, notes: list[str]) -> analysis.Population:
    """--clients FILE (its unusable lines in `notes`), --sample N, or exact."""
    if args.clients:
        parsed = accesslog.read(args.clients)
        note = parsed.note()
        if note is not None:
            notes.append(f"{args.clients}: {note}")
        if not parsed.clients:
            raise AnalysisError(f"{args.clients}: no client address in {parsed.lines} lines")
        return parsed.clients
    if args.sample is not None:
        return int(args.sample)
    return "exact"


def _by(args: argparse.Namespace) -> str | None:
    return None if args.by == "-" else str(args.by)


# ---------------------------------------------------------------------------------------------
# split


def split(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.prefix)
    bar = _Bar(not args.no_progress)
    notes: list[str] = []
    tables: list[ShareTable] = []
    try:
        population = _population(args, notes)
        for url in args.url or ["http://localhost/"]:
            tables.append(analysis.shares(cfg, args.var, _by(args), url=url, method=args.method, headers=args.header,
                                          population=population, seed=args.seed, progress=bar))
            bar.clear()
        if args.plot:
            _plot(args.plot, tables)
    except (AnalysisError, RequestError, OSError) as e:
        bar.clear()
        return _fail(str(e))
    if args.json:
        print(json.dumps({"tables": [t.to_dict() for t in tables], "notes": notes}, indent=2))
        return 0
    for t in tables:
        print(share_text(t))
    for n in notes:
        print(f"note: {n}")
    return 0


def _pct(x: float) -> str:
    """Two decimals, or two significant digits for a share that would show as 0.00%."""
    return f"{x * 100:.2g}%" if 0 < x < 0.00005 else f"{x:.2%}"


def _addresses(g: Group | analysis.GroupDiff) -> str:
    parts = []
    if g.addresses is not None:
        n = g.addresses
        parts.append(f"{int(n):,} addresses" if n.denominator == 1 else f"~{float(n):,.0f} addresses")
    if g.clients is not None:
        parts.append(f"{g.clients:,} clients")
    return ", ".join(parts)


def _title(kind: str, var: str | None, by: str | None, method: str, url: str, mode: str) -> str:
    what = f"${var}" if var else "routing outcome"
    per = f" per ${by}" if by else ""
    return f"{kind}{what}{per} for {method} {url} ({mode})"


def share_text(t: ShareTable) -> str:
    """The table as `nginxsim split` prints it."""
    out = [_title("", t.var, t.by, t.method, t.url, t.mode)]
    width = max((len(g.name) for g in t.groups), default=0)
    for g in t.groups:
        head = f"  {g.name:<{width}}  ({_addresses(g)})"
        short = all(len(s.value) <= SHORT for s in g.shares)
        if short:
            out.append(head + ": " + ", ".join(f"{s.value} {_share(s)}" for s in g.shares))
            if g.enumerated:
                out.append(f"  {'':<{width}}  enumerated, all {g.enumerated:,} addresses hashed: "
                           + ", ".join(f"{s.value} {_pct(s.enumerated or 0.0)}" for s in g.shares))
            continue
        out.append(head)
        for s in g.shares:
            extra = f"  (enumerated: {_pct(s.enumerated or 0.0)})" if g.enumerated else ""
            out.append(f"      {_share(s):>8}  {s.value}{extra}")
    if t.mode != "exact":
        out.append(f"  swept {t.clients:,} clients in {t.seconds:.2f} s (95% intervals)")
    elif any(g.enumerated for g in t.groups):
        out.append(f"  {t.clients:,} addresses hashed one by one; {t.seconds:.2f} s")
    out.extend(f"note: {n}" for n in t.notes)
    return "\n".join(out)


def _share(s: analysis.Share) -> str:
    if s.exact:
        return _pct(s.share)
    return f"{_pct(s.share)} [{_pct(s.low)}-{_pct(s.high)}]"


# ---------------------------------------------------------------------------------------------
# Plots: stacked bars per group


_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
            "#bab0ac")


def _plot(path: str, tables: Sequence[ShareTable]) -> None:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".svg":
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg(tables))
    elif ext == ".png":
        _png(path, tables)
    else:
        raise AnalysisError(f"--plot {path}: write .svg (no dependency) or .png (matplotlib)")


def _values(tables: Sequence[ShareTable]) -> list[str]:
    """Every value shown, in order of first appearance: one colour each."""
    return list(dict.fromkeys(s.value for t in tables for g in t.groups for s in g.shares))


def svg(tables: Sequence[ShareTable]) -> str:
    """Stacked horizontal bars, one per group of each table, with a legend (no dependency)."""
    values = _values(tables)
    colour = {v: _COLOURS[i % len(_COLOURS)] for i, v in enumerate(values)}
    label_w, bar_w, row_h, x0 = 260, 520, 28, 10
    rows: list[str] = []
    y = 10
    for t in tables:
        title = escape(_title("", t.var, t.by, t.method, t.url, t.mode))
        rows.append(f'<text x="{x0}" y="{y + 14}" font-weight="bold">{title}</text>')
        y += row_h
        for g in t.groups:
            rows.append(f'<text x="{x0}" y="{y + 17}">{escape(g.name)}</text>')
            x = float(label_w)
            for s in g.shares:
                w = bar_w * s.share
                tip = escape(f"{g.name}: {s.value} {_share(s)}")
                rows.append(f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row_h - 6}" '
                            f'fill="{colour[s.value]}"><title>{tip}</title></rect>')
                if w > 40:
                    rows.append(f'<text x="{x + 4:.2f}" y="{y + 16}" fill="white">{_pct(s.share)}</text>')
                x += w
            y += row_h
        y += 8
    for v in values:
        rows.append(f'<rect x="{x0}" y="{y}" width="14" height="14" fill="{colour[v]}"/>'
                    f'<text x="{x0 + 20}" y="{y + 12}">{escape(v)}</text>')
        y += 20
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 20}" height="{y + 10}" '
            f'font-family="sans-serif" font-size="12">\n' + "\n".join(rows) + "\n</svg>\n")


def _png(path: str, tables: Sequence[ShareTable]) -> None:
    try:
        importlib.import_module("matplotlib").use("Agg")  # no display needed
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        raise AnalysisError(f"--plot {path}: PNG needs matplotlib (pip install 'nginxsim[plot]'); "
                            ".svg needs nothing") from None
    values = _values(tables)
    labels = [f"{g.name}" if len(tables) == 1 else f"{t.url} {g.name}" for t in tables for g in t.groups]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.5))
    left = [0.0] * len(labels)
    for i, v in enumerate(values):
        widths = [g.share(v) * 100 for t in tables for g in t.groups]
        ax.barh(labels, widths, left=left, color=_COLOURS[i % len(_COLOURS)], label=v)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_title(_title("", tables[0].var, tables[0].by, tables[0].method, tables[0].url, tables[0].mode),
                 fontsize="medium")
    ax.set_xlabel("% of the group's clients")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# diff


def diff(args: argparse.Namespace) -> int:
    if len(args.config) != 2:
        return _fail("diff needs two configs: -c old.conf -c new.conf")
    old, new = (load_config(path, args.prefix) for path in args.config)
    bar = _Bar(not args.no_progress)
    notes: list[str] = []
    reports: list[DiffReport] = []
    replayed: ReplayReport | None = None
    log: accesslog.ParsedLog | None = None
    try:
        urls = args.url or ([] if args.requests else ["http://localhost/"])
        population = _population(args, notes) if urls else "exact"
        if args.exact and population != "exact":
            return _fail("--exact cannot be combined with --clients or --sample")
        for url in urls:
            reports.append(analysis.diff(old, new, args.var, _by(args), url=url, method=args.method,
                                         headers=args.header, population=population, seed=args.seed,
                                         examples=args.examples, exact_only=args.exact, progress=bar))
            bar.clear()
        if args.requests:
            log = accesslog.read(args.requests, requests=True)
            replayed = analysis.replay(old, new, log.records, host=args.host, progress=bar)
            bar.clear()
        violations = [v for r in reports for v in r.violations(args.max_shift, args.allow)]
        if replayed is not None:
            violations += replayed.violations(args.max_shift, args.allow)
    except (AnalysisError, RequestError, OSError) as e:
        bar.clear()
        return _fail(str(e))
    if args.json:
        print(json.dumps({"reports": [r.to_dict() for r in reports],
                          "requests": replayed.to_dict() if replayed is not None else None,
                          "log": log.to_dict() if log is not None else None,
                          "violations": violations, "notes": notes}, indent=2))
    else:
        for r in reports:
            print(diff_text(r))
        if replayed is not None and log is not None:
            print(replay_text(replayed, log, args.requests))
        for n in notes:
            print(f"note: {n}")
        for v in violations:
            print(f"FAIL: {v}", file=sys.stderr)
    return VIOLATED if violations else 0


def diff_text(r: DiffReport) -> str:
    """The transition matrices as `nginxsim diff` prints them, with one changed cell explained."""
    out = [_title("", r.var, r.by, r.method, r.url, r.mode)]
    for g in r.groups:
        out.append(f"  {g.name} ({_addresses(g)}): {_changed(g.changed, g.changed_low, g.changed_high, r.exact)} "
                   "change")
        for c in g.cells:
            arrow = f"{c.old} -> {c.new}" if c.changed else f"{c.old} (unchanged)"
            share = _pct(c.share) if c.exact else f"{_pct(c.share)} [{_pct(c.low)}-{_pct(c.high)}]"
            examples = f"   e.g. {', '.join(c.examples)}" if c.examples and c.changed else ""
            out.append(f"      {share:>8}  {arrow}{examples}")
    out.append(f"  all clients: {_changed(r.changed, r.changed_low, r.changed_high, r.exact)} change"
               f" ({r.seconds:.2f} s)")
    shown = max((c for g in r.groups for c in g.cells if c.changed and c.explain_old), key=lambda c: c.share,
                default=None)
    if shown is not None:
        out.append(f"  why {shown.examples[0]} moves ({shown.old} -> {shown.new}):")
        out.append(_indent("old: ", shown.explain_old or ""))
        out.append(_indent("new: ", shown.explain_new or ""))
    out.extend(f"note: {n}" for n in r.notes)
    return "\n".join(out)


def _changed(p: float, low: float, high: float, exact: bool) -> str:
    return _pct(p) if exact else f"{_pct(p)} [{_pct(low)}-{_pct(high)}]"


def _indent(head: str, text: str) -> str:
    lines = text.splitlines()
    return "\n".join(("    " + head if i == 0 else "    " + " " * len(head)) + line for i, line in enumerate(lines))


def replay_text(r: ReplayReport, log: accesslog.ParsedLog, path: str) -> str:
    """What changes for the logged requests."""
    share = r.changed / r.requests if r.requests else 0.0
    out = [f"{path}: {r.requests:,} requests replayed, {r.changed:,} ({_pct(share)}) answered differently"
           f" ({r.seconds:.2f} s)"]
    if r.fields:
        out.append("  changed: " + ", ".join(f"{f} {n:,}" for f, n in sorted(r.fields.items(), key=lambda kv: -kv[1])))
    for a, b, n in r.transitions:
        out.append(f"  {n:>8,}  {a} -> {b}")
    for e in r.examples:
        out.append(f"  line {e.line}: {e.client} {e.request}: "
                   + "; ".join(f"{f} {a} -> {b}" for f, a, b in e.changes))
    note = log.note()
    if note is not None:
        out.append(f"note: {note}")
    if r.unroutable:
        out.append(f"note: {r.unroutable} requests could not be posed: "
                   + ", ".join(f"{n} {why}" for why, n in r.reasons.items()))
    return "\n".join(out)
