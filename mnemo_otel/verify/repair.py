"""Storing what a verification found missing, from the source, exactly once.

Two cases, both through the sink the importer uses, with the same keys and quarantine rules:

- lines *behind* their file's checkpoint (rows lost or deleted after the import): re-read, re-keyed,
  and stored with :meth:`PostgresSink.restore`, which leaves the checkpoint alone;
- lines *past* the checkpoint (never imported): the file is simply imported, as the daemon would,
  so its checkpoint, sessions and exchanges move on as usual.

A line whose key changed since the check (the file was rewritten meanwhile) is left alone.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import anyio.to_thread

from ..errors import BatchRejected
from ..importer.file_import import FileImporter, FileProgress, rejected_line
from ..model import (
    BadLine,
    Batch,
    BatchOutcome,
    Entry,
    FileIdentity,
    FileImportSpan,
    NullObserver,
    TranscriptFile,
)
from ..settings import ImportSettings
from ..state import LoopState
from ..store.postgres import PostgresSink
from ..transcripts.parse import parse_line
from ..transcripts.reader import ReadResult, read_lines
from .lookup import Missing

__all__ = ("repair_missing",)

logger = logging.getLogger("mnemo_otel.verify")


async def repair_missing(
    sink: PostgresSink,
    missing: Iterable[Missing],
    *,
    settings: ImportSettings,
    trace_id: str | None,
) -> int:
    """Store the missing lines; returns how many rows (entries and quarantine) this wrote."""
    by_file: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for line in missing:
        by_file[(line.path, line.root)][line.offset] = line.key
    repaired = 0
    for (path, root), wanted in sorted(by_file.items()):
        checkpoint = await sink.checkpoint(path)
        committed = checkpoint.offset if checkpoint is not None else 0
        behind = {offset: key for offset, key in wanted.items() if offset < committed}
        if behind:
            repaired += await _restore(sink, path, root, behind, settings, trace_id)
        if len(behind) < len(wanted):
            repaired += await _import_rest(sink, TranscriptFile(Path(root), Path(path)), settings, trace_id)
    return repaired


async def _restore(
    sink: PostgresSink,
    path: str,
    root: str,
    wanted: dict[int, str],
    settings: ImportSettings,
    trace_id: str | None,
) -> int:
    remaining = sorted(wanted)
    stored = 0
    while remaining:
        lines, remaining = await anyio.to_thread.run_sync(_collect, Path(path), remaining, wanted, settings)
        if not lines:
            continue
        identity = await anyio.to_thread.run_sync(_identity, path)
        entries = [line for line in lines if isinstance(line, Entry)]
        bad = [line for line in lines if isinstance(line, BadLine)]
        batch = Batch(path, root, identity, lines[0].offset, lines[-1].end, entries, bad, trace_id)
        outcome = await _restore_splitting(sink, batch)
        stored += sum(outcome.stored.values()) + sum(outcome.quarantined.values())
    return stored


async def _restore_splitting(sink: PostgresSink, batch: Batch) -> BatchOutcome:
    """As the importer does: a batch PostgreSQL refuses is split until the refused line is quarantined."""
    try:
        return await sink.restore(batch)
    except BatchRejected:
        if len(batch.entries) <= 1:
            bad = [*batch.bad_lines, *map(rejected_line, batch.entries)]
            return await sink.restore(replace(batch, entries=[], bad_lines=bad))
    middle = len(batch.entries) // 2
    outcome = await _restore_splitting(sink, replace(batch, entries=batch.entries[:middle]))
    outcome.add(await _restore_splitting(sink, replace(batch, entries=batch.entries[middle:], bad_lines=[])))
    return outcome


def _collect(
    path: Path, remaining: list[int], wanted: dict[int, str], settings: ImportSettings
) -> tuple[list[Entry | BadLine], list[int]]:
    """The next batch of wanted lines, re-read and re-keyed; and the offsets still to come."""
    found: list[Entry | BadLine] = []
    last = -1
    result = ReadResult(end=remaining[0])
    try:
        for raw in read_lines(path, remaining[0], max_line_bytes=settings.max_line_bytes, result=result):
            if raw.offset > remaining[-1]:
                break
            last = raw.offset
            if raw.offset not in wanted:
                continue
            parsed = parse_line(raw)
            if parsed is not None and _key(parsed) == wanted[raw.offset]:
                found.append(parsed)
            else:
                logger.warning("line changed since the check; not repaired", extra={"mnemo.offset": last})
            if len(found) >= settings.batch_max_lines:
                return found, [offset for offset in remaining if offset > last]
    except FileNotFoundError:
        logger.warning("transcript vanished before its repair")
    return found, []


def _key(line: Entry | BadLine) -> str:
    return line.key if isinstance(line, Entry) else f"sha256:{line.sha256}"


def _identity(path: str) -> FileIdentity:
    stat = Path(path).stat()
    return FileIdentity(stat.st_dev, stat.st_ino, "", 0)


class _RepairObserver(NullObserver):
    """Observes nothing, but hands the repair's trace id to the import, which puts it on the rows."""

    def __init__(self, trace_id: str | None) -> None:
        self._trace_id = trace_id

    @contextmanager
    def file_import(self, transcript: TranscriptFile) -> Iterator[FileImportSpan]:
        with super().file_import(transcript) as span:
            span.trace_id = self._trace_id
            yield span


async def _import_rest(
    sink: PostgresSink, transcript: TranscriptFile, settings: ImportSettings, trace_id: str | None
) -> int:
    outcome = BatchOutcome()
    importer = FileImporter(sink, settings, _RepairObserver(trace_id), LoopState())
    await importer.import_file(transcript, FileProgress(), outcome, report_tails=False)
    return sum(outcome.stored.values()) + sum(outcome.quarantined.values())
