"""Every configuration of the shared corpus loads, as `nginx -t` (1.22.1) accepts them all.

One test per entry. The corpus is read in place from ../shared/corpus (see tests/corpus).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import nginxsim
from corpus import CORPUS, entries, index_rows, require_corpus

_ENTRIES = entries()
_PARAMS = [pytest.param(p, id=p.name) for p in _ENTRIES] or [pytest.param(None, id="corpus-missing")]


def test_index_lists_every_entry() -> None:
    """INDEX.md and the folders agree, so a broken or missing entry cannot go unnoticed."""
    require_corpus()
    listed = [row.name for row in index_rows()]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == [p.name for p in _ENTRIES]
    assert len(listed) >= 35


@pytest.mark.parametrize("entry", _PARAMS)
def test_entry_loads(entry: Path | None) -> None:
    """The entry loads with its folder as prefix, reading the files nginx reads."""
    require_corpus()
    assert entry is not None
    cfg = nginxsim.load(str(entry / "nginx.conf"), prefix=str(entry))
    assert cfg.files and Path(cfg.files[0]).resolve() == (entry / "nginx.conf").resolve()
    assert all(Path(f).resolve().is_relative_to(CORPUS / entry.name) for f in cfg.files)
    loaded = {Path(f).resolve() for f in cfg.files if Path(f).name != "mime.types"}
    expected = {row.name: row.files for row in index_rows()}[entry.name]
    assert len(loaded) == expected, f"INDEX.md: nginx -T reads {expected} files (mime.types excluded)"
