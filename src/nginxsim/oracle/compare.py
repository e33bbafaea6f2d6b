"""Differential checks: what nginxsim decides against what the real nginx did."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .nginx import Nginx
from .wire import OracleRequest, OracleResponse


class UpstreamLike(Protocol):
    @property
    def protocol(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def peer(self) -> str | None: ...
    @property
    def uri(self) -> str | None: ...


class DecisionLike(Protocol):
    """The part of `nginxsim.Decision` that can be checked against nginx's answer."""

    @property
    def status(self) -> int | None: ...
    @property
    def body(self) -> str | None: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def upstream(self) -> UpstreamLike | None: ...


@dataclass(frozen=True)
class Mismatch:
    """One way nginxsim's decision differs from nginx's answer to the same request."""

    request: OracleRequest
    field: str
    nginx: object
    nginxsim: object

    def __str__(self) -> str:
        r = self.request
        return f"{r.method} {r.url} from {r.client}: {self.field}: nginx {self.nginx!r}, nginxsim {self.nginxsim!r}"


def check(request: OracleRequest, decision: DecisionLike, response: OracleResponse) -> list[Mismatch]:
    """Compare one decision with nginx's response.

    Passed upstream: nginx must have sent an upstream request with the same protocol, peer (when
    the decision names one) and URI (when the decision has one; not for gRPC, whose request the
    echo server does not decode). Otherwise: same status (a decision
    of 444 matches a connection closed without answer), same Location, and the same body when the
    decision has one (`return` with text), except for HEAD.
    """
    out: list[Mismatch] = []

    def differ(what: str, nginx: object, sim: object) -> None:
        out.append(Mismatch(request, what, nginx, sim))

    up, rec = decision.upstream, response.upstream
    if up is not None:
        if rec is None:
            differ("upstream", f"no upstream request (status {response.status})", f"{up.protocol} {up.name}")
            return out
        if rec.protocol != up.protocol:
            differ("upstream.protocol", rec.protocol, up.protocol)
        if up.peer is not None and rec.peer != up.peer:
            differ("upstream.peer", rec.peer, up.peer)
        if up.uri is not None and not rec.protocol.startswith("grpc") and rec.uri != up.uri:
            differ("upstream.uri", rec.uri, up.uri)
        return out
    if rec is not None:
        differ("upstream", f"{rec.protocol} {rec.peer} {rec.uri}", None)
    status = 444 if response.status is None and decision.status == 444 else response.status
    if status != decision.status:
        differ("status", response.status, decision.status)
    location = next((v for k, v in decision.headers.items() if k.lower() == "location"), None)
    if location != response.header("Location"):
        differ("Location", response.header("Location"), location)
    if decision.body is not None and request.method != "HEAD":
        body = decision.body.encode("utf-8", "surrogateescape")
        if body != response.body:
            differ("body", response.body, body)
    return out


def compare(
    path: str | os.PathLike[str] | None,
    requests: Iterable[OracleRequest],
    *,
    text: str | None = None,
    files: Mapping[str, str] | None = None,
    prefix: str | os.PathLike[str] | None = None,
    decide: Callable[[OracleRequest], DecisionLike] | None = None,
) -> list[Mismatch]:
    """Route every request with nginxsim (or `decide`) and with a real nginx; list the differences.

    The config is given as `nginxsim.load` takes it. Requests are sent in order to one nginx.
    nginxsim cannot be given `raw` requests, so those are refused.
    """
    reqs = list(requests)
    if any(r.raw is not None for r in reqs):
        raise ValueError("compare() cannot pose raw requests to nginxsim")
    if decide is None:
        import nginxsim

        cfg = nginxsim.load(
            None if path is None else os.fspath(path),
            text=text,
            files=files,
            prefix=None if prefix is None else os.fspath(prefix),
        )

        def decide(r: OracleRequest) -> DecisionLike:
            return cfg.route(
                r.client,
                r.url,
                method=r.method,
                headers=list(r.headers),
                server_addr=r.server_addr,
                http_version=r.http_version,
                absolute_form=r.absolute_form,
                proxy_protocol=r.proxy_protocol,
            )

    decisions = [decide(r) for r in reqs]
    with Nginx(path, text=text, files=files, prefix=prefix) as ng:
        responses = ng.request_many(reqs)
    return [m for r, d, resp in zip(reqs, decisions, responses, strict=True) for m in check(r, d, resp)]
