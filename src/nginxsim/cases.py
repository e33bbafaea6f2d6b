"""Case files: declarative checks of what nginx does with requests, and the runner behind
`nginxsim check`, the pytest plugin and `nginxsim.testing.assert_route`.

A case file (`*.nginxsim.yaml`, JSON accepted) names a config, request defaults and cases:

    config: nginx.conf
    defaults: {url: "http://shop.example.com/"}
    cases:
      - name: testers on the 30% slice go to alpha
        request: {client: 128.32.1.5, url: "http://shop.example.com/cart"}
        expect: {variables: {instance: alpha}, upstream: {name: app_alpha_django}}

Every value keeps the line it was read from, so a bad field is reported as `file:line: message`
and a failure points at its case. List-valued request fields (client, url, method...) expand to
every combination. docs/testing.md is the reference of the format.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .config import Config
from .decision import Decision, Headers, Place
from .errors import LocatedError, RequestError, UndefinedBehavior

CASE_SUFFIXES = (".nginxsim.yaml", ".nginxsim.yml", ".nginxsim.json")
DEFAULT_CLIENT = "127.0.0.1"
DEFAULT_URL = "http://localhost/"
RAND_LIMIT = 1 << 31  # libc random() returns 0 <= n < 2**31


class CaseFileError(LocatedError, ValueError):
    """A case file (or `assert_route` argument) that cannot be read: `file:line: message`."""


def is_case_file(name: str) -> bool:
    return name.endswith(CASE_SUFFIXES)


# ---------------------------------------------------------------------------------------------
# Reading: YAML or JSON into Nodes that remember their line.


@dataclass(frozen=True, slots=True)
class Node:
    """A value read from a case file and its line (the line of its key inside a mapping).

    `value` is None, bool, int, float, str, list[Node] or dict[str, Node] (or, from Python, a
    compiled regex); `text` is a scalar as written, so `on` or `1.0` stay text where text is
    expected (None for null)."""

    value: Any
    line: int | None
    text: str | None = None


class Source:
    """Where Nodes come from, for error messages: the file name (None for values from Python)."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def error(self, message: str, node: Node | None) -> CaseFileError:
        return CaseFileError(message, self.file, node.line if node is not None else None)


def read_nodes(path: str) -> Node:
    """Parse a case file into Nodes; JSON when the name ends in `.json`, else YAML."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise CaseFileError(f"cannot read the case file: {e}", path) from None
    return _json_nodes(text, path) if path.endswith(".json") else _yaml_nodes(text, path)


def _yaml_nodes(text: str, file: str) -> Node:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise CaseFileError("the case file is empty", file, 1)
        return _from_yaml(loader, root, root.start_mark.line + 1, file)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise CaseFileError(f"invalid YAML: {e.problem or e.context}", file,
                            mark.line + 1 if mark is not None else None) from None
    except yaml.YAMLError as e:
        raise CaseFileError(f"invalid YAML: {e}", file) from None
    finally:
        loader.dispose()


def _from_yaml(loader: yaml.SafeLoader, node: yaml.Node, line: int, file: str) -> Node:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # `<<: *anchor` merge keys
        out: dict[str, Node] = {}
        for key, value in node.value:
            key_line = key.start_mark.line + 1
            if not isinstance(key, yaml.ScalarNode):
                raise CaseFileError("a field name must be text", file, key_line)
            if key.value in out:
                raise CaseFileError(f'duplicate field "{key.value}" (first at line {out[key.value].line})',
                                    file, key_line)
            out[key.value] = _from_yaml(loader, value, key_line, file)
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_from_yaml(loader, item, item.start_mark.line + 1, file) for item in node.value], line)
    value = loader.construct_object(node)
    return Node(value, line, None if value is None else str(node.value))


_JSON_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None,
                                  "NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")


def _json_nodes(text: str, file: str) -> Node:
    """JSON with lines: `json` validates (and words the errors), then a small walker over the
    now well-formed text records where each value starts."""
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise CaseFileError(f"invalid JSON: {e.msg}", file, e.lineno) from None
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line_of(i: int) -> int:
        return bisect.bisect_left(newlines, i) + 1

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\n\r":
            i += 1
        return i

    def string(i: int) -> tuple[str, int]:
        """The string whose opening quote is at i, and where it ends."""
        j = i + 1
        while text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        decoded: str = json.loads(text[i : j + 1])
        return decoded, j + 1

    def value(i: int, line: int) -> tuple[Node, int]:
        c = text[i]
        if c == "{":
            out: dict[str, Node] = {}
            i = skip(i + 1)
            while text[i] != "}":
                key_line = line_of(i)
                key, i = string(i)
                if key in out:
                    raise CaseFileError(f'duplicate field "{key}" (first at line {out[key].line})', file, key_line)
                out[key], i = value(skip(skip(i) + 1), key_line)  # past the ':'
                i = skip(i)
                if text[i] == ",":
                    i = skip(i + 1)
            return Node(out, line), i + 1
        if c == "[":
            items: list[Node] = []
            i = skip(i + 1)
            while text[i] != "]":
                item, i = value(i, line_of(i))
                items.append(item)
                i = skip(i)
                if text[i] == ",":
                    i = skip(i + 1)
            return Node(items, line), i + 1
        if c == '"':
            s, end = string(i)
            return Node(s, line, s), end
        m = _JSON_NUMBER.match(text, i)
        if m is not None:
            written = m.group()
            number: int | float = float(written) if m.group(1) or m.group(2) else int(written)
            return Node(number, line, written), m.end()
        word = next(w for w in _JSON_LITERALS if text.startswith(w, i))
        found = _JSON_LITERALS[word]
        return Node(found, line, None if found is None else word), i + len(word)

    start = skip(0)
    return value(start, line_of(start))[0]


def python_nodes(value: Any) -> Node:
    """Nodes for values given from Python (`assert_route`): no lines, regexes kept as such."""
    if isinstance(value, Mapping):
        return Node({str(k): python_nodes(v) for k, v in value.items()}, None)
    if isinstance(value, (list, tuple)):
        return Node([python_nodes(v) for v in value], None)
    if value is None or isinstance(value, re.Pattern):
        return Node(value, None)
    if isinstance(value, bool):
        return Node(value, None, str(value).lower())
    return Node(value, None, str(value))


# ---------------------------------------------------------------------------------------------
# Expectations: what a field must be.


@dataclass(frozen=True, slots=True)
class Want:
    """One expected value: text (a number is compared as text), a regex (`{regex: ...}`, searched
    for, as nginx searches its regexes), or none (`null` or `""`: absent or empty)."""

    text: str | None
    regex: re.Pattern[str] | None = None
    number: bool = False  # shown unquoted, like the number it is compared with

    def test(self, got: object) -> bool:
        shown = None if got is None else str(got)
        if self.regex is not None:
            return shown is not None and self.regex.search(shown) is not None
        if self.text is None:
            return not shown
        return shown == self.text

    def __str__(self) -> str:
        if self.regex is not None:
            return f"a match for /{self.regex.pattern}/"
        if self.text is None:
            return "none"
        return self.text if self.number else repr(self.text)


@dataclass(frozen=True, slots=True)
class PlaceWant(Want):
    """An expected server or location: as written (`/static`, `~ \\.php$`, `@fallback`; a server
    by any of its names), `file:line` (the file as a path suffix), a regex on the label, or none
    (no location matched: the server level answered)."""

    def test(self, got: object) -> bool:
        place = got if isinstance(got, Place) else None
        if place is None:
            return self.text is None and self.regex is None
        if self.regex is not None:
            return self.regex.search(place.label) is not None
        return self.text is not None and (self.text in _place_names(place) or _same_place(self.text, place))


def _place_names(place: Place) -> tuple[str, ...]:
    """How a case may name a block: its label, the label without `location `, a server's names."""
    if place.label.startswith("location "):
        return place.label, place.label[len("location "):]
    if place.label.startswith("server "):
        return (place.label, *place.label[len("server "):].split())
    return (place.label,)


_WHERE = re.compile(r"(.+):(\d+)")


def _same_place(text: str, place: Place) -> bool:
    """`file:line` naming this block: the line, and the file as the last components of its path."""
    m = _WHERE.fullmatch(text)
    if m is None or place.file is None or int(m.group(2)) != place.line:
        return False
    want = Path(m.group(1)).parts
    return Path(place.file).parts[-len(want):] == want


@dataclass(frozen=True, slots=True)
class Check:
    """One field to check: its dotted name, what it must be, and how to read it from an outcome."""

    field: str
    want: Want
    read: Callable[[Outcome], object]


@dataclass(frozen=True, slots=True)
class Failure:
    """A field that differs: `expected X, got Y (field F)`."""

    field: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"expected {self.expected}, got {self.got} (field {self.field})"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "expected": self.expected, "got": self.got}


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision and the peer it reached (the `rand`-driven pick for a random balancer)."""

    decision: Decision
    peer: str | None


def _shown(got: object) -> str:
    if got is None:
        return "none"
    if isinstance(got, Place):
        return str(got)
    return repr(got) if isinstance(got, str) else str(got)


# ---------------------------------------------------------------------------------------------
# The schema.

REQUEST_FIELDS = ("client", "url", "method", "headers", "server_addr", "http_version", "absolute_form",
                  "proxy_protocol", "pinned", "down", "rand")
EXPANDING = ("client", "url", "method", "server_addr", "http_version", "proxy_protocol")
EXPECT_FIELDS = ("status", "body", "headers", "location", "server", "upstream", "variables", "file", "redirects",
                 "uri", "args")
UPSTREAM_FIELDS = ("protocol", "name", "peer", "uri", "method", "headers", "params", "wsgi_environ")


@dataclass(frozen=True, slots=True)
class Request:
    """One request as `Config.route` takes it, plus `rand`: the numbers libc `random()` returns,
    for a `random` balancer's pick."""

    client: str = DEFAULT_CLIENT
    url: str = DEFAULT_URL
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    server_addr: str | None = None
    http_version: str = "1.1"
    absolute_form: bool = False
    proxy_protocol: str | None = None
    pinned: tuple[tuple[str, str], ...] = ()
    down: tuple[str, ...] = ()
    rand: tuple[int, ...] | None = None
    varies: tuple[tuple[str, str], ...] = ()  # the expanded fields' values, to tell combinations apart

    def describe(self) -> str:
        text = f"{self.client} {self.method} {self.url}"
        extra = [f"{k}: {v}" for k, v in self.headers]
        if self.down:
            extra.append("down " + ", ".join(self.down))
        return text + (f" ({'; '.join(extra)})" if extra else "")

    def route(self, cfg: Config) -> Outcome:
        """Route it; with `rand`, a `random` group's pick is made with those numbers."""
        d = cfg.route(self.client, self.url, method=self.method, headers=self.headers, server_addr=self.server_addr,
                      http_version=self.http_version, absolute_form=self.absolute_form,
                      pinned=dict(self.pinned), proxy_protocol=self.proxy_protocol, down=self.down)
        up = d.upstream
        peer = up.peer if up is not None else None
        if up is not None and peer is None and self.rand is not None and up.name.lower() in cfg.plan.upstreams:
            picked = cfg.upstream(up.name).pick(down=self.down, rand=_rand(self.rand))
            peer = picked.address if picked is not None else None
        return Outcome(d, peer)

    def to_dict(self) -> dict[str, Any]:
        return {"client": self.client, "url": self.url, "method": self.method,
                "headers": [list(h) for h in self.headers], "server_addr": self.server_addr,
                "http_version": self.http_version, "absolute_form": self.absolute_form,
                "proxy_protocol": self.proxy_protocol, "pinned": dict(self.pinned), "down": list(self.down),
                "rand": list(self.rand) if self.rand is not None else None}


def _rand(numbers: tuple[int, ...]) -> Callable[[], int]:
    """`ngx_random()` as the case gives it: each call returns the next number."""
    it = iter(numbers)

    def draw() -> int:
        n = next(it, None)
        if n is None:
            raise RequestError(f"rand: the {len(numbers)} numbers given ran out")
        return n

    return draw


@dataclass(frozen=True, slots=True)
class Case:
    """One case: its name and place, the requests it expands to, the checks each must pass."""

    name: str
    file: str | None
    line: int | None
    requests: tuple[Request, ...]
    checks: tuple[Check, ...]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A parsed case file: the config it names (absolute; None if it names none) and its cases."""

    path: str
    config: str | None
    cases: tuple[Case, ...]


def load(path: str | os.PathLike[str]) -> CaseFile:
    """Read and check a case file; raises CaseFileError (`file:line: message`)."""
    file = os.fspath(path)
    src = Source(file)
    root = read_nodes(file)
    top = _mapping(src, root, "the case file", ("config", "defaults", "cases"))
    config = None
    if "config" in top:
        config = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(file)),
                                               _text(src, top["config"], "config")))
    defaults = _mapping(src, top["defaults"], "defaults", REQUEST_FIELDS) if "defaults" in top else {}
    if "cases" not in top:
        raise src.error('no "cases" list', root)
    listed = top["cases"]
    if not isinstance(listed.value, list) or not listed.value:
        raise src.error('"cases" must be a list of cases', listed)
    cases: list[Case] = []
    names: dict[str, int | None] = {}
    for item in listed.value:
        case = parse_case(src, item, defaults)
        if case.name in names:
            raise src.error(f'duplicate case name "{case.name}" (first at line {names[case.name]})', item)
        names[case.name] = case.line
        cases.append(case)
    return CaseFile(file, config, tuple(cases))


def parse_case(src: Source, node: Node, defaults: Mapping[str, Node]) -> Case:
    fields = _mapping(src, node, "a case", ("name", "request", "expect"))
    name = _text(src, fields["name"], "name") if "name" in fields else f"line {node.line}"
    if not name.strip():
        raise src.error("name: a case's name cannot be empty", fields["name"])
    request = _mapping(src, fields["request"], "request", REQUEST_FIELDS) if "request" in fields else {}
    if "expect" not in fields:
        raise src.error(f'case "{name}" has no "expect"', node)
    return Case(name, src.file, node.line, tuple(expand_requests(src, request, defaults)),
                tuple(parse_expect(src, fields["expect"])))


def expand_requests(src: Source, given: Mapping[str, Node], defaults: Mapping[str, Node]) -> Iterator[Request]:
    """The requests a case poses: defaults under its own fields, lists expanded in order."""
    merged = {**defaults, **given}
    for table in ("headers", "pinned"):
        if table in defaults and table in given:
            own = _mapping(src, given[table], table)
            names = {_key(k) for k in own}
            kept = {k: v for k, v in _mapping(src, defaults[table], table).items() if _key(k) not in names}
            merged[table] = Node({**kept, **own}, given[table].line)
    base: dict[str, Any] = {}
    if "headers" in merged:
        base["headers"] = tuple((k, _text(src, v, f"headers.{k}")) for k, v in
                                _mapping(src, merged["headers"], "headers").items())
    if "pinned" in merged:
        base["pinned"] = tuple((k.lstrip("$"), _text(src, v, f"pinned.{k}")) for k, v in
                               _mapping(src, merged["pinned"], "pinned").items())
    if "down" in merged:
        base["down"] = tuple(_text(src, v, "down") for v in _items(merged["down"]))
    if "rand" in merged:
        base["rand"] = tuple(_rand_number(src, v) for v in _items(merged["rand"]))
    if "absolute_form" in merged:
        base["absolute_form"] = _flag(src, merged["absolute_form"], "absolute_form")
    choices: list[list[tuple[str, Any]]] = []
    for name in EXPANDING:
        if name in merged:
            options = _items(merged[name])
            if not options:
                raise src.error(f"{name}: an empty list", merged[name])
            choices.append([(name, _text(src, v, name)) for v in options])
    if "http_version" in merged:
        for v in _items(merged["http_version"]):
            if _text(src, v, "http_version") not in ("1.1", "1.0", "0.9"):
                raise src.error(f'http_version must be "1.1", "1.0" or "0.9", not {v.text!r}', v)
    for combo in itertools.product(*choices):
        varies = tuple((k, v) for (k, v), options in zip(combo, choices, strict=True) if len(options) > 1)
        yield Request(**base, **dict(combo), varies=varies)


def _key(name: str) -> str:
    """A header or pinned variable name as compared: case-insensitive, `$` optional."""
    return name.lower().lstrip("$")


def _items(node: Node) -> list[Node]:
    return node.value if isinstance(node.value, list) else [node]


def parse_expect(src: Source, node: Node) -> Iterator[Check]:
    """The checks of an `expect:` mapping, in the order written."""
    for name, value in _mapping(src, node, "expect", EXPECT_FIELDS).items():
        if name == "status" and not isinstance(value.value, (dict, re.Pattern)):
            number = _number(src, value, name)
            yield Check(name, Want(None if number is None else str(number), number=True), _READERS[name])
        elif name == "redirects":
            yield Check(name, Want(str(_count(src, value, name)), number=True), _READERS[name])
        elif name in ("location", "server"):
            yield Check(name, _want(src, value, name, PlaceWant), _READERS[name])
        elif name == "headers":
            yield from _table_checks(src, value, "headers", lambda o: o.decision.headers)
        elif name == "variables":
            for var, want in _mapping(src, value, "variables").items():
                yield Check(f"variables.{var.lstrip('$')}", _want(src, want, f"variables.{var}", Want),
                            _variable_reader(var.lstrip("$")))
        elif name == "upstream":
            yield from _upstream_checks(src, value)
        else:
            yield Check(name, _want(src, value, name, Want), _READERS[name])


_READERS: dict[str, Callable[[Outcome], object]] = {
    "status": lambda o: o.decision.status,
    "redirects": lambda o: o.decision.redirects,
    "location": lambda o: _location(o.decision),
    "server": lambda o: o.decision.server,
    "body": lambda o: o.decision.body,
    "file": lambda o: o.decision.file,
    "uri": lambda o: o.decision.uri,
    "args": lambda o: o.decision.args,
}


def _location(d: Decision) -> Place | None:
    """The location, None when none matched and the server level answered."""
    return d.location if d.location is not None and d.location.kind != "server" else None


def _variable_reader(name: str) -> Callable[[Outcome], object]:
    return lambda o: o.decision.variables.get(name)


def _upstream_checks(src: Source, node: Node) -> Iterator[Check]:
    """`upstream:` none, a group name, or a mapping of the upstream request's fields."""
    if not isinstance(node.value, dict):
        want = _want(src, node, "upstream", Want)
        if want.text is None and want.regex is None:
            yield Check("upstream", want, lambda o: o.decision.upstream.name if o.decision.upstream else None)
        else:
            yield Check("upstream.name", want, _upstream_field("name"))
        return
    for name, value in _mapping(src, node, "upstream", UPSTREAM_FIELDS).items():
        if name in ("headers", "params", "wsgi_environ"):
            yield from _table_checks(src, value, f"upstream.{name}", _upstream_table(name))
        else:
            yield Check(f"upstream.{name}", _want(src, value, f"upstream.{name}", Want), _upstream_field(name))


def _upstream_field(name: str) -> Callable[[Outcome], object]:
    """A field of the upstream request; `peer` is the outcome's (a `rand` pick when there is one)."""
    def read(o: Outcome) -> object:
        up = o.decision.upstream
        if up is None:
            return None
        return o.peer if name == "peer" else getattr(up, name)

    return read


def _upstream_table(name: str) -> Callable[[Outcome], Mapping[str, str] | None]:
    def read(o: Outcome) -> Mapping[str, str] | None:
        up = o.decision.upstream
        return getattr(up, name) if up is not None else None

    return read


def _table_checks(src: Source, node: Node, where: str,
                  table: Callable[[Outcome], Mapping[str, str] | None]) -> Iterator[Check]:
    """Checks of a header-like table: one per name, case-insensitive for header lines; repeated
    lines are compared joined with ", "."""
    for key, value in _mapping(src, node, where).items():
        yield Check(f"{where}.{key}", _want(src, value, f"{where}.{key}", Want), _cell(table, key))


def _cell(table: Callable[[Outcome], Mapping[str, str] | None], key: str) -> Callable[[Outcome], object]:
    def read(o: Outcome) -> object:
        found = table(o)
        if found is None:
            return None
        if isinstance(found, Headers):
            lines = found.get_all(key)
            return ", ".join(lines) if lines else None
        return found.get(key)

    return read


_W = TypeVar("_W", Want, PlaceWant)


def _want(src: Source, node: Node, name: str, kind: type[_W]) -> _W:
    value = node.value
    if isinstance(value, re.Pattern):
        return kind(None, value)
    if isinstance(value, dict):
        fields = _mapping(src, node, name, ("regex",))
        if "regex" not in fields:
            raise src.error(f'{name}: a mapping here must be {{regex: "..."}}', node)
        pattern = _text(src, fields["regex"], f"{name}.regex")
        try:
            return kind(None, re.compile(pattern))
        except re.error as e:
            raise src.error(f"{name}.regex: invalid regex: {e}", fields["regex"]) from None
    if isinstance(value, list):
        raise src.error(f"{name}: expected a value, not a list", node)
    return kind(node.text or None)


def _mapping(src: Source, node: Node, what: str, allowed: Sequence[str] | None = None) -> dict[str, Node]:
    if not isinstance(node.value, dict):
        raise src.error(f"{what}: expected a mapping, got {_kind(node)}", node)
    fields: dict[str, Node] = node.value
    if allowed is not None:
        for key, value in fields.items():
            if key not in allowed:
                raise src.error(f'unknown field "{key}" in {what} (known: {", ".join(allowed)})', value)
    return fields


def _text(src: Source, node: Node, what: str) -> str:
    if node.text is None or isinstance(node.value, (dict, list)):
        raise src.error(f"{what}: expected text, got {_kind(node)}", node)
    return node.text


def _number(src: Source, node: Node, what: str) -> int | None:
    if node.value is None or node.text == "":
        return None
    if isinstance(node.value, bool) or not isinstance(node.value, int):
        raise src.error(f"{what}: expected a number, got {_kind(node)}", node)
    return node.value


def _count(src: Source, node: Node, what: str) -> int:
    n = _number(src, node, what)
    if n is None or n < 0:
        raise src.error(f"{what}: expected a count, got {_kind(node)}", node)
    return n


def _flag(src: Source, node: Node, what: str) -> bool:
    if not isinstance(node.value, bool):
        raise src.error(f"{what}: expected true or false, got {_kind(node)}", node)
    return node.value


def _rand_number(src: Source, node: Node) -> int:
    n = _number(src, node, "rand")
    if n is None or not 0 <= n < RAND_LIMIT:
        raise src.error(f"rand: each number must be in [0, 2**31), not {node.text}", node)
    return n


def _kind(node: Node) -> str:
    if isinstance(node.value, dict):
        return "a mapping"
    if isinstance(node.value, list):
        return "a list"
    return "null" if node.value is None else repr(node.text)


# ---------------------------------------------------------------------------------------------
# Running.


@dataclass(eq=False)
class RequestResult:
    """One request of a case: its outcome (None if the request could not be posed) and what differs."""

    request: Request
    outcome: Outcome | None
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    def report(self) -> str:
        """The failures, then the trace of the failing request (read only now: it costs a route)."""
        lines = [f"request: {self.request.describe()}"]
        if self.error is not None:
            lines.append(f"error: {self.error}")
        lines += [str(f) for f in self.failures]
        if self.outcome is not None:
            lines.append("trace:")
            lines += ["  " + line for line in self.outcome.decision.explain().splitlines()]
        return "\n".join(lines)


@dataclass(eq=False)
class CaseResult:
    case: Case
    results: list[RequestResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def report(self) -> str:
        """Every failing request of the case, each with its failures and trace."""
        out = []
        for r in self.results:
            if not r.passed:
                label = ", ".join(f"{k}={v}" for k, v in r.request.varies)
                out.append((f"[{label}]\n" if label else "") + r.report())
        return "\n".join(out)


def python_case(request: str | Mapping[str, Any], expect: Mapping[str, Any], name: str) -> Case:
    """A case given from Python (`assert_route`): a URL or a request mapping as in a case file,
    and expectations as in `expect:` (a compiled regex where a regex is meant)."""
    src = Source(None)
    fields = python_nodes({"url": request} if isinstance(request, str) else request)
    given = _mapping(src, fields, "request", REQUEST_FIELDS)
    checks = tuple(parse_expect(src, python_nodes(expect)))
    return Case(name, None, None, tuple(expand_requests(src, given, {})), checks)


def run_request(cfg: Config, request: Request, checks: Sequence[Check]) -> RequestResult:
    """Route one request and apply the checks; an unposable request is an error, not a crash."""
    try:
        outcome = request.route(cfg)
    except (RequestError, UndefinedBehavior) as e:
        return RequestResult(request, None, error=str(e))
    result = RequestResult(request, outcome)
    for check in checks:
        got = check.read(outcome)
        if not check.want.test(got):
            result.failures.append(Failure(check.field, str(check.want), _shown(got)))
    return result


def run_case(cfg: Config, case: Case) -> CaseResult:
    return CaseResult(case, [run_request(cfg, r, case.checks) for r in case.requests])
