"""Differential tests of `disable_symlinks` (off, on, if_not_owner, `from=`) against real nginx.

A real document tree with links to files and directories (relative, absolute, dangling, in the
middle of a path, the document root itself), some owned by another user (uid 65534) so that
`if_not_owner` refuses them, is served by nginx and routed by nginxsim through the real files
and through the same tree given as `fs=` (which has no owners: requests whose answer depends on
an owner are compared only through the real files). Static files, index, try_files and
`if (-f/-d/-e)` are asked at several levels of inheritance. Each file holds its own path, so the
body names the file nginx served.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_files_oracle import write_tree

import nginxsim
from nginxsim.http.files import Entry, File, Symlink
from nginxsim.oracle import Nginx, OracleRequest
from nginxsim.oracle.compare import check

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_conf_validate import nginx_t  # noqa: E402  (the shared `nginx -t` runner)

pytestmark = pytest.mark.oracle

CLIENT = "10.0.0.1"
OTHER = 65534  # nobody: the owner of the "foreign" links and of other.txt
FOREIGN = ("lx", "lxd", "lo")  # entries whose `if_not_owner` answer depends on owners


@pytest.fixture
def root() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="nginxsim-symlinks-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def tree(root: str) -> dict[str, Entry]:
    h = f"{root}/html"
    return {
        f"{h}/a.txt": f"{h}/a.txt", f"{h}/index.html": f"{h}/index.html", f"{h}/other.txt": f"{h}/other.txt",
        f"{h}/d/index.html": f"{h}/d/index.html", f"{h}/d/f.txt": f"{h}/d/f.txt",
        f"{h}/x.sh": File(f"{h}/x.sh", 0o755),
        f"{h}/lf": Symlink("a.txt"), f"{h}/ld": Symlink("d"), f"{h}/abs": Symlink(f"{h}/d"),
        f"{h}/lx": Symlink("a.txt"), f"{h}/lxd": Symlink("d"), f"{h}/lo": Symlink("other.txt"),
        f"{h}/dangling": Symlink("nowhere"), f"{h}/loop": Symlink("loop"),
        f"{h}/sub/ln": Symlink("../d"), f"{h}/sub/lnf": Symlink("../a.txt"), f"{h}/sub/g.txt": f"{h}/sub/g.txt",
        f"{h}/sub/lsh": Symlink("../x.sh"),
        f"{root}/site": Symlink("html"),
    }


def config(root: str) -> str:
    common = f"""
        index index.html;
        location /tf/ {{ try_files /$arg_f /$arg_f/ =418; }}
        location /if/ {{
            if (-f $document_root/$arg_f) {{ return 201; }}
            if (-d $document_root/$arg_f) {{ return 202; }}
            if (-x $document_root/$arg_f) {{ return 203; }}
            if (-e $document_root/$arg_f) {{ return 204; }}
            return 205;
        }}
        location /nested/ {{ alias {root}/html/; location /nested/on/ {{ alias {root}/html/; disable_symlinks on; }} }}
    """
    return f"""
events {{}}
http {{
    disable_symlinks if_not_owner;
    server {{ listen 80; server_name owner; root {root}/html; {common} }}
    server {{ listen 80; server_name on; root {root}/html; disable_symlinks on; {common}
        location /off/ {{ alias {root}/html/; disable_symlinks off; }}
    }}
    server {{ listen 80; server_name from; root {root}/site; disable_symlinks on from=$document_root; {common} }}
    server {{ listen 80; server_name fromslash; root {root}/site/; disable_symlinks on from={root}/site/; {common} }}
    server {{ listen 80; server_name fromowner; root {root}/site; disable_symlinks if_not_owner from=$document_root;
        {common} }}
    server {{ listen 80; server_name frompart; root {root}/site; disable_symlinks on from={root}/si; {common} }}
    server {{ listen 80; server_name linkroot; root {root}/site; disable_symlinks on; {common} }}
    server {{ listen 80; server_name offsrv; root {root}/html; disable_symlinks off; {common} }}
}}
"""


NAMES = ["a.txt", "lf", "ld", "abs", "lx", "lxd", "lo", "dangling", "loop", "d", "sub/ln", "sub/lnf", "sub/g.txt",
         "sub/lsh", "x.sh", "nope", "lf/x", "d/f.txt", "ld/f.txt", "lxd/f.txt", "sub/ln/f.txt", "abs/f.txt"]
SERVERS = ["owner", "on", "from", "fromslash", "fromowner", "frompart", "linkroot", "offsrv"]
OWNER_SERVERS = {"owner", "fromowner"}  # if_not_owner: the virtual tree has no owners


def requests() -> list[OracleRequest]:
    out = []
    for server in SERVERS:
        paths = ["/", "/d/", "/ld/", "/lxd/", "/abs/", "/sub/ln/", "/ld", "/lf/", "/off/lf", "/off/ld/",
                 "/nested/lf", "/nested/on/lf", "/nested/on/ld/", "/nested/ld/f.txt", "/nested/on/d/f.txt"]
        paths += [f"/{n}" for n in NAMES] + [f"/tf/?f={n}" for n in NAMES] + [f"/if/?f={n}" for n in NAMES]
        out += [OracleRequest(client=CLIENT, url=f"http://{server}{p}") for p in paths]
    return out


def owner_matters(rq: OracleRequest) -> bool:
    host, _, rest = rq.url.removeprefix("http://").partition("/")
    return host in OWNER_SERVERS and any(name in rest for name in FOREIGN)


def test_disable_symlinks_against_nginx(root: str) -> None:
    files = tree(root)
    write_tree(root, files)
    for name in ("lx", "lxd", "other.txt"):  # lx, lxd: another's links to ours; lo: our link to another's file
        os.lchown(f"{root}/html/{name}", OTHER, OTHER)
    text = config(root)
    views = {"fs=": nginxsim.load(text=text, prefix=root, fs=files), "real": nginxsim.load(text=text, prefix=root)}
    rqs = requests()
    with Nginx(text=text, prefix=root) as ng:
        responses = ng.request_many(rqs)
    problems: list[str] = []
    compared = 0
    for rq, resp in zip(rqs, responses, strict=True):
        for view, cfg in views.items():
            if view == "fs=" and owner_matters(rq):
                continue
            d = cfg.route(rq.client, rq.url)
            compared += 1
            found = [str(m) for m in check(rq, d, resp)]
            if not found and d.file is not None and resp.body != open(d.file, "rb").read():
                found.append(f"{rq.url}: nginxsim serves {d.file}, nginx sent {resp.body[:80]!r}")
            if found:
                problems.append(f"[{view}] " + "; ".join(found) + "\n" + d.explain())
    assert not problems, f"{len(problems)} of {compared} differ\n" + "\n\n".join(problems[:6])
    assert compared > 1000
    statuses = {resp.status for resp in responses}
    assert {200, 403, 404, 418, 201, 202, 205} <= statuses  # the tree exercises every outcome


@pytest.mark.parametrize(("args", "message"), [
    ("bogus", 'invalid parameter "bogus"'),
    ("On", 'invalid parameter "On"'),
    ("from=/x", '"disable_symlinks" must have "off", "on" or "if_not_owner" parameter'),
    ("on off", 'duplicate parameters "on off"'),
    ("off from=/x", '"from=" cannot be used with "off" parameter'),
    ("on from=$nope", 'unknown "nope" variable'),
    ("on if_not_owner from=/x extra", 'invalid number of arguments in "disable_symlinks" directive'),
])
def test_config_errors_against_nginx_t(nginx_binary: str, root: str, args: str, message: str) -> None:
    path = os.path.join(root, "nginx.conf")
    with open(path, "w") as f:
        f.write(f"events {{}}\nhttp {{\n    server {{\n        disable_symlinks {args};\n    }}\n}}\n")
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(path, prefix=root)
    where = (message, None, None) if message.startswith("unknown") else (message, path, 4)  # found at the end
    assert (e.value.message, e.value.file, e.value.line) == where
    assert nginx_t(nginx_binary, root) == where
