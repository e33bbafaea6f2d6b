"""The shared nginx configuration corpus (``../shared/corpus`` next to the repository), read in place.

The corpus is never copied into the repository. When it is absent, `require_corpus` fails the test
under CI (``CI=true``) and skips it locally, saying where the corpus was looked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import nginxsim

from .hurl import Entry, Mismatch, Response, check

REPO = Path(__file__).resolve().parents[2]
CORPUS = (REPO / ".." / "shared" / "corpus").resolve()

PSF = CORPUS / "psf-docs-redirects"
PSF_SPECS = PSF / "tests" / "specs"
# Upstream runs the specs with `hurl --variable host=http://localhost:10000` (tests/docs-redirects/test.sh).
PSF_VARIABLES = {"host": "http://localhost:10000"}
PSF_CLIENT = "127.0.0.1"

_INDEX_ROW = re.compile(r"^\| \[([^\]]+)\]\(\1/SOURCE\.md\) \|(.*)\|$")


def missing_message() -> str | None:
    """Why the corpus cannot be used, or None when it is there."""
    if not (CORPUS / "INDEX.md").is_file():
        return (
            f"the nginx configuration corpus is missing: expected {CORPUS}/INDEX.md "
            "(the shared corpus lives at ../shared/corpus relative to the repository root)"
        )
    return None


def require_corpus() -> Path:
    """The corpus directory; otherwise fail (under CI) or skip (locally) the calling test."""
    from requires import require

    msg = missing_message()
    require(msg is None, msg or "")
    return CORPUS


def entries() -> list[Path]:
    """Every corpus entry (a folder holding nginx.conf), sorted by name; empty without a corpus."""
    if missing_message() is not None:
        return []
    return sorted(p.parent for p in CORPUS.glob("*/nginx.conf"))


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One entry of INDEX.md: its name and the number of files nginx loads (mime.types excluded)."""

    name: str
    files: int


def index_rows() -> list[IndexRow]:
    """The entries INDEX.md lists, in its order."""
    rows = []
    for line in (CORPUS / "INDEX.md").read_text(encoding="utf-8").splitlines():
        m = _INDEX_ROW.match(line)
        if m:
            cells = [c.strip() for c in m.group(2).split("|")]
            rows.append(IndexRow(m.group(1), int(cells[3])))
    return rows


def psf_spec_files() -> list[Path]:
    """The PSF hurl spec files, sorted; empty without a corpus."""
    return sorted(PSF_SPECS.glob("*.hurl")) if missing_message() is None else []


def client_headers(url: str) -> list[tuple[str, str]]:
    """The headers hurl (libcurl) sends for a plain GET: Host with the port when it is not the default."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname or ""
    return [("Host", host if parts.port in (None, default) else f"{host}:{parts.port}"), ("Accept", "*/*")]


def load_psf() -> nginxsim.Config:
    return nginxsim.load(str(PSF / "nginx.conf"), prefix=str(PSF))


def simulate(
    cfg: nginxsim.Config, entry: Entry, *, trace: bool = False
) -> tuple[Response, nginxsim.Decision]:
    """Route one spec request through nginxsim, as hurl sends it, and the response nginx would give."""
    d = cfg.route(
        PSF_CLIENT,
        entry.url,
        method=entry.method,
        headers=client_headers(entry.url) + list(entry.headers),
        trace=trace,
    )
    return response_of(d), d


def response_of(d: nginxsim.Decision) -> Response:
    """The response a Decision describes; a static file's content is its body."""
    body = d.body
    if body is None and d.file is not None:
        body = Path(d.file).read_text(encoding="utf-8", errors="surrogateescape")
    return Response(d.status, tuple(d.headers.items_list()), body)


def oracle_available() -> str | None:
    """Why real nginx cannot be used here, or None when the oracle harness and a binary exist."""
    try:
        from nginxsim.oracle import nginx_path
    except ImportError as e:
        return f"the oracle harness nginxsim.oracle cannot be imported: {e}"
    if nginx_path() is None:
        return "no nginx binary (looked on PATH, /usr/sbin, /usr/local/sbin, /usr/local/nginx/sbin)"
    return None


def run_on_nginx(entries: Iterable[Entry]) -> list[tuple[Entry, list[Mismatch]]]:
    """Replay spec requests against real nginx (nginxsim.oracle) serving psf-docs-redirects.

    Each request is sent as hurl sends it; the harness moves `listen 10000` to a free port and the
    URL's port 10000 selects that socket. Returns every entry with hurl's verdict on nginx's answer.
    """
    from nginxsim.oracle import Nginx, OracleRequest

    out = []
    with Nginx(PSF / "nginx.conf", prefix=PSF) as ng:
        for e in entries:
            r = ng.request(OracleRequest(client=PSF_CLIENT, url=e.url, method=e.method,
                                         headers=client_headers(e.url) + list(e.headers)))
            body = r.body.decode("utf-8", "surrogateescape")
            out.append((e, check(e, Response(r.status, tuple(r.headers), body))))
    return out
