"""Differential tests of files: root/alias mapping, static answers, index, autoindex, try_files,
error_page chains and `if` file tests, against real nginx serving a real document tree.

Every test describes a file tree once (`{path: contents | None | Symlink | File}`), writes it to a
world-readable temporary directory for nginx, and gives the *same* description to nginxsim twice:
as a virtual tree (`load(..., fs=...)`) and through the real file system (the default). Each file
holds its own path, so nginx's response body names the file it served; it must be the one
`Decision.file` names. Random configs are seeded: a failure names the seed.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import nginxsim
from corpus import CORPUS, require_corpus
from nginxsim.http.files import Entry, File, Symlink, VirtualFiles
from nginxsim.oracle import Nginx, OracleRequest
from nginxsim.oracle.compare import check
from nginxsim.plan import LocationConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_conf_validate import nginx_t  # noqa: E402  (the shared `nginx -t` runner)

pytestmark = pytest.mark.oracle

CLIENT = "10.0.0.1"


# -- a file tree, real and virtual ----------------------------------------------------------------


def write_tree(root: str, tree: Mapping[str, Entry]) -> None:
    """Create `tree` (absolute paths, all under `root`) on disk, readable by nginx's workers."""
    for path, value in tree.items():
        if isinstance(value, Symlink):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(value.target, path)
        elif value is None or path.endswith("/"):
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            data = value.content if isinstance(value, File) else value
            with open(path, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
            os.chmod(path, value.mode if isinstance(value, File) else 0o644)
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)


@pytest.fixture
def tmp_root() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="nginxsim-files-")
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


# parameters a FastCGI backend locates its script with: they show $uri, $args and the paths after try_files
FILE_PARAMS = ("SCRIPT_FILENAME", "SCRIPT_NAME", "DOCUMENT_URI", "DOCUMENT_ROOT", "REQUEST_URI", "QUERY_STRING",
               "PATH_INFO")


def compare_files(root: str, tree: Mapping[str, Entry], requests: list[OracleRequest], label: str = "", *,
                  text: str | None = None, path: str | None = None) -> int:
    """Route every request through nginx and through nginxsim (virtual tree, then real files),
    the config given as `text` or a file `path`, with `root` as prefix. Assert they agree on
    status, Location, upstream (and its file parameters), and which file or text is sent back.
    Returns the number of (request, view) comparisons made."""
    write_tree(root, tree)
    served = VirtualFiles(tree)
    views = {"fs=": nginxsim.load(path, text=text, prefix=root, fs=tree),
             "real": nginxsim.load(path, text=text, prefix=root)}
    problems: list[str] = []
    compared = 0
    with Nginx(path, text=text, prefix=root) as ng:
        responses = ng.request_many(requests)
    for rq, resp in zip(requests, responses, strict=True):
        for view, cfg in views.items():
            d = cfg.route(rq.client, rq.url, method=rq.method, headers=list(rq.headers), server_addr=rq.server_addr)
            compared += 1
            found = [str(m) for m in check(rq, d, resp)]
            if not found and d.file is not None and rq.method != "HEAD" and served.read(d.file.encode()) != resp.body:
                found.append(f"{rq.method} {rq.url}: nginxsim serves {d.file}, nginx sent {resp.body[:80]!r}")
            params = d.upstream.params if d.upstream is not None and not found else None
            if params is not None and resp.upstream is not None:
                sent = dict(resp.upstream.params or ())
                found += [f"{rq.method} {rq.url}: param {k}: nginx {sent.get(k)!r}, nginxsim {v!r}"
                          for k, v in params.items_list() if k in FILE_PARAMS and sent.get(k) != v]
            if found:
                problems.append(f"[{view}] " + "; ".join(found) + "\n" + d.explain())
                break
    assert not problems, (f"{label}: {len(problems)} of {len(requests)} requests differ\n"
                          + "\n\n".join(problems[:4]) + "\n\nconfig:\n" + (text or str(path)))
    return compared


# -- random configs over a random tree --------------------------------------------------------------

NAMES = ["a", "b.html", "c.txt", "index.html", "index.php", "x y.txt", "%41", "é.txt", ".hidden", "f.php", "d"]
DIRS = ["", "sub/", "sub/deep/", "dir/", "dir.d/", "img/", "a/", "empty/"]


def random_tree(rng: random.Random, base: str) -> dict[str, Entry]:
    """Files and directories under `base`, some index files, symlinks (to files, directories,
    nowhere), an executable; every file holds its own path."""
    tree: dict[str, Entry] = {}
    dirs = [d for d in DIRS if not d or rng.random() < 0.7]
    for d in dirs:
        tree[f"{base}/{d}"] = None
        for name in rng.sample(NAMES, rng.randint(0, 4)):
            if f"{d}{name}/" not in dirs and not any(x.startswith(f"{d}{name}/") for x in dirs):
                tree[f"{base}/{d}{name}"] = f"{base}/{d}{name}\n"
    targets = [p.rstrip("/") for p in tree if p != f"{base}/"] + [f"{base}/nowhere"]
    for i in range(rng.randint(0, 3)):
        target = rng.choice(targets)
        tree[f"{base}/link{i}"] = Symlink(os.path.relpath(target, base))
    if rng.random() < 0.5:
        tree[f"{base}/run.sh"] = File(f"{base}/run.sh\n", 0o755)
    return tree


def _try_files(rng: random.Random, regex: bool) -> str:
    pool = ["$uri", "$uri/", "$uri.html", "$uri/index.html", "/b.html", "/sub/", "/index.html", "$uri$args"]
    if regex:
        pool += ["$1", "/$1", "$1/"]
    args = rng.sample(pool, rng.randint(1, 3))
    last = rng.choice(["=404", "=403", "@named", "/ret/fb?x=1&$args", "/ret/fb", "/ret$uri", "=418", "/r0/b.html",
                       "=301", "$uri"])
    return "try_files " + " ".join(args + [last]) + ";"


def _extras(rng: random.Random, regex: bool) -> str:
    out = []
    if rng.random() < 0.6:
        out.append(_try_files(rng, regex))
    if rng.random() < 0.4:
        out.append("index " + " ".join(rng.sample(["index.html", "b.html", "a", "sub", "nope", "$arg_i", "/ret/abs"],
                                                  rng.randint(1, 3))) + ";")
    if rng.random() < 0.2:
        out.append("autoindex on;")
    if rng.random() < 0.3:
        out.append(rng.choice(["error_page 404 /ret/e404;", "error_page 404 = @named;", "error_page 404 /b.html;",
                               "error_page 403 404 =200 /ret/x;", "error_page 301 /ret/moved;"]))
    if rng.random() < 0.15:
        test = rng.choice(["-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x"])
        out.append(f'if ({test} $request_filename) {{ return 200 "if {test} $request_filename"; }}')
    if rng.random() < 0.1:
        out.append(rng.choice(["absolute_redirect off;", "port_in_redirect off;", "server_name_in_redirect on;"]))
    return " ".join(out)


def random_config(rng: random.Random, root: str) -> tuple[str, dict[str, Entry]]:
    """Locations mapping into two trees with root and alias (prefix and regex, with and without
    trailing slashes), each with random try_files/index/autoindex/error_page/if file tests."""
    tree = {**random_tree(rng, f"{root}/www"), **random_tree(rng, f"{root}/alias")}
    locations = []
    for i in range(rng.randint(3, 6)):
        kind = rng.choice(["root", "alias", "alias", "regex-alias", "regex-root", "exact"])
        slash = rng.choice(["/", ""])
        aslash = rng.choice(["/", ""])
        if kind == "root":
            head, body = f"location /r{i}{slash}", rng.choice([f"root {root}/www;", f"root {root}/$arg_r;"])
        elif kind == "alias":
            head, body = f"location /l{i}{slash}", f"alias {root}/alias{aslash};"
            if rng.random() < 0.3:  # a nested location inherits the alias and its name's length
                body += f" location /l{i}/sub/ {{ {_extras(rng, False)} }}"
            if rng.random() < 0.1:  # alias after a URI change by rewrite ... break: 500
                body += f" rewrite ^/l{i}/(.*)$ /l{i}/$1 break;"
        elif kind == "regex-alias":
            head, body = f'location ~ "^/x{i}/(.*)$"', f"alias {root}/alias/$1;"
        elif kind == "regex-root":
            head, body = f'location ~ "^/y{i}(/.*)?$"', f"root {root}/www;"
        else:
            head, body = f"location = /e{i}", rng.choice([f"root {root}/www;", f"alias {root}/alias/b.html;"])
        locations.append(f"{head} {{ {body} {_extras(rng, kind.startswith('regex'))} }}")
    conf = f"""
events {{}}
http {{
    server {{
        listen 80;
        listen 8080;
        server_name files.test;
        root {root}/www;
        {_extras(rng, False)}
        location @named {{ return 200 "named $uri $args"; }}
        location /ret {{ return 200 "ret $uri $args"; }}
        {chr(10).join(locations)}
    }}
}}
"""
    return conf, tree


def random_requests(rng: random.Random, conf: str, tree: Mapping[str, Entry], root: str, n: int) -> list[OracleRequest]:
    """Paths under every location prefix made of the tree's paths (existing or not), with and
    without trailing slash, args, escapes; mostly GET, some HEAD, POST, PUT."""
    heads = sorted({w.split("{")[0].split()[-1].strip('"') for w in conf.split("location ")[1:]})
    prefixes = [h.lstrip("^").split("(")[0] for h in heads if not h.startswith("@")]
    rel = sorted({p.split("/", 1)[1].rstrip("/") for p in (p[len(root) + 1:] for p in tree)})
    rel += ["nope", "a/b", "index.html", "sub/deep"]
    out = []
    for _ in range(n):
        prefix = rng.choice(prefixes + ["/"])
        tail = rng.choice(rel)
        sep = "" if prefix.endswith("/") or not tail else rng.choice(["/", "", "/"])
        path = prefix + sep + tail
        path = path.replace("%", "%25").replace(" ", "%20").replace("é", "%C3%A9")
        if rng.random() < 0.3:
            path += "/"
        if rng.random() < 0.2:
            path += rng.choice(["?q=1", "?i=b.html", "?i=/ret/q", "?a=%20b", "?r=www", "?r=alias", "?r=nope"])
        method = rng.choices(["GET", "HEAD", "POST", "PUT"], [14, 2, 2, 2])[0]
        port = rng.choice(["", "", ":8080"])
        out.append(OracleRequest(client=CLIENT, url=f"http://files.test{port}{path}", method=method))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_random_configs(seed: int, tmp_root: str) -> None:
    rng = random.Random(seed)
    conf, tree = random_config(rng, tmp_root)
    compare_files(tmp_root, tree, random_requests(rng, conf, tree, tmp_root, 250), f"seed {seed}", text=conf)


# -- the corpus: real configs that use try_files -------------------------------------------------

# a document root as PHP applications and static sites have them
SITE = ["index.php", "index.html", "real.txt", "style.css", "app.js", "img/logo.png", "dir/index.html", "dir/x.php",
        "emptydir/", "wp-login.php", "wp-admin/index.php", "wp-admin/admin.css", "wp-content/uploads/a.jpg",
        "user/data/a.png", "user/accounts/x/y.png", "user/config/site.yaml", "favicon.ico", "robots.txt", ".htaccess",
        ".well-known/acme-challenge/tok", "sitemap.xml", "assets/a.css", "static/a.css", "composer.json",
        "LICENSE.txt", "bin/x", "cache/x", "sub/page.html", "phpdir/index.php", "xmlrpc.php", "readme.html"]
SITE_PATHS = ["/", "/index.php", "/index.html", "/real.txt", "/style.css", "/app.js", "/img/logo.png", "/img", "/img/",
              "/dir", "/dir/", "/dir/x.php", "/emptydir", "/emptydir/", "/wp-login.php", "/wp-admin/", "/wp-admin",
              "/wp-admin/admin.css", "/wp-content/uploads/a.jpg", "/wp-content/uploads/b.jpg", "/user/data/a.png",
              "/user/data/b.png", "/user/accounts/x/y.png", "/user/config/site.yaml", "/favicon.ico", "/robots.txt",
              "/.htaccess", "/.git/config", "/.well-known/acme-challenge/tok", "/sitemap.xml", "/assets/a.css",
              "/static/a.css", "/static/b.css", "/composer.json", "/LICENSE.txt", "/bin/x", "/cache/x",
              "/sub/page.html", "/sub/", "/phpdir/", "/phpdir", "/xmlrpc.php", "/readme.html", "/missing", "/missing/",
              "/missing.php", "/missing.css", "/a/b/c", "/index.php/extra", "/dir/x.php/info", "/blog/2024/post",
              "/feed/", "/x.php?y=1", "/real.txt/", "/real.txt/x", "/?s=term", "/missing?a=1&b=%20"]


def _uses_try_files(entry: Path) -> bool:
    """Whether a file of the entry has an uncommented try_files."""
    for p in entry.rglob("*"):
        if p.is_file() and p.name != "SOURCE.md" and p.suffix not in (".crt", ".key", ".pem"):
            text = p.read_text(encoding="utf-8", errors="replace")
            if any("try_files" in line.split("#", 1)[0] for line in text.splitlines()):
                return True
    return False


_CORPUS_ENTRIES = sorted(p.parent for p in CORPUS.glob("*/nginx.conf") if _uses_try_files(p.parent))
_CORPUS_PARAMS = [pytest.param(p, id=p.name) for p in _CORPUS_ENTRIES] or [pytest.param(None, id="corpus-missing")]


def _locations(loc: LocationConf) -> Iterator[LocationConf]:
    yield loc
    for child in (*loc.static, *loc.regexes, *loc.named.values()):
        yield from _locations(child)


def _site_tree(cfg: nginxsim.Config, prefix: str) -> dict[str, Entry]:
    """SITE under every constant root and alias of the config that lies inside the prefix."""
    tree: dict[str, Entry] = {}
    for server in cfg.plan.servers:
        for loc in _locations(server.loc):
            value = loc.conf.get("root", (None, None))[1]
            base = value.const.decode() if value is not None and value.const is not None else None
            if base is None or not os.path.abspath(base).startswith(prefix + "/"):
                continue
            for name in SITE:
                path = os.path.join(base, name)
                tree[path] = None if name.endswith("/") else path + "\n"
    return tree


def _corpus_requests(cfg: nginxsim.Config, rng: random.Random) -> list[OracleRequest]:
    """SITE_PATHS and paths under every location name, to every server that has a try_files
    somewhere, by its first plain name and first listen; mostly GET, some HEAD and POST."""
    out = []
    for server in cfg.plan.servers:
        locs = list(_locations(server.loc))
        if not any("try_files" in loc.conf for loc in locs):
            continue
        names = [n for n, _, rx in server.names if rx is None and "*" not in n and not n.startswith(".") and n]
        host = names[0] if names else "localhost"
        listen = next((li for li in server.listens if not isinstance(li.addr, str)), None)
        tls = listen is not None and (listen.ssl or bool(server.loc.conf.get("ssl")))
        scheme = "https" if tls else "http"
        port = listen.port if listen is not None else 80
        addr = None if listen is None or listen.addr is None or listen.addr.version == 6 else str(listen.addr)
        named = set()
        for loc in locs:
            if loc.kind == "exact":
                named.add(loc.name)
            elif loc.kind in ("prefix", "noregex"):
                named.update({loc.name, loc.name + "real.txt", loc.name.rstrip("/") + "/missing"})
        authority = host if port == (443 if tls else 80) else f"{host}:{port}"
        for path in SITE_PATHS + sorted(named):
            method = rng.choices(["GET", "HEAD", "POST"], [8, 1, 1])[0]
            out.append(OracleRequest(client=CLIENT, url=f"{scheme}://{authority}{path}", method=method,
                                     server_addr=addr))
    return out


@pytest.mark.parametrize("entry", _CORPUS_PARAMS)
def test_corpus_try_files(entry: Path | None, tmp_root: str) -> None:
    """Corpus configs that use try_files (WordPress, Laravel, Flarum, Grav...), copied with a
    document root built under each of their roots: nginx's answers to paths that reach every
    location of their try_files servers."""
    require_corpus()
    assert entry is not None
    prefix = os.path.join(tmp_root, entry.name)
    shutil.copytree(entry, prefix, symlinks=True)
    cfg = nginxsim.load(os.path.join(prefix, "nginx.conf"), prefix=prefix)
    tree = _site_tree(cfg, prefix)
    assert tree, f"{entry.name}: no document root inside the prefix"
    for p in Path(prefix).rglob("*"):  # the entry's own files (error pages...) are part of the tree
        tree[str(p)] = Symlink(os.readlink(p)) if p.is_symlink() else None if p.is_dir() else p.read_bytes()
    requests = _corpus_requests(cfg, random.Random(entry.name))
    assert requests, f"{entry.name}: no server with try_files"
    compare_files(prefix, tree, requests, entry.name, path=os.path.join(prefix, "nginx.conf"))


# -- fixed cases: nginx's quirks, named ---------------------------------------------------------

QUIRKS_CONF = """
events {}
http {
    server {
        listen 80;
        listen 8080;
        server_name q.test;
        root @R@/www;
        try_files $uri /server-level-only;
        location = /server-level-only { return 200 "server level try_files"; }
        location /ret { return 200 "ret $uri $args"; }
        location @named { return 200 "named $uri $args"; }
        # ticket 97: a fallback with variables loses the location name under alias, a constant one keeps it
        location /p/ { alias @R@/alias/; try_files $uri /p/b.html?x=$args; }
        location /pc/ { alias @R@/alias/; try_files $uri /pc/b.html; }
        location /pn { alias @R@/alias; try_files $uri $uri/ =404; }
        # alias in a regex location: arguments are appended to the whole alias, "" tests it alone
        location ~ ^/ra/(.*)$ { alias @R@/alias/$1; try_files $uri =404; }
        location ~ ^/rb/(.*)$ { alias @R@/alias/$1; try_files "" =404; }
        location ~ ^/rc/(.*)$ { alias @R@/alias/$1; try_files / =404; }
        location ~ ^/rd/(.*)$ { alias @R@/alias/$1; }
        location /rw/ { alias @R@/alias/; rewrite ^/rw/(.*)$ /rw/$1 break; }
        location /nested/ { alias @R@/alias/; location /nested/sub/ { try_files $uri =403; } }
        # the last argument: codes nginx answers, codes it sends nothing for, a URI "=0", a cycle
        location /c200 { try_files /nope =200; }
        location /c201 { try_files /nope =201; }
        location /c302 { try_files /nope =302; }
        location /c408 { try_files /nope =408; }
        location /c444 { try_files /nope =444; }
        location /c0 { try_files /nope =0; }
        location = /=0 { return 200 "uri =0"; }
        location /loop { try_files /nope /loop; }
        location /q { try_files /nope $uri; }
        location /named { try_files /nope @named; }
        location /dirs { try_files $uri/ $uri =404; }
        location /if { if ($arg_x) { } try_files /nope =418; }
        # index: a directory name, an absolute name, a variable, under alias
        location /ix/ { index sub b.html; }
        location /ia/ { index nope /ret/abs; }
        location /iv/ { index $arg_i b.html; }
        location /il/ { alias @R@/alias/; index b.html; }
        location /auto/ { autoindex on; }
        location /nr/ { absolute_redirect off; }
        location /np/ { port_in_redirect off; }
        location /sn/ { server_name_in_redirect on; }
        location /ep/ { error_page 301 /ret/moved; }
        location /slash { root /; }
        location /vars/ { return 200 "$document_root|$realpath_root|$request_filename"; }
        location /avars/ { alias @R@/link/; return 200 "$document_root|$realpath_root|$request_filename"; }
    }
}
"""
QUIRKS_TREE = {"www/b.html": "", "www/ix/sub/": None, "www/ix/b.html": "", "www/ia/": None, "www/iv/b.html": "",
               "www/iv/c.html": "", "www/auto/d/": None, "www/auto/f": "", "www/nr/d/": None, "www/np/d/": None,
               "www/sn/d/": None, "www/ep/d/": None, "www/dirs/d/": None, "www/dirs/f": "", "www/q%3Fa": "",
               "alias/b.html": "", "alias/d/": None, "alias/d/b.html": "", "alias/sub/c.txt": "",
               "link": Symlink("alias"), "www/vars/x": ""}
QUIRKS_PATHS = ["/p/b.html", "/p/nope?k=1", "/pc/nope", "/pn/b.html", "/pn", "/pnd", "/pn/d", "/pn/d/",
                "/ra/b.html", "/rb/b.html", "/rb/d", "/rb/d/", "/rb/nope", "/rc/d", "/rc/d/", "/rd/b.html", "/rd/d",
                "/rd/d/", "/rw/b.html", "/nested/sub/c.txt", "/nested/sub/nope", "/c200", "/c201", "/c302", "/c408",
                "/c444", "/c0", "/loop", "/q%3Fa", "/named?a=1", "/dirs/d", "/dirs/d/", "/dirs/f", "/if?x=1", "/if",
                "/ix/", "/ia/", "/iv/?i=c.html", "/iv/", "/iv/?i=/ret/v", "/il/", "/auto/", "/auto/d/", "/auto/f/",
                "/auto/nope/", "/nr/d", "/np/d", "/sn/d?a=b%20c", "/ep/d", "/slash", "/nope", "/b.html", "/vars/x",
                "/avars/b.html", "/ix/sub?x=%41", "/ix/%73ub"]


def test_quirks(tmp_root: str) -> None:
    conf = QUIRKS_CONF.replace("@R@", tmp_root)
    tree = {f"{tmp_root}/{k}": (v if v is None or isinstance(v, Symlink) else f"{tmp_root}/{k}\n")
            for k, v in QUIRKS_TREE.items()}
    requests = [OracleRequest(client=CLIENT, url=f"http://q.test{port}{path}", method=method)
                for path in QUIRKS_PATHS for port in ("", ":8080")
                for method in ("GET", "HEAD", "POST", "PUT")]
    requests.append(OracleRequest(client=CLIENT, url="http://q.test/ix/sub", http_version="1.0"))
    compare_files(tmp_root, tree, requests, "quirks", text=conf)


def test_fastcgi_script_name(tmp_root: str) -> None:
    """`$fastcgi_script_name` as PHP configs test it: split_path_info, fastcgi_index, and the
    split kept once computed (try_files changes $uri afterwards)."""
    conf = f"""
events {{}}
http {{
    server {{
        listen 80;
        root {tmp_root}/www;
        fastcgi_index index.php;
        location / {{ try_files $uri $uri/ /index.php$is_args$args; }}
        location ~ \\.php(/|$) {{
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            if (!-f $document_root$fastcgi_script_name) {{ return 404; }}
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param PATH_INFO $fastcgi_path_info;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_pass 127.0.0.1:9000;
        }}
        location /dir/ {{ fastcgi_param SCRIPT_NAME $fastcgi_script_name; fastcgi_pass 127.0.0.1:9000; }}
        location ~ ^/kept/ {{
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            set $before $fastcgi_script_name;
            try_files /index.php =404;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param PATH_INFO $fastcgi_path_info;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_pass 127.0.0.1:9000;
        }}
        location ~ ^/fresh/ {{
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            try_files /index.php =404;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param PATH_INFO $fastcgi_path_info;
            fastcgi_pass 127.0.0.1:9000;
        }}
    }}
}}
"""
    tree: dict[str, Entry] = {f"{tmp_root}/www/{p}": f"{tmp_root}/www/{p}\n"
                              for p in ("index.php", "a.php", "sub/b.php", "c.txt")}
    paths = ["/", "/a.php", "/a.php/x/y", "/sub/b.php/info", "/nope.php", "/nope.php/x", "/c.txt", "/missing?q=1",
             "/sub/", "/dir/", "/dir/x", "/a.php?z=1", "/kept/a.php/x", "/fresh/a.php/x"]
    compare_files(tmp_root, tree, [OracleRequest(client=CLIENT, url=f"http://f.test{p}") for p in paths], "fastcgi",
                  text=conf)


ERRORS = {
    "try-files-duplicate": "location / { try_files $uri =404;\ntry_files $uri =404; }",
    "try-files-code": "location / { try_files $uri =abc; }",
    "try-files-code-big": "location / { try_files $uri =1000; }",
    "try-files-code-empty": "location / { try_files $uri =; }",
    "try-files-code-variable": "location / { try_files $uri =$status; }",
    "try-files-one-argument": "location / { try_files $uri; }",
    "alias-named": "location @n { alias /x/; }",
    "root-document-root": "location / { root $document_root/x; }",
    "alias-realpath-root": "location / { alias ${realpath_root}/x; }",
    "index-empty": 'location / { index a "" b; }',
    "split-path-captures": "location / { fastcgi_split_path_info ^(.+\\.php)/.*$; }",
    "split-path-regex": "location / { fastcgi_split_path_info (a; }",
    "fastcgi-index-duplicate": "location / { fastcgi_index a;\nfastcgi_index b; }",
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_config_errors(case: str, nginx_binary: str, tmp_root: str) -> None:
    text = "events {}\nhttp {\nserver {\nlisten 127.0.0.1:1;\n" + ERRORS[case] + "\n}\n}\n"
    Path(tmp_root, "nginx.conf").write_text(text)
    expected = nginx_t(nginx_binary, tmp_root)
    assert expected is not None, f"nginx -t accepted {case}"
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(f"{tmp_root}/nginx.conf")
    assert (e.value.message, e.value.file, e.value.line) == expected
