"""`disable_symlinks` over a virtual tree (`fs=` with `Symlink`): which opens it applies to, the
errno each kind of link gives and how the handlers map it, `from=`, inheritance, config errors,
and decisions shared between clients keyed by the mode. Checked against nginx in
tests/oracle/test_disable_symlinks_oracle.py."""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

import nginxsim
from nginxsim.http.files import SYMLINKS_IF_NOT_OWNER, SYMLINKS_ON, FileInfo, RealFiles, Symlink, VirtualFiles

FS = {
    "/srv/html/a.txt": "a", "/srv/html/d/index.html": "i", "/srv/html/d/f.txt": "f",
    "/srv/html/lf": Symlink("a.txt"), "/srv/html/ld": Symlink("d"), "/srv/html/gone": Symlink("nowhere"),
    "/srv/site": Symlink("html"),
}


def conf(http: str = "", server: str = "", root: str = "/srv/html") -> nginxsim.Config:
    text = f"""events {{}} http {{ {http} server {{ listen 80; root {root}; index index.html; {server}
        location /tf/ {{ try_files /$arg_f =418; }}
        location /if/ {{ if (-f $document_root/$arg_f) {{ return 201; }} if (-d $document_root/$arg_f) {{ return 202; }}
                         return 205; }}
        location /free/ {{ alias /srv/html/; disable_symlinks off; }}
    }} }}"""
    return nginxsim.load(text=text, fs=FS)


def status(cfg: nginxsim.Config, path: str) -> int:
    return cfg.route("10.0.0.1", f"http://h{path}").status


@pytest.mark.parametrize("mode", ["on", "if_not_owner"])
def test_open_walks_component_by_component(mode: str) -> None:
    files = VirtualFiles(FS)
    how = SYMLINKS_ON if mode == "on" else SYMLINKS_IF_NOT_OWNER
    results = {p: files.open(p.encode(), (how, 0)) for p in ("/srv/html/lf", "/srv/html/ld/f.txt", "/srv/html/ld/",
                                                              "/srv/html/gone", "/srv/html/a.txt", "/srv/site/a.txt")}
    assert isinstance(results["/srv/html/a.txt"], FileInfo)
    assert results["/srv/html/gone"] == (errno.ELOOP if mode == "on" else errno.ENOENT)
    if mode == "on":  # the last link: ELOOP; one in the middle, opened O_PATH|O_DIRECTORY: ENOTDIR
        assert [results[p] for p in ("/srv/html/lf", "/srv/html/ld/f.txt", "/srv/html/ld/", "/srv/site/a.txt")] == [
            errno.ELOOP, errno.ENOTDIR, errno.ENOTDIR, errno.ENOTDIR]
    else:  # the virtual tree has no owners: every link is followed
        assert all(isinstance(results[p], FileInfo) for p in ("/srv/html/lf", "/srv/html/ld/f.txt", "/srv/site/a.txt"))
    assert isinstance(files.open(b"/srv/site/a.txt", (SYMLINKS_ON, len(b"/srv/site"))), FileInfo)  # from= prefix


def test_static_index_try_files_and_if() -> None:
    cfg = conf(server="disable_symlinks on;")
    assert [status(cfg, p) for p in ("/a.txt", "/lf", "/ld", "/ld/", "/ld/f.txt", "/d/", "/gone", "/free/lf")] == [
        200, 403, 403, 404, 404, 200, 403, 200]
    assert [status(cfg, f"/tf/?f={n}") for n in ("a.txt", "lf", "ld/f.txt")] == [200, 418, 418]
    assert [status(cfg, f"/if/?f={n}") for n in ("a.txt", "lf", "d", "ld")] == [201, 205, 202, 205]


def test_inherited_and_overridden() -> None:
    cfg = conf(http="disable_symlinks on;")
    assert (status(cfg, "/lf"), status(cfg, "/free/lf")) == (403, 200)
    assert status(conf(http="disable_symlinks on;", server="disable_symlinks off;"), "/lf") == 200
    assert status(conf(), "/lf") == 200  # off by default


def test_from_document_root() -> None:
    cfg = conf(server="disable_symlinks on from=$document_root;", root="/srv/site")
    assert [status(cfg, p) for p in ("/a.txt", "/lf", "/ld/f.txt")] == [200, 403, 404]
    whole = conf(server="disable_symlinks on;", root="/srv/site")  # the root itself is a link
    assert status(whole, "/a.txt") == 404
    part = conf(server="disable_symlinks on from=/srv/si;", root="/srv/site")  # not at a '/': whole path
    assert status(part, "/a.txt") == 404
    exact = conf(server="disable_symlinks on from=/srv/site/lf;", root="/srv/site")  # the whole path: off
    assert status(exact, "/lf") == 200


def test_real_files_compare_owners() -> None:
    base = tempfile.mkdtemp()
    try:
        with open(f"{base}/t", "w") as f:
            f.write("t")
        os.symlink("t", f"{base}/same")
        os.symlink("t", f"{base}/other")
        real = RealFiles()
        assert real.link_owners(f"{base}/t".encode()) is None
        assert real.link_owners(f"{base}/same".encode()) == (os.getuid(), os.getuid())
        if os.getuid() == 0:
            os.lchown(f"{base}/other", 65534, 65534)
            assert real.open(f"{base}/other".encode(), (SYMLINKS_IF_NOT_OWNER, 0)) == errno.ELOOP
        assert isinstance(real.open(f"{base}/same".encode(), (SYMLINKS_IF_NOT_OWNER, 0)), FileInfo)
    finally:
        for name in ("t", "same", "other"):
            os.unlink(f"{base}/{name}")
        os.rmdir(base)


def test_shared_decisions_are_keyed_by_mode() -> None:
    """One route asks about the same path under two modes (try_files under `on`, then the
    static handler of a named location under `off`): clients of a kind share the decision."""
    text = """events {} http { split_clients $remote_addr $g { 50% a; * b; }
        server { listen 80; root /srv/html; add_header G $g;
                 location = /lf { disable_symlinks on; try_files $uri @free; }
                 location @free { disable_symlinks off; } } }"""
    cfg = nginxsim.load(text=text, fs=FS)
    for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        d = cfg.route(client, "http://h/lf")
        assert (d.status, d.file) == (200, "/srv/html/lf")


@pytest.mark.parametrize(("args", "message"), [
    ("bogus", 'invalid parameter "bogus"'),
    ("from=/x", '"disable_symlinks" must have "off", "on" or "if_not_owner" parameter'),
    ("on if_not_owner", 'duplicate parameters "on if_not_owner"'),
    ("off from=/x", '"from=" cannot be used with "off" parameter'),
])
def test_config_errors(args: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(text=f"events {{}}\nhttp {{\n  disable_symlinks {args};\n}}\n")
    assert (e.value.message, e.value.line) == (message, 3)


def test_duplicate_is_reported_before_the_arguments() -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(text="events {} http { disable_symlinks on; disable_symlinks bogus; }")
    assert e.value.message == '"disable_symlinks" directive is duplicate'
