"""`nginxsim split` and `nginxsim diff` at the command line: output, JSON, plots, the CI gate's
exit status, and bad input reported in one line (never a traceback)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from nginxsim.cli import main
from requires import require

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CANARY = str(FIXTURES / "canary" / "nginx.conf")
CANARY5 = str(FIXTURES / "canary-5pct" / "nginx.conf")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_split_exact_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "split", "-c", CANARY, "--var", "instance")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "$instance per $ip_range for GET http://localhost/ (exact)"
    assert lines[1] == "  employees  (32,768 addresses): alpha 100.00%"
    assert "  public     (4,294,868,992 addresses): ga 99.00%, beta 1.00%" in lines
    assert "  testers    (65,536 addresses): beta 70.00%, alpha 30.00%" in lines
    assert any(line.strip().startswith("enumerated, all 65,536 addresses hashed: beta 70.") for line in lines)
    assert "MurmurHash2" in out and "uniform" in out


def test_split_outcomes_are_listed_one_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "split", "-c", CANARY, "--url", "http://shop.example.com/", "--by", "-")
    assert code == 0
    assert out.splitlines()[0] == "routing outcome for GET http://shop.example.com/ (exact)"
    assert "upstream uwsgi app_beta_django (unix:///opt/app_beta/uwsgi.sock) @ shop.example.com location /" in out


def test_split_json_sample_and_svg(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    svg = tmp_path / "shares.svg"
    code, out, _ = run(capsys, "split", "-c", CANARY, "--var", "instance", "--sample", "3000", "--json",
                       "--plot", str(svg), "--no-progress")
    assert code == 0
    (table,) = json.loads(out)["tables"]
    assert table["mode"] == "sampled" and table["clients"] == 3000 and table["by"] == "ip_range"
    testers = next(g for g in table["groups"] if g["name"] == "testers")
    assert testers["clients"] == 1000 and testers["addresses"] == 65536
    assert {s["value"] for s in testers["shares"]} == {"alpha", "beta"}
    assert all(s["low"] <= s["share"] <= s["high"] for s in testers["shares"])
    drawing = svg.read_text()
    assert drawing.startswith("<svg") and drawing.count("<rect") == 5 + 3  # 5 bar pieces, 3 legend keys
    assert "testers: alpha" in drawing


def test_split_clients_file_with_junk(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("128.32.1.5\n128.32.1.5\n999.1.1.1\n"
                   '69.12.200.1 - - [t] "GET / HTTP/1.1" 200 1 "-" "ua"\n'
                   '{"remote_addr": "1.2.3.4", "request": "GET / HTTP/1.1"}\n\x00\x01binary\n')
    code, out, _ = run(capsys, "split", "-c", CANARY, "--var", "instance", "--clients", str(log))
    assert code == 0
    assert "testers    (2 clients): alpha 100.00% [" in out
    assert f"note: {log}: 2 of 6 lines skipped (2 not an address or a log line)" in out


def test_split_png_without_matplotlib(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it fails
    code, _, err = run(capsys, "split", "-c", CANARY, "--plot", str(tmp_path / "x.png"))
    assert code == 2 and "PNG needs matplotlib (pip install 'nginxsim[plot]'); .svg needs nothing" in err
    code, _, err = run(capsys, "split", "-c", CANARY, "--plot", str(tmp_path / "x.pdf"))
    assert code == 2 and "write .svg" in err


def test_split_png_with_matplotlib(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require(importlib.util.find_spec("matplotlib") is not None, "matplotlib is not installed (pip install '.[test]')")
    png = tmp_path / "x.png"
    code, _, _ = run(capsys, "split", "-c", CANARY, "--var", "instance", "--plot", str(png))
    assert code == 0 and png.read_bytes().startswith(b"\x89PNG")


def test_diff_prints_the_matrix_and_explains_a_move(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "diff", "-c", CANARY, "-c", CANARY5, "--var", "instance",
                         "--url", "http://shop.example.com/")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "$instance per $ip_range for GET http://shop.example.com/ (exact)"
    assert "  public (4,294,868,992 addresses): 4.00% change" in lines
    assert "  testers (65,536 addresses): 8.00% change" in lines
    assert any(line.startswith("         4.00%  ga -> beta   e.g. ") for line in lines)
    assert any(line.startswith("         4.00%  beta -> alpha   e.g. ") for line in lines)
    assert "        95.00%  ga (unchanged)" in lines
    assert "  all clients: 4.00% change" in out
    assert "    old: " in out and "    new: " in out and "canary-5pct/nginx.conf:16]" in out


def test_diff_gate(capsys: pytest.CaptureFixture[str]) -> None:
    base = ("diff", "-c", CANARY, "-c", CANARY5, "--var", "instance")
    code, _, err = run(capsys, *base, "--max-shift", "5")
    assert code == 1 and err == "FAIL: http://localhost/ testers: 8.00% of clients change (max 5%)\n"
    code, _, err = run(capsys, *base, "--max-shift", "10", "--allow", "ga->beta", "--allow", "alpha->beta")
    assert code == 1 and err == "FAIL: http://localhost/ testers: beta -> alpha (4.00%) is not allowed\n"
    code, _, err = run(capsys, *base, "--max-shift", "10", "--allow", "*->*")
    assert code == 0 and err == ""
    code, out, _ = run(capsys, *base, "--json", "--max-shift", "5", "--examples", "1")
    data = json.loads(out)
    assert code == 1 and len(data["violations"]) == 1 and data["requests"] is None
    (report,) = data["reports"]
    testers = next(g for g in report["groups"] if g["name"] == "testers")
    assert testers["changed"] == pytest.approx(0.08)
    assert all(len(c["examples"]) == 1 for c in testers["cells"] if c["old"] != c["new"])


def test_diff_replays_an_access_log(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [f'{a}.{b}.7.9 - - [t] "GET /cart HTTP/1.1" 200 5 "-" "ua"' for a in range(1, 60) for b in range(0, 256, 8)]
    log.write_text("\n".join([*lines, "not a line", '1.2.3.4 - - [t] "-" 400 0 "-" "-"']) + "\n")
    code, out, err = run(capsys, "diff", "-c", CANARY, "-c", CANARY5, "--requests", str(log), "--host",
                         "shop.example.com", "--max-shift", "50")
    assert code == 0, err
    assert out.startswith(f"{log}: {len(lines):,} requests replayed, ")
    assert "changed: upstream " in out and "app_ga_django" in out
    assert "note: 2 of 1890 lines skipped (1 not an address or a log line, 1 no request line)" in out
    code, out, _ = run(capsys, "diff", "-c", CANARY, "-c", CANARY5, "--requests", str(log), "--json")
    data = json.loads(out)
    assert data["reports"] == [] and data["requests"]["requests"] == len(lines) and data["log"]["skipped"] == 2


@pytest.mark.parametrize("argv,message", [
    (("diff", "-c", CANARY), "diff needs two configs"),
    (("diff", "-c", CANARY, "-c", CANARY5, "--var", "nope"), 'unknown variable "$nope"'),
    (("split", "-c", CANARY, "--clients", "/nonexistent/clients.txt"), "No such file"),
    (("split", "-c", CANARY, "--sample", "0"), "the sample size must be positive"),
    (("diff", "-c", CANARY, "-c", CANARY5, "--exact", "--sample", "10"), "--exact cannot be combined"),
    (("split", "-c", CANARY, "--url", "ftp://x/"), "nginxsim: invalid URL"),
])
def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1


def test_exact_refused_when_the_route_reads_the_client(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text('events {}\nhttp {\n  server { listen 80;\n'
                    '    location / { if ($remote_addr ~ "^10\\\\.") { return 403; } return 200 ok; }\n  }\n}\n')
    code, _, err = run(capsys, "diff", "-c", str(conf), "-c", str(conf), "--exact")
    assert code == 2 and "reads the client beyond geo/split_clients" in err
    code, out, _ = run(capsys, "diff", "-c", str(conf), "-c", str(conf))
    assert code == 0 and "(sampled)" in out and "not exact" in out


def test_empty_clients_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "none.txt"
    empty.write_text("junk\n")
    code, _, err = run(capsys, "split", "-c", CANARY, "--clients", str(empty))
    assert code == 2 and "no client address in 1 lines" in err
