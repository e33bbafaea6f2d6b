"""The command line: one API call plus formatting; clear errors and exit codes, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nginxsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASIC = str(ROOT / "fixtures" / "basic" / "nginx.conf")


def test_route_explains_with_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "128.32.1.5", "http://shop.example.com/account/orders/export", "-c", BASIC]) == 0
    out = capsys.readouterr().out
    assert "location ~ ^/account/(?<section>[a-z]+)/export$" in out
    assert f"{BASIC}:43" in out
    assert "=> 403" in out
    assert "$section='orders'" in out


def test_route_json_with_headers_and_method(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["route", "10.0.0.7", "http://api.example.com/v1/users/42?x=1", "-H", "Cookie: a=1", "-X", "POST",
                 "-c", BASIC, "--json"])
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["upstream"]["name"] == "api_pool"
    assert d["upstream"]["method"] == "POST"
    assert ["Cookie", "a=1"] in d["upstream"]["headers"]
    assert d["location"]["line"] == 59


def test_config_error_is_file_line_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n  server {\n    proxy_passs x;\n  }\n}\n")
    assert main(["route", "1.2.3.4", "-c", str(conf)]) == 1
    err = capsys.readouterr().err
    assert f'{conf}:4: unknown directive "proxy_passs"' in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [
    ["route", "999.1.2.3", "-c", BASIC],
    ["route", "1.2.3.4", "not-a-url", "-c", BASIC],
    ["route", "1.2.3.4", "http://a/", "-H", "no-colon", "-c", BASIC],
])
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        sys.exit(main(args))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


def test_config_from_stdin() -> None:
    text = Path(BASIC).read_text().replace("include uwsgi_params;", "")
    p = subprocess.run([sys.executable, "-m", "nginxsim.cli", "route", "1.2.3.4", "http://shop.example.com/healthz",
                        "-c", "-"], input=text, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    assert "=> 200 body 'ok\\n'" in p.stdout


def test_route_what_if_a_peer_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "1.2.3.4", "http://shop.example.com/", "-c", BASIC, "--down", "127.0.0.1:8001"]) == 0
    out = capsys.readouterr().out
    assert "=> 502" in out and 'no live upstreams while connecting to upstream "shop_backend"' in out
