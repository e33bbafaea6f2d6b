"""nginxsim.regex: PCRE2 as nginx 1.22.1 uses it.

Unit tests run against every available engine (the host's libpcre2 and the pcre2 package);
the `oracle` tests compare the default engine with a real nginx binary.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest

from nginxsim.regex import (
    ENGINE,
    Engine,
    Regex,
    RegexError,
    RegexMatchError,
    available_engines,
    compile_regex,
    server_name_caseless,
)
from requires import require

ENGINES = available_engines()


@pytest.fixture(params=ENGINES, ids=lambda e: f"{e.name}-{e.version}")
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.param  # type: ignore[no-any-return]


def caps(
    engine: Engine, source: str, subject: bytes, caseless: bool = False
) -> tuple[bytes | None, ...] | None:
    m = compile_regex(source, caseless=caseless, engine=engine).search(subject)
    return None if m is None else m.captures


def is_1042(engine: Engine) -> bool:
    return engine.version == "10.42"


# --------------------------------------------------------------------------------------------
# syntax nginx accepts and Python's re does not (or reads differently)


def test_named_group_syntaxes(engine: Engine) -> None:
    for source in (r"^/(?<a>\w+)/(?P<b>\d+)/(?'c'x)", r"^/(?<a>\w+)/(?<b>\d+)/(?<c>x)"):
        rx = compile_regex(source, engine=engine)
        assert rx.ncaptures == 3
        assert rx.names == ("a", "b", "c")
        assert rx.name_table == (("a", 1), ("b", 2), ("c", 3))
        m = rx.search(b"/abc/42/x")
        assert m is not None
        assert m.named == {"a": b"abc", "b": b"42", "c": b"x"}
        assert m.captures == (b"/abc/42/x", b"abc", b"42", b"x")


def test_name_table_is_sorted_by_name(engine: Engine) -> None:
    rx = compile_regex(r"(?<zz>a)(?<aa>b)(c)(?<mm>d)", engine=engine)
    assert rx.name_table == (("aa", 2), ("mm", 4), ("zz", 1))
    assert rx.names == ("aa", "mm", "zz")


def test_duplicate_names_last_entry_wins(engine: Engine) -> None:
    # ngx_http_regex_exec sets the variable once per name-table entry: group 2 (unset) last
    rx = compile_regex(r"(?J)(?<n>a)|(?<n>b)", engine=engine)
    # the bundled engine only sees one entry per name: the last, the one nginx ends up with
    assert rx.name_table == ((("n", 1),) if engine.name == "system" else ()) + (("n", 2),)
    m = rx.search(b"a")
    assert m is not None and m.named == {"n": None}
    m = rx.search(b"b")
    assert m is not None and m.named == {"n": b"b"}
    with pytest.raises(RegexError, match="two named subpatterns have the same name"):
        compile_regex(r"(?<n>a)|(?<n>b)", engine=engine)


def test_pcre_only_escapes(engine: Engine) -> None:
    assert caps(engine, r"^/a\z", b"/a\n") is None  # \z: very end only
    assert caps(engine, r"^/a\Z", b"/a\n") == (b"/a",)  # \Z: also before a final newline
    assert caps(engine, r"^/a\h\H", b"/a\xa0b") == (b"/a\xa0b",)  # \h includes 0xA0 (Latin-1 NBSP)
    assert caps(engine, r"^/\v", b"/\x85") == (b"/\x85",)  # \v is a class (Python: VT only)
    assert caps(engine, r"^/\v", b"/\x0b") == (b"/\x0b",)
    assert caps(engine, r"^/a\Rb", b"/a\r\nb") == (b"/a\r\nb",)
    assert caps(engine, r"^/\N+", b"/ab\ncd") == (b"/ab",)
    assert caps(engine, r"^/\Qa.b\E$", b"/a.b") == (b"/a.b",)
    assert caps(engine, r"^/\Qa.b\E$", b"/axb") is None
    assert caps(engine, r"^/\x{41}\o{102}\103\e\cA", b"/ABC\x1b\x01") == (b"/ABC\x1b\x01",)
    assert caps(engine, r"^/[[:alpha:]]+[[:^alpha:]]", b"/ab1") == (b"/ab1",)


def test_syntax_python_re_reads_differently(engine: Engine) -> None:
    assert caps(engine, r"^/[[:alpha:]]$", b"/:") is None  # re: the set "[:alph" then "]"
    assert caps(engine, r"(?<=/a|/bc)x", b"/bcx") == (b"x",)  # branches of different lengths
    assert caps(engine, r"^/a(?i)b", b"/aB") == (b"/aB",)  # re: flags only at the start
    assert caps(engine, r"(?U)^/a+", b"/aaa") == (b"/a",)  # ungreedy by default
    assert caps(engine, r"^/(?&n)(?<n>a)", b"/aa") == (b"/aa", b"a")  # call a named group
    assert caps(engine, r"^/\Ea", b"/a") == (b"/a",)  # a lone \E is ignored


def test_backslash_u_is_an_error_not_a_unicode_escape(engine: Engine) -> None:
    # the pcre2 package compiles with PCRE2_ALT_BSUX by default; nginx does not
    with pytest.raises(RegexError, match=r"PCRE2 does not support \\F, \\L, \\l, \\N\{name\}, \\U, or \\u"):
        compile_regex(r"\u0041", engine=engine)
    assert caps(engine, r"\x{41}", b"A") == (b"A",)


def test_keep_out_possessive_atomic(engine: Engine) -> None:
    m = compile_regex(r"^/img/\K(\w+)", engine=engine).search(b"/img/abc")
    assert m is not None and m.captures == (b"abc", b"abc") and m.offsets == [5, 8, 5, 8]
    assert caps(engine, r"^/a++a", b"/aaa") is None
    assert caps(engine, r"^/(?>a+)a", b"/aaa") is None
    assert caps(engine, r"^/a+a", b"/aaa") == (b"/aaa",)
    assert caps(engine, r"^/(?|(a)|(b))", b"/b") == (b"/b", b"b")  # branch reset


def test_recursion_conditionals_backrefs(engine: Engine) -> None:
    assert caps(engine, r"^/(\((?:[^()]|(?1))*\))$", b"/(a(b)c)") == (b"/(a(b)c)", b"(a(b)c)")
    assert caps(engine, r"^/(a)?(?(1)b|c)$", b"/ab") == (b"/ab", b"a")
    assert caps(engine, r"^/(a)?(?(1)b|c)$", b"/c") == (b"/c", None)
    assert caps(engine, r"^/(?<x>\w)\k<x>\g{x}\g1\g{-1}", b"/aaaaa") == (b"/aaaaa", b"a")


def test_dollar_and_dot(engine: Engine) -> None:
    assert caps(engine, r"^/nl$", b"/nl\n") == (b"/nl",)  # $ before a final \n
    assert caps(engine, r"^/nl$", b"/nl\n\n") is None
    assert caps(engine, r"^/nl$", b"/nl\r") is None  # newline convention is LF only
    assert caps(engine, r"^/a.b", b"/a\nb") is None  # . does not match \n
    assert caps(engine, r"^/a.b", b"/a\rb") == (b"/a\rb",)
    assert caps(engine, r"(?s)^/a.b", b"/a\nb") == (b"/a\nb",)
    assert caps(engine, r"(?m)^b$", b"/a\nb\nc") == (b"b",)
    assert caps(engine, r"^b", b"/a\nb") is None


def test_bytes_not_utf8(engine: Engine) -> None:
    # non-UTF mode: é in the pattern is two bytes, the quantifier binds to the last one
    assert caps(engine, "^/caf(é)+$", "/café".encode()) == ("/café".encode(), "é".encode())
    assert caps(engine, "^/café+$", b"/caf\xc3\xa9\xa9\xa9") == (b"/caf\xc3\xa9\xa9\xa9",)
    assert caps(engine, r"^/.$", "/é".encode()) is None  # . is one byte
    assert caps(engine, r"^/..$", "/é".encode()) == ("/é".encode(),)
    assert caps(engine, r"^/\w", b"/\xe9") is None  # \w, \d, [[:alpha:]] are ASCII
    assert caps(engine, r"^/\p{L}", b"/\xe9") == (b"/\xe9",)  # \p{} reads bytes as Latin-1
    assert caps(engine, r"^/[\x80-\xff]+", b"/\xff\x80") == (b"/\xff\x80",)
    assert caps(engine, r"^/\xe9", b"/\xe9") == (b"/\xe9",)


def test_caseless_is_ascii_only(engine: Engine) -> None:
    assert caps(engine, r"^/abc$", b"/ABC", caseless=True) == (b"/ABC",)
    assert caps(engine, r"^/abc$", b"/ABC") is None
    assert caps(engine, "^/é$", "/É".encode(), caseless=True) is None  # C3 A9 vs C3 89
    assert caps(engine, r"^/\xe9$", b"/\xc9", caseless=True) is None  # no Latin-1 folding
    assert caps(engine, r"(?i)^/abc$", b"/AbC") == (b"/AbC",)
    assert caps(engine, r"^/(?-i)abc$", b"/ABC", caseless=True) is None
    rx = compile_regex(r"^/x", caseless=True, engine=engine)
    assert rx.caseless and not compile_regex(r"^/x", engine=engine).caseless


def test_utf_verb(engine: Engine) -> None:
    assert caps(engine, r"(*UTF)^/.$", "/é".encode()) == ("/é".encode(),)
    assert caps(engine, r"(*UTF)^/\w$", "/é".encode()) is None  # UTF without UCP: \w ASCII
    assert caps(engine, r"(*UTF)(*UCP)^/\w$", "/é".encode()) == ("/é".encode(),)
    rx = compile_regex(r"(*UTF)^/", engine=engine)
    with pytest.raises(RegexMatchError) as e:
        rx.search(b"/\xe9")  # invalid UTF-8 subject: nginx answers 500
    assert e.value.rc == -4  # PCRE2_ERROR_UTF8_ERR2: 2 bytes missing at end
    assert e.value.message == 'pcre2_match() failed: -4 on "/\udce9" using "(*UTF)^/"'


def test_unset_groups_and_offsets(engine: Engine) -> None:
    rx = compile_regex(r"(a)|(b)", engine=engine)
    m = rx.search(b"xb")
    assert m is not None
    assert m.offsets == [1, 2, -1, -1, 1, 2]
    assert m.captures == (b"b", None, b"b")
    assert m.group(1) is None and m.group(2) == b"b" and m.group(7) is None
    m = rx.search(b"a")
    assert m is not None
    assert m.offsets == [0, 1, 0, 1]  # rc = 2: trailing unset groups are not counted
    assert m.captures == (b"a", b"a", None)
    m = compile_regex(r"^/x", engine=engine).search(b"/x")
    assert m is not None and m.offsets == [0, 2] and m.captures == (b"/x",)  # ncaptures = 2
    m = compile_regex(r"(a)?(b)?(c)?", engine=engine).search(b"zzz")
    assert m is not None and m.offsets == [0, 0] and m.captures == (b"", None, None, None)


def test_regex_value_and_repr(engine: Engine) -> None:
    a, b = compile_regex("^/a(b)", engine=engine), compile_regex("^/a(b)", engine=engine)
    assert a == b and hash(a) == hash(b)
    assert a != compile_regex("^/a(b)", caseless=True, engine=engine)
    assert repr(a) == "Regex(source='^/a(b)', caseless=False, ncaptures=1, name_table=())"
    m = a.search(b"/ab")
    assert repr(m) == "<Match '^/a(b)' (b'/ab', b'b')>"


def test_quantifier_syntax_by_version(engine: Engine) -> None:
    # PCRE2 10.43 made {,n} a quantifier and allowed spaces in braces; 10.42 reads literals
    if is_1042(engine):
        assert caps(engine, r"^/a{,2}$", b"/a{,2}") == (b"/a{,2}",)
        assert caps(engine, r"^/a{ 2 }$", b"/a{ 2 }") == (b"/a{ 2 }",)
        assert caps(engine, r"^/\xg", b"/\x00g") == (b"/\x00g",)
        assert caps(engine, r"^/\C\C$", "/é".encode()) == ("/é".encode(),)
    elif engine.name == "bundled":
        assert caps(engine, r"^/a{,2}$", b"/aa") == (b"/aa",)
        assert caps(engine, r"^/a{ 2 }$", b"/aa") == (b"/aa",)


def test_match_limit_depends_on_jit(engine: Engine) -> None:
    # nginx matches with the interpreter unless `pcre_jit on`; the JIT counts the match
    # limit differently, so this subject is an error (500) without it and no match with it
    subject = b"/" + b"a" * 22 + b"!"
    with pytest.raises(RegexMatchError) as e:
        compile_regex(r"^/(a+)+$", engine=engine).search(subject)
    assert e.value.rc == -47
    assert e.value.message == f'pcre2_match() failed: -47 on "{subject.decode()}" using "^/(a+)+$"'
    assert compile_regex(r"^/(a+)+$", jit=True, engine=engine).search(subject) is None


def test_threads_share_nothing(engine: Engine) -> None:
    rx_a = compile_regex(r"^/(\w+)/(\d+)", engine=engine)
    rx_b = compile_regex(r"^(x)(y)(z)(w)(v)", engine=engine)
    errors: list[str] = []

    def work(k: int) -> None:
        for i in range(2000):
            s = f"/t{k}/{i}".encode()
            m = rx_a.search(s)
            if m is None or m.captures != (s, f"t{k}".encode(), str(i).encode()):
                errors.append(f"{k}:{i}")
            m2 = rx_b.search(b"xyzwv")
            if m2 is None or m2.captures[5] != b"v":
                errors.append(f"{k}:{i}:b")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --------------------------------------------------------------------------------------------
# compile errors: nginx's wording (checked against `nginx -t` in test_oracle_compile_errors)

ERRORS_1042 = {  # source: (PCRE2 10.42 text, the `at` tail); each checked by `nginx -t` below
    "(abc": ("missing closing parenthesis", None),
    "a**": ("quantifier does not follow a repeatable item", "*"),
    "[z-a]": ("range out of order in character class", "a]"),
    "(?<=ab?)x": ("lookbehind assertion is not fixed length", "(?<=ab?)x"),
    "(?<=a+)b": ("lookbehind assertion is not fixed length", "(?<=a+)b"),
    "(?P<1a>x)": ("subpattern name must start with a non-digit", "1a>x)"),
    "(?<a-b>x)": ("syntax error in subpattern name (missing terminator?)", "-b>x)"),
    "x{3,2}": ("numbers out of order in {} quantifier", "}"),
    "x{99999}": ("number too big in {} quantifier", "}"),
    "[abc": ("missing terminating ] for character class", None),
    "abc)": ("unmatched closing parenthesis", ")"),
    "(?": ("missing closing parenthesis", None),
    "(?<n>a)(?<n>b)": ("two named subpatterns have the same name (PCRE2_DUPNAMES not set)", "b)"),
    "\\": ("\\ at end of pattern", None),
    "a\\k": ("\\k is not followed by a braced, angle-bracketed, or quoted name", None),
    "\\ca\\c": ("\\c at end of pattern", None),
    "(?z)": ("unrecognized character after (? or (?-", "z)"),
    "[[:foo:]]": ("unknown POSIX class name", "foo:]]"),
    "[\\d-z]": ("invalid range in character class", "-z]"),
    "\\1(a)\\2": ("reference to non-existent subpattern", "2"),
    "(?P=x)": ("reference to non-existent subpattern", "x)"),
    "(?(2)a)": ("reference to non-existent subpattern", "(2)a)"),
    "a(?#": ("missing ) after (?# comment", None),
    "(*FOO)": ("(*VERB) not recognized or malformed", ")"),
    "(*LIMIT_MATCH=)": ("(*VERB) not recognized or malformed", ")"),
    "(?C256)": ("number after (?C is greater than 255", ")"),
    "\\p{Foo}": ("unknown property after \\P or \\p", None),
    "\\N{U+41}": ("\\N{U+dddd} is supported only in Unicode (UTF) mode", "{U+41}"),
    "\\x{110000}": ("character code point value in \\x{} or \\o{} is too large", "}"),
    "(*UTF)\udcff": ("UTF-8 error: illegal byte (0xfe or 0xff)", "\udcff"),
    "(?<" + "n" * 33 + ">x)": ("subpattern name is too long (maximum 32 code units)", ">x)"),
}


def require_pcre2_1042() -> None:
    """The error texts are those of PCRE2 10.42, the library nginx 1.22.1 links on Debian."""
    require(ENGINE.version == "10.42", f"the regex engine is PCRE2 {ENGINE.version}; error texts need 10.42")


def nginx_compile_message(source: str) -> str:
    reason, at = ERRORS_1042[source]
    return f'pcre2_compile() failed: {reason} in "{source}"' + ("" if at is None else f' at "{at}"')


@pytest.mark.parametrize("source", sorted(ERRORS_1042))
def test_compile_error_messages_1042(source: str) -> None:
    require_pcre2_1042()
    with pytest.raises(RegexError) as e:
        compile_regex(source)
    assert e.value.message == str(e.value) == nginx_compile_message(source)


def compile_error(source: str, engine: Engine = ENGINE) -> str:
    with pytest.raises(RegexError) as e:
        compile_regex(source, engine=engine)
    return e.value.message


def test_compile_error_message_format(engine: Engine) -> None:
    # offset == length: no `at`
    assert compile_error("(abc", engine) == 'pcre2_compile() failed: missing closing parenthesis in "(abc"'
    # cut to the NGX_MAX_CONF_ERRSTR buffer
    want = 'pcre2_compile() failed: missing closing parenthesis in "' + "x" * 968
    assert compile_error("x" * 1100 + "(", engine) == want
    if is_1042(engine):  # the offset counts bytes of the UTF-8 pattern
        want = 'pcre2_compile() failed: quantifier does not follow a repeatable item in "a**é" at "*é"'
        assert compile_error("a**é", engine) == want


def test_server_name_caseless() -> None:
    assert server_name_caseless(r"^ABC\.test$")
    assert server_name_caseless(r"^(\w+)\.\D")  # \D, \S, \W count as uppercase letters too
    assert not server_name_caseless(r"^(?<sub>[a-z0-9-]+)\.example\.com$")
    assert not server_name_caseless("^é\\.test$")


# --------------------------------------------------------------------------------------------
# the part of the syntax Python's re shares: both engines must agree with it

_COMMON_ATOMS = ["a", "b", "/", "\\.", ".", "\\d", "\\w", "\\W", "\\s", "[a-b]", "[^/]", "\\b", "x"]
_COMMON_QUANT = ["", "", "", "*", "+", "?", "{1,2}", "*?", "+?", "??"]


def _common_pattern(rng: random.Random, depth: int = 0) -> str:
    out = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if depth < 2 and r < 0.25:
            inner = "|".join(_common_pattern(rng, depth + 1) for _ in range(rng.randint(1, 2)))
            atom = rng.choice(["(", "(?:", "(?=", "(?!"]) + inner + ")"
        else:
            atom = rng.choice(_COMMON_ATOMS)
        if atom not in ("\\b",) and not atom.startswith("(?=") and not atom.startswith("(?!"):
            atom += rng.choice(_COMMON_QUANT)
        out.append(atom)
    return rng.choice(["", "^"]) + "".join(out) + rng.choice(["", "", "$"])


def test_agrees_with_python_re_on_common_syntax(engine: Engine) -> None:
    rng = random.Random(1221)
    alphabet = [b"a", b"b", b"/", b".", b"1", b" ", b"\n", b"x", b"\xe9", b"A"]
    checked = 0
    for _ in range(400):
        source = _common_pattern(rng)
        caseless = rng.random() < 0.2
        rx = compile_regex(source, caseless=caseless, engine=engine)
        py = re.compile(source.encode(), re.IGNORECASE if caseless else 0)
        for _ in range(5):
            subject = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
            m, pm = rx.search(subject), py.search(subject)
            assert (m is None) == (pm is None), (source, subject)
            if m is not None and pm is not None:
                want = tuple(pm.group(i) for i in range(py.groups + 1))
                assert m.captures == want, (source, subject)
            checked += 1
    assert checked == 2000


# --------------------------------------------------------------------------------------------
# differential tests against a real nginx


def nginx_binary() -> str:
    """The oracle binary; CI=true makes its absence a failure, otherwise a skip."""
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    require(os.access(path, os.X_OK), "nginx binary not found: oracle tests need nginx 1.22.1 (/usr/sbin/nginx)")
    return path


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free 127.0.0.1 port, never one this process handed out before (a test may pick
    several before nginx binds any)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _conf(directory: Path, http: str, main: str) -> str:
    temp = " ".join(
        f"{k}_temp_path {directory}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"master_process off;\nerror_log {directory}/error.log;\n{main}\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{\naccess_log off;\n{temp}\nserver_names_hash_max_size 8192;\n"
        f"server_names_hash_bucket_size 128;\n{http}\n}}\n"
    )


def nginx_test_config(http: str, main: str = "") -> str:
    """`nginx -t` on a config; returns the [emerg] message without its `in FILE:LINE`, or ""."""
    binary = nginx_binary()
    with tempfile.TemporaryDirectory(prefix="nginxsim-rx-") as d:
        directory = Path(d)
        (directory / "nginx.conf").write_text(_conf(directory, http, main), "utf-8", "surrogateescape")
        cmd = [binary, "-t", "-p", d, "-c", f"{d}/nginx.conf", "-g", f"pid {d}/nginx.pid;"]
        out = subprocess.run(cmd, capture_output=True, timeout=30).stderr
    for line in out.splitlines():
        found = re.search(rb"\[emerg\] (?:\d+#\d+: )?(.*) in \S+:\d+$", line)
        if found:
            return found.group(1).decode("utf-8", "surrogateescape")
    return ""


class NginxRunner:
    """A throwaway nginx (one process, `master_process off`) on a free 127.0.0.1 port.

    `http` is the body of the http{} block; PORT in it is replaced by the chosen port.
    Stopped by its own pid.
    """

    def __init__(self, http: str, main: str = "") -> None:
        self.http, self.main = http, main
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NginxRunner:
        binary = nginx_binary()
        self._dir = tempfile.TemporaryDirectory(prefix="nginxsim-rx-")
        d = Path(self._dir.name)
        self.port = free_port()
        conf = _conf(d, self.http.replace("PORT", str(self.port)), self.main)
        (d / "nginx.conf").write_text(conf, "utf-8", "surrogateescape")
        cmd = [binary, "-p", str(d), "-c", str(d / "nginx.conf"), "-g", f"daemon off; pid {d}/nginx.pid;"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read() if self._proc.stderr else b""
                log = (d / "error.log").read_bytes() if (d / "error.log").exists() else b""
                self.__exit__()
                raise RuntimeError(f"nginx did not start: {err!r} {log[-2000:]!r}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        raise RuntimeError("nginx did not start listening")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def get(self, target: bytes, host: bytes = b"localhost") -> tuple[int, bytes]:
        """One HTTP/1.0 GET; returns (status, body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: " + host + b"\r\n\r\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body


def conf_string(text: str) -> str:
    """A double-quoted nginx config token whose value is `text` (ngx_conf_read_token unescapes
    backslash-backslash and backslash-quote)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# generator of PCRE patterns (the syntax nginx users write, and PCRE-only corners)
_LITERALS = ["a", "b", "c", "A", "1", "/", "-", "_", " ", "é", "\\.", "%", "\\xe9", "\\x{41}"]
_LITERALS += ["\\Qa.\\E", "\\t", "\\n"]
_CLASSES = [".", "\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\h", "\\H", "\\v", "\\N", "[a-c]", "[^/]"]
_CLASSES += ["[[:alpha:]]", "[[:^digit:]]", "[\\x80-\\xff]", "\\p{L}", "\\p{Lu}", "[é]", "\\C", "\\R"]
_QUANTS = ["*", "+", "?", "{1,2}", "{2}", "*?", "+?", "*+", "++", "?+", "{,2}", "{0,1}+"]
_GROUPS = ["(", "(", "(?:", "(?<{n}>", "(?P<{n}>", "(?'{n}'", "(?>", "(?|", "(?i)(?:"]


def _gen(rng: random.Random, depth: int, names: list[str]) -> str:
    out = []
    for _ in range(rng.randint(1, 3)):
        r, repeatable = rng.random(), True
        if depth >= 2 or r < 0.5:
            atom = rng.choice(_LITERALS + _CLASSES)
        elif r < 0.7:
            opener = rng.choice(_GROUPS)
            if "{n}" in opener:
                names.append(f"n{len(names)}")
                opener = opener.format(n=names[-1])
            alts = [_gen(rng, depth + 1, names) for _ in range(rng.randint(1, 2))]
            atom = opener + "|".join(alts) + ")"
        elif r < 0.78:
            atom = rng.choice(["(?=", "(?!"]) + _gen(rng, depth + 1, names) + ")"
        elif r < 0.84:
            atom = rng.choice(["(?<=", "(?<!"]) + rng.choice(["a", "/", "\\d", "b|cc", "[a-c]", "é"]) + ")"
            repeatable = False
        elif r < 0.9:
            atom = rng.choice(["\\b", "\\B", "\\K"])
            repeatable = False
        elif r < 0.95 and names:
            atom = rng.choice(["\\k<{n}>", "\\g{{{n}}}", "(?P={n})"]).format(n=rng.choice(names))
        else:
            atom = rng.choice(["\\1", "\\g{-1}", "(?1)", "(?(1)a|b)"])
        if repeatable and rng.random() < 0.35:
            atom += rng.choice(_QUANTS)
        out.append(atom)
    return "".join(out)


def random_pattern(rng: random.Random) -> str:
    prefix = rng.choice(["", "", "", "", "(?s)", "(?m)", "(*UTF)", "(*UCP)", "(?J)", "(*NO_AUTO_POSSESS)"])
    body = _gen(rng, 0, [])
    return prefix + rng.choice(["^", "^/", "", "\\A"]) + body + rng.choice(["", "", "$", "\\z", "\\Z"])


_SUBJECT_BYTES = [b"a", b"b", b"c", b"A", b"C", b"1", b"2", b"/", b"-", b"_", b" ", "é".encode(), b"\xe9"]
_SUBJECT_BYTES += [b"\t", b"\n", b"%", b".", b"x", b"\xa0", b"\x85", b"(", b")", b"{", b",", b"}", b"?", b"+"]


def random_subject(rng: random.Random) -> bytes:
    """A decoded $uri nginx leaves as sent: no `//` (merge_slashes), no `/.` (dot segments)."""
    while True:
        s = b"/" + b"".join(rng.choice(_SUBJECT_BYTES) for _ in range(rng.randint(0, 9)))
        if b"//" not in s and b"/." not in s:
            return s


def expected_body(rx: Regex, subject: bytes, names: list[str]) -> tuple[int, bytes]:
    """What `return 200 "M<$1>..<$9>{$name}.."` gives for this regex, or the 500 of an error."""
    try:
        m = rx.search(subject)
    except RegexMatchError:
        return 500, b""
    if m is None:
        return 200, b"N"
    named = m.named
    groups = b"".join(b"<" + (m.group(k) or b"") + b">" for k in range(1, 10))
    return 200, b"M" + groups + b"".join(b"{" + (named.get(n) or b"") + b"}" for n in names)


RETURN_NAMES = [f"n{i}" for i in range(6)]
RETURN_TEXT = "M" + "".join(f"<${k}>" for k in range(1, 10)) + "".join(f"{{${{{n}}}}}" for n in RETURN_NAMES)

HAND_PICKED = [  # (pattern, caseless, subjects)
    (r"^/nl$", False, [b"/nl\n", b"/nl", b"/nl\n\n"]),
    (r"^/(?<n0>[^/]+)/(?P<n1>\d+)(?'n2'\.\w+)?$", False, [b"/ab/12.x", b"/ab/12", b"/\xe9/1.\xe9"]),
    (r"(?J)(?<n0>a)|(?<n0>b)", False, [b"/a", b"/b"]),
    (r"^/caf(é)+$", False, ["/café".encode(), "/caféé".encode(), b"/caf\xc3\xa9\xa9"]),
    (r"^/\p{L}\w", True, [b"/\xe9a", b"/\xc9A", b"/aa"]),
    (r"^/(a+)+$", False, [b"/" + b"a" * 22 + b"!", b"/aaa"]),
    (r"(*UTF)^/(.)", False, ["/é".encode(), b"/\xe9", b"/a"]),
    (r"^/a{,2}$", False, [b"/a{,2}", b"/aa"]),
    (r"^/\xg", False, [b"/g", b"/xg"]),
    (r"^/\C\C$", False, ["/é".encode(), b"/ab", b"/a"]),
    (r"^/img/\K(\w+)", False, [b"/img/abc"]),
    (r"^/\h\v", False, [b"/\xa0\x85", b"/ \n", b"/\t\x0b"]),
    (r"^/(a)|(b)|(c)", False, [b"/a", b"/b", b"/c"]),
    (r"^/ABC", True, [b"/abc", b"/AbC", b"/\xe1bc"]),
]


def _oracle_cases() -> list[tuple[str, bool, list[bytes]]]:
    rng = random.Random(20221019)
    cases = list(HAND_PICKED)
    while len(cases) < len(HAND_PICKED) + 300:
        source = random_pattern(rng)
        if rng.random() < 0.15:
            source = "(" + source + ")"  # so that $1 shows group 0 of the inner pattern
        caseless = rng.random() < 0.25
        try:
            rx = compile_regex(source, caseless=caseless)
        except RegexError:
            continue
        if len(rx.names) > len(RETURN_NAMES) or any(n not in RETURN_NAMES for n in rx.names):
            continue
        cases.append((source, caseless, _subjects(rng, rx)))
    return cases


def _subjects(rng: random.Random, rx: Regex) -> list[bytes]:
    """Three subjects: up to two that this engine says match (random ones rarely do), the
    rest random."""
    matching = []
    for _ in range(150):
        subject = random_subject(rng)
        try:
            if rx.search(subject) is not None:
                matching.append(subject)
        except RegexMatchError:
            continue
        if len(matching) == 2:
            break
    return matching + [random_subject(rng) for _ in range(3 - len(matching))]


def _server(i: int, source: str, caseless: bool, form: str) -> str:
    op = "~*" if caseless else "~"
    if form == "location":
        body = f"location {op} {conf_string(source)} {{ return 200 {conf_string(RETURN_TEXT)}; }}\n"
        body += 'location / { return 200 "N"; }'
    else:
        test = f"if ($uri {op} {conf_string(source)} ) {{ return 200 {conf_string(RETURN_TEXT)}; }}"
        body = f'location / {{ {test} return 200 "N"; }}'
    return f"server {{ listen 127.0.0.1:PORT; server_name t{i}; {body} }}\n"


@pytest.mark.oracle
def test_oracle_captures() -> None:
    cases = _oracle_cases()
    servers = [_server(i, src, cl, "location" if i % 2 else "if") for i, (src, cl, _) in enumerate(cases)]
    defs = "".join(f"(?<{n}>)" for n in RETURN_NAMES)  # declares every $nK the return texts use
    servers.append(
        f"server {{ listen 127.0.0.1:PORT; server_name defs; location ~ {conf_string(defs)} {{ }} }}\n"
    )
    sn = [  # server_name regexes: caseless iff an uppercase letter; the host arrives lowercased
        r"~^ABC\.test$",
        r"~^(?<n0>[a-z]+)\.(sub)\.test$",
        r"~^x(\D)y\.test$",
        r"~^(é)\.test$",
    ]
    for j, name in enumerate(sn):
        servers.append(
            f"server {{ listen 127.0.0.1:PORT; server_name {conf_string(name)}; "
            f"location / {{ return 200 {conf_string(f's{j}' + RETURN_TEXT)}; }} }}\n"
        )
    compared = mismatches = 0
    failures: list[object] = []
    with NginxRunner("".join(servers)) as ng:
        for i, (source, caseless, subjects) in enumerate(cases):
            rx = compile_regex(source, caseless=caseless)
            for subject in subjects:
                got = ng.get(quote_from_bytes(subject, safe="/").encode(), f"t{i}".encode())
                want = expected_body(rx, subject, RETURN_NAMES)
                got = (got[0], got[1] if got[0] == 200 else b"")
                compared += 1
                if got != want:
                    mismatches += 1
                    failures.append((source, caseless, subject, got, want))
        for host in (b"abc.test", b"ABC.TEST", b"www.sub.test", b"x.y.test", b"xAy.test", "é.test".encode()):
            lowered = host.lower()  # nginx lowercases the Host (ASCII) before the lookup
            for j, name in enumerate(sn):
                rx = compile_regex(name[1:], caseless=server_name_caseless(name[1:]))
                if rx.search(lowered) is not None:
                    want = (200, f"s{j}".encode() + expected_body(rx, lowered, RETURN_NAMES)[1])
                    break
            else:
                raise AssertionError(f"no server_name regex matches {host!r}")
            got = ng.get(b"/", host)
            compared += 1
            if got != want:
                mismatches += 1
                failures.append((host, got, want))
    print(f"regex oracle: {compared} requests compared, {mismatches} mismatches")
    assert failures == []
    assert compared >= 900


@pytest.mark.oracle
def test_oracle_pcre_jit() -> None:
    http = (
        'server { listen 127.0.0.1:PORT; location ~ "^/(a+)+$" { return 200 "M"; } '
        'location / { return 200 "N"; } }'
    )
    subject = b"/" + b"a" * 22 + b"!"
    with pytest.raises(RegexMatchError):
        compile_regex("^/(a+)+$").search(subject)
    with NginxRunner(http) as ng:
        assert ng.get(subject)[0] == 500
    assert compile_regex("^/(a+)+$", jit=True).search(subject) is None
    with NginxRunner(http, main="pcre_jit on;") as ng:
        assert ng.get(subject) == (200, b"N")


@pytest.mark.oracle
def test_oracle_compile_errors() -> None:
    require_pcre2_1042()
    def location(source: str) -> str:
        return f"server {{ listen 127.0.0.1:{free_port()}; location ~ {conf_string(source)} {{ }} }}"

    for source in ERRORS_1042:  # "\udcff" reaches the file as the raw byte 0xFF
        assert nginx_test_config(location(source)) == nginx_compile_message(source), source
    long = "x" * 1100 + "("
    assert (
        nginx_test_config(location(long))
        == 'pcre2_compile() failed: missing closing parenthesis in "' + "x" * 968
    )
    assert nginx_test_config(location("a**é")) == compile_error("a**é")
    rng, checked = random.Random(99), 0
    while checked < 40:  # generated patterns with a syntax error spliced in
        source = random_pattern(rng)
        at = rng.randrange(len(source))
        source = (
            source[:at]
            + rng.choice(["(", ")", "[", "{3,1}", "\\", "(?<", "*", "(?", "\\g", "(*", "\\x{"])
            + source[at:]
        )
        try:
            compile_regex(source)
        except RegexError as e:
            assert nginx_test_config(location(source)) == e.message, source
            checked += 1


def test_generated_cases_are_reproducible() -> None:
    first, second = _oracle_cases(), _oracle_cases()
    assert first == second and len(first) == len(HAND_PICKED) + 300
