"""A snapshot of every key the archive holds, 8 bytes a key, for membership tests without a round trip.

Probing the primary key once per line costs a B-tree descent and text comparisons in PostgreSQL for
every line on disk; reading every key once, in key order, costs one index-only scan. Each key is kept
as its 64-bit ``hash()`` in a sorted array, so a GiB of transcripts (1.4 million keys) takes about
11 MB. A key whose hash is absent is certainly not in the snapshot (the caller then asks the
database, which also catches rows committed after the snapshot was taken); a present hash is taken
as stored: a false match needs a 64-bit collision, odds of about one in 10^13 per line.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Final, TypeAlias

import asyncpg

__all__ = ("StoredKeys",)

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

PAGE_ROWS: Final = 100_000
FIRST_PAGE: Final = "SELECT key FROM mnemo.entries ORDER BY key LIMIT $1"
NEXT_PAGE: Final = "SELECT key FROM mnemo.entries WHERE key > $2 ORDER BY key LIMIT $1"


class StoredKeys:
    def __init__(self, hashes: array[int]) -> None:
        self._hashes = hashes

    @classmethod
    async def load(cls, conn: Conn) -> StoredKeys:
        """Read every key, a page at a time (keyset pagination: the memory held is one page)."""
        values: list[int] = []
        last: str | None = None
        while True:
            if last is None:
                rows = await conn.fetch(FIRST_PAGE, PAGE_ROWS)
            else:
                rows = await conn.fetch(NEXT_PAGE, PAGE_ROWS, last)
            values.extend(hash(row[0]) for row in rows)
            if len(rows) < PAGE_ROWS:
                break
            last = rows[-1][0]
        values.sort()
        return cls(array("q", values))

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, key: object) -> bool:
        value = hash(key)
        index = bisect_left(self._hashes, value)
        return index < len(self._hashes) and self._hashes[index] == value
