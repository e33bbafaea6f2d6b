"""Directive specifications: nginx's `ngx_command_t` type field, as data.

The bit values are crossplane's (its analyzer encodes nginx's context and argument-count
flags for every stock directive), so the stock table and our modules' own tables speak one
language: a module declares `DirectiveSpec("split_clients", HTTP_MAIN, TAKE2 | BLOCK)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Contexts (where a directive may appear).
MAIN = 0x40000
EVENTS = 0x80000
HTTP_MAIN = 0x2000000
HTTP_SRV = 0x4000000
HTTP_LOC = 0x8000000
HTTP_UPS = 0x10000000
HTTP_SIF = 0x20000000  # `if` inside server
HTTP_LIF = 0x40000000  # `if` inside location
HTTP_LMT = 0x80000000  # limit_except
DIRECT = 0x10000

# Argument counts and kinds.
NOARGS = 0x1
TAKE1 = 0x2
TAKE2 = 0x4
TAKE3 = 0x8
TAKE4 = 0x10
TAKE5 = 0x20
TAKE6 = 0x40
TAKE7 = 0x80
TAKE12 = TAKE1 | TAKE2
TAKE13 = TAKE1 | TAKE3
TAKE23 = TAKE2 | TAKE3
TAKE123 = TAKE1 | TAKE2 | TAKE3
TAKE1234 = TAKE123 | TAKE4
BLOCK = 0x100
FLAG = 0x200
ANY = 0x400
ONEMORE = 0x800
TWOMORE = 0x1000


class Merge(Enum):
    """How a level inherits a directive from the enclosing level (the merge_loc_conf rules)."""

    VALUE = "value"  # inherited unless set at this level (ngx_conf_merge_*_value)
    ARRAY = "array"  # a list inherited whole, only if this level defines none (proxy_set_header...)
    LOCAL = "local"  # never inherited (rewrite scripts, content handlers, blocks)


@dataclass(frozen=True, slots=True)
class DirectiveSpec:
    """What a module says about one of its directives: name, contexts, arguments, merging."""

    name: str
    contexts: int
    args: int
    merge: Merge = Merge.VALUE
