"""Hypothesis strategies for requests to a config: clients from CIDRs or from a `geo` table,
Host names across the server names, URIs at the edges of the locations, whole requests.

    from hypothesis import given
    from nginxsim.strategies import clients, requests_for

    cfg = nginxsim.load("nginx.conf")

    @given(requests_for(cfg))
    def test_no_request_reaches_the_admin_backend_from_outside(req):
        d = cfg.route(**req)
        ...

    @given(clients(cfg=cfg, geo="ip_range", value="testers"))
    def test_testers_get_alpha_or_beta(client): ...

Examples lean on boundaries, where configs go wrong: the first and last address of a network, a
location prefix cut short by one character or extended by one, a regex match with its last
character dropped, percent-encoded and dot segments, double slashes, a wildcard name's bare
domain. Needs hypothesis: `pip install 'nginxsim[strategies]'`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .config import Config
from .plan import LocationConf, ServerConf

try:
    from hypothesis import strategies as st
except ImportError as e:  # an optional dependency: say how to get it
    raise ImportError("nginxsim.strategies needs hypothesis: pip install 'nginxsim[strategies]'") from e

__all__ = ["clients", "hosts_for", "requests_for", "uris_for"]

Span = tuple[int, int]  # first and last address, as integers
_BITS = {4: 32, 6: 128}
_MAPPED = (0xFFFF << 32, 0xFFFF << 32 | 0xFFFFFFFF)  # ::ffff:0:0/96, which geo looks up as IPv4


# --- clients ------------------------------------------------------------------------------------


def clients(
    within: Iterable[str] = (),
    outside: Iterable[str] = (),
    *,
    cfg: Config | None = None,
    geo: str | None = None,
    value: str | None = None,
) -> st.SearchStrategy[str]:
    """Client addresses (IPv4 and IPv6 text) in the networks `within` (default: everywhere) and
    not in `outside`; with `cfg`, `geo` and `value`, only addresses that `geo $<geo>` maps to
    `value` (the address geo looks up: the client's, before realip and X-Forwarded-For).

    Raises ValueError for a network that does not parse, an unknown geo variable, one that does
    not look up the client address, or when no address is left.
    """
    sets = _networks(within) if within else {4: [(0, 2**32 - 1)], 6: [(0, 2**128 - 1)]}
    if geo is not None or value is not None or cfg is not None:
        if cfg is None or geo is None or value is None:
            raise ValueError("clients(cfg=..., geo=..., value=...) needs all three")
        mapped = _geo_sets(cfg, geo, value)
        sets = {v: _intersect(sets[v], mapped[v]) for v in sets}
    excluded = _networks(outside)
    spans = [(v, span) for v in (4, 6) for span in _subtract(sets[v], excluded[v])]
    if not spans:
        raise ValueError("no address is left to draw")
    return st.sampled_from(spans).flatmap(lambda vs: _address_in(*vs))


def _address_in(version: int, span: Span) -> st.SearchStrategy[str]:
    """Either end of the span, one step inside either end, or anywhere in it."""
    lo, hi = span
    edges = sorted({lo, hi, min(lo + 1, hi), max(hi - 1, lo)})
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi)).map(lambda n: str(make(n)))


def _networks(texts: Iterable[str]) -> dict[int, list[Span]]:
    out: dict[int, list[Span]] = {4: [], 6: []}
    for text in texts:
        net = ipaddress.ip_network(text, strict=False)
        out[net.version].append((int(net.network_address), int(net.broadcast_address)))
    return {v: _union(spans) for v, spans in out.items()}


def _geo_sets(cfg: Config, name: str, value: str) -> dict[int, list[Span]]:
    """The addresses `geo` maps to `value`, read from its compiled interval tables
    (`Geo.find`: an IPv4-mapped IPv6 address is looked up as IPv4; in ranges mode every other
    IPv6 address gets what 255.255.255.255 gets)."""
    from .modules.geo import Geo, Intervals

    geos: dict[str, Geo] = cfg.plan.modules_state.get("geo", {})
    g = geos.get(name.lstrip("$").lower())
    if g is None:
        known = ", ".join(f"${n}" for n in sorted(geos)) or "none"
        raise ValueError(f"no geo ${name.lstrip('$')} in this config (geo variables: {known})")
    if g.source is not None:
        raise ValueError(f"geo ${g.name} looks up ${g.source.name}, not the client address")
    want = value.encode("utf-8", "surrogateescape")

    def spans(table: Intervals, bits: int) -> list[Span]:
        ends = [*table.starts[1:], 2**bits]
        rows = zip(table.starts, ends, table.entries, strict=True)
        return _union([(s, e - 1) for s, e, entry in rows if entry.value == want])

    v4 = spans(g.v4, 32)
    if g.v6 is not None:
        v6 = spans(g.v6, 128)
    else:
        v6 = [(0, 2**128 - 1)] if g.find(None).value == want else []
    v6 = _union([*_subtract(v6, [_MAPPED]), *((_MAPPED[0] + lo, _MAPPED[0] + hi) for lo, hi in v4)])
    return {4: v4, 6: v6}


def _union(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _intersect(a: list[Span], b: list[Span]) -> list[Span]:
    return [(max(lo, c), min(hi, d)) for lo, hi in a for c, d in b if max(lo, c) <= min(hi, d)]


def _subtract(a: list[Span], b: list[Span]) -> list[Span]:
    """`a` without `b` (both sorted and disjoint)."""
    out: list[Span] = []
    for lo, hi in a:
        for c, d in b:
            if d < lo or c > hi:
                continue
            if c > lo:
                out.append((lo, c - 1))
            lo = d + 1
        if lo <= hi:
            out.append((lo, hi))
    return out


# --- Host names ---------------------------------------------------------------------------------

_LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?\Z")
# What a generated Host or URI may hold: printable ASCII but space (and "#" in URIs, which no
# request line carries); anything else nginx sees only percent-encoded.
_PRINTABLE = st.sampled_from([chr(c) for c in range(0x21, 0x7F)])
_URI_CHARS = st.sampled_from([chr(c) for c in range(0x21, 0x7F) if chr(c) != "#"])
_UNKNOWN_HOSTS = st.one_of(
    st.sampled_from(["unknown.invalid", "localhost", "192.0.2.1", "[2001:db8::1]", "EXAMPLE.INVALID."]),
    st.lists(_LABEL, min_size=1, max_size=3).map(".".join),
)


def hosts_for(cfg: Config, *, unknown: bool = True) -> st.SearchStrategy[str]:
    """Host header values around every `server_name`: exact names (also upper-cased, with a
    trailing dot, with a port), names in and just outside wildcards (`*.example.com` gives
    `a.example.com`, `a.b.example.com` and `example.com`; `www.example.*` gives
    `www.example.org` and `www.example`), strings a regex name matches (when Python can read
    the PCRE, else its literal text), and, with `unknown`, names no server lists."""
    return _hosts(cfg.plan.servers, unknown)


def _hosts(servers: Iterable[ServerConf], unknown: bool) -> st.SearchStrategy[str]:
    options = [_host_variants(name, rx is not None) for server in servers for name, _, rx in server.names]
    if unknown or not options:
        options.append(_UNKNOWN_HOSTS)
    return st.one_of(options)


def _host_variants(name: str, regex: bool) -> st.SearchStrategy[str]:
    if regex:
        return _matching(name[1:], False, _PRINTABLE).map(lambda h: "".join(c for c in h if "!" <= c <= "~"))
    if name.startswith("*."):
        suffix = name[1:]
        return st.one_of(st.just(name[2:]), _LABEL.map(lambda a: a + suffix),
                         st.tuples(_LABEL, _LABEL).map(lambda ab: f"{ab[0]}.{ab[1]}{suffix}"))
    if name.startswith("."):
        return st.one_of(st.just(name[1:]), _LABEL.map(lambda a: a + name))
    if name.endswith(".*"):
        return st.one_of(st.just(name[:-2]), _LABEL.map(lambda tld: name[:-1] + tld))
    if not name:
        return st.just("localhost")
    return st.sampled_from([name, name.upper(), name + ".", name + ":80"])


# --- URIs ---------------------------------------------------------------------------------------


def uris_for(cfg: Config) -> st.SearchStrategy[str]:
    """Request targets at the edges of every location: a prefix as written, cut short by one
    character, extended by one, with `/` and `/x` after it; an exact name, cut short, extended;
    strings a regex location matches (as for `hosts_for`), with the last character dropped, one
    added, or the case swapped. Each may then get a percent-encoded character, a `.`/`..`
    segment, a doubled slash, or a query."""
    return _uris(cfg.plan.servers)


def _uris(servers: Iterable[ServerConf]) -> st.SearchStrategy[str]:
    bases = [edges for loc in _locations(servers) if (edges := _edges(loc)) is not None]
    bases.append(st.sampled_from(["/", "/index.html"]))  # last: hypothesis favours the first choices
    return st.one_of(bases).map(_rooted).flatmap(_mangled)


def _edges(loc: LocationConf) -> st.SearchStrategy[str] | None:
    """URIs at the edges of one location (None for named and server-level ones)."""
    if loc.kind == "exact":
        return _or_near(loc.name, [loc.name[:-1] or "/", loc.name + "x"])
    if loc.kind in ("prefix", "noregex"):
        name = loc.name
        return _or_near(name, [name[:-1] or "/", name + "x", name.rstrip("/") + "/", name.rstrip("/") + "/x"])
    if loc.kind in ("regex", "iregex"):
        return _matching(loc.name, loc.kind == "iregex", _URI_CHARS).map(_escaped).flatmap(_regex_edges)
    return None


def _locations(servers: Iterable[ServerConf]) -> Iterator[LocationConf]:
    def walk(loc: LocationConf) -> Iterator[LocationConf]:
        yield loc
        for child in (*loc.static, *loc.regexes, *loc.named.values()):
            yield from walk(child)

    for server in servers:
        yield from walk(server.loc)


def _or_near(uri: str, near: list[str]) -> st.SearchStrategy[str]:
    """`uri` half of the time, else one of its neighbours."""
    return st.one_of(st.just(uri), st.sampled_from([n for n in dict.fromkeys(near) if n != uri] or [uri]))


def _regex_edges(s: str) -> st.SearchStrategy[str]:
    return _or_near(s, [s[:-1], s + "x", s.swapcase()])


def _escaped(text: str) -> str:
    """Percent-encoded where a request line cannot carry a character as is (a regex's `$` lets
    a final newline through)."""
    return "".join(c if "!" <= c <= "~" and c != "#" else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def _rooted(uri: str) -> str:
    return uri if uri.startswith("/") else "/" + uri


def _mangled(uri: str) -> st.SearchStrategy[str]:
    slashes = [i for i, c in enumerate(uri) if c == "/"]
    return st.one_of(st.just(uri), st.one_of(
        st.integers(1, max(len(uri) - 1, 1)).map(lambda i: _encode_at(uri, i)),
        st.tuples(st.sampled_from(slashes), st.sampled_from(["/./", "/../", "//", "/.%2E/", "/%2e/"]))
        .map(lambda at: uri[: at[0]] + at[1] + uri[at[0] + 1 :]),
        st.sampled_from(["/..", "/.", "//"]).map(lambda tail: uri + tail),
        st.sampled_from(["?", "?a=1", "?a=1&b=%20x", "?/x/../y"]).map(lambda query: uri + query),
    ))


def _encode_at(uri: str, i: int) -> str:
    """The character at `i` percent-encoded (lower-case hex half the time, as clients differ)."""
    if i >= len(uri):
        return uri
    code = f"%{ord(uri[i]):02X}" if i % 2 else f"%{ord(uri[i]):02x}"
    return uri[:i] + code + uri[i + 1 :]


def _matching(source: str, caseless: bool, alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Strings PCRE pattern `source` finds a match in: drawn by Python's `re` when it reads the
    pattern the same way (named groups rewritten), else the pattern's literal characters."""
    python = re.sub(r"\(\?<(?![=!])", "(?P<", source)
    try:
        compiled = re.compile(python, re.IGNORECASE if caseless else 0)
    except (re.error, OverflowError):
        return st.just(re.sub(r"\\(.)|[\^$()?*+\[\]{}|.]", r"\1", source))
    return st.from_regex(compiled, alphabet=alphabet)


# --- whole requests -----------------------------------------------------------------------------

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
HEADERS = (("User-Agent", "hypothesis"), ("Accept-Encoding", "gzip"), ("Cookie", "session=abc; theme=dark"),
           ("X-Forwarded-For", "192.0.2.7"), ("Referer", "http://example.com/"), ("Content-Type", "text/plain"))


def requests_for(cfg: Config, *, client: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for `cfg.route(**request)` (and `nginxsim.oracle.OracleRequest`): a
    client (default: any address of a family the config listens on), a URL reaching a listen
    socket with a target as from `uris_for`, a method, a Host as from `hosts_for` and a few
    other headers. Most requests aim at one location: its server's socket and names, a URI at
    its edges."""
    servers = cfg.plan.servers
    sockets = _sockets(servers)
    if client is None:
        families = {6 if addr is not None and ":" in addr else 4 for _, _, addr in sockets}
        client = clients(within=[{4: "0.0.0.0/0", 6: "::/0"}[f] for f in sorted(families)])
    methods, headers = st.sampled_from(METHODS), st.lists(st.sampled_from(HEADERS), max_size=3, unique=True)
    aimed = [st.builds(_request, st.sampled_from(_sockets([s])), client, uris, methods, _hosts([s], False), headers)
             for s in servers for uris in _aimed_uris(s)]
    anywhere = st.builds(_request, st.sampled_from(sockets), client, _uris(servers), methods, _hosts(servers, True),
                         headers)
    return st.one_of(*aimed, anywhere)


def _aimed_uris(server: ServerConf) -> list[st.SearchStrategy[str]]:
    """One strategy per location of the server, or one for the server when it has none."""
    edges = [e for loc in _locations([server]) if (e := _edges(loc)) is not None]
    return [e.map(_rooted).flatmap(_mangled) for e in edges] or [_uris([server])]


def _sockets(servers: Iterable[ServerConf]) -> list[tuple[str, int, str | None]]:
    """(scheme, port, local address or None for a wildcard) of every TCP listen, as
    `ngx_http_core_server` gives a server without `listen` *:80."""
    found: dict[tuple[str, int, str | None], None] = {}
    for server in servers:
        for ls in server.listens or ():
            if not isinstance(ls.addr, str):
                found[("https" if ls.ssl else "http", ls.port, None if ls.addr is None else str(ls.addr))] = None
        if not server.listens:
            found[("http", 80, None)] = None
    return list(found) or [("http", 80, None)]


def _request(socket: tuple[str, int, str | None], client: str, uri: str, method: str, host: str,
             headers: list[tuple[str, str]]) -> dict[str, Any]:
    scheme, port, addr = socket
    default = 443 if scheme == "https" else 80
    authority = "localhost" if port == default else f"localhost:{port}"
    request: dict[str, Any] = {"client": client, "url": f"{scheme}://{authority}{uri}", "method": method,
                               "headers": [("Host", host), *headers]}
    if addr is not None:
        request["server_addr"] = addr
    return request
