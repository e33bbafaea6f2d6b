"""The directive tree: what reading a config produces and everything downstream consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Directive:
    """One directive as nginx sees it after its tokenizer: unescaped args, with its place.

    `quoted[i]` tells whether args[i] was written in quotes (nginx treats a quoted `"~"` or
    `"default"` differently from a bare one in a few places). `block` is None for a simple
    directive and a tuple of children for a block directive; `end_line` is the line of its
    closing "}" (where nginx reports what a block handler finds once the block is read).
    """

    name: str
    args: tuple[str, ...]
    file: str
    line: int
    block: tuple[Directive, ...] | None = None
    quoted: tuple[bool, ...] = field(default=())
    end_line: int | None = None
    # the include lines that read it (file, line), outermost first: provenance, not identity
    via: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"
