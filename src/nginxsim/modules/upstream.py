"""`ngx_http_upstream_module`: upstream groups, their servers, and the group a `*_pass` names.

Groups are explicit (`upstream name {}`) or implicit (a literal `host:port` in a `*_pass`, one
group per host:port as `ngx_http_upstream_add` keys them). The first pick of a fresh worker is
deterministic for smooth weighted round robin (`ngx_http_upstream_get_peer`); other balancers
are named so the Decision can say the peer is not simulated yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..conf.directive import Directive
from ..conf.spec import BLOCK, HTTP_MAIN, HTTP_UPS, NOARGS, ONEMORE, TAKE1, TAKE12, DirectiveSpec, Merge
from ..plan import Compiler, Level, error
from .base import Command, Module


@dataclass(frozen=True, slots=True)
class Peer:
    """One `server` of a group: address as written, weight, and the flags that change picking."""

    address: str
    weight: int = 1
    backup: bool = False
    down: bool = False
    max_fails: int = 1
    fail_timeout: str = "10s"
    max_conns: int = 0


@dataclass(eq=False)
class UpstreamGroup:
    """A group: explicit (`upstream {}` at file:line) or implicit (from a literal address)."""

    name: str
    explicit: bool
    port: int | None = None  # implicit groups: the port written (or the protocol's default)
    peers: list[Peer] = field(default_factory=list)
    balancer: str = "round_robin"  # round_robin | ip_hash | hash | hash consistent | random | least_conn
    balancer_args: tuple[str, ...] = ()
    directive: Directive | None = None

    @property
    def where(self) -> str:
        return self.directive.where if self.directive else ""

    def first_pick(self) -> Peer | None:
        """The peer a fresh worker sends the first request to, when that is deterministic.

        Smooth weighted round robin from zero state picks the first peer of highest weight among
        non-backup, non-down peers; one live peer is always deterministic.
        """
        live = [p for p in self.peers if not p.backup and not p.down]
        if not live:
            return None
        if len(live) == 1:
            return live[0]
        if self.balancer != "round_robin":
            return None
        best = live[0]
        for p in live[1:]:
            if p.weight > best.weight:
                best = p
        return best


def _upstream(d: Directive, level: Level, cc: Compiler) -> None:
    name = d.args[0]
    key = name.lower()
    if key in cc.upstreams:
        raise error(d, f'duplicate upstream "{name}"')
    group = UpstreamGroup(name, True, directive=d)
    cc.upstreams[key] = group
    ulevel = Level("upstream", level, d, group)
    cc.block(d.block or (), ulevel)
    if not group.peers:
        raise error(d, f'no servers are inside upstream in {d.file}:{d.line}')


def _server(d: Directive, level: Level, cc: Compiler) -> None:
    """`ngx_http_upstream_server`: address then weight=, max_fails=, fail_timeout=, backup, down..."""
    group: UpstreamGroup = level.owner
    weight, max_fails, fail_timeout, max_conns = 1, 1, "10s", 0
    backup = down = False
    for p in d.args[1:]:
        if p.startswith("weight="):
            v = p[7:]
            if not v.isdigit() or int(v) == 0:
                raise error(d, f'invalid parameter "{p}"')
            weight = int(v)
        elif p.startswith("max_fails="):
            if not p[10:].isdigit():
                raise error(d, f'invalid parameter "{p}"')
            max_fails = int(p[10:])
        elif p.startswith("fail_timeout="):
            fail_timeout = p[13:]
        elif p.startswith("max_conns="):
            if not p[10:].isdigit():
                raise error(d, f'invalid parameter "{p}"')
            max_conns = int(p[10:])
        elif p == "backup":
            backup = True
        elif p == "down":
            down = True
        elif p in ("resolve",) or p.startswith(("route=", "service=", "slow_start=")):
            raise error(d, f'invalid parameter "{p}"')
        else:
            raise error(d, f'invalid parameter "{p}"')
    group.peers.append(Peer(d.args[0], weight, backup, down, max_fails, fail_timeout, max_conns))


def _balancer(name: str):  # type: ignore[no-untyped-def]
    def handler(d: Directive, level: Level, cc: Compiler) -> None:
        group: UpstreamGroup = level.owner
        group.balancer = name if not (name == "hash" and "consistent" in d.args[1:]) else "hash consistent"
        group.balancer_args = d.args

    return handler


COMMANDS = (
    Command(DirectiveSpec("upstream", HTTP_MAIN, BLOCK | TAKE1, Merge.LOCAL), _upstream),
    Command(DirectiveSpec("server", HTTP_UPS, ONEMORE, Merge.LOCAL), _server, slot="upstream:server"),
    Command(DirectiveSpec("ip_hash", HTTP_UPS, NOARGS, Merge.LOCAL), _balancer("ip_hash")),
    Command(DirectiveSpec("hash", HTTP_UPS, TAKE12, Merge.LOCAL), _balancer("hash")),
    Command(DirectiveSpec("random", HTTP_UPS, NOARGS | TAKE12, Merge.LOCAL), _balancer("random")),
    Command(DirectiveSpec("least_conn", HTTP_UPS, NOARGS, Merge.LOCAL), _balancer("least_conn")),
)

MODULE = Module("ngx_http_upstream_module", COMMANDS)
