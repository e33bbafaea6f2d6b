"""What every `nginxsim` subcommand reads the same way: the config (`-c FILE` or `-` for
stdin) and request headers (`-H 'Name: value'`)."""

from __future__ import annotations

import argparse
import sys

from . import load
from .config import Config


def load_config(path: str, prefix: str | None) -> Config:
    """`-c`: a file, or `-` for stdin (an `nginx -T` dump works), read as bytes: a config may
    hold bytes that are not UTF-8 (nginx does not decode it)."""
    if path == "-":
        return load(text=sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), prefix=prefix)
    return load(path, prefix=prefix)


def header(text: str) -> tuple[str, str]:
    """`-H 'Name: value'`."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def percent(text: str) -> float:
    """A percentage option: 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid percentage {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"invalid percentage {text!r}: expected 0 to 100")
    return value


def count(text: str) -> int:
    """A number-of-things option: 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: expected 0 or more")
    return int(text)
