"""Differential tests of access control against real nginx: `allow`/`deny` lists at every level
(IPv4, IPv6, IPv4-mapped clients, unix sockets, inheritance, limit_except, `if` blocks),
`satisfy any|all` with `auth_basic`, user files in every hash format nginx knows (generated here:
{PLAIN}, {SHA}, {SSHA}, $apr1$ from `openssl passwd`, crypt(3) formats), right, wrong and
malformed Authorization headers, and the phase order (`return` before access).

Each case compares the status and every WWW-Authenticate line. Random configs come from seeded
sources, so a failure names its seed. Password files live in a world-readable directory: nginx's
workers read them as an unprivileged user.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from nginx_t import assert_same_verdict, nginx_warnings, nginxsim_warnings

import nginxsim
from nginxsim.modules.auth_basic import _libc_crypt, apr1
from nginxsim.oracle import Nginx, OracleRequest

pytestmark = pytest.mark.oracle


@pytest.fixture
def shared_dir() -> Iterator[str]:
    """A directory nginx's workers can read."""
    d = tempfile.mkdtemp(prefix="nginxsim-access-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write(path: str, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    return path


def challenges(headers: list[tuple[str, str]]) -> list[str]:
    return [v for k, v in headers if k.lower() == "www-authenticate"]


def assert_same(reqs: list[OracleRequest], label: str, *, text: str | None = None, path: str | None = None) -> int:
    """Every request answered by nginx and nginxsim alike: status and WWW-Authenticate lines."""
    cfg = nginxsim.load(path, text=text)
    with Nginx(path, text=text) as ng:
        answers = ng.request_many(reqs)
    bad = []
    for req, answer in zip(reqs, answers, strict=True):
        d = cfg.route(req.client, req.url, method=req.method, headers=list(req.headers),
                      server_addr=req.server_addr, trace=False)
        want = (answer.status, challenges(answer.headers))
        got = (d.status, d.headers.get_all("WWW-Authenticate"))
        if want != got:
            bad.append(f"{req.method} {req.url} from {req.client} {list(req.headers)}: nginx {want}, nginxsim {got}")
    conf = text if text is not None else open(path or "").read()
    assert not bad, f"{label}: {len(bad)} of {len(reqs)} differ\n" + "\n".join(bad[:10]) + "\nconfig:\n" + conf
    return len(reqs)


# -- random allow/deny lists --------------------------------------------------------------------


class Spots:
    """A few hot networks rules and clients share, so rules overlap and clients hit them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.v4 = [rng.getrandbits(32) & 0xFFFF0000 for _ in range(3)] + [0x0A000000]
        self.v6 = [rng.getrandbits(128) & ~((1 << 96) - 1) for _ in range(2)] + [0x20010DB8 << 96]

    def v4_addr(self) -> int:
        if self.rng.random() < 0.1:
            return self.rng.getrandbits(32)
        return self.rng.choice(self.v4) | self.rng.getrandbits(self.rng.choice([4, 8, 16]))

    def v6_addr(self) -> int:
        if self.rng.random() < 0.1:
            return self.rng.getrandbits(128)
        return self.rng.choice(self.v6) | self.rng.getrandbits(self.rng.choice([8, 40, 96]))

    def rule(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12:
            target = "all"
        elif roll < 0.17:
            target = "unix:"
        elif roll < 0.6:
            target = self._net(4, self.v4_addr(), rng.randint(8, 32))
        elif roll < 0.7:  # an IPv6 rule written with an IPv4-mapped address: only IPv6 clients meet it
            length = rng.randint(96, 128)
            net = str(ipaddress.IPv4Address(self.v4_addr() & ((1 << 32) - (1 << (128 - length)))))
            target = f"::ffff:{net}/{length}"
        else:
            target = self._net(6, self.v6_addr(), rng.randint(16, 128))
        return f"{rng.choice(['allow', 'deny'])} {target};"

    def _net(self, family: int, addr: int, length: int) -> str:
        bits = 32 if family == 4 else 128
        if self.rng.random() > 0.15:  # otherwise keep host bits: nginx warns and masks them
            addr &= ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)
        text = str(ipaddress.IPv4Address(addr) if family == 4 else ipaddress.IPv6Address(addr))
        return text if length == bits and self.rng.random() < 0.5 else f"{text}/{length}"

    def client(self) -> str:
        roll = self.rng.random()
        if roll < 0.5:
            return str(ipaddress.IPv4Address(self.v4_addr()))
        if roll < 0.65:
            return "::ffff:" + str(ipaddress.IPv4Address(self.v4_addr()))
        return str(ipaddress.IPv6Address(self.v6_addr()))


def rules(rng: random.Random, spots: Spots, chance: float) -> str:
    if rng.random() > chance:
        return ""
    return " ".join(spots.rule() for _ in range(rng.randint(1, 6))) + " "


METHODS = ["GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "FOO"]


def access_config(rng: random.Random, spots: Spots) -> tuple[str, list[str]]:
    """A config with rules at random levels, and the URIs that reach each kind of block."""
    locations = []
    uris = ["/", "/other"]
    for i in range(6):
        body = rules(rng, spots, 0.6)
        roll = rng.random()
        if roll < 0.2:
            body += "return 200 ok; "
        elif roll < 0.35:
            body += f"limit_except {rng.choice(['GET', 'GET POST', 'PUT'])} {{ {rules(rng, spots, 0.8)}}} "
        elif roll < 0.5:
            body += "if ($arg_i) { root /nonexistent-nginxsim-if; } "
            uris.append(f"/l{i}/x?i=1")
        if rng.random() < 0.4:
            body += f"location /l{i}/n {{ {rules(rng, spots, 0.5)}}} "
            uris.append(f"/l{i}/n/x")
        locations.append(f"        location /l{i} {{ {body}}}")
        uris.append(f"/l{i}/x")
    conf = (
        "events {}\nhttp {\n    root /nonexistent-nginxsim;\n"
        f"    {rules(rng, spots, 0.4)}\n"
        "    server {\n        listen 80;\n        listen [::]:80;\n        listen unix:/tmp/nginxsim-access.sock;\n"
        f"        {rules(rng, spots, 0.4)}\n" + "\n".join(locations) + "\n    }\n}\n"
    )
    return conf, uris


@pytest.mark.parametrize("seed", range(10))
def test_random_allow_deny(seed: int) -> None:
    rng = random.Random(seed)
    spots = Spots(rng)
    conf, uris = access_config(rng, spots)
    reqs = []
    for _ in range(150):
        unix = rng.random() < 0.05
        reqs.append(OracleRequest(
            client="unix:" if unix else spots.client(),
            url="http://a.test" + rng.choice(uris),
            method=rng.choice(METHODS),
            server_addr="unix:/tmp/nginxsim-access.sock" if unix else None,
        ))
    assert_same(reqs, f"seed {seed}", text=conf)
    assert nginxsim_warnings(nginxsim.load(text=conf)) == nginx_warnings(conf)


CONFIG_CASES = [
    "allow 10.0.0.0/33;",
    "deny ::1/129;",
    "allow foo;",
    "allow ALL;",
    "allow unix:/tmp/x;",
    "allow 1.2.3;",
    "allow 1.2.3.4/;",
    "allow 255.255.255.255;",
    "allow 01.2.3.4/08;",
    "allow 10.0.0.1/8; deny 10.1.2.3/16; allow ::1/64; deny 2001:db8::1/32;",
    "allow ::ffff:1.2.3.4/100;",
    "allow 1.2.3.4 5.6.7.8;",
    "satisfy foo;",
    "satisfy ANY;",
    "satisfy any; satisfy all;",
    "satisfy any; satisfy foo;",
    "auth_basic a; auth_basic b;",
    "auth_basic_user_file a; auth_basic_user_file b;",
    "auth_basic_user_file /x; auth_basic ${;",
    "if ($arg_a) { allow all; }",
    "if ($arg_a) { auth_basic x; }",
    "if ($arg_a) { satisfy any; }",
    "limit_except GET { allow all; deny 1.2.3.4; auth_basic x; auth_basic_user_file /x; }",
    "limit_except GET { satisfy any; }",
    "limit_except GET { deny 1.2.3.4/40; }",
]


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_config_errors_and_warnings(case: str) -> None:
    conf = f"events {{}}\nhttp {{\nserver {{\nlisten 80;\nlocation / {{\n{case}\n}}\n}}\n}}\n"
    assert_same_verdict(conf)


# -- user files and credentials -----------------------------------------------------------------


def openssl_passwd(kind: str, salt: str, password: str) -> str | None:
    """`openssl passwd -apr1|-1|-5|-6`, or None without openssl."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    out = subprocess.run([exe, "passwd", f"-{kind}", "-salt", salt, password], capture_output=True, check=False)
    return out.stdout.decode().strip() if out.returncode == 0 else None


def ssha(password: bytes, salt: bytes) -> bytes:
    return b"{SSHA}" + base64.b64encode(hashlib.sha1(password + salt).digest() + salt)


def users(rng: random.Random) -> tuple[list[bytes], dict[bytes, bytes]]:
    """Password file lines in every format (and broken ones), and each user's password."""
    lines: list[bytes] = []
    passwords: dict[bytes, bytes] = {}

    def add(user: str, password: bytes, stored: bytes | str | None) -> None:
        if stored is None:
            return
        stored_b = stored.encode() if isinstance(stored, str) else stored
        lines.append(user.encode() + b":" + stored_b)
        passwords[user.encode()] = password

    word = f"pw{rng.randrange(1000)}"
    pw = word.encode()
    add("plain", pw, b"{PLAIN}" + pw)
    add("sha", pw, b"{SHA}" + base64.b64encode(hashlib.sha1(pw).digest()))
    add("ssha", pw, ssha(pw, rng.randbytes(rng.randint(1, 8))))
    add("ssha0", pw, ssha(pw, b""))
    for kind in ("apr1", "1", "5", "6"):
        add(f"openssl{kind}", pw, openssl_passwd(kind, f"s{rng.randrange(100)}", word))
    add("apr1own", pw, apr1(pw, b"$apr1$" + b"abcdefghij"[: rng.randint(0, 10)]))
    crypt_r = _libc_crypt()
    if crypt_r is not None:
        add("des", pw, crypt_r(pw, b"ab"))
        add("bcrypt", pw, crypt_r(pw, b"$2b$04$abcdefghijklmnopqrstuu"))
    add("utf8", "pässwörd".encode(), b"{PLAIN}" + "pässwörd".encode())
    add("colon", b"a:b", b"{PLAIN}a")  # the stored field ends at ':'
    add("nul", b"x\0y", b"{PLAIN}x")  # the password is a C string to nginx
    add("empty", b"", b"{PLAIN}")
    add("broken_ssha", pw, b"{SSHA}!!!")
    add("bang", pw, b"!")
    add("star", pw, b"*0")
    add("apr1bare", pw, b"$apr1$")
    add("nohash", pw, b"")
    add("long", b"x" * 2041, b"{PLAIN}" + b"x" * 3000)  # the field is cut at 2048 bytes
    lines += [b"#commented:{PLAIN}" + pw, b"", b"\r", b"dup:{PLAIN}first", b"dup:{PLAIN}second", b"pla"]
    passwords[b"dup"] = b"first"
    passwords[b"commented"] = pw
    rng.shuffle(lines)
    return lines, passwords


def authorization(rng: random.Random, passwords: dict[bytes, bytes]) -> list[tuple[str, str]]:
    """A random Authorization header: right, wrong or malformed (or none, or two)."""
    user = rng.choice(sorted(passwords))
    password = passwords[user]
    roll = rng.random()
    if roll < 0.1:
        return []
    if roll < 0.5:
        creds = user + b":" + password
    elif roll < 0.7:
        creds = user + b":" + password + b"x"
    elif roll < 0.75:
        creds = b":" + password
    elif roll < 0.8:
        creds = user
    else:
        creds = rng.choice([b"nobody:x", user.upper() + b":" + password, user + b"::" + password, user + b":"])
    encoded = base64.b64encode(creds).decode("latin-1")
    form = rng.random()
    if form < 0.7:
        value = "Basic " + encoded
    elif form < 0.75:
        value = "basic    " + encoded.rstrip("=")
    elif form < 0.8:
        value = "BASIC " + encoded + "=junk"
    else:
        value = rng.choice(["Basic", "Basic ", "Basic !!!!", "Basic YQ", "Bearer " + encoded, "Basic  " + encoded[1:]])
    headers = [("Authorization", value)]
    if rng.random() < 0.03:
        headers.append(("Authorization", value))  # a second one: 400
    return headers


def auth_config(rng: random.Random, spots: Spots, files: dict[str, str]) -> tuple[str, list[str]]:
    """Locations mixing satisfy, allow/deny and auth_basic (inherited or not)."""
    def realm() -> str:
        return rng.choice(['"Area 51"', "restricted", "$host", '"$arg_r"', "off", '""', '"a\\"b"'])

    def auth() -> str:
        out = ""
        if rng.random() < 0.6:
            out += f"auth_basic {realm()}; "
        if rng.random() < 0.6:
            out += f"auth_basic_user_file {rng.choice(list(files.values()))}; "
        return out

    def block() -> str:
        out = ""
        if rng.random() < 0.5:
            out += f"satisfy {rng.choice(['any', 'all'])}; "
        return out + rules(rng, spots, 0.5) + auth()

    locations = []
    uris = ["/"]
    for i in range(6):
        body = block()
        roll = rng.random()
        if roll < 0.15:
            body += "return 200 ok; "
        elif roll < 0.3:
            body += f"limit_except GET {{ {rules(rng, spots, 0.5)}{auth()}}} "
        if rng.random() < 0.3:
            body += f"location /l{i}/n {{ {block()}}} "
            uris.append(f"/l{i}/n/x")
        locations.append(f"        location /l{i} {{ {body}}}")
        uris.append(f"/l{i}/x")
    conf = (
        f"events {{}}\nhttp {{\n    root /nonexistent-nginxsim;\n    {block()}\n"
        f"    server {{\n        listen 80;\n        listen [::]:80;\n        {block()}\n"
        + "\n".join(locations) + "\n    }\n}\n"
    )
    return conf, uris


@pytest.mark.parametrize("seed", range(10))
def test_random_satisfy_auth_basic(seed: int, shared_dir: str) -> None:
    rng = random.Random(1000 + seed)
    spots = Spots(rng)
    lines, passwords = users(rng)
    files = {
        "lf": write(os.path.join(shared_dir, "lf"), b"\n".join(lines) + b"\n"),
        "crlf": write(os.path.join(shared_dir, "crlf"), b"\r\n".join(lines)),
        "missing": os.path.join(shared_dir, "missing"),
        "dir": shared_dir,
        "var": '"$arg_f"',
    }
    conf, uris = auth_config(rng, spots, files)
    reqs = []
    for _ in range(150):
        args = []
        if rng.random() < 0.3:
            args.append("r=" + rng.choice(["off", "x", "a%20b"]))
        if rng.random() < 0.7:
            args.append("f=" + rng.choice([files["lf"], files["crlf"], files["missing"], "", "rel"]))
        query = "?" + "&".join(args) if args else ""
        reqs.append(OracleRequest(
            client=spots.client(),
            url="http://a.test" + rng.choice(uris) + query,
            method=rng.choice(["GET", "GET", "POST", "HEAD"]),
            headers=authorization(rng, passwords),
        ))
    assert_same(reqs, f"seed {seed}", text=conf)


def test_every_user_of_every_format(shared_dir: str) -> None:
    """Each user of the file with its right password, a wrong one and an empty one."""
    rng = random.Random(7)
    lines, passwords = users(rng)
    path = write(os.path.join(shared_dir, "users"), b"\n".join(lines))
    conf = (
        "events {}\nhttp {\n    root /nonexistent-nginxsim;\n    server {\n        listen 80;\n"
        f'        auth_basic "Users"; auth_basic_user_file {path};\n    }}\n}}\n'
    )
    reqs = []
    for user, password in passwords.items():
        for tried in (password, password + b"!", b""):
            creds = base64.b64encode(user + b":" + tried).decode()
            reqs.append(OracleRequest(client="192.0.2.1", url="http://a.test/x",
                                      headers=[("Authorization", "Basic " + creds)]))
    assert assert_same(reqs, "every user", text=conf) > 60


def test_relative_user_file(shared_dir: str) -> None:
    """A relative name is relative to the main file's directory (the conf prefix). nginx runs a
    copy of the config elsewhere, and a name made of variables is not rewritten to follow it:
    only names that miss (403) or name the directory itself (500) agree by construction."""
    write(os.path.join(shared_dir, "htpasswd"), b"u:{PLAIN}p\n")
    main = os.path.join(shared_dir, "nginx.conf")
    write(main, (
        b"events {}\nhttp {\n    root /nonexistent-nginxsim;\n    server {\n        listen 80;\n"
        b"        location /a { auth_basic a; auth_basic_user_file htpasswd; }\n"
        b"        location /b { auth_basic b; auth_basic_user_file $arg_f; }\n    }\n}\n"
    ))
    good = [("Authorization", "Basic " + base64.b64encode(b"u:p").decode())]
    reqs = [OracleRequest(client="192.0.2.1", url=f"http://a.test{u}", headers=h)
            for u in ("/a", "/b?f=nothere", "/b?f=") for h in ([], good)]
    assert_same(reqs, "relative user file", path=main)


# -- fixed behaviours: phase order, limit_except, satisfy, error_page ---------------------------

FIXED = """events {}
http {
    root /nonexistent-nginxsim;
    server {
        listen 80;
        listen [::]:80;
        location /ret { deny all; return 200 ok; }
        location /ret404 { deny all; return 404; }
        location /rw { deny all; rewrite ^ /open/x; }
        location /rwlast { rewrite ^ /closed/x last; }
        location /closed { deny all; }
        location /open { allow all; }
        location /if { deny all; if ($arg_x) { return 200 if; } }
        location /le { limit_except GET { deny all; } return 200 le; }
        location /le2 { deny all; limit_except GET POST { allow 10.0.0.0/8; deny all; } }
        location /le3 { limit_except GET { auth_basic "le"; auth_basic_user_file %(file)s; } return 200 x; }
        location /le4 { satisfy any; limit_except GET { deny all; auth_basic le4; auth_basic_user_file %(file)s; } }
        location /le5 { allow 10.0.0.0/8; deny all; limit_except GET { } }
        location /any { satisfy any; allow 10.0.0.0/8; deny all; auth_basic "any"; auth_basic_user_file %(file)s; }
        location /all { allow 10.0.0.0/8; deny all; auth_basic "all"; auth_basic_user_file %(file)s; }
        location /anymissing { satisfy any; deny all; auth_basic x; auth_basic_user_file /nonexistent; }
        location /anydir { satisfy any; deny all; auth_basic x; auth_basic_user_file /tmp; }
        location /ep {
            auth_basic "first"; auth_basic_user_file %(file)s;
            error_page 401 /ep2/x;
        }
        location /ep2 { satisfy any; auth_basic "second"; auth_basic_user_file %(file)s; allow 10.0.0.0/8; }
        location /ep3 { auth_basic "first"; auth_basic_user_file %(file)s; error_page 401 /ep4/x; }
        location /ep4 { auth_basic "again"; auth_basic_user_file %(file)s; }
        location /ep5 { deny all; error_page 403 /closed/x; }
        location /inner { allow 10.0.0.0/8; deny all; location /inner/x { } }
        location /v4only { allow 10.0.0.0/8; }
        location /v6only { deny 2001:db8::/32; }
        location /mapped6 { deny ::ffff:10.0.0.0/104; }
        location /mappedboth { deny ::ffff:10.0.0.0/104; allow 192.168.0.0/16; deny all; }
    }
}
"""


def test_fixed_cases(shared_dir: str) -> None:
    path = write(os.path.join(shared_dir, "users"), b"u:{PLAIN}p\n")
    conf = FIXED % {"file": path}
    good = [("Authorization", "Basic " + base64.b64encode(b"u:p").decode())]
    wrong = [("Authorization", "Basic " + base64.b64encode(b"u:q").decode())]
    uris = re.findall(r"location =? ?(/\w+)", conf)
    reqs = [
        OracleRequest(client=client, url=f"http://a.test{uri}/x?x=1", method=method, headers=headers)
        for uri in uris
        for client in ("10.1.2.3", "192.168.1.1", "::ffff:10.1.2.3", "::ffff:192.168.1.1", "2001:db8::1", "::1")
        for method in ("GET", "POST", "FOO")
        for headers in ([], good, wrong)
    ]
    assert assert_same(reqs, "fixed cases", text=conf) > 1000
