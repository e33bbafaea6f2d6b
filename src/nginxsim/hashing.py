"""The hash primitives whose values nginx makes observable.

* MurmurHash2 (`ngx_murmur_hash2`, src/core/ngx_murmurhash.c) picks the `split_clients` bucket.
  It is Austin Appleby's 32-bit MurmurHash2 with the length as the initial value (seed 0), so
  the compiled `murmurhash2` package with seed 0 computes it; MurmurHash3 (`mmh3`) does not.
* CRC-32 (src/core/ngx_crc32.h) keys the `hash` and `hash consistent` upstream balancers.  Its
  tables are the standard reflected 0xEDB88320 ones, so `zlib.crc32` gives the same values.
  `ip_hash` uses its own arithmetic (no CRC), not provided here.
"""

from __future__ import annotations

import zlib

from murmurhash2 import murmurhash2 as murmurhash2_raw  # (data, seed): nginx's is seed 0

__all__ = ["CRC32_INIT", "crc32", "crc32_final", "crc32_update", "murmurhash2", "murmurhash2_raw"]


def murmurhash2(data: bytes) -> int:
    """`ngx_murmur_hash2(data, len)`: unsigned 32-bit hash; b"" hashes to 0."""
    return murmurhash2_raw(data, 0)


def crc32(data: bytes) -> int:
    """`ngx_crc32_short` / `ngx_crc32_long` (same values, different table sizes)."""
    return zlib.crc32(data)


CRC32_INIT = 0xFFFFFFFF
"""`ngx_crc32_init(crc)`: the running register before any byte."""


def crc32_update(crc: int, data: bytes) -> int:
    """`ngx_crc32_update(&crc, data, len)`: feed bytes into a running (not finalised) register.

    zlib works on finalised values, hence the complement on the way in and out.
    """
    return zlib.crc32(data, crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def crc32_final(crc: int) -> int:
    """`ngx_crc32_final(crc)`: `crc32_final(crc32_update(CRC32_INIT, b)) == crc32(b)`."""
    return crc ^ 0xFFFFFFFF
