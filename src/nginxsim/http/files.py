"""What nginx asks of the file system: `stat`, `realpath`, and the contents of a password file.

Every module asks through the request (`Context.lookup`/`stat`, `Context.realpath`), so a route
can say which files it depended on: decisions shared between clients (http/replay.py) ask again
for each client, and the answer stays live if files change between routes.

Two views answer: `RealFiles`, the machine's own file system (read-only), and `VirtualFiles`, a
tree the caller describes (`nginxsim.load(..., fs={...})`) so that a test states which files
exist without touching the disk.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

PATH_MAX = 4096  # Linux: a path of 4096 bytes or more fails with ENAMETOOLONG
NAME_MAX = 255  # Linux: one component longer than this fails with ENAMETOOLONG
_MAXSYMLINKS = 40  # Linux: more symlinks followed in one lookup fails with ELOOP
# `disable_symlinks` modes (NGX_DISABLE_SYMLINKS_*), with the length of the `from=` prefix opened as is
SYMLINKS_OFF, SYMLINKS_ON, SYMLINKS_IF_NOT_OWNER = 0, 1, 2
Symlinks = tuple[int, int]
FOLLOW: Symlinks = (SYMLINKS_OFF, 0)


class FileInfo(NamedTuple):
    """What `ngx_file_info` gives nginx's callers: the mode bits, size and modification time."""

    mode: int
    size: int
    mtime: int


class Files:
    """A file-system view. `lookup` is the one question nginx's file code asks (stat, following
    symlinks): the answer or the errno, since nginx's handlers branch on it (ENOENT vs ENOTDIR
    vs EACCES give 404, 404 and 403, and `index` tests the directory only after ENOENT)."""

    def lookup(self, path: bytes) -> FileInfo | int:
        raise NotImplementedError

    def find(self, path: bytes, symlinks: Symlinks = FOLLOW) -> FileInfo | int:
        """`lookup`, or `open` when `disable_symlinks` is in force."""
        return self.lookup(path) if symlinks[0] == SYMLINKS_OFF else self.open(path, symlinks)

    def stat(self, path: bytes) -> FileInfo | None:
        """`lookup` for callers that only care whether it succeeded."""
        info = self.lookup(path)
        return info if isinstance(info, FileInfo) else None

    def realpath(self, path: bytes) -> bytes | None:
        """`ngx_realpath` (realpath(3)): None when it fails, e.g. for a missing path."""
        raise NotImplementedError

    def link_owners(self, path: bytes) -> tuple[int, int] | None:
        """lstat(2): None unless `path` is a symbolic link; then the link's owner and the owner of
        what it resolves to (the link's own when it dangles)."""
        raise NotImplementedError

    def open(self, path: bytes, symlinks: Symlinks) -> FileInfo | int:
        """`ngx_open_file_wrapper` with symlinks disabled (then fstat). `symlinks` is (mode, start):
        the first `start` bytes (the `from=` prefix, 0 for none) are opened following links, then
        one component at a time from there (or from "/"). With
        `on` every component is opened O_NOFOLLOW: a link in the middle fails with ENOTDIR (nginx
        opens directories O_PATH|O_DIRECTORY, which gets the link itself), the last one with
        ELOOP. With `if_not_owner` links are followed, and one owned by someone else than its
        target fails with ELOOP (`ngx_openat_file_owner`). A trailing '/' opens the directory
        reached ("."). Every path passed on is a real one (symlink-free), so `lookup` and
        `link_owners` answer for the component alone."""
        how, start = symlinks
        if start:
            at = self.lookup(path[:start])
            if isinstance(at, int):
                return at
            if not stat.S_ISDIR(at.mode):
                return errno.ENOTDIR
            cur, rest = self.realpath(path[:start]) or b"/", path[start + 1:]
        else:
            cur, rest = (b"/", path[1:]) if path.startswith(b"/") else (self.realpath(b".") or b"/", path)
        *dirs, last = rest.split(b"/")
        for name in dirs:
            if name:
                full = cur.rstrip(b"/") + b"/" + name
                found = self._openat(full, how, True)
                if isinstance(found, int):
                    return found
                cur = self.realpath(full) or full
        if not last:  # the path ends with '/': nginx reopens the directory reached (".")
            return self.lookup(cur)
        return self._openat(cur.rstrip(b"/") + b"/" + last, how, False)

    def _openat(self, full: bytes, how: int, directory: bool) -> FileInfo | int:
        """One openat(2) of `ngx_open_file_wrapper` (`ngx_openat_file_owner` for `if_not_owner`),
        of a component in a real directory: its information or the errno."""
        link = self.link_owners(full)
        if how == SYMLINKS_ON and link is not None:
            return errno.ENOTDIR if directory else errno.ELOOP
        info = self.lookup(full)
        if isinstance(info, int):
            return info
        if directory and not stat.S_ISDIR(info.mode):
            return errno.ENOTDIR
        if link is not None and link[0] != link[1]:
            return errno.ELOOP
        return info

    def read(self, path: bytes) -> bytes:
        """The whole file; raises OSError with the errno nginx would meet."""
        raise NotImplementedError


class RealFiles(Files):
    """The machine's own file system, read-only."""

    def lookup(self, path: bytes) -> FileInfo | int:
        """`ngx_file_info`: stat(2), following symlinks."""
        try:
            st = os.stat(path)
        except OSError as e:
            return e.errno or errno.EIO
        except ValueError:  # a NUL byte in the path: nginx cannot form such a path
            return errno.ENOENT
        return FileInfo(st.st_mode, st.st_size, int(st.st_mtime))

    def realpath(self, path: bytes) -> bytes | None:
        """realpath(3): fails for a missing path, and for a non-directory written with a
        trailing slash (Python's own realpath forgives both)."""
        if not path:
            return None
        try:
            real = os.path.realpath(path, strict=True)
        except (OSError, ValueError):
            return None
        if path.endswith(b"/") and not os.path.isdir(real):
            return None
        return real

    def link_owners(self, path: bytes) -> tuple[int, int] | None:
        try:
            st = os.lstat(path)
        except (OSError, ValueError):
            return None
        if not stat.S_ISLNK(st.st_mode):
            return None
        try:
            return st.st_uid, os.stat(path).st_uid
        except (OSError, ValueError):
            return st.st_uid, st.st_uid

    def read(self, path: bytes) -> bytes:
        """`ngx_open_file` + `ngx_read_file` (the `auth_basic_user_file`): the whole file; raises
        OSError with the errno nginx would meet (ENOENT missing, EISDIR a directory, EACCES...)."""
        with open(path, "rb") as f:
            return f.read()


@dataclass(frozen=True, slots=True)
class Symlink:
    """A symbolic link in a virtual tree; a relative target is relative to the link's directory."""

    target: str


@dataclass(frozen=True, slots=True)
class File:
    """A regular file in a virtual tree with explicit permission bits (e.g. 0o755 for `-x`)."""

    content: str | bytes = b""
    mode: int = 0o644


Entry = str | bytes | None | Symlink | File
"""A value of `fs=`: file contents, None for a directory, a `Symlink` or a `File`."""


class _Dir:
    __slots__ = ("children",)

    def __init__(self) -> None:
        self.children: dict[bytes, _Dir | File | Symlink] = {}


class VirtualFiles(Files):
    """A file tree given as `{path: entry}`: keys ending in "/" or valued None are directories,
    every ancestor of a key is an implied directory, relative keys are relative to `base` (the
    config's prefix, as nginx resolves a relative `root`). Lookups follow the kernel's rules:
    empty and "." components, ".." (after symlinks), ENOTDIR through a file or for a file written
    with a trailing slash, ENAMETOOLONG, ELOOP. Directories have mode 0755, files 0644, every
    mtime is 0."""

    def __init__(self, entries: Mapping[str, Entry], base: str = "/") -> None:
        self.root = _Dir()
        for key, value in entries.items():
            full = key if key.startswith("/") else posixpath.join(base, key)
            is_dir = value is None or full.endswith("/")
            names = [n.encode("utf-8", "surrogateescape") for n in posixpath.normpath(full).split("/") if n]
            node = self.root
            for i, name in enumerate(names):
                last = i == len(names) - 1
                child = node.children.get(name)
                if last and not is_dir:
                    if child is not None:
                        raise ValueError(f"fs: {key!r} conflicts with another entry")
                    node.children[name] = value if isinstance(value, Symlink | File) else File(value or b"")
                    break
                if child is None:
                    child = node.children[name] = _Dir()
                if not isinstance(child, _Dir):
                    raise ValueError(f"fs: {key!r} conflicts with another entry (a file or link on its path)")
                node = child

    def _resolve(self, path: bytes) -> tuple[_Dir | File, list[bytes]] | int:
        """The node `path` names and its real path (components), or the errno of the lookup."""
        if len(path) >= PATH_MAX:
            return errno.ENAMETOOLONG
        parts = path.split(b"/")
        real: list[bytes] = []
        chain: list[_Dir] = [self.root]  # the directories of `real`, for ".."
        node: _Dir | File = self.root
        followed = 0
        while parts:
            name = parts.pop(0)
            if not isinstance(node, _Dir):
                return errno.ENOTDIR  # a component (or a trailing slash) after a file
            if name in (b"", b"."):
                continue
            if len(name) > NAME_MAX:
                return errno.ENAMETOOLONG
            if name == b"..":
                if real:
                    real.pop()
                    chain.pop()
                node = chain[-1]
                continue
            child = node.children.get(name)
            if child is None:
                return errno.ENOENT
            if isinstance(child, Symlink):
                followed += 1
                if followed > _MAXSYMLINKS:
                    return errno.ELOOP
                target = child.target.encode("utf-8", "surrogateescape")
                if target.startswith(b"/"):
                    real, chain = [], [self.root]
                    node = self.root
                parts[:0] = target.split(b"/")
                continue
            real.append(name)
            if isinstance(child, _Dir):
                chain.append(child)
            node = child
        return node, real

    def lookup(self, path: bytes) -> FileInfo | int:
        found = self._resolve(path if path.startswith(b"/") else b"/" + path)
        if isinstance(found, int):
            return found
        node = found[0]
        if isinstance(node, _Dir):
            return FileInfo(stat.S_IFDIR | 0o755, 4096, 0)
        return FileInfo(stat.S_IFREG | node.mode, len(node.content), 0)

    def realpath(self, path: bytes) -> bytes | None:
        if not path:
            return None
        found = self._resolve(path if path.startswith(b"/") else b"/" + path)
        if isinstance(found, int):
            return None
        return b"/" + b"/".join(found[1])

    def link_owners(self, path: bytes) -> tuple[int, int] | None:
        """A virtual tree has no owners: every link counts as owned by its target's owner, so
        `if_not_owner` follows them all."""
        parent, _, name = path.rpartition(b"/")
        if name in (b"", b".", b".."):
            return None
        found = self._resolve(parent if parent.startswith(b"/") else b"/" + parent)
        if isinstance(found, int) or not isinstance(found[0], _Dir):
            return None
        return (0, 0) if isinstance(found[0].children.get(name), Symlink) else None

    def read(self, path: bytes) -> bytes:
        found = self._resolve(path if path.startswith(b"/") else b"/" + path)
        if isinstance(found, int):
            raise OSError(found, os.strerror(found), path)
        node = found[0]
        if isinstance(node, _Dir):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        c = node.content
        return c if isinstance(c, bytes) else c.encode("utf-8", "surrogateescape")
