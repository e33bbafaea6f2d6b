"""Files without nginx: the virtual tree's lookup rules (the kernel's), the real view's errors,
`load(..., fs=...)`, and what try_files/index/static decide from them. Every behaviour here is
also checked against real nginx in tests/oracle/test_files_oracle.py."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

import nginxsim
from nginxsim.http.files import File, FileInfo, RealFiles, Symlink, VirtualFiles

TREE = {
    "/srv/www/index.html": "home",
    "/srv/www/img/": None,
    "/srv/www/img/logo.png": b"\x89PNG",
    "/srv/www/empty": None,
    "/srv/www/run.sh": File("#!/bin/sh", 0o755),
    "/srv/www/to-img": Symlink("img"),
    "/srv/www/to-logo": Symlink("/srv/www/img/logo.png"),
    "/srv/www/up": Symlink("../www/index.html"),
    "/srv/www/dangling": Symlink("nowhere"),
    "/srv/www/loop": Symlink("loop"),
}


@pytest.fixture
def vfs() -> VirtualFiles:
    return VirtualFiles(TREE)


def _mode(info: FileInfo | int) -> int:
    assert isinstance(info, FileInfo), info
    return info.mode


def test_files_directories_and_implied_ancestors(vfs: VirtualFiles) -> None:
    assert stat.S_ISREG(_mode(vfs.lookup(b"/srv/www/index.html")))
    assert vfs.lookup(b"/srv/www/index.html") == FileInfo(stat.S_IFREG | 0o644, 4, 0)
    for d in (b"/", b"/srv", b"/srv/www", b"/srv/www/", b"/srv/www/img", b"/srv/www/empty", b"//srv///www/./img/"):
        assert stat.S_ISDIR(_mode(vfs.lookup(d))), d
    assert _mode(vfs.lookup(b"/srv/www/run.sh")) & stat.S_IXUSR


def test_errors_follow_the_kernel(vfs: VirtualFiles) -> None:
    assert vfs.lookup(b"/srv/www/nope") == errno.ENOENT
    assert vfs.lookup(b"/srv/nope/x") == errno.ENOENT
    assert vfs.lookup(b"/srv/www/index.html/") == errno.ENOTDIR  # a file written as a directory
    assert vfs.lookup(b"/srv/www/index.html/x") == errno.ENOTDIR
    assert vfs.lookup(b"/srv/www/index.html/.") == errno.ENOTDIR
    assert vfs.lookup(b"/srv/www/" + b"a" * 256) == errno.ENAMETOOLONG
    assert vfs.lookup(b"/srv/" + b"a/" * 2048) == errno.ENAMETOOLONG
    assert vfs.lookup(b"/srv/www/loop") == errno.ELOOP
    assert vfs.lookup(b"/srv/www/dangling") == errno.ENOENT


def test_symlinks_are_followed(vfs: VirtualFiles) -> None:
    assert stat.S_ISDIR(_mode(vfs.lookup(b"/srv/www/to-img")))
    assert stat.S_ISREG(_mode(vfs.lookup(b"/srv/www/to-img/logo.png")))
    assert stat.S_ISREG(_mode(vfs.lookup(b"/srv/www/to-logo")))
    assert stat.S_ISREG(_mode(vfs.lookup(b"/srv/www/to-img/../index.html")))  # ".." of the link's target
    assert vfs.lookup(b"/srv/www/to-logo/") == errno.ENOTDIR
    assert vfs.realpath(b"/srv/www/to-img/logo.png") == b"/srv/www/img/logo.png"
    assert vfs.realpath(b"/srv/www/up") == b"/srv/www/index.html"
    assert vfs.realpath(b"/srv//www/") == b"/srv/www"
    assert vfs.realpath(b"/srv/www/nope") is None
    assert vfs.realpath(b"") is None


def test_read(vfs: VirtualFiles) -> None:
    assert vfs.read(b"/srv/www/to-img/logo.png") == b"\x89PNG"
    assert vfs.read(b"/srv/www/index.html") == b"home"
    for path, code in ((b"/srv/www/nope", errno.ENOENT), (b"/srv/www/img", errno.EISDIR)):
        with pytest.raises(OSError) as e:
            vfs.read(path)
        assert e.value.errno == code


def test_relative_paths_and_conflicts() -> None:
    v = VirtualFiles({"html/index.html": "x", "/abs/": None}, "/etc/nginx")
    assert isinstance(v.lookup(b"/etc/nginx/html/index.html"), FileInfo)
    with pytest.raises(ValueError, match="conflicts"):
        VirtualFiles({"/a/b": "file", "/a/b/c": "inside a file"})
    with pytest.raises(ValueError, match="conflicts"):
        VirtualFiles({"/a/b/": None, "/a/b": "file"})


def test_real_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    os.symlink("d", tmp_path / "l")
    real = RealFiles()
    base = str(tmp_path).encode()
    assert stat.S_ISREG(_mode(real.lookup(base + b"/f")))
    assert real.lookup(base + b"/nope") == errno.ENOENT
    assert real.lookup(base + b"/f/x") == errno.ENOTDIR
    assert real.realpath(base + b"/l") == os.path.realpath(base + b"/d")
    assert real.realpath(base + b"/nope") is None
    assert real.realpath(base + b"/f/") is None  # realpath(3) refuses a file written as a directory


CONF = """
events {}
http {
    server {
        listen 80;
        root html;
        index index.html;
        try_files $uri /fallback;
        location = /fallback { return 200 "fallback $uri"; }
        location / { try_files $uri $uri/ @app; }
        location /if/ { if ($arg_x) { } try_files $uri =418; }
        location /a/ { alias /data/; try_files $uri $uri/ /a/b.html?$args; }
        location @app { return 200 "app $uri $args"; }
        location /x/ { disable_symlinks on; }
    }
}
"""
FS = {"html/index.html": "", "html/img/": None, "html/img/a.png": "", "/data/b.html": ""}


@pytest.fixture
def cfg() -> nginxsim.Config:
    return nginxsim.load(text=CONF, prefix="/etc/nginx", fs=FS)


def test_load_with_a_virtual_tree(cfg: nginxsim.Config) -> None:
    d = cfg.route("10.0.0.1", "http://h/img/a.png")
    assert (d.status, d.file) == (200, "/etc/nginx/html/img/a.png")
    d = cfg.route("10.0.0.1", "http://h/img")
    assert (d.status, d.headers["Location"]) == (301, "http://h/img/")
    d = cfg.route("10.0.0.1", "http://h/")
    assert (d.status, d.file) == (200, "/etc/nginx/html/index.html")
    d = cfg.route("10.0.0.1", "http://h/nope?q=1")
    assert (d.status, d.body) == (200, "app /nope q=1")


def test_try_files_trace_names_the_directive(cfg: nginxsim.Config) -> None:
    d = cfg.route("10.0.0.1", "http://h/nope")
    steps = [s for s in d.trace if s.phase == "precontent"]
    assert [s.what for s in steps] == ["try_files $uri", "try_files $uri/", "try_files @app"]
    assert steps[0].result == "/etc/nginx/html/nope: ENOENT"
    assert all(s.line == 10 and s.file is not None and s.file.endswith("nginx.conf") for s in steps)


def test_try_files_is_not_inherited(cfg: nginxsim.Config) -> None:
    """No merge function: a server-level try_files serves only requests outside every location,
    and a matching `if` block runs without its location's."""
    assert cfg.route("10.0.0.1", "http://h/if/nope").status == 418
    assert cfg.route("10.0.0.1", "http://h/if/nope?x=1").status == 404


def test_alias_fallback_with_variables_loses_the_location_name(cfg: nginxsim.Config) -> None:
    """nginx 1.22.1 (ticket 97): `/a/b.html?$args` has variables, so under `alias` its first
    len("/a/") bytes are cut: the internal redirect goes to "b.html", which no location
    matches, so the server level's own try_files sends it on to /fallback."""
    d = cfg.route("10.0.0.1", "http://h/a/nope?k=v")
    assert (d.status, d.body) == (200, "fallback /fallback")
    assert cfg.route("10.0.0.1", "http://h/a/b.html").file == "/data/b.html"


def test_disable_symlinks_is_simulated(cfg: nginxsim.Config) -> None:
    assert "disable_symlinks" not in cfg.route("10.0.0.1", "http://h/x/y").not_simulated


@pytest.mark.parametrize(("body", "message"), [
    ("try_files $uri =abc;", 'invalid code "=abc"'),
    ("try_files $uri =$x;", 'invalid code "=$"'),  # nginx parses (and prints) one byte less with variables
    ("root $document_root;", 'the $document_root variable cannot be used in the "root" directive'),
    ('index a "";', 'index "a" in "index" directive is invalid'),  # nginx names the first argument
])
def test_config_errors(body: str, message: str) -> None:
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(text=f"events {{}} http {{ server {{ location / {{ {body} }} }} }}")
    assert e.value.message == message


def test_fastcgi_script_name_is_kept_once_split() -> None:
    """`ngx_http_fastcgi_split` keeps its answer in the request context: after try_files changes
    $uri the script name is the one computed before."""
    conf = """events {} http { server { root /w; location ~ \\.php { fastcgi_split_path_info ^(.+\\.php)(/.*)$;
        set $before $fastcgi_script_name; try_files /index.php =404; fastcgi_pass 127.0.0.1:9000;
        fastcgi_param S $fastcgi_script_name; fastcgi_param P $fastcgi_path_info; } } }"""
    cfg = nginxsim.load(text=conf, fs={"/w/a.php": "", "/w/index.php": ""})
    up = cfg.route("10.0.0.1", "http://h/a.php/x").upstream
    assert up is not None and up.params is not None
    assert (up.params["S"], up.params["P"]) == ("/a.php", "/x")
