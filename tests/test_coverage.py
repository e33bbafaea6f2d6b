"""Route coverage: what exists (from the Plan) and what a decision exercised (from its server,
location, upstream and trace), for every kind."""

from __future__ import annotations

from pathlib import Path

import nginxsim
from nginxsim.coverage import KINDS, Coverage
from nginxsim.http.replay import SharedDecision

ROOT = Path(__file__).resolve().parents[1]
CANARY_CONF = str(ROOT / "fixtures" / "canary" / "nginx.conf")
BASIC = nginxsim.load(str(ROOT / "fixtures" / "basic" / "nginx.conf"))

SITE = """
events {}
http {
    map $http_host $site {
        hostnames;
        default        main;
        .example.com   example;
        www.shop.*     shop;
        ~^api\\.       api;
    }
    geo $net {
        ranges;
        default                 outside;
        10.0.0.0-10.0.0.255     lab;
        10.0.1.0-10.0.1.255     office;
    }
    split_clients "$request_uri" $bucket {
        50%  a;
        50%  b;
    }
    upstream app {
        server 10.1.0.1:80;
        server 10.1.0.2:80 backup;
        server 10.1.0.3:80 down;
    }
    server {
        listen 80;
        server_name site.test;
        if ($http_x_block) {
            return 403;
        }
        location / {
            if ($net = lab) {
                rewrite ^ /lab last;
            }
            proxy_pass http://app;
            proxy_set_header X-Site $site;
        }
        location /lab {
            error_page 404 = @fallback;
            return 404;
        }
        location @fallback {
            return 200 "fallback $bucket";
        }
        location /never {
            return 204;
        }
    }
}
"""


def labels(cov: Coverage, kind: str, hit: bool) -> list[str]:
    return [i.label for i in cov.items if i.kind == kind and bool(cov.hits[i]) == hit]


def test_what_exists_in_the_canary() -> None:
    cov = Coverage(nginxsim.load(CANARY_CONF))
    assert [cov.counts(kind)[1] for kind in KINDS] == [1, 2, 0, 5, 3, 3, 3]
    assert labels(cov, "geo entries", False) == ["geo $ip_range: default", "geo $ip_range: 69.12.128.0/17",
                                                 "geo $ip_range: 128.32.0.0/16"]
    assert labels(cov, "split parts", False) == ["split_clients $split: 1% fraction1",
                                                 "split_clients $split: 30% fraction2", "split_clients $split: * other"]
    assert [(i.where.rsplit("/", 1)[1], i.label) for i in cov.items if i.kind == "map entries"][:2] == [
        ("nginx.conf:22", "map $instance: ~^employees_"), ("nginx.conf:23", "map $instance: ~^testers_fraction2$")]
    assert cov.percent() == 0.0 and cov.percent("if blocks") == 100.0


def test_decisions_shared_between_clients_count_like_full_routes() -> None:
    cfg = nginxsim.load(CANARY_CONF)
    # the template's first client is routed in full, the first of each kind recorded, later ones shared
    decisions = [cfg.route(f"69.12.128.{i}", "http://shop.example.com/") for i in range(1, 10)]
    shared = next(d for d in decisions if isinstance(d, SharedDecision))
    cov = Coverage(cfg)
    cov.add(shared)
    assert labels(cov, "geo entries", True) == ["geo $ip_range: 69.12.128.0/17"]
    assert labels(cov, "map entries", True) == ["map $instance: ~^employees_"]
    assert labels(cov, "upstream peers", True) == ["upstream app_alpha_django: server unix:///opt/app_alpha/uwsgi.sock"]
    assert labels(cov, "locations", True) == ["location /"] and cov.counts("servers") == (1, 1)


def test_nested_locations_count_where_the_request_ran() -> None:
    cov = Coverage(BASIC)
    cov.add(BASIC.route("10.0.0.1", "http://shop.example.com/account/orders/export"))
    assert labels(cov, "locations", True) == ["location ~ ^/account/(?<section>[a-z]+)/export$"]
    cov.add(BASIC.route("10.0.0.1", "http://shop.example.com/account/x"))
    cov.add(BASIC.route("10.0.0.1", "http://zzz.test/"))  # the default server, no location
    assert "location /account/" in labels(cov, "locations", True)
    assert labels(cov, "servers", True) == ["server _", "server shop.example.com www.shop.example.com"]
    assert cov.counts("locations") == (2, 12)


def test_every_kind_on_a_site() -> None:
    cfg = nginxsim.load(text=SITE)
    cov = Coverage(cfg)
    assert labels(cov, "upstream peers", False) == ["upstream app: server 10.1.0.1:80",
                                                    "upstream app: server 10.1.0.2:80"]
    assert labels(cov, "if blocks", False) == ["if ($http_x_block)", "if ($net = lab)"]
    assert labels(cov, "map entries", False) == ["map $site: default", 'map $site: ".example.com"',
                                                 'map $site: "www.shop.*"', "map $site: ~^api\\."]
    # outside, via location /: the map is read by the upstream request only (a header), built lazily
    cov.add(cfg.route("192.0.2.1", "http://site.test/", headers={"Host": "www.example.com"}))
    assert labels(cov, "map entries", True) == ['map $site: ".example.com"']
    assert labels(cov, "upstream peers", True) == ["upstream app: server 10.1.0.1:80"]
    # the lab: if, rewrite ... last, the /lab location, error_page to the named location, split_clients
    cov.add(cfg.route("10.0.0.7", "http://site.test/x"))
    assert labels(cov, "if blocks", True) == ["if ($net = lab)"]
    assert labels(cov, "locations", True) == ["location /", "location /lab", "location @fallback"]
    assert len(labels(cov, "split parts", True)) == 1
    # the server-level if, and the backup once the primary is down
    cov.add(cfg.route("10.0.1.7", "http://site.test/", headers={"X-Block": "1"}))
    cov.add(cfg.route("10.0.1.7", "http://site.test/", headers={"Host": "www.shop.co"}, down=["10.1.0.1:80"]))
    assert labels(cov, "if blocks", False) == []
    assert labels(cov, "upstream peers", False) == []
    assert labels(cov, "geo entries", False) == []
    assert labels(cov, "locations", False) == ["location /never"]
    missed = [i.label for i in cov.missed()]
    assert missed == ["location /never", "map $site: default", "map $site: ~^api\\.", "split_clients $bucket: 50% b"] \
        or missed == ["location /never", "map $site: default", "map $site: ~^api\\.", "split_clients $bucket: 50% a"]
    report = cov.report(missed=True, relative=lambda f: "site.conf")
    assert "  locations          3/4      75.0%" in report
    assert "    location /never  [site.conf:" in report
    data = cov.to_dict()
    assert data["kinds"]["if blocks"] == {"hit": 2, "total": 2, "percent": 100.0}
    assert data["percent"] == cov.percent()
