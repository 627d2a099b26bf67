"""A snapshot of the keys one host stored, 8 bytes a key, for membership tests without a round trip.

Probing the primary key once per line costs a B-tree descent and text comparisons in PostgreSQL for
every line on disk; reading the host's keys once costs one index-only scan (``entries_host_key``).
Each key is kept as the first 8 bytes of its MD5, computed by PostgreSQL on the way out (one binary
``COPY``, 14 bytes a key on the wire) and by the worker processes for the keys they find on disk, so a
GiB of one host's transcripts (1.4 million keys) is an 11 MB sorted array, tested a whole block of
keys at a time (``numpy.searchsorted``).

Only the host's own keys: a scrub then costs that host's lines, not the fleet's (with every host's
keys, a host of 20,000 lines took 6.8 s and 293 MiB to verify in an archive of 10 M lines, against 1.6 s
and 74 MiB now; docs/scaling.md). A line that another host stored first is absent from the snapshot,
so it is asked about like any other doubt.

A key whose hash is absent is not in the snapshot (the caller then asks the database by key, which
also finds rows of other hosts and rows committed after the snapshot was taken); a present hash is
taken as stored: a false match needs a 64-bit collision, odds of about one in 10^13 per line. A key
the database would encode differently from UTF-8 only ever misses, and is then looked up exactly.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import asyncpg

__all__ = ("StoredKeys", "hash_keys")

logger = logging.getLogger(__name__)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
Hashes: TypeAlias = npt.NDArray[np.uint64]

HOST_KEY_HASHES: Final = (
    "SELECT substring(decode(md5(key), 'hex') FROM 1 FOR 8) FROM mnemo.entries WHERE source_host = $1"
)
HOST_KEYS: Final = "SELECT key FROM mnemo.entries WHERE source_host = $1"
PAGE_ROWS: Final = 50_000
_HASH = np.dtype("<u8")
# Binary COPY: an 11-byte signature, flags and header-extension length, then per row a field count
# (int16), the value's length (int32) and its 8 bytes; a 2-byte trailer.
_COPY_HEADER = 19
_COPY_ROW = np.dtype([("fields", ">i2"), ("length", ">i4"), ("hash", _HASH)])


def hash_keys(keys: list[str]) -> Hashes:
    """The snapshot's hash of each key, in order: PostgreSQL's ``md5`` of the key's UTF-8, 8 bytes."""
    joined = b"".join([hashlib.md5(key.encode(), usedforsecurity=False).digest()[:8] for key in keys])
    return np.frombuffer(joined, dtype=_HASH)


class StoredKeys:
    def __init__(self, hashes: Hashes) -> None:
        self._hashes = hashes

    @classmethod
    async def load(cls, conn: Conn, host: str) -> StoredKeys:
        """Read the hash of every key ``host`` stored in one consistent scan, hashed by the server; by
        us when the server refuses MD5 (a build in FIPS mode), slower but the same snapshot."""
        import asyncpg  # here, not at the top: the worker processes that import this module never connect

        try:
            hashes = await _hashed_by_server(conn, host)
        except (
            asyncpg.InternalServerError,
            asyncpg.FeatureNotSupportedError,
            asyncpg.UndefinedFunctionError,
        ) as exc:
            logger.warning("the database refused md5() (%s); hashing the stored keys here", exc.sqlstate)
            hashes = await _hashed_here(conn, host)
        return cls(np.sort(hashes))

    @classmethod
    def open(cls, path: Path) -> StoredKeys:
        """A snapshot :meth:`save` wrote (how worker processes get it: one file, not a copy per task)."""
        return cls(np.fromfile(path, dtype=_HASH))

    def save(self, directory: Path | None = None) -> Path:
        with tempfile.NamedTemporaryFile(
            prefix="mnemo-keys-", suffix=".u8", dir=directory, delete=False
        ) as f:
            self._hashes.tofile(f)
        return Path(f.name)

    def __len__(self) -> int:
        return len(self._hashes)

    def contains(self, keys: list[str]) -> npt.NDArray[np.bool_]:
        """One flag per key: its hash is in the snapshot."""
        wanted = hash_keys(keys)
        if not len(self._hashes):
            return np.zeros(len(wanted), dtype=np.bool_)
        at = np.minimum(np.searchsorted(self._hashes, wanted), len(self._hashes) - 1)
        held: npt.NDArray[np.bool_] = self._hashes[at] == wanted
        return held


async def _hashed_by_server(conn: Conn, host: str) -> Hashes:
    received = bytearray()

    async def collect(chunk: bytes) -> None:
        received.extend(chunk)

    await conn.copy_from_query(HOST_KEY_HASHES, host, output=collect, format="binary")
    rows = np.frombuffer(received, dtype=_COPY_ROW, offset=_COPY_HEADER, count=_row_count(received))
    if rows.size and not (np.all(rows["fields"] == 1) and np.all(rows["length"] == 8)):
        raise ValueError("unexpected row layout in the key snapshot")
    hashes: Hashes = rows["hash"]
    return hashes


async def _hashed_here(conn: Conn, host: str) -> Hashes:
    """The host's keys read through a cursor (a page in memory at a time) and hashed as the workers do."""
    parts: list[Hashes] = []
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(HOST_KEYS, host)
        while page := await cursor.fetch(PAGE_ROWS):
            parts.append(hash_keys([row[0] for row in page]))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=_HASH)


def _row_count(received: bytearray) -> int:
    body = len(received) - _COPY_HEADER - 2
    if body < 0 or body % _COPY_ROW.itemsize:
        raise ValueError(f"truncated key snapshot ({len(received)} bytes)")
    return body // _COPY_ROW.itemsize
