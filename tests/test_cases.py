"""Case files: the loader (YAML and JSON, every error with file:line), the expectations'
semantics, the runner, and `nginxsim.testing.assert_route`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import nginxsim
from nginxsim.cases import CaseFileError, Request, load, run_case
from nginxsim.testing import assert_route

ROOT = Path(__file__).resolve().parents[1]
CANARY_DIR = ROOT / "fixtures" / "canary"
CANARY = nginxsim.load(str(CANARY_DIR / "nginx.conf"))
BASIC = nginxsim.load(str(ROOT / "fixtures" / "basic" / "nginx.conf"))


def write(tmp_path: Path, text: str, name: str = "t.nginxsim.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def bad(tmp_path: Path, text: str, name: str = "t.nginxsim.yaml") -> str:
    with pytest.raises(CaseFileError) as e:
        load(write(tmp_path, text, name))
    return str(e.value)


# --- the loader ------------------------------------------------------------------------------


def test_canary_case_file_lines_expansion_and_config() -> None:
    spec = load(CANARY_DIR / "cases.nginxsim.yaml")
    assert spec.config == str(CANARY_DIR / "nginx.conf")
    first = spec.cases[0]
    assert first.line == 10 and first.name.startswith("employees always get alpha")
    assert len(first.requests) == 4 * 2  # clients x urls, in order
    assert [r.client for r in first.requests[:2]] == ["69.12.128.1", "69.12.128.1"]
    assert first.requests[1].varies == (("client", "69.12.128.1"), ("url", "http://shop.example.com/cart?id=3"))
    assert first.requests[0].headers == (("User-Agent", "curl/8.0"),)  # from defaults
    assert [c.field for c in first.checks] == ["variables.ip_range", "variables.instance", "location",
                                               "upstream.name", "upstream.peer"]


def test_json_case_file_has_the_same_cases_and_lines(tmp_path: Path) -> None:
    data = yaml.safe_load((CANARY_DIR / "cases.nginxsim.yaml").read_text())
    data["config"] = str(CANARY_DIR / "nginx.conf")
    path = write(tmp_path, json.dumps(data, indent=2), "t.nginxsim.json")
    spec, reference = load(path), load(CANARY_DIR / "cases.nginxsim.yaml")
    assert [(c.name, c.requests, [k.field for k in c.checks]) for c in spec.cases] == \
        [(c.name, c.requests, [k.field for k in c.checks]) for c in reference.cases]
    lines = path.read_text().splitlines()
    for case in spec.cases:
        assert '"name"' in lines[case.line - 1] or lines[case.line - 1].strip() == "{"
    assert all(r.passed for c in spec.cases for r in run_case(CANARY, c).results)


def test_json_errors_are_located(tmp_path: Path) -> None:
    assert "t.nginxsim.json:4: invalid JSON: " in bad(tmp_path, '{\n  "cases": [\n    {"expect": {}},\n  ]\n}\n',
                                                      "t.nginxsim.json")  # the wording is Python's
    text = '{"cases": [\n {"name": "a",\n  "expect": {"stauts": 200}}]}'
    assert bad(tmp_path, text, "t.nginxsim.json").endswith(':3: unknown field "stauts" in expect '
                                                           "(known: status, body, headers, location, server, upstream, "
                                                           "variables, file, redirects, uri, args)")
    text = '{"cases": [{"name": "a", "expect": {}},\n {"name": "a", "expect": {}}]}'
    assert bad(tmp_path, text, "t.nginxsim.json").endswith(':2: duplicate case name "a" (first at line 1)')


@pytest.mark.parametrize(("text", "line", "message"), [
    ("cases:\n  - name: a\n    expect: {status: 200}\n    requst: {}\n", 4,
     'unknown field "requst" in a case (known: name, request, expect)'),
    ("cases:\n  - name: a\n    request:\n      client: 1.2.3.4\n      hdrs: {}\n    expect: {}\n", 5,
     'unknown field "hdrs" in request'),
    ("defaults:\n  urls: x\ncases:\n  - expect: {}\n", 2, 'unknown field "urls" in defaults'),
    ("cases:\n  - name: a\n    expect:\n      upstream: {nmae: x}\n", 4, 'unknown field "nmae" in upstream'),
    ("cases:\n  - name: a\n    expect: {status: [1]}\n", 3, "status: expected a number, got a list"),
    ("cases:\n  - name: a\n    expect: {status: ok}\n", 3, "status: expected a number, got 'ok'"),
    ("cases:\n  - name: a\n    expect: {redirects: null}\n", 3, "redirects: expected a count, got null"),
    ("cases:\n  - name: a\n", 2, 'case "a" has no "expect"'),
    ("cases:\n  - name: a\n    expect: {}\n  - name: a\n    expect: {}\n", 4,
     'duplicate case name "a" (first at line 2)'),
    ("cases:\n  - name: a\n    name: b\n    expect: {}\n", 3, 'duplicate field "name" (first at line 2)'),
    ("cases:\n  - name: ''\n    expect: {}\n", 2, "name: a case's name cannot be empty"),
    ("cases: {}\n", 1, '"cases" must be a list of cases'),
    ("cases: []\n", 1, '"cases" must be a list of cases'),
    ("config: x.conf\n", 1, 'no "cases" list'),
    ("- a\n- b\n", 1, "the case file: expected a mapping, got a list"),
    ("cases:\n  - name: a\n    expect: {headers: {Location: {regex: '(x'}}}\n", 3,
     "headers.Location.regex: invalid regex: missing ), unterminated subpattern at position 0"),
    ("cases:\n  - name: a\n    expect: {body: {match: x}}\n", 3, 'unknown field "match" in body (known: regex)'),
    ("cases:\n  - name: a\n    expect: {file: [a]}\n", 3, "file: expected a value, not a list"),
    ("cases:\n  - name: a\n    request: {rand: [1, -2]}\n    expect: {}\n", 3,
     "rand: each number must be in [0, 2**31), not -2"),
    ("cases:\n  - name: a\n    request: {http_version: '2'}\n    expect: {}\n", 3,
     "http_version must be \"1.1\", \"1.0\" or \"0.9\", not '2'"),
    ("cases:\n  - name: a\n    request: {client: []}\n    expect: {}\n", 3, "client: an empty list"),
    ("cases:\n  - name: a\n    request: {client: {a: 1}}\n    expect: {}\n", 3, "client: expected text, got a mapping"),
    ("cases:\n  - name: a\n    request: {absolute_form: 1}\n    expect: {}\n", 3,
     "absolute_form: expected true or false, got '1'"),
    ("cases:\n  - name: a\n    expect: {status: 200\n", 4, "invalid YAML: expected ',' or '}', but got '<stream end>'"),
    ("cases:\n- name: a\n  expect: {}\n bad: x\n", 4,
     "invalid YAML: expected <block end>, but found '<block mapping start>'"),
    ("cases:\n  - name: a\n    expect: {status: !weird 1}\n", 3,
     "invalid YAML: could not determine a constructor for the tag '!weird'"),
    ("", 1, "the case file is empty"),
])
def test_bad_files_say_file_line_message(tmp_path: Path, text: str, line: int, message: str) -> None:
    assert bad(tmp_path, text).startswith(f"{tmp_path / 't.nginxsim.yaml'}:{line}: {message}")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError, match=r"missing.nginxsim.yaml: cannot read the case file: .*No such file"):
        load(tmp_path / "missing.nginxsim.yaml")


def test_yaml_scalars_stay_text_where_text_is_meant_and_merge_keys_work(tmp_path: Path) -> None:
    spec = load(write(tmp_path, """
cases:
  - name: a
    request: &common {client: 10.0.0.1, headers: {X-Flag: yes, X-Version: 1.10}}
    expect: {variables: {flag: on}}
  - name: b
    request: {<<: *common, url: "http://b/"}
    expect: {}
"""))
    (a,), (b,) = spec.cases[0].requests, spec.cases[1].requests
    assert a.client == b.client == "10.0.0.1" and b.url == "http://b/"
    assert a.headers == b.headers == (("X-Flag", "yes"), ("X-Version", "1.10"))
    assert str(spec.cases[0].checks[0].want) == "'on'"


def test_top_level_unknown_field_names_the_known_ones(tmp_path: Path) -> None:
    assert bad(tmp_path, "common: 1\ncases: []\n").endswith(
        ':1: unknown field "common" in the case file (known: config, defaults, cases)')


def test_defaults_merge_headers_and_pins_and_case_fields_win(tmp_path: Path) -> None:
    spec = load(write(tmp_path, """
defaults: {client: 10.0.0.1, url: "http://a/", headers: {A: "1", B: "2"}, pinned: {request_id: x, msec: "1"}}
cases:
  - name: a
    request: {url: "http://b/", headers: {b: "3"}, pinned: {$msec: "1700000000"}}
    expect: {}
"""))
    (r,) = spec.cases[0].requests
    assert (r.client, r.url) == ("10.0.0.1", "http://b/")
    assert r.headers == (("A", "1"), ("b", "3"))
    assert r.pinned == (("request_id", "x"), ("msec", "1700000000"))


# --- expectations and the runner ------------------------------------------------------------


def run(tmp_path: Path, cfg: nginxsim.Config, cases: str) -> list[list[str]]:
    """Every request's failures, as the report prints them."""
    spec = load(write(tmp_path, "cases:\n" + cases))
    return [[str(f) for f in r.failures] + ([r.error] if r.error else [])
            for c in spec.cases for r in run_case(cfg, c).results]


def test_failures_are_expected_got_field(tmp_path: Path) -> None:
    out = run(tmp_path, CANARY, """
  - name: wrong instance
    request: {client: 128.32.1.5, url: "http://shop.example.com/cart"}
    expect:
      variables: {instance: beta, $split: fraction2, nothere: null}
      upstream: {name: app_beta_django, uri: null, params: {REQUEST_URI: {regex: "^/c"}, HTTP_X: x}}
      location: /static
      status: 200
""")
    assert out == [[
        "expected 'beta', got 'alpha' (field variables.instance)",
        "expected 'app_beta_django', got 'app_alpha_django' (field upstream.name)",
        "expected 'x', got none (field upstream.params.HTTP_X)",
        f"expected '/static', got location / ({CANARY_DIR / 'nginx.conf'}:41) (field location)",
        "expected 200, got none (field status)",
    ]]


def test_none_means_absent_or_empty_and_regexes_search(tmp_path: Path) -> None:
    out = run(tmp_path, BASIC, """
  - name: redirect
    request: {url: "http://shop.example.com/old-cart?x=1"}
    expect:
      status: 301
      headers: {location: {regex: "/cart$"}, Expires: null, Cache-Control: ""}
      body: null
      upstream: ""
      args: x=1
      uri: /old-cart
      redirects: 0
      location: = /old-cart
      server: www.shop.example.com
  - name: passed upstream
    request: {url: "http://api.example.com/v1/x"}
    expect: {status: null, body: "", upstream: api_pool, location: {regex: "^location /v1/$"}, file: null}
  - name: no location
    request: {url: "http://api.example.com/nothing"}
    expect: {location: null, status: 404, server: basic/nginx.conf:55}
""")
    assert out == [[], [], []]


def test_locations_by_label_name_and_file_line(tmp_path: Path) -> None:
    out = run(tmp_path, BASIC, """
  - name: nested regex
    request: {url: "http://shop.example.com/account/orders/export"}
    expect: {location: "~ ^/account/(?<section>[a-z]+)/export$", variables: {section: orders}}
  - name: as the label says it
    request: {url: "http://shop.example.com/account/x"}
    expect: {location: "location /account/", server: "server shop.example.com www.shop.example.com"}
  - name: by place
    request: {url: "http://shop.example.com/account/x"}
    expect: {location: "fixtures/basic/nginx.conf:41"}
  - name: wrong place
    request: {url: "http://shop.example.com/account/x"}
    expect: {location: "other/nginx.conf:41"}
  - name: exact is not prefix
    request: {url: "http://shop.example.com/"}
    expect: {location: /}
""")
    assert out[:3] == [[], [], []]
    assert out[3] == [f"expected 'other/nginx.conf:41', got location /account/ ({ROOT}/fixtures/basic/nginx.conf:41) "
                      "(field location)"]
    assert out[4] == [f"expected '/', got location = / ({ROOT}/fixtures/basic/nginx.conf:27) (field location)"]


def test_upstream_headers_are_case_insensitive_and_repeats_join(tmp_path: Path) -> None:
    out = run(tmp_path, BASIC, """
  - name: headers sent
    request: {client: 10.0.0.7, url: "http://shop.example.com/cart", headers: {X-Forwarded-For: 1.2.3.4}}
    expect:
      upstream:
        headers: {x-forwarded-for: "1.2.3.4, 10.0.0.7", host: shop.example.com, Cookie: null}
        method: GET
        protocol: http
        peer: 127.0.0.1:8001
        uri: /cart
""")
    assert out == [[]]


def test_request_errors_are_reported_not_raised(tmp_path: Path) -> None:
    out = run(tmp_path, BASIC, """
  - name: not an address
    request: {client: not-an-ip}
    expect: {status: 200}
""")
    assert len(out[0]) == 1 and "not-an-ip" in out[0][0]


RANDOM = nginxsim.load(text="""
events {}
http {
    upstream pool { random; server 10.0.0.1:80; server 10.0.0.2:80; server 10.0.0.3:80 down; }
    server { listen 80; location / { proxy_pass http://pool; } }
}
""")


def test_rand_gives_the_random_balancers_pick(tmp_path: Path) -> None:
    pool = RANDOM.upstream("pool")
    first = pool.pick(rand=iter([0]).__next__)
    second = pool.pick(rand=iter([2**31 - 1]).__next__)
    fallback = pool.pick(down=[first.address] if first else [], rand=iter([2**31 - 1]).__next__)
    assert first is not None and second is not None and fallback is not None
    assert first.address != second.address and fallback.address != first.address
    out = run(tmp_path, RANDOM, f"""
  - name: no rand, no peer
    expect: {{upstream: {{name: pool, peer: null}}}}
  - name: low draw
    request: {{rand: [0]}}
    expect: {{upstream: {{peer: "{first.address}"}}}}
  - name: high draw
    request: {{rand: [2147483647]}}
    expect: {{upstream: {{peer: "{second.address}"}}}}
  - name: what if the first is down
    request: {{rand: [2147483647], down: ["{first.address}"]}}
    expect: {{upstream: {{peer: "{fallback.address}"}}}}
""")
    assert out == [[], [], [], []]


def test_rand_running_out_is_an_error(tmp_path: Path) -> None:
    cfg = nginxsim.load(text="""
events {}
http {
    upstream pool { random; server 10.0.0.1:80 max_conns=1; server 10.0.0.2:80 max_conns=1; }
    server { listen 80; location / { proxy_pass http://pool; } }
}
""")
    request = Request(rand=())
    with pytest.raises(nginxsim.RequestError, match="rand: the 0 numbers given ran out"):
        request.route(cfg)


# --- assert_route -----------------------------------------------------------------------------


def test_assert_route_passes_and_returns_the_decision() -> None:
    d = assert_route(CANARY, {"client": "128.32.1.5", "url": "http://shop.example.com/cart"},
                     variables={"instance": "alpha"}, upstream={"name": re.compile("alpha")}, status=None)
    assert d.upstream is not None and d.upstream.name == "app_alpha_django"
    assert assert_route(BASIC, "http://shop.example.com/healthz", status=200, body="ok\n").status == 200


def test_assert_route_failure_lists_fields_and_the_trace() -> None:
    with pytest.raises(AssertionError) as e:
        assert_route(CANARY, {"client": "128.32.1.5", "url": "http://shop.example.com/cart"},
                     variables={"instance": "beta"}, upstream="app_beta_django")
    text = str(e.value)
    assert text.splitlines()[:3] == [
        "request: 128.32.1.5 GET http://shop.example.com/cart",
        "expected 'beta', got 'alpha' (field variables.instance)",
        "expected 'app_beta_django', got 'app_alpha_django' (field upstream.name)",
    ]
    assert "trace:" in text and "map \"${ip_range}_${split}\"" in text and "nginx.conf:23]" in text


def test_assert_route_refuses_bad_arguments() -> None:
    with pytest.raises(CaseFileError, match='unknown field "stauts" in expect'):
        assert_route(BASIC, "http://x/", stauts=200)
    with pytest.raises(CaseFileError, match='unknown field "clients" in request'):
        assert_route(BASIC, {"clients": "1.2.3.4"})
    with pytest.raises(ValueError, match="assert_route checks one request"):
        assert_route(BASIC, {"client": ["1.2.3.4", "1.2.3.5"]})
