"""Decisions shared between clients: route a request template once per *kind* of client.

For one request template (everything but the client), nginx's decision depends on the client
only through what it reads of the client. In a canary config that is a geo group and a
split_clients bucket: a handful of values, whatever the address. A template's first client is
routed plainly (most templates never see a second); the next ones are routed by a `Recorder`,
which notes, in order, the questions the route asks whose answer may differ between clients:
*client leaves* (variables that are pure functions of the client, `Variable.client_leaf`), pure
functions of the client such as the allow/deny rule that holds (`Context.client_answer`), and
the file system (lookups, realpath, reads). The decision is stored in a tree keyed by those
answers; a later client answers the same questions and gets the stored decision.

Sound because routing is deterministic: with the same template and the same answers so far,
the route asks the same next question and, if it reads the client no other way, takes the same
decision. A route that does (`$remote_addr` in a header, realip, ip_hash, the default
`$request_id`...) is marked `SENSITIVE` and always routed in full.

What a stored decision cannot share (its trace, variables, the upstream request's headers and
params, log lines: they may show the client) is computed when first read, by routing that
client in full.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable, Hashable
from dataclasses import fields
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, NamedTuple

from ..decision import Decision, Upstream
from . import engine
from .context import Context, IPAddress
from .files import FOLLOW, FileInfo, Files, Symlinks
from .request import CLIENT_PORT, Request
from .trace import Trace
from .variables import CLIENT_INPUTS, Variable, remote_addr_text, text_addr

if TYPE_CHECKING:
    from ..plan import Plan

SENSITIVE: Any = object()  # a node whose decision reads the client beyond its leaves


class Question(NamedTuple):
    """Something a route asked whose answer may differ between its clients; `what` names it: the
    client leaf's Variable, the key given to `Context.client_answer`, or ("stat", path, symlinks
    mode), ("realpath", path), ("read", path)."""

    what: object
    answer: Callable[[IPAddress | None, bytes, int], Hashable]  # of (client, $remote_addr, port)


class Node:
    """A point of the tree: the question the route asks next and a child per answer, or (once
    `question` is None) the decision every client reaching it gets."""

    __slots__ = ("question", "children", "decision")

    def __init__(self) -> None:
        self.question: Question | None = None
        self.children: dict[Hashable, Node] = {}
        self.decision: Any = None  # shareable fields, SENSITIVE, or None while unknown

    def insert(self, answers: list[tuple[Question, Hashable]], decision: Any) -> None:
        """Store a recorded route: its questions and answers in order, then its decision."""
        node = self
        for question, answer in answers:
            if node.question is None:
                node.question = question
            elif node.question.what != question.what:  # cannot happen for a deterministic route
                node.decision = SENSITIVE
                return
            node = node.children.setdefault(answer, Node())
        node.decision = decision


def _watched(name: str) -> Any:
    """A Context slot whose reads count as reading the client (outside a leaf)."""
    slot = Context.__dict__[name]

    def read(self: Recorder) -> Any:
        if not self.in_leaf:
            self.sensitive = True
        return slot.__get__(self)

    return property(read, slot.__set__)


_CLIENT_SLOT, _PORT_SLOT = Context.__dict__["client"], Context.__dict__["client_port"]


class Recorder(Context):
    """A Context that notes the questions a route asks (client leaves, the file system) and
    whether it reads the client any other way."""

    __slots__ = ("answers", "in_leaf", "sensitive")

    def __init__(self, plan: Plan, request: Request, trace: Trace, pinned: dict[str, bytes]) -> None:
        self.answers: list[tuple[Question, Hashable]] = []
        self.in_leaf = False
        self.sensitive = False
        super().__init__(plan, request, trace, pinned)

    client = _watched("client")
    client_port = _watched("client_port")
    realip_client = _watched("realip_client")
    realip_port = _watched("realip_port")

    def get(self, var: Variable) -> bytes | None:
        self._input(var)
        return super().get(var)

    def get_indexed(self, var: Variable) -> bytes | None:
        self._input(var)
        return super().get_indexed(var)

    def _input(self, var: Variable) -> None:
        """A client input read outside a leaf may be a cached value (first read by a leaf):
        it counts as reading the client."""
        if var.name in CLIENT_INPUTS and not self.in_leaf:
            self.sensitive = True

    def _evaluate(self, var: Variable) -> bytes | None:
        leaf = var.client_leaf
        if leaf is None or self.in_leaf:
            return super()._evaluate(var)
        self.in_leaf = True
        try:
            value = super()._evaluate(var)
            if value != leaf(self.client, remote_addr_text(self.client, self.request), self.client_port):
                self.sensitive = True  # the leaf function disagrees with the getter: never share
        finally:
            self.in_leaf = False
        self.answers.append((Question(var, leaf), value))
        return value

    def lookup(self, path: bytes, symlinks: Symlinks = FOLLOW) -> FileInfo | int:
        """A stat, keyed by the `disable_symlinks` mode it was asked under."""
        info = super().lookup(path, symlinks)
        files = self.plan.files
        self.answers.append((Question(("stat", path, symlinks), lambda client, text, port: files.find(path, symlinks)),
                             info))
        return info

    def realpath(self, path: bytes) -> bytes | None:
        real = super().realpath(path)
        files = self.plan.files
        self.answers.append((Question(("realpath", path), lambda client, text, port: files.realpath(path)), real))
        return real

    def client_answer(self, key: object, answer: Callable[[IPAddress | None, bytes, int], Hashable]) -> Hashable:
        client = _CLIENT_SLOT.__get__(self)
        request = self.request
        if client is not request.client:  # replaced (realip): not what a later client is asked with
            self.sensitive = True
        value = answer(client, remote_addr_text(client, request), _PORT_SLOT.__get__(self))
        self.answers.append((Question(key, answer), value))
        return value

    def client_for_trace(self) -> IPAddress | None:
        return _CLIENT_SLOT.__get__(self)  # type: ignore[no-any-return]

    def read_file(self, path: bytes) -> bytes:
        files = self.plan.files
        found = _contents(files, path)
        self.answers.append((Question(("read", path), lambda client, text, port: _contents(files, path)), found))
        if isinstance(found, int):
            raise OSError(found, os.strerror(found), path)
        return found


def _contents(files: Files, path: bytes) -> bytes | int:
    """A file's contents, or the errno reading it fails with (an answer a later client compares)."""
    try:
        return files.read(path)
    except OSError as e:
        return e.errno or errno.EIO


class SharedDecision(Decision):
    """A stored decision given to another client of the same kind: the stored fields, and the
    client's own route (run when first needed) for the rest (see `_own_fields`)."""

    _args: tuple[Any, ...]  # how to route the client in full
    _full: Decision | None = None

    def full(self) -> Decision:
        if self._full is None:
            plan, template, client, text, pinned, trace, preludes, down = self._args
            request = template.with_client(client, text=text)
            self._full = engine.run(Context(plan, request, Trace(trace), pinned), preludes, down)
        return self._full


class SharedUpstream(Upstream):
    """The upstream of a SharedDecision: the peer is shared, the request built for the client."""

    _decision: SharedDecision

    def full(self) -> Upstream:
        up = self._decision.full().upstream
        assert up is not None
        return up


class _FromFull:
    """A field each client has for itself, read from its own route (`full()`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else getattr(obj.full(), self.name)


def _own_fields(shared: type[Any], cls: type[Any]) -> frozenset[str]:
    """The fields of `cls` a shared copy must not take from the recorded client: the trace steps
    and every function (closures over that client's request, e.g. how to collect variables or
    build the upstream request), read from the client's own route instead; caches, which the copy
    fills for itself."""
    own = {f.name for f in fields(cls) if f.name == "steps" or "Callable" in str(f.type)}
    for name in own:
        setattr(shared, name, _FromFull(name))
    return frozenset(own | {f.name for f in fields(cls) if f.name.startswith("_")})


_OWN = _own_fields(SharedDecision, Decision) | _own_fields(SharedUpstream, Upstream)


def _shareable(decision: Decision) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The fields of a recorded decision that every client of its kind gets."""
    up = decision.upstream
    fields = _fields(decision)
    fields["upstream"] = None  # a shared copy makes its own (the recorded one holds its request)
    return fields, _fields(up) if up is not None else None


def _classes(fields: dict[str, Any], up_fields: dict[str, Any] | None) -> tuple[type[SharedDecision],
                                                                                type[SharedUpstream] | None]:
    """Shared fields as the class attributes of subclasses: a shared copy is then an instance
    holding only how to route its client in full. Made when a second client of the kind comes
    (a class costs as much as a route, and most request templates are seen once)."""
    shared_up = type("SharedUpstream", (SharedUpstream,), up_fields) if up_fields is not None else None
    return type("SharedDecision", (SharedDecision,), fields), shared_up


def _fields(obj: object) -> dict[str, Any]:
    return {k: v for k, v in obj.__dict__.items() if k not in _OWN}


def route(plan: Plan, known: tuple[Request, dict[Any, Any], dict[Any, Node]], client: IPAddress | None,
          text_given: str, pinned: dict[str, bytes], trace: bool, down: frozenset[str]) -> Decision:
    """`engine.route` for `client` sending a request template (`known`: the template, its
    preludes, its trees), sharing decisions between clients of a kind."""
    template, preludes, roots = known
    family = type(client)  # the prelude (listen, server) depends on it
    key = (family, tuple(pinned.items()), down) if pinned or down else family
    root = roots.get(key)
    if root is None:  # a template's first client is routed plainly: most templates never see a second
        roots[key] = Node()
        return engine.run(Context(plan, template.with_client(client, text=text_given), Trace(trace), pinned),
                          preludes, down)
    node = root
    question = node.question
    if question is not None:
        text = text_given.encode() if family is IPv4Address else text_addr(client)  # $remote_addr
        while question is not None:
            child = node.children.get(question.answer(client, text, CLIENT_PORT))
            if child is None:
                break
            node = child
            question = node.question
    shared = node.decision
    if shared is None or shared is SENSITIVE:
        request = template.with_client(client, text=text_given)
        if shared is SENSITIVE:
            return engine.run(Context(plan, request, Trace(trace), pinned), preludes, down)
        recorder = Recorder(plan, request, Trace(trace), pinned)
        decision = engine.run(recorder, preludes, down)
        root.insert(recorder.answers, SENSITIVE if recorder.sensitive else _shareable(decision))
        return decision
    if type(shared[0]) is dict:
        shared = node.decision = _classes(*shared)
    shared_decision, shared_upstream = shared
    d: SharedDecision = _new(shared_decision)
    d._args = (plan, template, client, text_given, pinned, trace, preludes, down)
    if shared_upstream is not None:
        up = d.upstream = _new(shared_upstream)
        up._decision = d
    return d


_new = object.__new__
