"""What nginx asks of the file system: `stat` and `realpath`, never file contents.

Every module asks through the request (`Context.stat`, `Context.realpath`), so a route can say
which files it depended on: decisions shared between clients (http/replay.py) ask again for
each client, and the answer stays live if files change between routes.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class FileInfo(NamedTuple):
    """What `ngx_file_info` gives nginx's callers: the mode bits, size and modification time."""

    mode: int
    size: int
    mtime: int


class RealFiles:
    """The machine's own file system, read-only."""

    def stat(self, path: bytes) -> FileInfo | None:
        """`ngx_file_info` (stat, following symlinks); None when it fails (missing, not a
        directory on the way, no permission)."""
        try:
            st = os.stat(path)
        except (OSError, ValueError):  # ValueError: a NUL byte in the path
            return None
        return FileInfo(st.st_mode, st.st_size, int(st.st_mtime))

    def realpath(self, path: bytes) -> bytes:
        """`ngx_realpath`, for `$realpath_root`."""
        return os.path.realpath(path)
