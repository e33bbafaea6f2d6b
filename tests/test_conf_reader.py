"""The config reader: nginx's tokenizer, blocks, includes, virtual files and -T dumps.

Expected values here were taken from nginx 1.22.1 (`nginx -t`); test_conf_validate.py holds the
differential tests that keep checking them against the binary, and the corpus tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nginxsim.conf import ConfTree, Directive, ReadError, read
from nginxsim.errors import ConfigError


def one(text: str) -> Directive:
    (d,) = read(text=text, prefix="/v").directives
    return d


def read_error(
    path: str | None = None,
    *,
    text: str | None = None,
    files: dict[str, str] | None = None,
    prefix: str | None = None,
) -> ReadError:
    with pytest.raises(ReadError) as info:
        read(path, text=text, files=files, prefix=prefix)
    return info.value


def where(e: ConfigError) -> tuple[str, str | None, int | None]:
    return e.message, e.file, e.line


# --- tokens (ngx_conf_read_token) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "args", "quoted"),
    [
        # only \" \' \\ \t \r \n lose their backslash, in or out of quotes
        (r'x "a\"b\'c\\d\te\nf\rg\x";', ("a\"b'c\\d\te\nf\rg\\x",), (True,)),
        (r"x a\"b\$c\ d;", ('a"b\\$c\\ d',), (False,)),
        (r"x 'it\'s' \\;", ("it's", "\\"), (True, False)),
        # "}" "#" and quotes inside a bare word are ordinary characters
        ("x a}b c#d e\"f'g;", ("a}b", "c#d", "e\"f'g"), (False, False, False)),
        # "${" does not open a block, "{" after anything else does
        ("x ${a}b $a{ }", ("${a}b", "$a"), (False, False)),
        # ")" may follow a quoted word and starts the next word
        ('x ($a = "b") { }', ("($a", "=", "b", ")"), (False, False, True, False)),
        ('x "";', ("",), (True,)),
        ("x\ta\r\nb ;", ("a", "b"), (False, False)),
        # form feed and vertical tab are not separators for nginx
        ("x a\fb\vc;", ("a\fb\vc",), (False,)),
        ("x a;#c\n", ("a",), (False,)),
        ("x \"é\" 'ü';", ("é", "ü"), (True, True)),
    ],
)
def test_tokens_like_nginx(text: str, args: tuple[str, ...], quoted: tuple[bool, ...]) -> None:
    d = one(text)
    assert (d.name, d.args, d.quoted) == ("x", args, quoted)


def test_quoted_directive_name_is_the_name() -> None:
    d = one('"server_name" a;')
    assert d.name == "server_name" and d.args == ("a",) and d.quoted == (False,)


def test_line_is_where_the_directive_ends() -> None:
    """nginx reports a directive at the line of its ";" or "{" (Allman braces included)."""
    tree = read(text="a\n  b\n  c;\nserver\n{\n  x 'multi\nline';\n}\n", prefix="/v")
    a, server = tree.directives
    assert a.line == 3 and server.line == 5
    assert server.block is not None and server.block[0].line == 7


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a;\n}", 'unexpected "}"', 2),
        ("a {\n", 'unexpected end of file, expecting "}"', 2),
        ("a b", 'unexpected end of file, expecting ";" or "}"', 1),
        ('a "b\n\n', 'unexpected end of file, expecting ";" or "}"', 3),
        ("a b\\", 'unexpected end of file, expecting ";" or "}"', 1),
        ("\n;", 'unexpected ";"', 2),
        ("{", 'unexpected "{"', 1),
        ("a b }", 'unexpected "}"', 1),
        ('a "b"c;', 'unexpected "c"', 1),
        ("a 'b'#;", 'unexpected "#"', 1),
        ('a "b"\xe9;', 'unexpected "\udcc3"', 1),  # nginx prints the first byte of "é"
    ],
)
def test_syntax_errors(text: str, message: str, line: int) -> None:
    e = read_error(text=text, prefix="/v")
    assert where(e) == (message, "/v/nginx.conf", line)


def test_too_long_parameter_like_nginx() -> None:
    """No word, string or comment may fill nginx's 4096-byte read buffer (when more follows)."""
    bare = read_error(text="x " + "a" * 4095 + " ;\n", prefix="/v")
    assert where(bare) == ('too long parameter "aaaaaaaaaa..." started', "/v/nginx.conf", 1)
    assert one("x " + "a" * 4094 + " ;\n").args == ("a" * 4094,)
    assert one("x " + "a" * 4095 + ";\n").args == ("a" * 4095,)
    unclosed = read_error(text='\nx "' + "a" * 5000 + "\n", prefix="/v")
    assert where(unclosed) == (
        'too long parameter, probably missing terminating """ character',
        "/v/nginx.conf",
        2,
    )
    comment = read_error(text="#" + "c" * 4096 + "\nx;", prefix="/v")
    assert comment.message == 'too long parameter "#ccccccccc..." started'
    assert read(text="#" + "c" * 4095, prefix="/v").directives == ()  # the buffer is never refilled


# --- blocks -------------------------------------------------------------------------------------


def test_blocks_nest_and_keep_order() -> None:
    tree = read(text="events {}\nhttp { server { location / { return 200; } } gzip on; }", prefix="/v")
    events, http = tree.directives
    assert events.block == () and http.block is not None
    server, gzip = http.block
    assert gzip == Directive("gzip", ("on",), "/v/nginx.conf", 2, None, (False,))
    assert server.block is not None and server.block[0].args == ("/",)


@pytest.mark.parametrize("name", ["types", "map", "geo", "split_clients", "charset_map"])
def test_custom_blocks_hold_data_and_refuse_braces(name: str) -> None:
    """Their lines are data (first word as the name); a "{" inside is nginx's `unexpected "{"`."""
    (block,) = read(text=f"{name} a b {{\n  text/html html htm;\n}}", prefix="/v").directives
    assert block.block == (Directive("text/html", ("html", "htm"), "/v/nginx.conf", 2, None, (False, False)),)
    e = read_error(text=f"{name} {{\n a;\n b {{ }}\n}}", prefix="/v")
    assert where(e) == ('unexpected "{"', "/v/nginx.conf", 3)


# --- includes (ngx_conf_include) ----------------------------------------------------------------


def test_include_splices_files_in_place_with_their_own_lines() -> None:
    files = {
        "/etc/nginx/nginx.conf": "events {}\nhttp {\n  include conf.d/*.conf;\n  include mime.types;\n}\n",
        "/etc/nginx/conf.d/b.conf": "\nb;\n",
        "/etc/nginx/conf.d/a.conf": "a;\n",
        "/etc/nginx/conf.d/.hidden.conf": "hidden;\n",
        "/etc/nginx/mime.types": "types { text/html html; }\n",
    }
    tree = read("/etc/nginx/nginx.conf", files=files)
    http = tree.directives[1]
    assert http.block is not None
    assert [(d.name, d.file, d.line) for d in http.block] == [
        ("a", "/etc/nginx/conf.d/a.conf", 1),
        ("b", "/etc/nginx/conf.d/b.conf", 2),
        ("types", "/etc/nginx/mime.types", 1),
    ]
    assert tree.files == (
        "/etc/nginx/nginx.conf",
        "/etc/nginx/conf.d/a.conf",
        "/etc/nginx/conf.d/b.conf",
        "/etc/nginx/mime.types",
    )
    assert (tree.main_file, tree.conf_dir, tree.prefix) == (
        "/etc/nginx/nginx.conf",
        "/etc/nginx",
        "/etc/nginx",
    )


def test_include_paths_are_not_normalised() -> None:
    """nginx joins the conf dir and the name as written; messages and file names show that."""
    files = {"nginx.conf": "include ./x/../a.conf;\ninclude ./missing.conf;\n", "a.conf": "a;"}
    e = read_error(files=files, prefix="/v")
    assert where(e) == (
        'open() "/v/./missing.conf" failed (2: No such file or directory)',
        "/v/nginx.conf",
        2,
    )
    assert e.partial.directives == (Directive("a", (), "/v/./x/../a.conf", 1),)


def test_glob_without_match_is_fine_and_a_directory_is_not() -> None:
    assert read(text="include none/*.conf;", prefix="/v").directives == ()
    e = read_error(files={"nginx.conf": "include d/*;", "d/sub/x.conf": ""}, prefix="/v")
    assert where(e) == ('pread() "/v/d/sub" failed (21: Is a directory)', None, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("include a b;", 'invalid number of arguments in "include" directive'),
        ("include;", 'invalid number of arguments in "include" directive'),
        ("include a {}", 'directive "include" is not terminated by ";"'),
        ("types { include a b; }", 'invalid number of arguments in "include" directive'),
    ],
)
def test_include_argument_errors(text: str, message: str) -> None:
    assert where(read_error(text=text, prefix="/v")) == (message, "/v/nginx.conf", 1)


def test_include_inside_custom_blocks_follows_their_parsers() -> None:
    files = {
        "nginx.conf": (
            "map $a $b { include m*.map; include x y; }\n"
            "geo $g { include g.geo; }\n"
            "split_clients $a $s { include s.conf; }\n"
            "types { include t.types; }\n"
        ),
        "m1.map": "k1 v1;",
        "m2.map": "k2 v2;",
        "g.geo": "127.0.0.1 1;",
        "t.types": "text/plain txt;",
    }
    m, g, s, t = read(files=files, prefix="/v").directives
    assert [(d.name, d.args) for d in m.block or ()] == [
        ("k1", ("v1",)),
        ("k2", ("v2",)),
        ("include", ("x", "y")),
    ]
    assert [d.file for d in g.block or ()] == ["/v/g.geo"]
    assert s.block == (Directive("include", ("s.conf",), "/v/nginx.conf", 3, None, (False,)),)
    assert [(d.name, d.file) for d in t.block or ()] == [("text/plain", "/v/t.types")]
    # geo's include does not glob; an included file keeps its block's parser
    literal = read_error(text="geo $g { include g*.geo; }", prefix="/v")
    assert literal.message == 'open() "/v/g*.geo" failed (2: No such file or directory)'
    brace = read_error(files={"nginx.conf": "types { include t; }", "t": "a {"}, prefix="/v")
    assert where(brace) == ('unexpected "{"', "/v/t", 1)


def test_blocks_do_not_span_files() -> None:
    close = read_error(files={"nginx.conf": "http {\ninclude a.conf;\n}", "a.conf": "x;\n}"}, prefix="/v")
    assert where(close) == ('unexpected "}"', "/v/a.conf", 2)
    open_ = read_error(files={"nginx.conf": "include a.conf;\n}", "a.conf": "http {\n"}, prefix="/v")
    assert where(open_) == ('unexpected end of file, expecting "}"', "/v/a.conf", 2)


def test_include_cycle_is_refused() -> None:
    e = read_error(files={"nginx.conf": "a;\ninclude b.conf;", "b.conf": "include nginx.conf;"}, prefix="/v")
    assert (e.file, e.line) == ("/v/b.conf", 1) and "includes itself" in e.message


def test_partial_tree_keeps_open_blocks() -> None:
    e = read_error(text="events {}\nhttp {\n server {\n  a;\n  b\n", prefix="/v")
    assert e.message == 'unexpected end of file, expecting ";" or "}"'
    events, http = e.partial.directives
    assert http.block is not None and http.block[0].block == (Directive("a", (), "/v/nginx.conf", 4),)


# --- sources: disk, text, virtual files, nginx -T dumps ------------------------------------------


def test_disk_relative_paths_and_prefix(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "nginx.conf").write_text("include inc/*.conf;\n")
    (tmp_path / "conf" / "inc").mkdir()
    (tmp_path / "conf" / "inc" / "a.conf").write_text("a;\n")
    tree = read("conf/nginx.conf", prefix=str(tmp_path))  # relative to the prefix, like -c with -p
    assert tree.main_file == f"{tmp_path}/conf/nginx.conf"
    assert (tree.prefix, tree.conf_dir) == (str(tmp_path), f"{tmp_path}/conf")
    assert tree.directives == (Directive("a", (), f"{tmp_path}/conf/inc/a.conf", 1),)
    missing = read_error(str(tmp_path / "none.conf"))
    assert where(missing) == (
        f'open() "{tmp_path}/none.conf" failed (2: No such file or directory)',
        None,
        None,
    )


def test_virtual_files_never_touch_the_disk(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("from_disk;")
    (tmp_path / "a.conf").write_text("from_disk;")
    e = read_error(files={"nginx.conf": "virtual;\ninclude a.conf;"}, prefix=str(tmp_path))
    assert e.message == f'open() "{tmp_path}/a.conf" failed (2: No such file or directory)'
    assert [d.name for d in e.partial.directives] == ["virtual"]


def test_text_is_the_main_file_and_includes_come_from_files() -> None:
    tree = read(text="include a.conf;", files={"a.conf": "a;", "unused.conf": "x"}, prefix="/srv")
    assert tree.main_file == "/srv/nginx.conf"
    assert tree.files == ("/srv/nginx.conf", "/srv/a.conf")
    assert tree.directives[0].file == "/srv/a.conf"


def test_text_defaults_to_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert read(text="a;").main_file == f"{tmp_path}/nginx.conf"


DUMP = """\
nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
nginx: configuration file /etc/nginx/nginx.conf test is successful
# configuration file /etc/nginx/nginx.conf:
events {}
http {
    include /etc/nginx/conf.d/*.conf;
}

# configuration file /etc/nginx/conf.d/a.conf:
server { listen 80; }
# configuration file /etc/nginx/conf.d/b.conf:
a;

"""


def test_nginx_T_dump_is_split_into_files() -> None:
    tree = read(text=DUMP)
    assert tree.main_file == "/etc/nginx/nginx.conf"
    assert tree.files == ("/etc/nginx/nginx.conf", "/etc/nginx/conf.d/a.conf", "/etc/nginx/conf.d/b.conf")
    http = tree.directives[1]
    assert http.block is not None
    assert [(d.name, d.file, d.line) for d in http.block] == [
        ("server", "/etc/nginx/conf.d/a.conf", 1),
        ("a", "/etc/nginx/conf.d/b.conf", 1),
    ]
    with pytest.raises(ValueError):
        read("/etc/nginx/nginx.conf", text=DUMP)


def test_dump_marker_after_config_text_is_just_a_comment() -> None:
    tree = read(text="a;\n# configuration file /x:\nb;\n", prefix="/v")
    assert [d.name for d in tree.directives] == ["a", "b"]


def test_tree_type() -> None:
    tree = read(text="a;", prefix="/v")
    assert isinstance(tree, ConfTree) and tree.directives[0].where == "/v/nginx.conf:1"
