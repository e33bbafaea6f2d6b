"""Which location answers: `ngx_http_core_find_location` and `ngx_http_core_find_static_location`.

nginx searches a binary tree of the sorted prefix/exact names; the flat rules below give the same
answers (the reference fuzzed them against nginx): exact match wins; else the longest prefix,
whose nested locations are searched; then, unless that prefix was `^~`, the regexes of the level
in config order; a nested-location hit beats all of that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..plan import LocationConf
    from ..regex import Match

OK, DONE, AGAIN, DECLINED = "ok", "auto-redirect", "prefix", "declined"


class Found:
    """The outcome of a search: status, location, the regex match (if a regex decided), and the
    list of (location, what happened) pairs for the trace."""

    __slots__ = ("status", "loc", "match", "tested", "steps")

    def __init__(self) -> None:
        self.status = DECLINED
        self.loc: LocationConf | None = None
        self.match: Match | None = None
        self.tested: list[tuple[LocationConf, str]] = []
        self.steps: tuple[tuple[str, str, str, str | None, int | None], ...] = ()  # tested, as trace steps


def find_location(level: LocationConf, uri: bytes, trace: bool = True) -> Found:
    found = Found()
    _find(level, uri, found, trace)
    return found


def _find(level: LocationConf, uri: bytes, found: Found, trace: bool) -> str:
    """One nesting level: sets found.loc/match and returns this level's status."""
    cur: LocationConf | None = None
    redirect_exact: LocationConf | None = None
    redirect_prefix: LocationConf | None = None
    for loc in level.static:
        name = loc.name_b
        if loc.kind == "exact":
            if name == uri:
                found.loc, found.status = loc, OK
                if trace:
                    found.tested.append((loc, "exact match"))
                return OK
        elif uri.startswith(name):
            if cur is None or len(name) > len(cur.name_b):
                cur = loc
            continue
        if loc.auto_redirect and name[:-1] == uri and name.endswith(b"/"):
            if loc.kind == "exact":
                redirect_exact = redirect_exact or loc
            else:
                redirect_prefix = redirect_prefix or loc
    if cur is None or len(cur.name_b) != len(uri):
        redirect = redirect_exact or redirect_prefix  # no location named exactly $uri (§5.4)
        if redirect is not None:
            found.loc, found.status = redirect, DONE
            if trace:
                found.tested.append((redirect, "auto-redirect: $uri lacks the trailing slash"))
            return DONE
    if cur is not None:
        skip_regex = cur.kind == "noregex"  # only this level's longest prefix counts
        found.loc = cur
        if trace:
            found.tested.append((cur, "longest prefix" + (" (^~: regexes skipped)" if skip_regex else "")))
        if cur.static or cur.regexes:
            st = _find(cur, uri, found, trace)
            if st in (OK, DONE):
                return st
            if st == DECLINED:
                found.loc = cur
        found.status = AGAIN
        if skip_regex:
            return AGAIN
    best = found.loc if cur is not None else None
    for loc in level.regexes:
        assert loc.regex is not None
        m = loc.regex.search(uri)
        if m is None:
            if trace:
                found.tested.append((loc, "regex did not match"))
            continue
        if trace:
            found.tested.append((loc, "regex matched"))
        found.loc, found.match = loc, m
        if loc.static or loc.regexes:
            if _find(loc, uri, found, trace) == DECLINED:
                found.loc, found.match = loc, m
        found.status = OK
        return OK
    if cur is not None:
        found.loc, found.status = best, AGAIN
        return AGAIN
    return DECLINED
