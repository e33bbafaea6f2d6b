"""The trace: every decision nginxsim takes, in order, with the config place that drove it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Step:
    """One step: the phase, what was looked at, what came out, and where in the config."""

    phase: str
    what: str
    result: str
    file: str | None = None
    line: int | None = None

    @property
    def where(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def to_dict(self) -> dict[str, object]:
        return {"phase": self.phase, "what": self.what, "result": self.result,
                "file": self.file, "line": self.line}


StepTuple = tuple[str, str, str, "str | None", "int | None"]


class Trace:
    """Collects steps as plain tuples (Steps are built only when someone reads them);
    `enabled=False` turns recording off for sweeps of many requests."""

    __slots__ = ("steps", "enabled")

    def __init__(self, enabled: bool = True) -> None:
        self.steps: list[StepTuple] = []
        self.enabled = enabled

    def add(self, phase: str, what: str, result: str, file: str | None = None, line: int | None = None) -> None:
        if self.enabled:
            self.steps.append((phase, what, result, file, line))

    def later(self, phase: str, render: Callable[..., tuple[str, str]], args: tuple[Any, ...],
              file: str | None = None, line: int | None = None) -> None:
        """A step whose text is rendered only if someone reads the trace: `render(*args)` gives
        (what, result). The args must be values that do not change afterwards."""
        if self.enabled:
            self.steps.append((phase, render, args, file, line))  # type: ignore[arg-type]


def step(raw: StepTuple) -> Step:
    """A recorded step as a Step, rendering a deferred one."""
    phase, what, result, file, line = raw
    if callable(what):
        what, result = what(*result)
    return Step(phase, what, result, file, line)
