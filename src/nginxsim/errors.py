"""The kinds of bad input nginxsim reports: a config nginx would refuse, a bad request, a bad case file."""

from __future__ import annotations


class LocatedError(Exception):
    """An error about a place in a file: printed `file:line: message` (or less, when unknown)."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(LocatedError):
    """A configuration that `nginx -t` rejects, located like nginx locates it.

    `message` uses nginx's wording (e.g. ``unknown directive "proxy_passs"``); `line` is None
    where nginx names no line (e.g. a missing main file).
    """


class RequestError(ValueError):
    """A request nginxsim cannot pose to nginx (invalid client address, URL, header...).

    Distinct from requests nginx answers with 400: those are Decisions, not errors.
    """


class UndefinedBehavior(ConfigError):
    """A request for which nginx 1.22.1's answer is undefined (memory overrun or garbage bytes).

    nginxsim refuses to guess; `file`/`line` name the directive that would misbehave.
    """
