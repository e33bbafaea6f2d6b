"""The canary fixture's promises, as properties: employees always alpha; testers 30% alpha, 70%
beta; public 1% beta, 99% ga; all sticky per client. (tests/oracle/test_split_clients_oracle.py
checks the same fixture client by client against real nginx.)"""

from __future__ import annotations

import math
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import nginxsim

CANARY = nginxsim.load(str(Path(__file__).resolve().parents[1] / "fixtures" / "canary" / "nginx.conf"))
SPLIT = next(s for s in CANARY.plan.modules_state["split_clients"] if s.name == "split")


def instance(client: str) -> str:
    d = CANARY.route(client, "http://shop.example.com/", trace=False)
    assert d.upstream is not None
    return d.upstream.name.removeprefix("app_").removesuffix("_django")


def octets(first: int, second_lo: int, second_hi: int) -> st.SearchStrategy[str]:
    return st.tuples(st.integers(second_lo, second_hi), st.integers(0, 255), st.integers(0, 255)).map(
        lambda t: f"{first}.{t[0]}.{t[1]}.{t[2]}")


@settings(max_examples=300, deadline=None)
@given(octets(69, 12, 12).filter(lambda a: int(a.split(".")[2]) >= 128))
def test_employees_always_alpha(client: str) -> None:
    assert instance(client) == "alpha"


@settings(max_examples=200, deadline=None)
@given(st.one_of(octets(128, 32, 32), st.ip_addresses(v=4).map(str)))
def test_sticky_per_client(client: str) -> None:
    first = CANARY.route(client, "http://shop.example.com/a").upstream
    again = nginxsim.load(str(Path(CANARY.files[0]))).route(client, "http://shop.example.com/b?x=1").upstream
    assert first is not None and again is not None
    assert (first.name, first.peer) == (again.name, again.peer)


def test_exact_shares_from_the_bounds() -> None:
    shares = {p.value.decode(): p.share for p in SPLIT.parts}
    assert abs(shares["fraction1"] - 0.01) < 1e-6
    assert abs(shares["fraction2"] - 0.30) < 1e-6
    assert abs(shares["other"] - 0.69) < 1e-6


def _within_binomial(count: int, n: int, p: float) -> bool:
    """Inside the 99.9% normal-approximation interval of Binomial(n, p)."""
    return abs(count - n * p) <= 3.29 * math.sqrt(n * p * (1 - p)) + 1


def test_observed_shares_per_group() -> None:
    rng = random.Random(2026)
    n = 6000
    testers = [instance(f"128.32.{rng.randrange(256)}.{rng.randrange(256)}") for _ in range(n)]
    public = [instance(f"{rng.choice([1, 8, 23, 100, 200])}.{rng.randrange(256)}.{rng.randrange(256)}."
                       f"{rng.randrange(256)}") for _ in range(n)]
    assert set(testers) <= {"alpha", "beta"} and set(public) <= {"beta", "ga"}
    assert _within_binomial(testers.count("alpha"), n, 0.30)
    assert _within_binomial(public.count("beta"), n, 0.01)
