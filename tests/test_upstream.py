"""The balancers as one nginx worker runs them (tests/oracle/test_balancers_oracle.py checks the
same against nginx): smooth weighted round robin sequences, least_conn with connection counts,
random with the numbers supplied, long-run shares and shares over a population."""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nginxsim
from nginxsim.modules.upstream import Peer, UpstreamGroup


def groups(body: str) -> nginxsim.Config:
    return nginxsim.load(text=f"events {{}}\nhttp {{\n{body}\nserver {{ listen 80; }}\n}}\n")


def group(servers: str, balancer: str = "") -> UpstreamGroup:
    return groups(f"upstream g {{ {balancer} {servers} }}").upstream("g")


def addresses(peers: list[Peer | None]) -> list[str | None]:
    return [p.address if p is not None else None for p in peers]


def numbers(*values: int) -> Callable[[], int]:
    """A `rand` that hands out `values` in order (and fails the test if asked for more)."""
    it: Iterator[int] = iter(values)
    return lambda: next(it)


A, B, C, D = "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"


# --- round robin ------------------------------------------------------------------------------

def test_smooth_weighted_round_robin_sequence() -> None:
    g = group(f"server {A} weight=5; server {B}; server {C};")
    assert addresses(g.sequence(14)) == [A, A, B, A, C, A, A] * 2  # routing.md 7.2
    assert g.shares() == {A: 5 / 7, B: 1 / 7, C: 1 / 7}


def test_down_backup_and_no_live_peer() -> None:
    g = group(f"server {A} weight=3 down; server {B} weight=2; server {C}; server {D} backup;")
    assert addresses(g.sequence(6)) == [B, C, B] * 2
    assert addresses(g.sequence(3, down={B, C})) == [D] * 3
    assert g.shares(down={B, C}) == {D: 1.0}
    assert addresses(g.sequence(2, down={B, C, D})) == [None, None]
    assert g.shares(down={B, C, D}) == {}


def test_backups_round_robin_among_themselves() -> None:
    g = group(f"server {A} down; server {B} backup weight=2; server {C} backup;")
    assert addresses(g.sequence(6)) == [B, C, B] * 2


def test_worker_state_persists_and_pick_is_a_fresh_worker() -> None:
    g = group(f"server {A} weight=2; server {B};")
    w = g.worker()
    assert [w.pick().address for _ in range(3)] == [A, B, A]
    assert [g.pick().address for _ in range(3)] == [A, A, A]


weights_st = st.lists(st.tuples(st.integers(1, 10), st.booleans(), st.booleans()), min_size=1, max_size=8)


def _servers(spec: list[tuple[int, bool, bool]]) -> str:
    return "".join(f"server 10.0.1.{i}:80 weight={w}{' down' if down else ''}{' backup' if backup else ''}; "
                   for i, (w, down, backup) in enumerate(spec))


@settings(max_examples=60, deadline=None)
@given(weights_st, st.sampled_from(["", "least_conn;"]))
def test_each_live_peer_gets_its_weight_in_every_round(spec: list[tuple[int, bool, bool]], balancer: str) -> None:
    """A round of sum(live weights) requests visits every live peer exactly `weight` times (backups
    only when no primary is live), and the shares are the weights; idle least_conn is the same."""
    if all(backup for _, _, backup in spec):
        spec = [(spec[0][0], spec[0][1], False), *spec[1:]]
    g = group(_servers(spec), balancer)
    primaries = {f"10.0.1.{i}:80": w for i, (w, down, backup) in enumerate(spec) if not down and not backup}
    backups = {f"10.0.1.{i}:80": w for i, (w, down, backup) in enumerate(spec) if not down and backup}
    live = primaries or backups
    rounds = 2
    seq = addresses(g.sequence(rounds * sum(live.values()) if live else 3))
    if not live:
        assert seq == [None] * 3 and g.shares() == {}
        return
    assert Counter(seq) == {a: rounds * w for a, w in live.items()}
    assert seq[: len(seq) // 2] == seq[len(seq) // 2 :]  # the state is back to zero after a round
    shares = g.shares()
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares == pytest.approx({a: w / sum(live.values()) for a, w in live.items()})


@settings(max_examples=40, deadline=None)
@given(weights_st)
def test_idle_least_conn_is_round_robin(spec: list[tuple[int, bool, bool]]) -> None:
    if all(backup for _, _, backup in spec):
        return
    servers = _servers(spec)
    assert addresses(group(servers, "least_conn;").sequence(30)) == addresses(group(servers).sequence(30))


# --- least_conn with connections --------------------------------------------------------------

def test_least_conn_picks_the_lowest_conns_per_weight() -> None:
    g = group(f"server {A} weight=2; server {B}; server {C} weight=4;", "least_conn;")
    # conns/weight: A 3/2, B 1/1, C 5/4 -> B
    assert g.pick(conns={A: 3, B: 1, C: 5}).address == B
    # a lone winner leaves the round robin state alone: the idle sequence afterwards is unchanged
    w = g.worker()
    assert w.pick(conns={A: 1, B: 1, C: 1}).address == C
    assert [w.pick().address for _ in range(7)] == addresses(g.sequence(7))


def test_least_conn_ties_round_robin_over_the_tied_only() -> None:
    g = group(f"server {A}; server {B} weight=3; server {C} weight=2;", "least_conn;")
    w = g.worker()
    tied = {A: 1, B: 3, C: 0}  # A and B at 1/1, C at 0 -> C alone
    assert w.pick(conns=tied).address == C
    even = {A: 1, B: 3, C: 5}  # A 1/1 == B 3/3 < C 5/2: round robin over A (w1) and B (w3)
    assert addresses([w.pick(conns=even) for _ in range(4)]) == [B, A, B, B]


def test_max_conns_skips_a_peer_for_every_balancer() -> None:
    servers = f"server {A} max_conns=2; server {B} weight=5 max_conns=1;"
    assert group(servers).pick(conns={B: 1}).address == A
    assert group(servers, "least_conn;").pick(conns={A: 2, B: 1}) is None
    assert group(servers + f" server {C} backup;").pick(conns={A: 2, B: 1}).address == C
    assert group(f"server {A} max_conns=1;").pick(conns={A: 1}) is None  # `single` too
    assert group(servers, "random;").pick(conns={B: 1}).address == A
    h = group(servers, "hash $arg_k;")
    assert {h.pick(key=f"k{i}".encode(), conns={B: 1}).address for i in range(20)} == {A}


# --- random -----------------------------------------------------------------------------------

def test_random_uses_each_number_as_nginx_does() -> None:
    g = group(f"server {A} weight=2; server {B} weight=3 down; server {C} weight=5;", "random;")
    # total weight 10 (down included): A holds 0-1, B 2-4, C 5-9
    assert g.pick(rand=numbers(11)).address == A
    assert g.pick(rand=numbers(7)).address == C
    assert g.pick(rand=numbers(3, 4, 15)).address == C  # the down B redrawn
    assert g.pick() is None  # not deterministic without the numbers
    assert g.pick(down={A}).address == C  # one live peer
    with pytest.raises(ValueError, match="rand="):
        g.sequence(3)


def test_random_falls_back_to_round_robin_after_21_draws() -> None:
    g = group(f"server {A} weight=9 down; server {B}; server {C};", "random;")
    w = g.worker()
    rand = numbers(*[0] * 21)  # 21 draws on the down peer
    assert w.pick(rand=rand).address == B  # round robin's first pick
    assert w.pick(rand=numbers(*[0] * 21)).address == C  # ...and its second
    assert w.pick(rand=numbers(*[0] * 20, 10)).address == C  # the 21st draw still counts (round robin: B)


def test_random_two_keeps_the_second_unless_the_first_is_less_loaded() -> None:
    g = group(f"server {A} weight=2; server {B}; server {C} weight=3 down;", "random two least_conn;")
    assert g.pick(rand=numbers(0, 2)).address == B  # idle: the second
    assert g.pick(rand=numbers(2, 0)).address == A
    assert g.pick(rand=numbers(0, 1, 3, 5, 2)).address == B  # A again, C down
    # conns/weight: A 2/2 vs B 1/1 -> equal, the second wins; A 1/2 < B 1/1 -> the first (A)
    assert g.pick(rand=numbers(0, 2), conns={A: 2, B: 1}).address == B
    assert g.pick(rand=numbers(0, 2), conns={A: 1, B: 1}).address == A
    # the first good draw counts too: 1 + 20 misses reach round robin (A, weight 2, first)
    assert g.pick(rand=numbers(2, *[2] * 20)).address == A


@pytest.mark.parametrize("balancer", ["random;", "random two;"])
def test_random_shares_match_the_draws(balancer: str) -> None:
    """The computed long-run split against 60000 picks with a seeded source (3.3 sigma)."""
    g = group(f"server {A} weight=2; server {B} weight=5; server {C} weight=3; server {D} weight=6 down;", balancer)
    rng = random.Random(5)
    n = 60000
    counts = Counter(addresses(g.sequence(n, rand=lambda: rng.getrandbits(31))))
    shares = g.shares()
    assert sum(shares.values()) == pytest.approx(1.0)
    for address, p in shares.items():
        assert abs(counts[address] - n * p) <= 3.3 * (n * p * (1 - p)) ** 0.5, (address, counts, shares)
    if balancer == "random;":
        assert shares == pytest.approx({A: 0.2, B: 0.5, C: 0.3})
    else:  # the second draw wins: the lighter peers gain
        assert shares[A] > 0.2 and shares[B] < 0.5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10), st.booleans()), min_size=1, max_size=8),
       st.sampled_from(["random;", "random two;"]), st.lists(st.integers(0, 2**31 - 1), min_size=64, max_size=64))
def test_random_picks_live_peers_and_shares_sum_to_one(spec: list[tuple[int, bool]], balancer: str,
                                                       draws: list[int]) -> None:
    g = group("".join(f"server 10.0.2.{i}:80 weight={w}{' down' if down else ''}; "
                      for i, (w, down) in enumerate(spec)), balancer)
    live = {f"10.0.2.{i}:80" for i, (_, down) in enumerate(spec) if not down}
    shares = g.shares()
    assert set(shares) == live
    if live:
        assert sum(shares.values()) == pytest.approx(1.0) and min(shares.values()) > 0
    it = iter(draws * 40)
    picks = addresses(g.sequence(20, rand=lambda: next(it)))
    assert set(picks) <= (live or {None})


def test_random_two_with_equal_weights_splits_evenly() -> None:
    assert group(f"server {A}; server {B};", "random two;").shares() == pytest.approx({A: 0.5, B: 0.5})


# --- hash and ip_hash, one request and a population -------------------------------------------

def test_shares_of_a_hash_group_need_a_population() -> None:
    g = group(f"server {A}; server {B};", "hash $arg_k;")
    with pytest.raises(ValueError, match="shares_for"):
        g.shares()
    with pytest.raises(ValueError, match="clients=... or keys="):
        g.counts_for()


def test_population_counts_are_per_request_picks() -> None:
    cfg = groups(f"""
        upstream iph {{ ip_hash; server {A}; server {B} weight=2; server {C} down; }}
        upstream hsh {{ hash $arg_k; server {A}; server {B} weight=3; server {C} down; }}
        upstream ch {{ hash $arg_k consistent; server {A}; server {B} weight=2; server {C} down; }}
    """)
    rng = random.Random(4)
    clients = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.1" for _ in range(400)]
    clients += [f"2001:db8::{rng.randrange(65536):x}" for _ in range(100)] + ["unix:"]
    iph = cfg.upstream("iph")
    expected = Counter(iph.pick(ipaddress.ip_address(c) if c != "unix:" else None).address
                       for c in clients)
    assert iph.counts_for(clients=clients) == expected
    shares = iph.shares_for(clients=clients)
    assert shares == {a: n / len(clients) for a, n in expected.items()}
    keys = [f"user{rng.randrange(10**6)}" for _ in range(500)]
    for name in ("hsh", "ch"):
        g = cfg.upstream(name)
        want = Counter(g.pick(key=k.encode()).address for k in keys)
        assert g.counts_for(keys=keys) == want
        assert g.counts_for(keys=[k.encode() for k in keys]) == want


def test_empty_keys_round_robin_with_the_workers_state() -> None:
    """An empty key (and 21 misses) means round robin, whose state moves with every such request."""
    g = group(f"server {A} weight=2; server {B};", "hash $arg_k;")
    assert g.counts_for(keys=["", "", "", "x"]) == Counter({A: 2, B: 1}) + Counter([g.pick(key=b"x").address])
    w = g.worker()
    assert [w.pick(key=b"").address for _ in range(3)] == [A, B, A]


def test_consistent_hash_round_robins_among_peers_of_one_server_text() -> None:
    g = group(f"server {A}; server {A}; server {B};", "hash $arg_k consistent;")
    key = next(k for k in (f"k{i}".encode() for i in range(100)) if g.pick(key=k).address == A)
    w = g.worker()
    first, second = w.pick(key=key), w.pick(key=key)
    assert first is g.peers[0] and second is g.peers[1]


def test_ip_hash_clients_as_text_or_addresses() -> None:
    g = group(f"server {A}; server {B} weight=2; server {C};", "ip_hash;")
    for c in ("192.0.2.1", "2001:db8::5", "::ffff:10.1.2.3"):
        assert g.pick(c) is g.pick(ipaddress.ip_address(c))
    assert g.pick("unix:") is g.pick(None)
    assert g.shares_for(clients=["10.0.0.1", "10.0.0.2"]) == {g.pick("10.0.0.1").address: 1.0}


# --- the Decision -------------------------------------------------------------------------------

def test_decision_carries_the_shares() -> None:
    cfg = nginxsim.load(text=f"""events {{}}
http {{
    upstream rr {{ server {A} weight=3; server {B}; }}
    upstream rnd {{ random; server {A} weight=3; server {B}; }}
    upstream hsh {{ hash $arg_k; server {A}; server {B}; }}
    server {{ listen 80;
        location /rr {{ proxy_pass http://rr; }} location /rnd {{ proxy_pass http://rnd; }}
        location /hsh {{ proxy_pass http://hsh; }} location /lit {{ proxy_pass http://127.0.0.1:8080; }} }}
}}
""")
    rr = cfg.route("10.9.9.9", "http://a.test/rr").upstream
    assert rr is not None and rr.shares == {A: 0.75, B: 0.25} and rr.to_dict()["shares"] == {A: 0.75, B: 0.25}
    rnd = cfg.route("10.9.9.9", "http://a.test/rnd").upstream
    assert rnd is not None and rnd.peer is None and rnd.shares == {A: 0.75, B: 0.25}
    hsh = cfg.route("10.9.9.9", "http://a.test/hsh?k=1").upstream
    assert hsh is not None and hsh.shares == {}
    lit = cfg.route("10.9.9.9", "http://a.test/lit").upstream
    assert lit is not None and lit.shares == {"127.0.0.1:8080": 1.0}
    what_if = cfg.route("10.9.9.9", "http://a.test/rr", down={A}).upstream
    assert what_if is not None and what_if.peer == B and what_if.shares == {B: 1.0}
