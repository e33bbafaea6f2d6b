"""`nginxsim check`: results, coverage, the report formats and exit codes."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nginxsim import cli_check
from nginxsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
CANARY = ROOT / "fixtures" / "canary"
CANARY_CASES = str(CANARY / "cases.nginxsim.yaml")
BASIC = str(ROOT / "fixtures" / "basic" / "nginx.conf")

FAILING = """
cases:
  - name: healthz answers
    request: {url: "http://shop.example.com/healthz"}
    expect: {status: 200, body: "ok\\n"}
  - name: old cart moves
    request: {url: ["http://shop.example.com/old-cart", "http://www.shop.example.com/old-cart"]}
    expect: {status: 302, headers: {Location: "http://shop.example.com/cart"}}
"""


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_canary_cases_cover_every_location(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(capsys, CANARY_CASES, "--fail-under", "100")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[-1] == "7 passed, 0 failed"
    assert "  locations          2/2     100.0%" in lines
    assert "  total             17/17    100.0%" in lines
    assert all(line.startswith("ok    ") for line in lines[:7])


def test_canary_coverage_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, str(CANARY), "--json")  # a directory: its case files
    data = json.loads(out)
    assert code == 0 and (data["passed"], data["failed"]) == (7, 0)
    (cov,) = data["coverage"]["configs"]
    assert cov["config"] == str(CANARY / "nginx.conf")
    assert cov["kinds"]["locations"] == {"hit": 2, "total": 2, "percent": 100.0}
    assert cov["percent"] == 100.0 and cov["missed"] == []
    assert len(data["cases"][0]["requests"]) == 8


def test_failures_show_expected_got_field_and_the_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # files below the current directory are shown relative to it
    cases = tmp_path / "basic.nginxsim.yaml"
    cases.write_text(FAILING)
    code, out, _ = check(capsys, "-c", BASIC, str(cases), "--only-failures")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "FAIL  basic.nginxsim.yaml:6  old cart moves"
    assert lines[1] == "      [url=http://shop.example.com/old-cart]"
    assert lines[2] == "      request: 127.0.0.1 GET http://shop.example.com/old-cart"
    assert lines[3] == "      expected 302, got 301 (field status)"
    assert lines[4] == "      trace:"  # the Location matched: only the status differs
    assert f"rewrite     return 301 /cart: status 301  [{BASIC}:48]" in out
    assert "[url=http://www.shop.example.com/old-cart]" in out
    assert not any(line.startswith("ok") for line in lines)
    assert lines[-1] == "1 passed, 1 failed"


def test_missed_items_and_fail_under(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cases = tmp_path / "basic.nginxsim.yaml"
    cases.write_text(f"config: {BASIC}\n" + FAILING.replace("302", "301").replace(
        '"http://shop.example.com/cart"', '{regex: "/cart$"}'))
    code, out, _ = check(capsys, str(cases), "--coverage", "--fail-under", "50")
    assert code == 1
    assert "    location /v1/  [" in out and f"{BASIC}:59]" in out
    assert "    upstream api_pool: server 10.0.0.13:8080  [" in out
    assert out.splitlines()[-2].startswith("route coverage ") and out.splitlines()[-2].endswith(
        "% is under --fail-under 50%")
    assert out.splitlines()[-1] == "2 passed, 0 failed"
    assert check(capsys, str(cases), "--fail-under", "1")[0] == 0


def test_junit_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "basic.nginxsim.yaml"
    cases.write_text(FAILING)
    report = tmp_path / "junit.xml"
    assert check(capsys, "-c", BASIC, str(cases), "--junit", str(report))[0] == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failed = [tc for tc in suite.findall("testcase") if tc.find("failure") is not None]
    assert [tc.get("name") for tc in failed] == ["old cart moves"]
    failure = failed[0].find("failure")
    assert failure is not None and failure.get("message") == "expected 302, got 301 (field status)"
    assert "trace:" in (failure.text or "")


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "bad.nginxsim.yaml"
    cases.write_text(f"config: {BASIC}\ncases:\n  - name: a\n    expect: {{stauts: 200}}\n")
    code, out, err = check(capsys, str(cases))
    assert code == 2 and out == ""
    assert err.startswith(f'nginxsim: {cases}:4: unknown field "stauts" in expect (known: status,')
    code, _, err = check(capsys, str(tmp_path / "none.nginxsim.yaml"))
    assert code == 2 and err == f"nginxsim: {tmp_path / 'none.nginxsim.yaml'}: no such file or directory\n"
    (tmp_path / "empty").mkdir()
    code, _, err = check(capsys, str(tmp_path / "empty"))
    assert code == 2 and "no *.nginxsim.yaml" in err
    cases.write_text(FAILING)
    code, _, err = check(capsys, str(cases))
    assert code == 2 and err == f'nginxsim: {cases}: no config: give -c, or "config:" in the file\n'
    code, _, err = check(capsys, "-c", str(tmp_path / "missing.conf"), str(cases))
    assert code == 1 and "missing.conf" in err and "Traceback" not in err


def test_config_errors_are_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n  server {\n    proxy_passs x;\n  }\n}\n")
    cases = tmp_path / "t.nginxsim.yaml"
    cases.write_text("config: nginx.conf\ncases:\n  - expect: {}\n")
    code, _, err = check(capsys, str(cases))
    assert code == 1 and err == f'nginxsim: {conf}:4: unknown directive "proxy_passs"\n'


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_only_when_slow() -> None:
    quiet = io.StringIO()
    bar = cli_check._Progress(10, quiet)
    bar.start -= 5
    bar.show(3)
    bar.close()
    assert quiet.getvalue() == ""
    tty = _Terminal()
    bar = cli_check._Progress(10, tty)
    bar.show(1)  # not slow yet: nothing
    assert tty.getvalue() == ""
    bar.start -= 5
    bar.show(5)
    assert tty.getvalue() == "\r[###############...............] 5/10 requests"
    bar.close()
    assert tty.getvalue().endswith("\r")
