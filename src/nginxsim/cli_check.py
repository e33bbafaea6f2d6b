"""`nginxsim check`: run case files against a config, report failures and route coverage.

    nginxsim check -c nginx.conf cases/ [--only-failures] [--json] [--junit FILE] [--coverage]
                   [--fail-under PCT]

Exit status: 0 every case passed (and coverage is at least --fail-under), 1 a case failed,
coverage is short or the config is refused, 2 a case file cannot be read (`file:line: message`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import load
from .cases import CaseFile, CaseFileError, CaseResult, is_case_file, run_case
from .cases import load as load_cases
from .cli_args import percent
from .config import Config
from .coverage import Coverage

FAILED = 1
BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `check` to the `nginxsim` command."""
    c = subparsers.add_parser("check", help="run case files (*.nginxsim.yaml) against a config, with coverage")
    c.add_argument("cases", nargs="+", help="case files, or directories searched for *.nginxsim.{yaml,yml,json}")
    c.add_argument("-c", "--config", help="nginx.conf for every case file (default: each file's `config:`)")
    c.add_argument("-p", "--prefix", help="nginx's -p prefix (default: the config's directory)")
    c.add_argument("--only-failures", action="store_true", help="print failing cases only")
    c.add_argument("--json", action="store_true", help="print the results and coverage as JSON")
    c.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    c.add_argument("--coverage", action="store_true", help="list what no case exercised, with file:line")
    c.add_argument("--fail-under", type=percent, metavar="PCT", help="fail when total route coverage is below PCT")
    c.set_defaults(func=check)


@dataclass
class _Run:
    """One config and what its cases did to it."""

    config: Config
    coverage: Coverage
    results: list[CaseResult] = field(default_factory=list)
    requests: int = 0


def check(args: argparse.Namespace) -> int:
    try:
        files = [load_cases(path) for path in _case_files(args.cases)]
    except CaseFileError as e:
        print(f"nginxsim: {e}", file=sys.stderr)
        return BAD_INPUT
    runs: dict[str, _Run] = {}
    plan: list[tuple[CaseFile, _Run]] = []
    for f in files:
        path = os.path.abspath(args.config) if args.config else f.config
        if path is None:
            print(f'nginxsim: {f.path}: no config: give -c, or "config:" in the file', file=sys.stderr)
            return BAD_INPUT
        if path not in runs:
            cfg = load(path, prefix=args.prefix)
            runs[path] = _Run(cfg, Coverage(cfg))
        plan.append((f, runs[path]))
    progress = _Progress(sum(len(c.requests) for f in files for c in f.cases), sys.stderr)
    done = 0
    for f, run in plan:
        for case in f.cases:
            result = run_case(run.config, case)
            run.results.append(result)
            for r in result.results:
                if r.outcome is not None:
                    run.coverage.add(r.outcome.decision, r.outcome.peer)
            run.requests += len(result.results)
            done += len(result.results)
            progress.show(done)
    progress.close()
    results = [r for run in runs.values() for r in run.results]
    failed = sum(1 for r in results if not r.passed)
    hit = sum(run.coverage.counts()[0] for run in runs.values())
    items = sum(run.coverage.counts()[1] for run in runs.values())
    percent = 100.0 * hit / items if items else 100.0
    short = args.fail_under is not None and percent < args.fail_under
    if args.junit:
        _junit(args.junit, results)
    if args.json:
        print(json.dumps(_json(runs, results, percent, args.fail_under), indent=2))
    else:
        _text(runs, results, args, percent, short, sys.stdout)
    return FAILED if failed or short else 0


def _case_files(paths: list[str]) -> list[str]:
    """The files named, and the case files under the directories named (sorted)."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(d, n) for d, _, names in os.walk(path) for n in names if is_case_file(n))
            if not found:
                raise CaseFileError("no *.nginxsim.yaml, *.nginxsim.yml or *.nginxsim.json case files here", path)
            out += found
        elif os.path.exists(path):
            out.append(path)
        else:
            raise CaseFileError("no such file or directory", path)
    return out


def _rel(path: str | None) -> str:
    """A path as the user reads it: relative to the current directory when below it."""
    if path is None:
        return ""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _text(runs: dict[str, _Run], results: list[CaseResult], args: argparse.Namespace, percent: float,
          short: bool, out: TextIO) -> None:
    for result in results:
        case = result.case
        head = f"{_rel(case.file)}:{case.line}  {case.name}"
        if not result.passed:
            print(f"FAIL  {head}", file=out)
            for line in result.report().splitlines():
                print(f"      {line}", file=out)
        elif not args.only_failures:
            print(f"ok    {head}", file=out)
    for path, run in runs.items():
        print(f"coverage of {_rel(path)} ({run.requests} requests):", file=out)
        print(run.coverage.report(missed=args.coverage, relative=_rel), file=out)
    if short:
        print(f"route coverage {percent:.1f}% is under --fail-under {args.fail_under:g}%", file=out)
    failed = sum(1 for r in results if not r.passed)
    print(f"{len(results) - failed} passed, {failed} failed", file=out)


def _json(runs: dict[str, _Run], results: list[CaseResult], percent: float, fail_under: float | None) -> dict[str, Any]:
    cases = []
    for result in results:
        requests = []
        for r in result.results:
            entry: dict[str, Any] = {"request": r.request.to_dict(), "passed": r.passed,
                                     "failures": [f.to_dict() for f in r.failures], "error": r.error}
            if not r.passed and r.outcome is not None:
                entry["trace"] = [s.to_dict() for s in r.outcome.decision.trace]
            requests.append(entry)
        cases.append({"name": result.case.name, "file": result.case.file, "line": result.case.line,
                      "passed": result.passed, "requests": requests})
    failed = sum(1 for r in results if not r.passed)
    return {
        "passed": len(results) - failed,
        "failed": failed,
        "cases": cases,
        "coverage": {"percent": percent, "fail_under": fail_under,
                     "configs": [{"config": path, **run.coverage.to_dict()} for path, run in runs.items()]},
    }


def _junit(path: str, results: list[CaseResult]) -> None:
    """One <testsuite> per case file, one <testcase> per case; a <failure> holds the report."""
    root = ET.Element("testsuites", name="nginxsim")
    suites: dict[str, ET.Element] = {}
    for result in results:
        case = result.case
        file = _rel(case.file)
        suite = suites.get(file)
        if suite is None:
            suite = suites[file] = ET.SubElement(root, "testsuite", name=file)
        tc = ET.SubElement(suite, "testcase", classname=file, name=case.name, file=file, line=str(case.line))
        if not result.passed:
            first = next(r for r in result.results if not r.passed)
            message = first.error or str(first.failures[0])
            ET.SubElement(tc, "failure", message=message).text = result.report()
    for suite in suites.values():
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for tc in cases if tc.find("failure") is not None)))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


class _Progress:
    """A progress bar on stderr for runs that take a while, only when stderr is a terminal."""

    _DELAY = 0.5  # seconds before showing anything: short runs print no bar
    _WIDTH = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty() and total > 0
        self.start = time.monotonic()
        self.drawn = 0.0

    def show(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self._DELAY or now - self.drawn < 0.1:
            return
        self.drawn = now
        filled = self._WIDTH * done // self.total
        self.stream.write(f"\r[{'#' * filled}{'.' * (self._WIDTH - filled)}] {done}/{self.total} requests")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * (self._WIDTH + 40) + "\r")
            self.stream.flush()
