"""Noticing complete lines that vanish from disk before they are committed.

The scheduler measures every file before each pass; this module remembers, per file, where the
complete lines it saw ended (``FileProgress.seen_end``, on inode ``seen_inode``). If the file is then
deleted, cut short or replaced while that end is past the checkpoint, the difference is lost: it is
reported to ``on_loss`` (the daemon's ledger counts and records it), measured from the checkpoint
of the content that was seen: ``rereading`` does it before a re-import from 0 moves that checkpoint.
Nothing here touches the database.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ..model import SourceLoss
from ..transcripts.reader import HEAD_BYTES, range_digest
from .file_import import FileProgress

__all__ = ("OnLoss", "complete_end", "observe", "rereading", "vanished")

OnLoss = Callable[[SourceLoss], None]
_PROBE = 64 * 1024


def observe(path: Path, progress: FileProgress, stat: os.stat_result, on_loss: OnLoss) -> None:
    """A fresh stat of a present file: report a cut or a replacement, then remember what is there now."""
    committed = progress.committed
    floor = committed or 0
    same_file = progress.seen_inode == stat.st_ino
    if progress.seen_inode is not None and progress.seen_end > floor:
        if not same_file and not _still_holds(path, progress, stat.st_size):
            on_loss(SourceLoss(str(path), "replaced", progress.seen_end, committed, time.time()))
        elif stat.st_size < progress.seen_end:
            start = None if committed is None else max(committed, stat.st_size)
            on_loss(SourceLoss(str(path), "truncated", progress.seen_end, start, time.time()))
    seen = (progress.seen_inode, progress.seen_end)
    if not same_file or stat.st_size < progress.seen_end:
        progress.seen_end = 0
    if same_file and progress.seen_end < floor <= stat.st_size:
        progress.seen_end = floor  # a checkpoint is always at a line boundary of this file
    progress.seen_inode = stat.st_ino
    if stat.st_size > progress.seen_end:
        progress.seen_end = complete_end(path, progress.seen_end, stat.st_size)
    if (progress.seen_inode, progress.seen_end) != seen or progress.seen_mark is None:
        progress.seen_mark = _mark(path, progress.seen_end)


def _still_holds(path: Path, progress: FileProgress, size: int) -> bool:
    """Whether a file that replaced the one seen has the same bytes before ``seen_end`` (an atomic
    rewrite by a sync tool or an editor): the lines seen are still there, and the re-import from 0
    stores them. The bytes just before that end stand for all of them, as for a checkpoint."""
    if size < progress.seen_end or progress.seen_mark is None:
        return False
    return progress.seen_mark == _mark(path, progress.seen_end)


def _mark(path: Path, end: int) -> str | None:
    try:
        return range_digest(path, max(0, end - HEAD_BYTES), end)
    except OSError:
        return None


def rereading(path: Path, progress: FileProgress, checkpoint: int, on_loss: OnLoss) -> None:
    """The importer found the file changed under ``checkpoint`` and reads it again from 0: measure the
    loss now, from that checkpoint, since the re-import moves it (a cut below it would count committed
    lines as lost, a replacement would be measured against the new file's progress)."""
    try:
        stat = path.stat()
    except OSError:
        return  # gone meanwhile: the pass that notices reports it
    progress.committed = checkpoint
    observe(path, progress, stat, on_loss)


def vanished(path: Path, progress: FileProgress, on_loss: OnLoss) -> None:
    """The file is gone: whatever complete lines were seen past the checkpoint are lost."""
    if progress.seen_inode is not None and progress.seen_end > (progress.committed or 0):
        on_loss(SourceLoss(str(path), "deleted", progress.seen_end, progress.committed, time.time()))


def complete_end(path: Path, floor: int, size: int) -> int:
    """The offset after the last newline in ``[floor, size)``, or ``floor``: read backwards, a little."""
    try:
        with path.open("rb") as f:
            end = size
            while end > floor:
                start = max(floor, end - _PROBE)
                f.seek(start)
                chunk = f.read(end - start)
                newline = chunk.rfind(b"\n")
                if newline != -1:
                    return start + newline + 1
                end = start
    except OSError:
        pass
    return floor
