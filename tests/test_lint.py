"""`nginxsim lint` and `nginxsim.lint`: every error in nginx's order, warnings, text/JSON/SARIF.

Which error nginx -t reports first is checked against the real nginx in
tests/oracle/test_lint_oracle.py; here the order and the formats, without nginx.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nginxsim
from nginxsim import Finding, lint
from nginxsim.cli import main
from nginxsim.diagnostics import first_error

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted(str(p) for p in (ROOT / "fixtures").glob("*/nginx.conf"))


def where(findings: list[Finding]) -> list[tuple[str, str, int | None, bool]]:
    return [(f.level, f.message, f.line, f.reached) for f in findings]


@pytest.mark.parametrize("path", FIXTURES)
def test_fixtures_are_clean(path: str) -> None:
    assert lint(path) == []


def test_independent_errors_all_reported_in_nginx_order() -> None:
    text = (
        "events {}\n"
        "http {\n"
        "  server {\n"
        "    listen 8080;\n"
        '    location ~ "(a" { }\n'  # 5: handler error (regex)
        "    proxy_passs x;\n"  # 6: generic error
        "    location /x { }\n"
        "    location /x { }\n"  # 8: met once the http block is read
        "    listen 8080;\n"  # 9: handler error (add_listen)
        "  }\n"
        "  sendfile;\n"  # 11: generic error
        "}\n"
    )
    assert where(lint(text=text)) == [
        ("emerg", 'pcre2_compile() failed: missing closing parenthesis in "(a"', 5, True),
        ("emerg", 'unknown directive "proxy_passs"', 6, False),
        ("emerg", "a duplicate listen 0.0.0.0:8080", 9, False),
        ("emerg", 'invalid number of arguments in "sendfile" directive', 11, False),
        ("emerg", 'duplicate location "/x"', 8, False),
    ]


def test_first_error_is_what_load_raises() -> None:
    text = 'events {}\nhttp {\nserver { location ~ "(" { } }\nbogus;\n}\n'
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(text=text)
    assert (e.value.message, e.value.line) == ('pcre2_compile() failed: missing closing parenthesis in "("', 3)
    error = first_error(text=text)
    assert error is not None and (error.message, error.line) == (e.value.message, e.value.line)
    assert first_error(FIXTURES[0]) is None


def test_read_error_ends_everything_and_comes_after_what_was_read() -> None:
    text = 'events {}\nhttp {\nserver { location ~ "(" { }\nlocation /a { }\nlocation /a { }\n"a"b;\n}\n}\nbogus;\n'
    assert where(lint(text=text)) == [
        ("emerg", 'pcre2_compile() failed: missing closing parenthesis in "("', 3, True),
        ("emerg", 'unexpected "b"', 6, False),  # duplicate location: checked when http closes, never
    ]


def test_a_block_cut_short_does_not_get_its_closing_checks() -> None:
    assert where(lint(text="events {}\nhttp {\nupstream u {\n")) == [
        ("emerg", 'unexpected end of file, expecting "}"', 4, True),
    ]
    (closed,) = lint(text="events {}\nhttp {\nupstream u {\n}\n}\n")
    assert closed.message.startswith("no servers are inside upstream") and closed.reached


def test_a_block_with_errors_inside_does_not_get_its_closing_checks() -> None:
    """nginx stops inside; fixing the content decides them (a failed `server` line, no servers)."""
    cases = [("bogus;", 'unknown directive "bogus"'), ("server 127.0.0.1 weight=0;", 'invalid parameter "weight=0"')]
    for inner, message in cases:
        found = lint(text=f"events {{}}\nhttp {{\nupstream u {{\n{inner}\n}}\n}}\n")
        assert where(found) == [("emerg", message, 4, True)]


def test_no_events_comes_last() -> None:
    assert where(lint(text='http {\nserver { location ~ "(" { } }\n}\n')) == [
        ("emerg", 'pcre2_compile() failed: missing closing parenthesis in "("', 2, True),
        ("emerg", 'no "events" section in configuration', None, False),
    ]


def test_errors_in_included_files_name_them() -> None:
    files = {"/c/nginx.conf": "events {}\nhttp {\ninclude conf.d/*.conf;\n}\n",
             "/c/conf.d/a.conf": "server {\n  bogus_a;\n}\n",
             "/c/conf.d/b.conf": "\n\nserver { server_name b; rewrite ^ /x bad_flag; }\n"}
    found = lint("/c/nginx.conf", files=files)
    assert [(f.file, f.line, f.message) for f in found] == [
        ("/c/conf.d/a.conf", 2, 'unknown directive "bogus_a"'),
        ("/c/conf.d/b.conf", 3, 'invalid parameter "bad_flag"'),
    ]


def test_warnings_are_located_and_ordered() -> None:
    text = ("events {}\nhttp {\n"
            "geo $g {\n10.0.0.1/8 a;\n10.0.0.0/8 b;\n}\n"
            "server { listen 8080; server_name a; return 200 $g; }\n"
            "server { listen 8080; server_name a; }\n"
            "}\n")
    found = lint(text=text)
    main_file = str(Path.cwd() / "nginx.conf")
    assert [(f.level, f.message, f.file, f.line) for f in found] == [
        ("warn", "low address bits of 10.0.0.1/8 are meaningless", main_file, 4),
        ("warn", 'duplicate network "10.0.0.0/8", value: "b", old value: "a"', main_file, 5),
        ("warn", 'conflicting server name "a" on 0.0.0.0:8080, ignored', None, None),
    ]
    assert all(f.reached for f in found)
    assert [w.message for w in found] == [w.rsplit(" in /", 1)[0] for w in nginxsim.load(text=text).warnings]


def test_warnings_after_the_first_error_are_not_reached() -> None:
    text = ("events {}\nhttp {\ngeo $g { 10.0.0.1/8 a; }\nbogus;\n"
            "server { listen 8080; server_name a; return 200 $g; }\nserver { listen 8080; server_name a; }\n}\n")
    assert [(f.level, f.reached) for f in lint(text=text)] == [("warn", True), ("emerg", True), ("warn", False)]


def test_missing_file() -> None:
    (f,) = lint("/nonexistent/nginx.conf")
    assert (f.level, f.file, f.line) == ("emerg", None, None)
    assert f.message == 'open() "/nonexistent/nginx.conf" failed (2: No such file or directory)'
    assert str(f) == 'nginx: [emerg] open() "/nonexistent/nginx.conf" failed (2: No such file or directory)'


def test_finding_text_and_dict() -> None:
    f = Finding("warn", "m", "/x/nginx.conf", 3)
    assert str(f) == "/x/nginx.conf:3: [warn] m"
    assert f.to_dict() == {"level": "warn", "message": "m", "file": "/x/nginx.conf", "line": 3, "reached": True}


# --- the command --------------------------------------------------------------------------------

BROKEN = "events {}\nhttp {\n  server {\n    listen 8080;\n    proxy_passs x;\n    listen 8080;\n  }\n}\n"


def test_cli_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(BROKEN)
    assert main(["lint", "-c", str(conf)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f'{conf}:5: [emerg] unknown directive "proxy_passs"',
        "-- nginx -t stops at the error above; reading on, nginxsim also finds:",
        f"{conf}:6: [emerg] a duplicate listen 0.0.0.0:8080",
    ]


def test_cli_clean_config_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "-c", FIXTURES[0]]) == 0
    assert capsys.readouterr().out == ""


def test_cli_warnings_only_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\ngeo $g { 10.0.0.1/8 a; }\nserver { return 200 $g; }\n}\n")
    assert main(["lint", "-c", str(conf)]) == 0
    assert capsys.readouterr().out == f"{conf}:3: [warn] low address bits of 10.0.0.1/8 are meaningless\n"


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(BROKEN)
    assert main(["lint", "-c", str(conf), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == [
        {"level": "emerg", "message": 'unknown directive "proxy_passs"', "file": str(conf), "line": 5,
         "reached": True},
        {"level": "emerg", "message": "a duplicate listen 0.0.0.0:8080", "file": str(conf), "line": 6,
         "reached": False},
    ]


def test_cli_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"http {}\n")))
    assert main(["lint", "-c", "-", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)[0]["message"] == 'no "events" section in configuration'


def test_cli_bytes_that_are_not_utf8_come_back_as_they_were(tmp_path: Path,
                                                             capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_bytes(b"events {}\nhttp { caf\xe9; }\n")
    assert main(["lint", "-c", str(conf)]) == 1
    assert capfdbinary.readouterr().out == f"{conf}:2: [emerg] unknown directive ".encode() + b'"caf\xe9"\n'


def test_cli_sarif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("conf").mkdir()
    Path("conf/nginx.conf").write_text(BROKEN.replace("events {}\n", ""))
    assert main(["lint", "-c", "conf/nginx.conf", "--sarif", "out.sarif"]) == 1
    assert "unknown directive" in capsys.readouterr().out  # the text report still goes to stdout
    log = json.loads(Path("out.sarif").read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("nginxsim", nginxsim.__version__)
    rules = ["unknown-directive", "a-duplicate-listen", "no-section-in-configuration"]
    assert [r["id"] for r in driver["rules"]] == rules
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"
    results = run["results"]
    assert [(r["ruleId"], r["ruleIndex"], r["level"], r["properties"]["nginxReaches"]) for r in results] == [
        ("unknown-directive", 0, "error", True),
        ("a-duplicate-listen", 1, "error", False),
        ("no-section-in-configuration", 2, "error", False),
    ]
    first = results[0]["locations"][0]["physicalLocation"]
    assert first == {"artifactLocation": {"uri": "conf/nginx.conf", "uriBaseId": "%SRCROOT%"},
                     "region": {"startLine": 4}}
    assert results[0]["message"]["text"] == 'unknown directive "proxy_passs"'
    nowhere = results[2]["locations"][0]["physicalLocation"]  # nginx names no file: the main file
    assert nowhere == {"artifactLocation": {"uri": "conf/nginx.conf", "uriBaseId": "%SRCROOT%"}}
    assert main(["lint", "-c", "conf/nginx.conf", "--format", "sarif"]) == 1
    assert json.loads(capsys.readouterr().out) == log


def test_cli_sarif_outside_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "a b" / "nginx.conf"
    conf.parent.mkdir()
    conf.write_text(BROKEN)
    monkeypatch.chdir(ROOT)
    assert main(["lint", "-c", str(conf), "--format", "sarif"]) == 1
    location = json.loads(capsys.readouterr().out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": conf.as_uri()}
    assert "%20" in location["artifactLocation"]["uri"]


def test_cli_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["lint", "--format", "xml", "-c", FIXTURES[0]])
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# --- lint and load agree, on configs mixing good and bad lines ------------------------------------

HTTP_LINES = [
    "sendfile on;", "sendfile;", "bogus_directive;", "map $uri $m { a 1; b 2 3; }", "map $uri $m2 { a 1; }",
    "geo $g { 10.0.0.1/8 a; 10.0.0.0/8 b; }", 'split_clients "$uri" $s { 60% a; 50% b; }',
    "upstream u { server 127.0.0.1:1 weight=0; }", "upstream v { server 127.0.0.1:1; }", "listen 80;",
    "gzip_types text/html;", "send_lowat x;", "send_lowat 0;", '"unterminated;', "}", "types { text/html html; a b {",
]
SERVER_LINES = [
    "listen 8080;", "listen 8080 default_server;", "server_name a *.b.com;", "server_name www.*.com;",
    'location ~ "(a" { }', "location /x { }", "location /x { return 200 $nosuch; }", "return 200 $g$m;",
    "rewrite ^ /x bogus;", "root /a;", "error_page 200 /x;", "location = /e { location /f { } }",
    "proxy_pass http://127.0.0.1:1;", "location /p { proxy_pass http://127.0.0.1:1/x; }", "if ($uri) { root /x; }",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(HTTP_LINES), max_size=4),
       st.lists(st.lists(st.sampled_from(SERVER_LINES), max_size=4), max_size=3),
       st.booleans())
def test_lint_and_load_agree(http: list[str], servers: list[list[str]], events: bool) -> None:
    text = ("events {}\n" if events else "") + "http {\n" + "\n".join(http) + "\n" + "".join(
        "server {\n" + "\n".join(lines) + "\n}\n" for lines in servers) + "}\n"
    found = lint(text=text)
    errors = [f for f in found if f.level == "emerg"]
    first = found.index(errors[0]) if errors else len(found)
    assert [f.reached for f in found] == [i <= first for i in range(len(found))]
    try:
        cfg = nginxsim.load(text=text)
    except nginxsim.ConfigError as e:
        assert errors and (errors[0].message, errors[0].file, errors[0].line) == (e.message, e.file, e.line)
    else:
        assert not errors
        assert [str(Finding("warn", *_located(w))) for w in cfg.warnings] == [str(f) for f in found]


def _located(warning: str) -> tuple[str, str | None, int | None]:
    head, sep, line = warning.rpartition(":")
    message, _, file = head.rpartition(" in ")
    return (message, file, int(line)) if sep and line.isdigit() and file.startswith("/") else (warning, None, None)


@pytest.mark.parametrize(("server", "first"), [
    ("server { bogus; listen 80; listen 80; }", 'unknown directive "bogus"'),  # both checked against nginx -t
    ("server { listen 80; listen 80; bogus; }", "a duplicate listen 0.0.0.0:80"),
])
def test_errors_on_one_line_keep_nginx_s_order(server: str, first: str) -> None:
    found = lint(text=f"events {{}}\nhttp {{\n{server}\n}}\n")
    assert [f.message for f in found][0] == first and len(found) == 2
