"""Route checks written in Python, for what a case file cannot say (loops, computed values)."""

import ipaddress
import re

import pytest

from nginxsim.testing import assert_route


@pytest.mark.parametrize("host", range(1, 255, 37))
def test_every_employee_subnet_gets_alpha(nginx_config, host):
    cfg = nginx_config("nginx.conf")  # relative to the rootdir: this directory
    for net in ipaddress.ip_network("69.12.128.0/17").subnets(new_prefix=24):
        client = str(net.network_address + host)
        assert_route(cfg, {"client": client, "url": "http://shop.example.com/"}, variables={"instance": "alpha"})


def test_the_split_is_about_thirty_percent_of_testers(nginx_config):
    cfg = nginx_config("nginx.conf")
    clients = [f"128.32.{i // 256}.{i % 256}" for i in range(2000)]
    alpha = sum(cfg.route(c, "http://shop.example.com/").variables["instance"] == "alpha" for c in clients)
    assert 0.27 < alpha / len(clients) < 0.33


def test_static_root_follows_the_instance(nginx_config):
    d = assert_route(nginx_config("nginx.conf"), {"client": "69.12.128.1", "url": "http://shop.example.com/static/a.css"},
                     location="/static", upstream=None, status=re.compile("^(200|404)$"))
    assert any("/opt/app_alpha/static/static/a.css" in s.what for s in d.trace)
