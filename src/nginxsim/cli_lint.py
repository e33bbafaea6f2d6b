"""`nginxsim lint`: every error and warning `nginx -t` would print, before nginx is ever run.

    nginxsim lint -c nginx.conf [-p PREFIX] [--format text|json|sarif] [--json] [--sarif FILE]

Text lines are `file:line: [emerg|warn] message` (nginx's levels and words; `nginx:` where nginx
names no file). nginx -t stops at its first error; what follows it is marked. `--json` prints a
list of {level, message, file, line, reached}; SARIF 2.1.0 is for code-scanning UIs. Exit status
as nginx -t: 1 when there is an error, else 0 (2: usage error).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import string
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import __version__
from .diagnostics import Finding, lint

FAILED = 1
UNREACHED = "-- nginx -t stops at the error above; reading on, nginxsim also finds:"
_QUOTED = re.compile(r'"[^"]*"')
_WORD = re.compile(r"[a-z][a-z0-9_]*")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `lint` to the `nginxsim` command."""
    p = subparsers.add_parser("lint", help="every error and warning nginx -t would print (text, JSON, SARIF)")
    p.add_argument("-c", "--config", required=True, help="nginx.conf, or - for stdin (an `nginx -T` dump works)")
    p.add_argument("-p", "--prefix", help="nginx's -p prefix (default: the config's directory)")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text", help="output format (default text)")
    p.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    p.add_argument("--sarif", metavar="FILE", help="also write a SARIF 2.1.0 report to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Lint, print in the asked format, exit like nginx -t."""
    if args.config == "-":
        findings, main = lint(text=sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), prefix=args.prefix), None
    else:
        findings, main = lint(args.config, prefix=args.prefix), os.path.join(args.prefix or "", args.config)
    if args.sarif:
        Path(args.sarif).write_text(json.dumps(sarif(findings, main), indent=2) + "\n")
    if args.format == "json":
        _write(json.dumps([f.to_dict() for f in findings], indent=2) + "\n")
    elif args.format == "sarif":
        _write(json.dumps(sarif(findings, main), indent=2) + "\n")
    else:
        _write(text(findings))
    return FAILED if any(f.level == "emerg" for f in findings) else 0


def _write(out: str) -> None:
    """Bytes of the config that are not UTF-8 go back out as they came in, whatever the locale."""
    sys.stdout.flush()
    sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()


def text(findings: list[Finding]) -> str:
    """One line per finding, with a marker line where nginx -t would have stopped."""
    lines: list[str] = []
    for f in findings:
        if not f.reached and UNREACHED not in lines:
            lines.append(UNREACHED)
        lines.append(str(f))
    return "".join(line + "\n" for line in lines)


# --- SARIF 2.1.0 -------------------------------------------------------------------------------


def sarif(findings: list[Finding], main: str | None) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one rule per kind of message (its words outside quotes and numbers),
    file names relative to the working directory when under it (`%SRCROOT%`). A finding that
    names no file is placed on the main file, without a line."""
    root = os.getcwd()
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for f in findings:
        rule = _rule_id(f.message)
        level = "error" if f.level == "emerg" else "warning"
        if rule not in rules:
            rules[rule] = {"id": rule, "shortDescription": {"text": rule.replace("-", " ")},
                           "defaultConfiguration": {"level": level}}
        result: dict[str, Any] = {"ruleId": rule, "ruleIndex": list(rules).index(rule), "level": level,
                                  "message": {"text": f.message}, "properties": {"nginxReaches": f.reached}}
        file = f.file or (os.path.abspath(main) if main else None)
        if file is not None:
            location: dict[str, Any] = {"artifactLocation": _artifact(file, root)}
            if f.file and f.line:
                location["region"] = {"startLine": f.line}
            result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "nginxsim", "version": __version__, "rules": list(rules.values())}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(root).as_uri() + "/"}},
            "results": results,
        }],
    }


def _artifact(file: str, root: str) -> dict[str, str]:
    relative = os.path.relpath(file, root)
    if relative.startswith(".."):
        return {"uri": Path(file).as_uri()}
    return {"uri": quote(Path(relative).as_posix()), "uriBaseId": "%SRCROOT%"}


def _rule_id(message: str) -> str:
    """The words of a message outside its quoted parts, numbers and addresses dropped:
    `unknown directive "x"` -> `unknown-directive`."""
    words = [w for token in _QUOTED.sub(" ", message).lower().split()
             if _WORD.fullmatch(w := token.strip(string.punctuation))]
    return "-".join(words[:10]) or "nginx-config"
