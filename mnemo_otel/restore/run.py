"""The restore and its drill, over the files of one host: what each command does, minus the wiring.

The drill rebuilds every file in memory-flat passes and names those that would not come back exactly.
The restore rebuilds each selected file twice: once to prove it exact and learn its digest, once
to write it, so a file is only ever written when it is known whole and right.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from ..store.postgres import Conn
from .archive import (
    DAMAGED,
    ArchivedBlock,
    ArchivedDocument,
    ArchivedFile,
    Rebuild,
    archived_blocks,
    archived_documents,
    archived_files,
    block_piece,
    select_paths,
)
from .place import Outcome, PathRefused, Placed, placement, write_exact

__all__ = ("CheckReport", "RestoreReport", "check_archive", "restore_files")


@dataclass
class CheckReport:
    """``restore --check``: JSON keys ``files``, ``exact``, ``inexact`` (path, reason and kind each)."""

    files: int = 0
    exact: int = 0
    inexact: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "exact": self.exact, "inexact": self.inexact}

    def count(self, kind: str) -> int:
        """Inexact files of one kind (``archive.DAMAGED``, ``archive.BEFORE_EXACT_LINES``)."""
        return sum(1 for item in self.inexact if item["kind"] == kind)

    def summary(self) -> str:
        lines = [f"{self.exact} of {self.files} files can be restored exactly"]
        lines += [f"  inexact: {item['path']}: {item['reason']}" for item in self.inexact]
        return "\n".join(lines)


@dataclass
class RestoreReport:
    """``restore``: JSON keys ``files``, ``restored``, ``unchanged``, ``refused``, ``inexact``, ``bytes``."""

    files: int = 0
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    inexact: list[dict[str, str]] = field(default_factory=list)
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "restored": self.restored,
            "unchanged": self.unchanged,
            "refused": self.refused,
            "inexact": self.inexact,
            "bytes": self.bytes,
        }

    def summary(self) -> str:
        counts = (
            f"{len(self.restored)} restored, {len(self.unchanged)} unchanged, {len(self.refused)} refused, "
            f"{len(self.inexact)} not restorable exactly, of {self.files} files ({self.bytes} bytes written)"
        )
        lines = [counts]
        lines += [f"  refused: {item['path']}: {item['reason']}" for item in self.refused]
        lines += [f"  inexact: {item['path']}: {item['reason']}" for item in self.inexact]
        return "\n".join(lines)


async def rebuild(conn: Conn, file: ArchivedFile) -> Rebuild:
    """One pass over the file's lines: is it exact, and what are its size and digest."""
    result = Rebuild(file)
    if result.problem is None:
        async with conn.transaction(readonly=True):
            async for block in archived_blocks(conn, file):
                if block.body is not None:
                    result.add(block.start, block.end, block.sha256, block.body)
                elif result.begin(block.start, block.end, block.sha256):
                    seq = 0
                    while (piece := await block_piece(conn, file, block.start, seq)) is not None:
                        result.piece(piece)
                        seq += 1
                    result.end()
                if result.problem is not None:
                    break
    result.finish()
    return result


async def check_archive(conn: Conn, host: str) -> CheckReport:
    report = CheckReport()
    for document in await archived_documents(conn, host):
        report.files += 1
        if hashlib.sha256(document.body).digest() == document.sha256:
            report.exact += 1
        else:
            problem = "the document does not match the digest taken at import"
            report.inexact.append({"path": document.path, "reason": problem, "kind": DAMAGED})
    for file in await archived_files(conn, host):
        report.files += 1
        rebuilt = await rebuild(conn, file)
        if rebuilt.problem is None:
            report.exact += 1
        else:
            report.inexact.append({"path": file.path, "reason": rebuilt.problem, "kind": rebuilt.kind})
    return report


async def restore_files(
    conn: Conn, host: str, selectors: Sequence[str] | None, to: Path | None
) -> RestoreReport:
    """Restore the selected files (all of the host's with ``None``); a selector naming no file is
    reported as inexact (nothing of it can be restored)."""
    files = await archived_files(conn, host)
    documents = await archived_documents(conn, host)
    unmatched: list[str] = []
    if selectors is not None:
        chosen, unmatched = select_paths([*(f.path for f in files), *(d.path for d in documents)], selectors)
        files = [f for f in files if f.path in chosen]
        documents = [d for d in documents if d.path in chosen]
    report = RestoreReport(files=len(files) + len(documents))
    report.inexact += [{"path": s, "reason": f"nothing archived for it on host {host}"} for s in unmatched]
    for file in files:
        await _restore_one(conn, file, to, report)
    for document in documents:
        await _restore_document(document, to, report)
    return report


async def _restore_document(document: ArchivedDocument, to: Path | None, report: RestoreReport) -> None:
    if hashlib.sha256(document.body).digest() != document.sha256:
        report.inexact.append({"path": document.path, "reason": "the document does not match its digest"})
        return
    try:
        target = placement(document.path, to)
    except PathRefused as exc:
        report.refused.append({"path": document.path, "reason": str(exc)})
        return
    body = document.body
    placed = await anyio.to_thread.run_sync(
        lambda: write_exact(
            target, lambda: iter([body]), document.sha256.hex(), len(body), anchor=to or Path("/")
        )
    )
    _tally(report, document.path, placed, len(body))


async def _restore_one(conn: Conn, file: ArchivedFile, to: Path | None, report: RestoreReport) -> None:
    proven = await rebuild(conn, file)
    if proven.problem is not None:
        report.inexact.append({"path": file.path, "reason": proven.problem})
        return
    try:
        target = placement(file.path, to)
    except PathRefused as exc:
        report.refused.append({"path": file.path, "reason": str(exc)})
        return
    async with conn.transaction(readonly=True):
        blocks = aiter(archived_blocks(conn, file))

        def chunks() -> Iterator[bytes]:
            """Runs in the writer's thread; each block is fetched on the event loop as it is needed."""
            again = Rebuild(file)
            while (block := anyio.from_thread.run(_next_or_none, blocks)) is not None:
                if block.body is not None:
                    yield again.add(block.start, block.end, block.sha256, block.body)
                    continue
                again.begin(block.start, block.end, block.sha256)
                seq = 0
                while (piece := anyio.from_thread.run(block_piece, conn, file, block.start, seq)) is not None:
                    yield again.piece(piece)
                    seq += 1
                again.end()

        placed = await anyio.to_thread.run_sync(
            lambda: write_exact(target, chunks, proven.sha256, proven.size, anchor=to or Path("/"))
        )
    _tally(report, file.path, placed, proven.size)


def _tally(report: RestoreReport, path: str, placed: Placed, size: int) -> None:
    if placed.outcome is Outcome.RESTORED:
        report.restored.append(path)
        report.bytes += size
    elif placed.outcome is Outcome.UNCHANGED:
        report.unchanged.append(path)
    else:  # a different file, or a symlink or non-regular file, in the way
        report.refused.append({"path": str(placed.target), "reason": placed.reason})


async def _next_or_none(blocks: AsyncIterator[ArchivedBlock]) -> ArchivedBlock | None:
    try:
        return await anext(blocks)
    except StopAsyncIteration:
        return None
