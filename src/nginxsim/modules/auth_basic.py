"""`ngx_http_auth_basic_module`: `auth_basic` and `auth_basic_user_file`.

Both are strings with variables, inherited each on its own; the handler declines unless both
are set and the realm is not "off". Without usable Basic credentials the answer is 401 with
`WWW-Authenticate: Basic realm="<realm>"` (the realm as is, no escaping). With credentials the
user file is read (through the plan's file view) on every request, as nginx does: missing is
403, any other open or read failure 500, the user not listed or a wrong password 401.

Password hashes follow `ngx_crypt`: `{PLAIN}`, `{SHA}`, `{SSHA}` and `$apr1$` are computed here;
anything else goes to the system's crypt(3) (`crypt_r` from libcrypt, the library nginx calls),
which covers `$1$`, `$5$`, `$6$`, `$y$`, `$2b$` and DES. Without that library those hashes are not
simulated: the password counts as wrong, and the Decision's notes say so.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import errno
import functools
import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..conf.directive import Directive
from ..conf.spec import HTTP_LMT, HTTP_LOC, HTTP_MAIN, HTTP_SRV, TAKE1, DirectiveSpec
from ..plan import Compiler, Level, error
from .base import ACCESS_OK, WWW_AUTHENTICATE, Command, Module
from .log import decode_base64

if TYPE_CHECKING:
    from ..http.context import Context
    from ..http.script import Complex

AUTH_BUF_SIZE = 2048  # NGX_HTTP_AUTH_BUF_SIZE: a password field longer than this is cut
_PASSWD_END = re.compile(rb"[\n\r:]")
_ITOA64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CRYPT_DATA_SIZE = 1 << 18  # room for `struct crypt_data` of libxcrypt (32 KiB) and glibc (128 KiB)


# -- directives ---------------------------------------------------------------------------------


def _realm(d: Directive, level: Level, cc: Compiler) -> tuple[Complex, Directive]:
    """`ngx_http_set_complex_value_slot`: the duplicate check comes before compiling."""
    if "auth_basic" in level.values:
        raise error(d, '"auth_basic" directive is duplicate')
    return cc.complex(d.args[0], d), d


def _user_file(d: Directive, level: Level, cc: Compiler) -> tuple[Complex, bytes, Directive]:
    """`ngx_http_auth_basic_user_file`: a string with variables, relative to the conf prefix
    (the main file's directory); with the prefix kept aside, a relative evaluated name gets it."""
    if "auth_basic_user_file" in level.values:
        raise error(d, '"auth_basic_user_file" directive is duplicate')
    prefix = cc.tree.conf_dir.rstrip("/") + "/"
    return cc.complex(d.args[0], d), prefix.encode("utf-8", "surrogateescape"), d


# -- credentials and the user file --------------------------------------------------------------


def basic_credentials(r: Context) -> tuple[bytes, bytes] | None:
    """`ngx_http_auth_basic_user`: (user, password) from `Authorization: Basic <base64>`
    ("Basic " case-insensitive, then spaces), or None: no header, another scheme, bad base64,
    no ':' or an empty user."""
    auth = next((v for n, v in r.headers_in if n.lower() == b"authorization"), None)
    if auth is None or auth[:6].lower() != b"basic ":
        return None
    encoded = auth[6:].lstrip(b" ")
    decoded = decode_base64(encoded) if encoded else None
    if not decoded:
        return None
    user, colon, passwd = decoded.partition(b":")
    if not colon or not user:
        return None
    return user, passwd


def find_password(data: bytes, user: bytes) -> bytes | None:
    """The scan of `ngx_http_auth_basic_handler`: the field after `user:` on the first line that
    starts with it, up to LF, CR, ':' or the end of the file (at most AUTH_BUF_SIZE bytes), or
    None. Lines starting with '#' or CR are skipped, and so are empty lines; the comparison is
    byte by byte, and the byte that breaks it is consumed before the skip to the next LF (so a
    line that ends while still matching also skips the line after it)."""
    want = user + b":"
    i, end = 0, len(data)
    while i < end:
        c = data[i]
        if c == 0x0A:
            i += 1
            continue
        if c in (0x23, 0x0D):  # '#', CR
            skip_from = i + 1
        elif data.startswith(want, i):
            start = i + len(want)
            m = _PASSWD_END.search(data, start)
            stop = m.start() if m is not None else end
            return data[start : min(stop, start + AUTH_BUF_SIZE)]
        else:
            k = i
            while k < end and data[k] == want[k - i]:
                k += 1
            if k == end:
                return None
            skip_from = k + 1
        nl = data.find(b"\n", skip_from)
        if nl < 0:
            return None
        i = nl + 1
    return None


# -- ngx_crypt ----------------------------------------------------------------------------------


class NoCrypt(Exception):
    """The hash needs the system's crypt(3), which this machine does not provide."""


def ngx_crypt(key: bytes, salt: bytes) -> bytes | None:
    """`ngx_crypt`: `key` hashed the way `salt` (the stored hash) says; None when crypt(3)
    fails (nginx's 500). Both are C strings to nginx: a NUL ends them."""
    key = key.split(b"\0", 1)[0]
    if salt.startswith(b"$apr1$"):
        return apr1(key, salt)
    if salt.startswith(b"{PLAIN}"):
        return b"{PLAIN}" + key
    if salt.startswith(b"{SSHA}"):
        decoded = decode_base64(salt[6:])
        extra = decoded[20:] if decoded is not None and len(decoded) >= 20 else b""
        return b"{SSHA}" + base64.b64encode(hashlib.sha1(key + extra).digest() + extra)
    if salt.startswith(b"{SHA}"):
        return b"{SHA}" + base64.b64encode(hashlib.sha1(key).digest())
    crypt_r = _libc_crypt()
    if crypt_r is None:
        raise NoCrypt
    return crypt_r(key, salt)


def apr1(key: bytes, setting: bytes) -> bytes:
    """`ngx_crypt_apr1`: Apache's MD5 crypt; the salt is at most 8 bytes, up to a '$'."""
    salt = setting[6:14].split(b"$", 1)[0]
    md5 = hashlib.md5(key + b"$apr1$" + salt)
    final = hashlib.md5(key + salt + key).digest()
    for n in range(len(key), 0, -16):
        md5.update(final[: min(n, 16)])
    i = len(key)
    while i:
        md5.update(b"\0" if i & 1 else key[:1])
        i >>= 1
    final = md5.digest()
    for i in range(1000):
        ctx = hashlib.md5(key if i & 1 else final)
        if i % 3:
            ctx.update(salt)
        if i % 7:
            ctx.update(key)
        ctx.update(final if i & 1 else key)
        final = ctx.digest()
    out = bytearray(b"$apr1$" + salt + b"$")
    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        out += _to64(final[a] << 16 | final[b] << 8 | final[c], 4)
    out += _to64(final[11], 2)
    return bytes(out)


def _to64(v: int, n: int) -> bytes:
    """`ngx_crypt_to64`: `n` characters, six bits each, lowest first."""
    out = bytearray()
    for _ in range(n):
        out.append(_ITOA64[v & 0x3F])
        v >>= 6
    return bytes(out)


@functools.cache
def _libc_crypt() -> Callable[[bytes, bytes], bytes | None] | None:
    """`ngx_libc_crypt`: crypt_r(3) of the system's libcrypt (libxcrypt answers an unusable
    setting with a failure token such as "*0", which never matches), or None without one."""
    lib = None
    for name in ("libcrypt.so.1", "libcrypt.so.2", ctypes.util.find_library("crypt")):
        if name is None:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    fn = getattr(lib, "crypt_r", None)
    if fn is None:
        return None
    fn.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
    fn.restype = ctypes.c_char_p

    def crypt_r(key: bytes, salt: bytes) -> bytes | None:
        data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)  # zeroed: `initialized = 0`
        result: bytes | None = fn(key, salt, data)
        return result

    return crypt_r


# -- the ACCESS phase ---------------------------------------------------------------------------


def _handler(r: Context) -> int | None:
    """`ngx_http_auth_basic_handler`: None (declined), OK, 401 (with the challenge), 403, 500."""
    conf = r.loc.conf
    realm_conf: tuple[Complex, Directive] | None = conf.get("auth_basic")
    file_conf: tuple[Complex, bytes, Directive] | None = conf.get("auth_basic_user_file")
    if realm_conf is None or file_conf is None:
        return None
    realm_value, rd = realm_conf
    realm = realm_value.eval(r)
    if realm == b"off":
        r.trace.add("access", "auth_basic", 'realm is "off": declined', rd.file, rd.line)
        return None
    creds = basic_credentials(r)
    if creds is None:
        return _challenge(r, realm, "no Basic credentials", rd)
    user, passwd = creds
    file_value, prefix, fd = file_conf
    path = file_value.eval(r).split(b"\0", 1)[0]
    if not path.startswith(b"/"):
        path = prefix + path  # ngx_get_full_name
    shown = _s(path)
    try:
        data = r.read_file(path)
    except OSError as e:
        status = 403 if e.errno == errno.ENOENT else 500
        r.notes.append(f'auth_basic_user_file "{shown}": {e.strerror}: {status}')
        r.trace.add("access", f"auth_basic_user_file {shown}", f"{e.strerror}: {status}", fd.file, fd.line)
        return status
    stored = find_password(data, user)
    if stored is None:
        return _challenge(r, realm, f'user "{_s(user)}" not found in {shown}', fd)
    stored = stored.split(b"\0", 1)[0]
    try:
        encrypted = ngx_crypt(passwd, stored)
    except NoCrypt:
        r.notes.append(f'the password of "{_s(user)}" is hashed with crypt(3), which is not available here: '
                       "not simulated, taken as wrong")
        return _challenge(r, realm, f'user "{_s(user)}": crypt(3) unavailable', fd)
    if encrypted is None:
        r.notes.append(f'crypt() failed for user "{_s(user)}": 500')
        return 500
    if encrypted != stored:
        return _challenge(r, realm, f'user "{_s(user)}": password mismatch', fd)
    r.trace.add("access", "auth_basic", f'user "{_s(user)}" authenticated', fd.file, fd.line)
    return ACCESS_OK


def _challenge(r: Context, realm: bytes, why: str, d: Directive) -> int:
    """`ngx_http_auth_basic_set_realm`: a new WWW-Authenticate line, and 401."""
    line = ("WWW-Authenticate", 'Basic realm="' + _s(realm) + '"')
    r.headers_out.append(line)
    r.module_state[WWW_AUTHENTICATE] = line
    r.trace.add("access", "auth_basic", f"{why}: 401", d.file, d.line)
    return 401


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


_WHERE = HTTP_MAIN | HTTP_SRV | HTTP_LOC | HTTP_LMT

COMMANDS = (
    Command(DirectiveSpec("auth_basic", _WHERE, TAKE1), _realm),
    Command(DirectiveSpec("auth_basic_user_file", _WHERE, TAKE1), _user_file),
)

MODULE = Module("ngx_http_auth_basic_module", COMMANDS, access=_handler)
