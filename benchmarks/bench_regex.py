"""Time nginxsim.regex and nginxsim.hashing against Python `re` and the raw pcre2 package.

Run: PYTHONPATH=src python benchmarks/bench_regex.py
"""

from __future__ import annotations

import re
import timeit
from collections.abc import Callable
from functools import partial

import pcre2

from nginxsim.hashing import murmurhash2
from nginxsim.regex import Regex, available_engines, compile_regex

CASES = [  # (pattern, subject)
    (r"\.(jpg|png|gif)$", b"/images/foo/bar.jpg"),
    (r"^/images/(\w+)/(?P<f>.+)\.(jpg|png)$", b"/images/foo/bar.jpg"),
    (r"^/api/v(\d+)/", b"/static/css/site.css"),
]
NUMBER = 200_000


def per_call_ns(fn: Callable[[], object]) -> float:
    return min(timeit.repeat(fn, number=NUMBER, repeat=5)) / NUMBER * 1e9


def rows_for(source: str, subject: bytes) -> list[tuple[str, Callable[[], object]]]:
    py = re.compile(source.encode())
    rows: list[tuple[str, Callable[[], object]]] = [("python re .search", partial(py.search, subject))]
    for jit in (False, True):
        pk = pcre2.compile(source.encode(), jit=jit)
        rows.append((f"pcre2 package .search jit={jit}", partial(pk.search, subject)))
    for engine in available_engines():
        for jit in (False, True):
            rx = compile_regex(source, jit=jit, engine=engine)
            rows.append((f"nginxsim {engine.name} {engine.version} jit={jit}", partial(rx.search, subject)))
            rows.append(("  + .captures", partial(search_captures, rx, subject)))
    return rows


def search_captures(rx: Regex, subject: bytes) -> object:
    m = rx.search(subject)
    return m and m.captures


def main() -> None:
    for source, subject in CASES:
        print(f"{source!r} on {subject!r} (match: {re.search(source.encode(), subject) is not None})")
        for name, fn in rows_for(source, subject):
            print(f"  {name:45s} {per_call_ns(fn):7.0f} ns")
    key = b"192.168.100.200/abcd"
    print(f"murmurhash2 on a {len(key)}-byte key: {per_call_ns(lambda: murmurhash2(key)):.0f} ns")


if __name__ == "__main__":
    main()
