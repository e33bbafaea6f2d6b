"""docs.python.org's redirect rules against the PSF's own hurl specs (corpus entry psf-docs-redirects).

Upstream runs the 44 spec files with ``hurl --variable host=http://localhost:10000`` against
nginx; real nginx 1.22.1 passes all 8,976 asserted requests. Here every one is routed through
nginxsim (one test per spec file), and all of them are replayed against the real binary
(nginxsim.oracle, about 2 s) to check that the spec reading (tests/corpus/hurl.py) and the
requests as sent are faithful.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import nginxsim
from corpus import (
    PSF,
    PSF_CLIENT,
    PSF_VARIABLES,
    load_psf,
    oracle_available,
    psf_spec_files,
    require_corpus,
    run_on_nginx,
    simulate,
)
from corpus.hurl import Assert, Entry, HurlError, Mismatch, Response, check, parse, parse_file
from requires import require

SPEC_FILES = 44
SPEC_REQUESTS = 8976
_FILES = psf_spec_files()
_PARAMS = [pytest.param(p, id=p.stem) for p in _FILES] or [pytest.param(None, id="corpus-missing")]


@pytest.fixture(scope="module")
def psf() -> nginxsim.Config:
    require_corpus()
    return load_psf()


# -- the spec reader ---------------------------------------------------------------------------

_SAMPLE = """\
# leading comment

GET {{host}}/py3k/library/
HTTP 301
[Asserts]
header "Location" == "https://localhost/3/library/"  # trailing comment

GET {{ host }}/3.14/not-a-file
X-Test: {{host}}
HTTP/1.1 404
[Asserts]
body contains "3.14 \\"404\\"\\t\\u{e9}"
GET {{host}}/any
HTTP *
"""


def test_parse_sample() -> None:
    got = parse(_SAMPLE, {"host": "http://h:1"}, Path("s.hurl"))
    assert got == [
        Entry(
            Path("s.hurl"),
            3,
            "GET",
            "http://h:1/py3k/library/",
            (),
            301,
            (Assert("header", "Location", "==", "https://localhost/3/library/", 6),),
        ),
        Entry(
            Path("s.hurl"),
            8,
            "GET",
            "http://h:1/3.14/not-a-file",
            (("X-Test", "http://h:1"),),
            404,
            (Assert("body", None, "contains", '3.14 "404"\t\u00e9', 12),),
        ),
        Entry(Path("s.hurl"), 13, "GET", "http://h:1/any", (), None, ()),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("GET {{host}}/\nHTTP 200\n[Asserts]\nstatus == 200\n", "assert query 'status' is not supported"),
        ('GET {{host}}/\nHTTP 200\n[Asserts]\nheader "A" != "b"\n', "predicate '!=' on header"),
        ('GET {{host}}/\nHTTP 200\n[Asserts]\nheader "A" == "b" x\n', "unexpected text after the assert"),
        ('GET {{host}}/\nHTTP 200\n[Asserts]\nbody contains "a\\q"\n', "unknown escape"),
        ('GET {{host}}/\nHTTP 200\n[Asserts]\nbody contains "abc\n', "unterminated quoted string"),
        ('GET {{host}}/\nHTTP 200\n[Captures]\nx: header "A"\n', "section [Captures] is not supported"),
        ("GET {{host}}/\n[QueryStringParams]\na: b\n", "section [QueryStringParams] is not supported"),
        ("GET {{host}}/\nHTTP 301\nLocation: /x\n", "implicit response header assert"),
        ('POST {{host}}/\n{"json": 1}\n', "not understood (request section)"),
        ("GET {{nope}}/\n", "undefined variable 'nope'"),
        ("GET {{host}/\n", "malformed template"),
        ("GET {{host}}/a\\#b\n", "escapes and inline comments"),
        ("HTTP 200\n", "expected a request line"),
    ],
)
def test_parse_refuses_what_it_cannot_evaluate(text: str, message: str) -> None:
    with pytest.raises(HurlError, match=r"^s\.hurl:\d+: .*" + re.escape(message)):
        parse(text, {"host": "http://h:1"}, Path("s.hurl"))


def test_check_reports_each_expectation() -> None:
    e = parse('GET x://h/\nHTTP 301\n[Asserts]\nheader "location" == "/a"\nbody contains "b"\n', {})[0]
    assert check(e, Response(301, (("Location", "/a"),), "abc")) == []
    assert check(e, Response(302, (("LOCATION", "/a"), ("Location", "/c")), None)) == [
        Mismatch("status", "301", "302", 1),
        Mismatch("header location", "'/a'", "'/a' | '/c'", 4),
        Mismatch("body", "contains 'b'", "no body", 5),
    ]
    assert [m.actual for m in check(e, Response(301, (), "a"))] == ["no such header", "'a'"]


def test_spec_set_is_complete() -> None:
    """All 44 files read without error: 8,976 requests, each with a status and at least one assert."""
    require_corpus()
    entries = [e for f in _FILES for e in parse_file(f, PSF_VARIABLES)]
    assert len(_FILES) == SPEC_FILES
    assert len(entries) == SPEC_REQUESTS
    assert all(e.status is not None and e.asserts and e.method == "GET" for e in entries)
    assert {e.url.split("/", 3)[2] for e in entries} == {"localhost:10000"}


# -- nginxsim against the specs ------------------------------------------------------------------


def test_url_port_selects_the_listen_socket(psf: nginxsim.Config) -> None:
    """{{host}} is http://localhost:10000: port 10000 reaches `listen 10000`; no socket on port 80."""
    d = psf.route(PSF_CLIENT, "http://localhost:10000/")
    assert d.server is not None and d.server.file == str(PSF / "conf.d" / "docs.conf")
    assert (d.status, d.headers["Location"]) == (302, "http://localhost/3/")
    with pytest.raises(nginxsim.RequestError, match="port 80"):
        psf.route(PSF_CLIENT, "http://localhost/")


@pytest.mark.parametrize("spec", _PARAMS)
def test_spec_file_agrees(spec: Path | None, psf: nginxsim.Config) -> None:
    """Every request of the spec file gets the status, headers and body the spec asserts."""
    assert spec is not None
    entries = parse_file(spec, PSF_VARIABLES)
    assert entries
    failures = []
    for e in entries:
        response, _ = simulate(psf, e)
        mismatches = check(e, response)
        if mismatches:
            failures.append((e, mismatches))
    if failures:
        pytest.fail(_report(psf, failures, len(entries)), pytrace=False)


def _report(
    cfg: nginxsim.Config, failures: list[tuple[Entry, list[Mismatch]]], total: int, examples: int = 3
) -> str:
    lines = [f"{len(failures)}/{total} requests disagree with the spec"]
    for e, ms in failures[:examples]:
        lines.append(f"\n{e}")
        lines += [f"  {m}" for m in ms]
        lines.append("  " + simulate(cfg, e, trace=True)[1].explain().replace("\n", "\n  "))
    if len(failures) > examples:
        more = ", ".join(str(e) for e, _ in failures[examples : examples + 5])
        lines.append(f"\n... and {len(failures) - examples} more: {more}, ...")
    return "\n".join(lines)


# -- real nginx against the specs (checks the spec reading and the request model) --------------------


@pytest.mark.oracle
def test_real_nginx_passes_every_spec() -> None:
    """nginx 1.22.1 passes every spec request as this module reads and sends them (as upstream's CI does)."""
    require_corpus()
    reason = oracle_available()
    require(reason is None, f"the oracle test must run, but {reason}")
    entries = [e for f in _FILES for e in parse_file(f, PSF_VARIABLES)]
    results = run_on_nginx(entries)
    assert len(results) == SPEC_REQUESTS
    bad = [f"{e}: " + "; ".join(str(m) for m in ms) for e, ms in results if ms]
    assert not bad, f"{len(bad)} spec requests fail on real nginx:\n" + "\n".join(bad[:10])
