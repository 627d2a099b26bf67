"""A batch as the file holds it: the exact bytes of the range it covers, for ``mnemo.blocks``.

The parser hands over entries without their ``\\r`` and bad lines as raw bytes; here the batch's
lines (blank ones too) are put back together in offset order into the bytes between the batch's
start and end, digested now, from the source, and compressed (``block_codec``). A line over the size
cap was only sampled: it gets a block of its own, filled from the source in pieces (``_oversize.py``).
Everything here is CPU work on the batch alone: the sink does it in a worker thread, before it takes
a connection.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..model import Batch
from . import block_codec

__all__ = ("Block", "ExactBatch", "entry_digests", "exact_batch")


@dataclass(frozen=True, slots=True)
class Block:
    """``[start, end)`` of the file; ``body`` (stored as ``codec`` says) is ``None`` for a line over the
    size cap, whose own digest (without its ``\\n``) is ``line_sha256``."""

    start: int
    end: int
    sha256: bytes
    body: bytes | None
    line_sha256: bytes = b""
    codec: str = block_codec.IDENTITY


@dataclass(slots=True)
class ExactBatch:
    blocks: list[Block] = field(default_factory=list)
    entry_bodies: list[bytes] = field(default_factory=list)
    """Each entry's line as written (its ``\\r`` back), in batch order."""
    entry_digests: list[bytes] = field(default_factory=list)


def exact_batch(batch: Batch) -> ExactBatch:
    exact = ExactBatch()
    parts: list[tuple[int, bytes | None, bytes]] = []  # (offset, line without "\n" or None, digest)
    for entry in batch.entries:
        written = entry.written
        exact.entry_bodies.append(written)
        exact.entry_digests.append(hashlib.sha256(written).digest())
        parts.append((entry.offset, written, b""))
    for bad in batch.bad_lines:
        length = bad.end - bad.offset - 1
        if len(bad.raw) == length:
            parts.append((bad.offset, bad.raw, b""))
        else:  # over the size cap: sampled only; its digest covers the whole line
            parts.append((bad.offset, None, bytes.fromhex(bad.sha256)))
    parts += [(offset, data, b"") for offset, data in batch.blanks]
    parts.sort(key=lambda part: part[0])
    run: list[bytes] = []
    run_start = run_end = batch.start
    for offset, line, digest in parts:
        if line is not None and offset == run_end:
            run += (line, b"\n")
            run_end += len(line) + 1
            continue
        _flush(exact, run_start, run)
        if line is None:
            end = offset + _oversize_length(batch, offset) + 1
            exact.blocks.append(Block(offset, end, b"", None, digest))
            run, run_start = [], end
        else:  # a gap: never expected; the drill will name it rather than the import stop
            run, run_start = [line, b"\n"], offset
        run_end = run_start + sum(map(len, run))
    _flush(exact, run_start, run)
    return exact


def entry_digests(batch: Batch) -> list[bytes]:
    """Each entry's sha256 as ``exact_batch`` gives it, without building the blocks."""
    return [hashlib.sha256(entry.written).digest() for entry in batch.entries]


def _flush(exact: ExactBatch, start: int, run: list[bytes]) -> None:
    if run:
        body = b"".join(run)
        stored = block_codec.compress(body)
        exact.blocks.append(
            Block(start, start + len(body), hashlib.sha256(body).digest(), stored, codec=block_codec.ZSTD)
        )


def _oversize_length(batch: Batch, offset: int) -> int:
    return next(bad.end - bad.offset - 1 for bad in batch.bad_lines if bad.offset == offset)
