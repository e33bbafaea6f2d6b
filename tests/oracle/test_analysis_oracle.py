"""Traffic analysis against real nginx: a few hundred clients posed to nginx running the canary
(and the canary with 5% instead of 1%); the sampled shares and the diff's transition counts
over that population are exactly the counts of nginx's own answers."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

import nginxsim
from nginxsim import analysis
from nginxsim.oracle import Nginx, OracleRequest

pytestmark = pytest.mark.usefixtures("nginx_binary")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PROBE = "http://shop.example.com/which"


def probed(name: str) -> tuple[str, dict[str, str]]:
    """A canary fixture with a location answering "$ip_range $split $instance"."""
    text = (FIXTURES / name / "nginx.conf").read_text()
    at = text.index("        location / {")
    probe = '        location = /which { return 200 "$ip_range $split $instance"; }\n'
    return text[:at] + probe + text[at:], {"uwsgi_params": (FIXTURES / name / "uwsgi_params").read_text()}


def population() -> list[str]:
    rng = random.Random(11)
    clients = [f"128.32.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(150)]
    clients += [f"69.12.{rng.randrange(128, 256)}.{rng.randrange(256)}" for _ in range(50)]
    clients += [".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(200)]
    return clients


def nginx_answers(name: str, clients: list[str]) -> list[list[str]]:
    text, files = probed(name)
    with Nginx(text=text, files=files) as ng:
        return [r.body.decode().split(" ") for r in ng.request_many(OracleRequest(c, PROBE) for c in clients)]


def test_sampled_shares_and_diff_counts_are_nginx_counts() -> None:
    clients = population()
    old_answers = nginx_answers("canary", clients)
    new_answers = nginx_answers("canary-5pct", clients)
    old = nginxsim.load(text=probed("canary")[0], files=probed("canary")[1])
    new = nginxsim.load(text=probed("canary-5pct")[0], files=probed("canary-5pct")[1])

    assert analysis.classify(old, clients, "instance", url=PROBE) == [a[2] for a in old_answers]
    table = analysis.shares(old, "instance", url=PROBE, population=clients)
    assert table.mode == "clients" and table.by == "ip_range"
    want = Counter((a[0], a[2]) for a in old_answers)
    got = Counter({(g.name, s.value): s.count for g in table.groups for s in g.shares})
    assert got == want
    assert sum(want[("public", v)] for v in ("beta", "ga")) > 150  # every group is well represented

    report = analysis.diff(old, new, "instance", url=PROBE, population=clients)
    want_moves = Counter((a[0], a[2], b[2]) for a, b in zip(old_answers, new_answers, strict=True))
    got_moves = Counter({(g.name, c.old, c.new): c.count for g in report.groups for c in g.cells})
    assert got_moves == want_moves
    assert report.clients == len(clients)
    for g in report.groups:
        for c in g.cells:
            for e in c.examples:
                k = clients.index(e)
                assert (old_answers[k][2], new_answers[k][2]) == (c.old, c.new)


def test_the_split_slices_seen_by_nginx() -> None:
    """Per client, nginx's $split is the part whose exact slice holds the client's hash; over
    these clients each part's count is within a 99.9% band of its exact share."""
    clients = population()
    answers = nginx_answers("canary", clients)
    cfg = nginxsim.load(text=probed("canary")[0], files=probed("canary")[1])
    assert analysis.classify(cfg, clients, "split", url=PROBE) == [a[1] for a in answers]
    exact = analysis.shares(cfg, "split", by=None, url=PROBE)
    counts = Counter(a[1] for a in answers)
    for s in exact.group("all").shares:
        n, p = len(clients), s.share
        assert abs(counts[s.value] - n * p) <= 3.29 * (n * p * (1 - p)) ** 0.5 + 1, (s.value, counts[s.value])
