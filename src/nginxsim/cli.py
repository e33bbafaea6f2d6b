"""The `nginxsim` command: each subcommand is one API call plus formatting."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import cli_analysis, cli_check, cli_lint
from .cli_args import header, load_config
from .errors import ConfigError, RequestError

USAGE_ERROR = 2
CONFIG_ERROR = 1


def _pin(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"invalid --pin {text!r}: expected name=value")
    return name.lstrip("$"), value


def _route(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.prefix)
    d = cfg.route(args.client, args.url, method=args.method, headers=args.header,
                  server_addr=args.server_addr, http_version=args.http_version, pinned=dict(args.pin),
                  absolute_form=args.absolute_form, proxy_protocol=args.proxy_protocol, down=args.down)
    if args.json:
        print(json.dumps(d.to_dict(), indent=2))
    else:
        print(d.explain())
        if d.variables:
            print("variables: " + ", ".join(f"${k}={v!r}" for k, v in sorted(d.variables.items())))
        up = d.upstream
        if up is not None:
            if up.request_line:
                print(f"upstream request: {up.request_line}")
            for k, v in up.headers.items_list():
                print(f"  {k}: {v}")
            if up.params is not None:
                print("upstream params:")
                for k, v in up.params.items_list():
                    print(f"  {k} = {v!r}")
            environ = up.wsgi_environ
            if environ is not None:
                print("WSGI environ under uWSGI (Django's request.META), text entries:")
                for k, v in sorted(environ.items()):
                    print(f"  {k} = {v!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nginxsim", description="What will nginx do with this request?")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("route", help="explain how nginx routes one request")
    r.add_argument("client", help="client address (the TCP peer), e.g. 128.32.1.5")
    r.add_argument("url", nargs="?", default="http://localhost/", help="absolute URL (default http://localhost/)")
    r.add_argument("-c", "--config", required=True, help="nginx.conf, or - for stdin (an `nginx -T` dump works)")
    r.add_argument("-p", "--prefix", help="nginx's -p prefix (default: the config's directory)")
    r.add_argument("-X", "--method", default="GET")
    r.add_argument("-H", "--header", action="append", type=header, default=[], help="'Name: value', repeatable")
    r.add_argument("--server-addr", help="local address the connection arrived on")
    r.add_argument("--http-version", default="1.1", choices=("1.1", "1.0", "0.9"))
    r.add_argument("--pin", action="append", type=_pin, default=[], help="fix a variable, e.g. request_id=abc")
    r.add_argument("--down", action="append", default=[], metavar="PEER",
                   help="an upstream server (as written) to treat as down: what if it fails? repeatable")
    r.add_argument("--proxy-protocol", metavar="LINE", help="the PROXY protocol v1 line read before the request")
    r.add_argument("--absolute-form", action="store_true", help="send the whole URL as the request target")
    r.add_argument("--json", action="store_true", help="print the decision as JSON")
    r.set_defaults(func=_route)
    cli_check.register(sub)
    cli_lint.register(sub)
    cli_analysis.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"nginxsim: {e}", file=sys.stderr)
        return CONFIG_ERROR
    except RequestError as e:
        print(f"nginxsim: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as e:  # a file named on the command line that cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"nginxsim: {where}{e.strerror or e}", file=sys.stderr)
        return CONFIG_ERROR


if __name__ == "__main__":
    sys.exit(main())
