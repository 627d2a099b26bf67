"""Each line of a batch as written: the exact bytes the archive keeps so a file can be given back.

The parser hands over entries without their ``\\r`` and bad lines as raw bytes; here each is turned
back into the bytes between its offset and its ``\\n``, with the digest taken now, from the source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..model import Batch, Quarantine

__all__ = ("LineRows", "line_rows")


@dataclass(slots=True)
class LineRows:
    """Column arrays for ``INSERT_LINES``, in offset order, plus each entry's digest (batch order)."""

    offsets: list[int]
    lengths: list[int]
    digests: list[bytes]
    bodies: list[bytes | None]
    keys: list[str | None]
    sessions: list[str | None]
    entry_digests: list[bytes]


def line_rows(batch: Batch) -> LineRows:
    rows: list[tuple[int, int, bytes, bytes | None, str | None, str | None]] = []
    entry_digests = []
    for entry in batch.entries:
        length = entry.end - entry.offset - 1
        line = entry.line if length == len(entry.line) else entry.line + b"\r"
        digest = hashlib.sha256(line).digest()
        entry_digests.append(digest)
        rows.append((entry.offset, length, digest, line, entry.key, entry.session_id))
    for bad in batch.bad_lines:
        length = bad.end - bad.offset - 1
        if len(bad.raw) == length:
            body: bytes | None = bad.raw
        elif bad.kind is Quarantine.REJECTED_BY_DB and len(bad.raw) + 1 == length:
            body = bad.raw + b"\r"
        else:  # over the size cap: only a sample was read, and its digest over the whole line
            body = None
        digest = hashlib.sha256(body).digest() if body is not None else bytes.fromhex(bad.sha256)
        rows.append((bad.offset, length, digest, body, None, None))
    for offset, data in batch.blanks:
        rows.append((offset, len(data), hashlib.sha256(data).digest(), data, None, None))
    rows.sort(key=lambda row: row[0])
    return LineRows(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        [r[5] for r in rows],
        entry_digests,
    )
