"""nginxsim.hashing: MurmurHash2 (split_clients) and CRC-32 (hash balancers) as nginx computes them.

Fast paths are checked against slow reference implementations written from the algorithms,
then against a real nginx (split_clients buckets, `hash` and `hash consistent` peer choice).
"""

from __future__ import annotations

import bisect
import random
import zlib

import pytest
from murmurhash2 import murmurhash3

from nginxsim.hashing import CRC32_INIT, crc32, crc32_final, crc32_update, murmurhash2
from test_regex import NginxRunner, free_port

M32 = 0xFFFFFFFF


def murmurhash2_reference(data: bytes) -> int:
    """MurmurHash2, 32-bit, seed 0 (`ngx_murmur_hash2`): the seed is xored with the length."""
    m = 0x5BD1E995
    h = len(data) & M32
    full = len(data) - len(data) % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & M32
        k ^= k >> 24
        k = (k * m) & M32
        h = ((h * m) & M32) ^ k
    tail = data[full:]
    if tail:
        for shift, byte in zip((0, 8, 16), tail, strict=False):
            h ^= byte << shift
        h = (h * m) & M32
    h ^= h >> 13
    h = (h * m) & M32
    return h ^ (h >> 15)


def _crc_table(bits: int) -> list[int]:
    """The reflected 0xEDB88320 table for `bits` bits at a time (8: ngx_crc32_table256,
    4: the 16-entry table of ngx_crc32_short)."""
    table = []
    for i in range(1 << bits):
        c = i
        for _ in range(bits):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
        table.append(c)
    return table


TABLE256, TABLE16 = _crc_table(8), _crc_table(4)


def crc32_long_reference(data: bytes) -> int:
    c = M32
    for b in data:
        c = TABLE256[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ M32


def crc32_short_reference(data: bytes) -> int:
    """Nibble at a time, low nibble first."""
    c = M32
    for b in data:
        c = TABLE16[(c ^ (b & 0xF)) & 0xF] ^ (c >> 4)
        c = TABLE16[(c ^ (b >> 4)) & 0xF] ^ (c >> 4)
    return c ^ M32


def random_inputs(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = [b""] + [bytes([b]) for b in range(256)]
    alphabets = [bytes(range(256)), b"0123456789.", "aé€😀-_/".encode()]
    for i in range(n):
        length = i % 8 if i < n // 2 else rng.randint(0, 64)  # every tail length many times
        alphabet = alphabets[i % 3]
        out.append(bytes(rng.choice(alphabet) for _ in range(length)))
    return out


# --------------------------------------------------------------------------------------------


def test_murmurhash2_known_values() -> None:
    assert murmurhash2(b"") == 0
    assert murmurhash2(b"abc") == 0x13577C9B
    assert murmurhash2(b"127.0.0.1") == 0xB6131D91
    assert murmurhash2("é".encode()) == murmurhash2_reference(b"\xc3\xa9")


def test_murmurhash2_matches_reference() -> None:
    inputs = random_inputs(12_000, seed=2)
    assert len(inputs) > 10_000
    for data in inputs:
        assert murmurhash2(data) == murmurhash2_reference(data), data
    lengths = {len(d) for d in inputs}
    assert set(range(8)) <= lengths


def test_murmurhash3_is_not_nginx_hash() -> None:
    inputs = random_inputs(1000, seed=3)[257:]
    same = sum(murmurhash3(d, 0) == murmurhash2_reference(d) for d in inputs if d)
    assert same == 0


def test_crc32_matches_nginx_tables() -> None:
    assert crc32(b"123456789") == 0xCBF43926  # the CRC-32/ISO-HDLC check value
    assert crc32(b"") == 0
    for data in random_inputs(3000, seed=4):
        want = crc32_long_reference(data)
        assert crc32(data) == want == crc32_short_reference(data), data


def test_crc32_update_chains() -> None:
    rng = random.Random(5)
    for data in random_inputs(2000, seed=6):
        cut = rng.randint(0, len(data))
        crc = crc32_update(crc32_update(CRC32_INIT, data[:cut]), data[cut:])
        assert crc32_final(crc) == crc32(data) == zlib.crc32(data)
    assert crc32_final(CRC32_INIT) == 0
    assert crc32_update(CRC32_INIT, b"") == CRC32_INIT


# --------------------------------------------------------------------------------------------
# local helpers: the nginx formulas the oracle tests need (their real home is other modules)


def split_bounds(percents: list[int]) -> list[int]:
    """`ngx_conf_split_clients_block`: hundredths of a percent (0 = `*`) -> bucket bounds."""
    bounds, last = [], 0
    for p in percents:
        if p:
            last = (last + p * M32 // 10000) & M32
        bounds.append(last if p else 0)
    return bounds


def split_pick(bounds: list[int], values: list[str], key: bytes, hash_fn: object = murmurhash2) -> str:
    h = hash_fn(key)  # type: ignore[operator]
    for bound, value in zip(bounds, values, strict=True):
        if bound == 0 or h < bound:
            return value
    return ""


def hash_pick(weights: list[int], key: bytes) -> int:
    """`ngx_http_upstream_get_hash_peer`, first round (every peer usable)."""
    crc = crc32_final(crc32_update(CRC32_INIT, key))
    w = ((crc >> 16) & 0x7FFF) % sum(weights)
    i = 0
    while w >= weights[i]:
        w -= weights[i]
        i += 1
    return i


def chash_pick(servers: list[str], weights: list[int], key: bytes) -> int:
    """`ngx_http_upstream_init_chash` points + `ngx_http_upstream_find_chash_point`."""
    points: list[tuple[int, int]] = []
    for index, (server, weight) in enumerate(zip(servers, weights, strict=True)):
        host, _, port = server.rpartition(":")
        base = crc32_update(crc32_update(crc32_update(CRC32_INIT, host.encode()), b"\0"), port.encode())
        prev = 0
        for _ in range(160 * weight):
            prev = crc32_final(crc32_update(base, prev.to_bytes(4, "little")))
            points.append((prev, index))
    points.sort(key=lambda p: p[0])
    hashes = [h for h, _ in points]
    assert len(set(hashes)) == len(hashes)  # no duplicate points to drop in this layout
    at = bisect.bisect_left(hashes, crc32(key)) % len(points)
    return points[at][1]


def test_split_bounds_examples() -> None:
    assert split_bounds([50, 200, 0]) == [21474836, 107374181, 0]
    assert split_bounds([5000, 5000]) == [2147483647, 4294967294]


def random_key(rng: random.Random) -> bytes:
    """An argument value nginx leaves as sent: `$arg_k` is not decoded."""
    alphabet = [
        b"a",
        b"Z",
        b"0",
        b"9",
        b"-",
        b".",
        b"_",
        b"~",
        b"%41",
        b"%e9",
        b"+",
        b"\xc3\xa9",
        b"\xff",
        b"!",
    ]
    return b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))


@pytest.mark.oracle
def test_oracle_split_clients() -> None:
    http = (
        'split_clients "${arg_k}" $b { 10% a; 20% b; 30.5% c; * d; }\n'
        'split_clients "x${arg_k}y" $b2 { 0.01% p; 33.33% q; 66.66% r; }\n'  # sums to 100%
        'server { listen 127.0.0.1:PORT; location / { return 200 "$b|$b2"; } }'
    )
    bounds1, values1 = split_bounds([1000, 2000, 3050, 0]), ["a", "b", "c", "d"]
    bounds2, values2 = split_bounds([1, 3333, 6666]), ["p", "q", "r"]
    rng = random.Random(7)
    keys = [b""] + [random_key(rng) for _ in range(799)]
    agree = agree_mmh3 = 0
    with NginxRunner(http) as ng:
        for key in keys:
            status, body = ng.get(b"/?k=" + key)
            want = f"{split_pick(bounds1, values1, key)}|{split_pick(bounds2, values2, b'x' + key + b'y')}"
            agree += status == 200 and body == want.encode()
            agree_mmh3 += (
                body.split(b"|")[0] == split_pick(bounds1, values1, key, lambda d: murmurhash3(d, 0)).encode()
            )
    print(f"split_clients: nginx agrees on {agree}/{len(keys)} keys (MurmurHash3 would get {agree_mmh3})")
    assert agree == len(keys)
    assert agree_mmh3 < len(keys) * 0.8


@pytest.mark.oracle
def test_oracle_hash_balancers() -> None:
    ports = [free_port() for _ in range(3)]
    servers = [f"127.0.0.1:{p}" for p in ports]
    weights = [1, 3, 1]
    peers = "".join(f"server {s} weight={w}; " for s, w in zip(servers, weights, strict=True))
    backends = "".join(f'server {{ listen {s}; return 200 "{i}"; }}\n' for i, s in enumerate(servers))
    http = (
        f"upstream h {{ hash $arg_k; {peers}}}\nupstream c {{ hash $arg_k consistent; {peers}}}\n{backends}"
        "server { listen 127.0.0.1:PORT; "
        "location /h { proxy_pass http://h; } location /c { proxy_pass http://c; } }"
    )
    rng = random.Random(8)
    keys = [k for k in (random_key(rng) for _ in range(400)) if k]  # an empty key means round robin
    agree = total = 0
    with NginxRunner(http) as ng:
        for key in keys:
            for path, pick in ((b"/h", hash_pick(weights, key)), (b"/c", chash_pick(servers, weights, key))):
                total += 1
                agree += ng.get(path + b"?k=" + key) == (200, str(pick).encode())
    print(f"hash balancers: nginx agrees on {agree}/{total} picks")
    assert agree == total
