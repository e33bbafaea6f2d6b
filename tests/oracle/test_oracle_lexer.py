"""The harness's offset-keeping tokenizer reads words as nginx's ngx_conf_read_token does."""

from __future__ import annotations

from nginxsim.oracle.lexer import parse, quote, unescape


def words(text: str) -> list[list[str]]:
    out: list[list[str]] = []

    def walk(stmts: list) -> None:  # type: ignore[type-arg]
        for s in stmts:
            out.append([w.value for w in s.words])
            if s.block is not None:
                walk(s.block)

    walk(parse(text))
    return out


def test_escapes_quotes_and_variables() -> None:
    text = r"""return 200 "a\"b\\c\td\x" 'e\'f' g\ h ${x}y "${y}" a}b; # comment ; {
    if ($a = "x") { }"""
    assert words(text) == [
        ["return", "200", 'a"b\\c\td\\x', "e'f", "g\\ h", "${x}y", "${y}", "a}b"],
        ["if", "($a", "=", "x", ")"],
    ]


def test_offsets_cover_the_written_token_and_lines_count() -> None:
    text = 'events {}\nhttp {\n  root "/a b";\n  listen\n 80;\n}\n'
    http = parse(text)[1]
    assert http.block is not None and http.body == text.index("{", 10) + 1
    root, listen = http.block
    assert text[root.args[0].start : root.args[0].end] == '"/a b"'
    assert (root.args[0].line, listen.args[0].line) == (3, 5)
    assert text[listen.start : listen.end] == "listen\n 80;"
    assert text[http.start : http.end] == text.rstrip("\n")[text.index("http") :]


def test_syntax_errors_stop_reading_and_keep_what_was_read() -> None:
    assert words("a 1; b 2") == [["a", "1"]]  # no ";" at the end of the file
    assert words('a "x"y; b;') == []  # a quote must be followed by a separator
    stmts = parse("http { server { listen 80;")
    assert stmts[0].block is not None and stmts[0].block[0].block is not None
    assert [s.name for s in stmts[0].block[0].block] == ["listen"]
    assert words("} a;") == []


def test_quote_round_trips_through_the_tokenizer() -> None:
    for value in ["plain", "a b", 'q"uote', "back\\slash", "semi;colon", "", "tab\tx", "{brace}", "$var"]:
        assert words(f"d {quote(value)};") == [["d", value]]
    assert unescape(r"\n\r\t\z") == "\n\r\t\\z"
