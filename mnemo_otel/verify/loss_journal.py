"""Source losses the database has not taken yet, kept on this machine's disk so a restart cannot
forget them (the database is often down exactly when files vanish: a reboot, an upgrade).

One JSON line per event, appended and flushed to disk when the loss is noticed; rewritten with what
is still pending whenever events were recorded. Each event has its own id, and the database ignores
an id it already holds, so replaying the journal after a crash never records an event twice. A
journal that cannot be written is reported once; the events then live in memory only, as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path

import orjson

from ..model import SourceLoss

__all__ = ("LossJournal", "journal_path")

logger = logging.getLogger("mnemo_otel.importer")


def journal_path(data_dir: Path, archive: str) -> Path:
    """One journal per archive (database URL, password excluded): losses wait for the archive that
    missed them, and pointing the importer at another database never hands them to it."""
    return data_dir / f"pending-losses-{hashlib.sha256(archive.encode()).hexdigest()[:16]}.jsonl"


class LossJournal:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._broken = False

    def read(self) -> list[SourceLoss]:
        if self._path is None:
            return []
        try:
            text = self._path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._report(exc)
            return []
        events = []
        for line in text.splitlines():
            try:
                events.append(SourceLoss(**orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError) as exc:  # a line cut by a crash mid-append
                logger.warning("skipping an unreadable line of the loss journal: %s", type(exc).__name__)
        return events

    def append(self, loss: SourceLoss) -> None:
        self._write([loss], mode="ab")

    def rewrite(self, pending: list[SourceLoss]) -> None:
        if self._path is None:
            return
        if not pending:
            try:
                self._path.unlink(missing_ok=True)
            except OSError as exc:
                self._report(exc)
            return
        self._write(pending, mode="wb", replace=True)

    def _write(self, events: list[SourceLoss], *, mode: str, replace: bool = False) -> None:
        if self._path is None:
            return
        target = self._path.with_suffix(".tmp") if replace else self._path
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with target.open(mode) as f:
                f.write(b"".join(orjson.dumps(dataclasses.asdict(e)) + b"\n" for e in events))
                f.flush()
                os.fsync(f.fileno())
            if replace:
                target.replace(self._path)
        except OSError as exc:
            self._report(exc)

    def _report(self, exc: OSError) -> None:
        if not self._broken:
            self._broken = True
            logger.warning(
                "loss journal unusable (%s): losses not yet recorded are kept in memory only",
                exc.strerror or type(exc).__name__,
            )
