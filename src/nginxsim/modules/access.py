"""`ngx_http_access_module`: `allow` and `deny`.

Every rule goes to the list of its family (IPv4, IPv6, unix sockets); `all` goes to all three.
A level with any rule of its own replaces every inherited list at once (`allow`/`deny` share
one slot, merged all-or-nothing). At request time the client's family picks one list, the first
rule that holds the address decides (deny: 403), and no match, or no list for the family,
declines. An IPv4-mapped IPv6 client (`::ffff:a.b.c.d`) is checked against the IPv4 list when
one exists, and then never against the IPv6 one.

The check is a pure function of the client address (`AccessRules.check`), so a decision that
depends on it can be shared between clients that answer it alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import HTTP_LMT, HTTP_LOC, HTTP_MAIN, HTTP_SRV, TAKE1, DirectiveSpec, Merge
from ..http.variables import text_addr
from ..plan import Compiler, Level, error
from .base import ACCESS_OK, Command, Module
from .realip import IPAddress, ptocidr

if TYPE_CHECKING:
    from ..http.context import Context

ALL, UNIX, V4, V6 = -1, 0, 4, 6
_RULES = "access:rules"  # a location's compiled AccessRules (from the merged "access" slot)
_V4_MAPPED = 0xFFFF  # IN6_IS_ADDR_V4MAPPED: ::ffff:0:0/96, the upper 96 bits of the address


@dataclass(frozen=True, slots=True)
class Rule:
    """One `allow`/`deny` (`ngx_http_access_rule[6|_un]_t`): `all` has family ALL and a zero
    mask, so it holds every address of both families."""

    deny: bool
    family: int  # V4, V6, UNIX or ALL
    addr: int
    mask: int
    text: str  # the directive as written, e.g. "deny 10.0.0.0/8"
    file: str
    line: int


class AccessRules:
    """The merged rules of one location (`ngx_http_access_loc_conf_t`), split by family."""

    __slots__ = ("v4", "v6", "unix")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.v4 = tuple(r for r in rules if r.family in (V4, ALL))
        self.v6 = tuple(r for r in rules if r.family in (V6, ALL))
        self.unix = tuple(r for r in rules if r.family in (UNIX, ALL))

    def answer(self, client: IPAddress | None, text: bytes, port: int) -> Rule | None:
        """`check` as a question decision sharing can re-ask (`Context.client_answer`)."""
        return self.check(client)

    def check(self, client: IPAddress | None) -> Rule | None:
        """`ngx_http_access_handler` (+ `_inet`, `_inet6`, `_unix`): the rule that decides for
        `client` (None: a unix-socket peer), or None when nginx declines. Every unix rule holds
        every unix peer (nginx does not check the path)."""
        if client is None:
            return self.unix[0] if self.unix else None
        n = int(client)
        if client.version == 4:
            rules = self.v4
        elif self.v4 and n >> 32 == _V4_MAPPED:
            rules, n = self.v4, n & 0xFFFFFFFF
        else:
            rules = self.v6
        for rule in rules:
            if n & rule.mask == rule.addr:
                return rule
        return None


def _rule(d: Directive, level: Level, cc: Compiler) -> Rule:
    """`ngx_http_access_rule`: `all`, `unix:` (both exact, case-sensitive) or `ngx_ptocidr`
    text; host bits set in a network only warn ("low address bits ... are meaningless")."""
    value = d.args[0]
    deny = d.name == "deny"
    text = f"{d.name} {value}"
    if value == "all":
        return Rule(deny, ALL, 0, 0, text, d.file, d.line)
    if value == "unix:":
        return Rule(deny, UNIX, 0, 0, text, d.file, d.line)
    parsed = ptocidr(value, d)
    if parsed is None:
        raise error(d, f'invalid parameter "{value}"')
    cidr, host_bits = parsed
    if host_bits:
        cc.warn(d, f"low address bits of {value} are meaningless")
    return Rule(deny, cidr.family, cidr.addr, cidr.mask, text, d.file, d.line)


def _finish(cc: Compiler) -> None:
    """Split each location's merged rule list by family, once per distinct list."""
    memo: dict[int, AccessRules] = {}
    for loc in cc.locations():
        rules: list[Rule] | None = loc.conf.get("access")
        if rules:
            compiled = memo.get(id(rules))
            if compiled is None:
                compiled = memo[id(rules)] = AccessRules(rules)
            loc.conf[_RULES] = compiled


def _handler(r: Context) -> int | None:
    """`ngx_http_access_handler` + `ngx_http_access_found`: OK, 403, or None (declined)."""
    rules: AccessRules | None = r.loc.conf.get(_RULES)
    if rules is None:
        return None
    rule: Rule | None = r.client_answer(rules, rules.answer)  # type: ignore[assignment]
    if r.trace.enabled:
        who = f"client {text_addr(r.client_for_trace()).decode('utf-8', 'surrogateescape')}"
        if rule is None:
            r.trace.add("access", who, "no allow/deny rule matches: declined", r.loc.file, r.loc.line)
        else:
            r.trace.add("access", who, f"{rule.text}: {'403' if rule.deny else 'allowed'}", rule.file, rule.line)
    if rule is None:
        return None
    return 403 if rule.deny else ACCESS_OK


_WHERE = HTTP_MAIN | HTTP_SRV | HTTP_LOC | HTTP_LMT

COMMANDS = (
    Command(DirectiveSpec("allow", _WHERE, TAKE1, Merge.ARRAY), _rule, slot="access"),
    Command(DirectiveSpec("deny", _WHERE, TAKE1, Merge.ARRAY), _rule, slot="access"),
)

MODULE = Module("ngx_http_access_module", COMMANDS, access=_handler, finish=_finish)
